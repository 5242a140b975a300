//! Greedy decoding (and the shared one-token-per-row loop that sampling reuses).
//!
//! Mirrors transformers' `_sample`: every row takes one token per step; a row that produced EOS
//! keeps being fed `pad_token_id` until all rows are done or `max_length` is reached.

use super::config::GenerationConfig;
use super::logits::decode_step;
use super::processors::ProcessorList;
use super::scores::argmax;
use crate::Result;
use crate::models::{DecoderState, Seq2Seq};

/// Picks a row's next token from its (unprocessed) scores.
pub trait NextToken {
    /// `row` is the input row, `decoder_ids` its tokens so far; `scores` may be rewritten.
    fn next_token(&mut self, row: usize, decoder_ids: &[u32], scores: &mut [f32]) -> Result<u32>;
}

/// Greedy choice: apply the processors, take the first highest score.
pub struct Argmax<'a> {
    pub processors: &'a ProcessorList,
}

impl NextToken for Argmax<'_> {
    fn next_token(&mut self, _row: usize, decoder_ids: &[u32], scores: &mut [f32]) -> Result<u32> {
        self.processors.apply(decoder_ids, scores);
        // A row index is a token id, and token ids are u32 throughout.
        Ok(argmax(scores) as u32)
    }
}

/// Decode every row one token at a time. Returns each row's tokens, starting with the decoder
/// start token and ending with EOS if one was produced, and the number of decoder steps run.
pub fn decode_rows(
    model: &dyn Seq2Seq,
    state: &mut DecoderState,
    rows: usize,
    config: &GenerationConfig,
    chooser: &mut dyn NextToken,
) -> Result<(Vec<Vec<u32>>, usize)> {
    let spec = model.spec();
    let max_length = config.effective_max_length();
    let mut sequences = vec![vec![spec.decoder_start_token_id]; rows];
    let mut done = vec![false; rows];
    let mut steps = 0;
    // Every row's sequence has the same length, `steps + 1`.
    while steps + 1 < max_length && done.iter().any(|d| !d) {
        let last: Vec<u32> = sequences
            .iter()
            .zip(&done)
            .map(|(seq, &d)| {
                if d {
                    spec.pad_token_id
                } else {
                    seq[seq.len() - 1]
                }
            })
            .collect();
        let mut logits = decode_step(model, state, &last)?;
        steps += 1;
        for (row, scores) in logits.rows_mut().enumerate() {
            if done[row] {
                continue;
            }
            let token = chooser.next_token(row, &sequences[row], scores)?;
            sequences[row].push(token);
            done[row] = token == spec.eos_token_id;
        }
    }
    Ok((sequences, steps))
}
