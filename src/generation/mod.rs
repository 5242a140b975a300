//! Turning an encoded batch into token ids: greedy search, beam search and sampling, with
//! transformers' logits processors, against the [`Seq2Seq`] trait only.
//!
//! The goal is token-for-token parity with transformers' `generate()` (5.x): same processor
//! order, same beam bookkeeping (see [`beam`] and [`hypotheses`]), same f32 arithmetic where it
//! decides a ranking.

pub mod beam;
pub mod config;
pub mod greedy;
pub mod hypotheses;
pub mod logits;
pub mod processors;
pub mod sampling;
pub mod scores;

#[cfg(test)]
mod mock;
#[cfg(test)]
mod parity;
#[cfg(test)]
mod tests;

use candle_core::{Shape, Tensor};

pub use config::{EarlyStopping, GenerationConfig, Sampling};
pub use processors::{LogitsProcessor, ProcessorList};

use crate::models::Seq2Seq;
use crate::{Error, Result};

/// Work done by one `generate` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenerationStats {
    /// Decoder steps run (each one token for every live row).
    pub steps: usize,
    /// Decoder rows per step: batch size × beams.
    pub rows: usize,
}

/// Generate one sequence per input row. Each starts with the decoder start token and ends with
/// EOS when one was generated (never with padding).
///
/// `input_ids` and `attention_mask` are `(batch, seq)` u32 tensors; `config` is validated here.
pub fn generate(
    model: &dyn Seq2Seq,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Vec<Vec<u32>>> {
    generate_with_stats(model, input_ids, attention_mask, config).map(|(sequences, _)| sequences)
}

/// [`generate`], also reporting how much decoding it took.
pub fn generate_with_stats(
    model: &dyn Seq2Seq,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<(Vec<Vec<u32>>, GenerationStats)> {
    config.validate()?;
    check_token_ids(model, config)?;
    let batch = check_inputs(input_ids, attention_mask)?;
    if batch == 0 {
        return Ok((Vec::new(), GenerationStats::default()));
    }
    let encoded = model.encode(input_ids, attention_mask)?;
    let mut state = model.start_decoding(&encoded, attention_mask)?;
    let processors = ProcessorList::from_config(config, model.spec().eos_token_id);

    let (sequences, steps) = match (&config.sampling, config.num_beams) {
        (Some(sampling), _) => {
            let mut sampler = sampling::Sampler::new(sampling, batch, &processors);
            greedy::decode_rows(model, &mut state, batch, config, &mut sampler)?
        }
        // One beam is greedy search, which transformers runs as such (processors on raw logits).
        (None, 1) => {
            let mut argmax = greedy::Argmax {
                processors: &processors,
            };
            greedy::decode_rows(model, &mut state, batch, config, &mut argmax)?
        }
        (None, _) => beam::beam_search(model, &mut state, batch, config, &processors)?,
    };
    // Sampling is validated to use one beam, so this holds for every strategy.
    let rows = batch * config.num_beams;
    Ok((sequences, GenerationStats { steps, rows }))
}

/// Forced tokens must be ones the model can score.
fn check_token_ids(model: &dyn Seq2Seq, config: &GenerationConfig) -> Result<()> {
    let vocab = model.spec().vocab_size;
    let forced = [
        ("forced_bos_token_id", config.forced_bos_token_id),
        ("forced_eos_token_id", config.forced_eos_token_id),
    ];
    for (option, token) in forced {
        if let Some(token) = token.filter(|&t| t as usize >= vocab) {
            return Err(Error::InvalidOption {
                option,
                value: token.to_string(),
                expected: format!("a token id below the vocabulary size ({vocab})"),
            });
        }
    }
    Ok(())
}

/// The batch size, once ids and mask are known to be matching 2-D tensors.
fn check_inputs(input_ids: &Tensor, attention_mask: &Tensor) -> Result<usize> {
    let (batch, seq) = input_ids.dims2()?;
    if attention_mask.dims() != [batch, seq] {
        return Err(candle_core::Error::UnexpectedShape {
            msg: "attention_mask must have the shape of input_ids".into(),
            expected: Shape::from((batch, seq)),
            got: attention_mask.shape().clone(),
        }
        .into());
    }
    Ok(batch)
}
