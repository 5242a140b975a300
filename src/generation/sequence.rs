//! One sequence being generated with its own settings: its logits processors, lengths and search
//! (greedy, sampling or beam search), independent of whatever else shares its decoder batch.
//!
//! Per-sequence settings are what let one running batch serve requests with different decoding
//! options and still give each the tokens it would get alone. Only the beam width shapes the
//! decoder state (rows per input), so the engine groups sequences by it (see [`super::engine`]).

use rayon::prelude::*;

use super::beam::InputSearch;
use super::config::{DECODER_PROMPT_LEN, EarlyStopping, GenerationConfig};
use super::greedy::TokenSearch;
use super::hypotheses::StopRule;
use super::processors::ProcessorList;
use super::scores::log_softmax_in_place;
use crate::Result;
use crate::models::DecoderSpec;

/// A sequence's search state and settings.
pub struct Sequence {
    processors: ProcessorList,
    /// Longest decoder sequence, start token included.
    max_length: usize,
    eos_token_id: u32,
    early_stopping: EarlyStopping,
    search: Search,
}

enum Search {
    /// Greedy search or sampling: one decoder row. Boxed: a sampler's state is large.
    Tokens(Box<TokenSearch>),
    /// Beam search: `num_beams` decoder rows.
    Beams(InputSearch),
}

/// What one step did to a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct Advance {
    /// For beam search, the row (within this sequence) each new row continues.
    pub sources: Option<Vec<usize>>,
    /// The sequence is complete and can leave the batch.
    pub finished: bool,
}

impl Sequence {
    /// A sequence decoding with `config` (already validated) for a model with `spec`: sampling
    /// or greedy search with one beam, beam search with more, as transformers chooses.
    pub fn new(config: &GenerationConfig, spec: &DecoderSpec) -> Self {
        if !config.do_sample && config.num_beams > 1 {
            return Self::beam_search(config, spec);
        }
        let sampling = config.do_sample.then_some(&config.sampling);
        let search = TokenSearch::new(spec.decoder_start_token_id, sampling);
        Self::with_search(config, spec, Search::Tokens(Box::new(search)))
    }

    /// Beam search even with one beam (which transformers would run as greedy search).
    pub fn beam_search(config: &GenerationConfig, spec: &DecoderSpec) -> Self {
        let rule = StopRule {
            length_penalty: config.length_penalty,
            early_stopping: config.early_stopping,
            max_length: config.effective_max_length(),
            prompt_len: DECODER_PROMPT_LEN,
        };
        let search = InputSearch::new(
            config.num_beams.max(1),
            spec.decoder_start_token_id,
            spec.eos_token_id,
            rule,
        );
        Self::with_search(config, spec, Search::Beams(search))
    }

    fn with_search(config: &GenerationConfig, spec: &DecoderSpec, search: Search) -> Self {
        Self {
            processors: ProcessorList::from_config(config, spec.eos_token_id),
            max_length: config.effective_max_length(),
            eos_token_id: spec.eos_token_id,
            early_stopping: config.early_stopping,
            search,
        }
    }

    /// Decoder rows the sequence takes: its beams.
    pub fn rows(&self) -> usize {
        match &self.search {
            Search::Tokens(_) => 1,
            Search::Beams(input) => input.beams().len(),
        }
    }

    /// At most how many more decoder steps the sequence takes: it finishes when its tokens
    /// reach its maximum length, if not before.
    pub fn steps_left(&self) -> usize {
        let len = match &self.search {
            Search::Tokens(search) => search.tokens().len(),
            Search::Beams(input) => input.beams().first().map_or(0, |beam| beam.tokens.len()),
        };
        self.max_length.saturating_sub(len)
    }

    /// Appends each row's last token, the tokens the next decoder step is fed.
    pub fn push_last_tokens(&self, out: &mut Vec<u32>) {
        match &self.search {
            Search::Tokens(search) => out.extend(search.tokens().last()),
            Search::Beams(input) => {
                out.extend(input.beams().iter().filter_map(|b| b.tokens.last()))
            }
        }
    }

    /// One step: `scores` holds this sequence's [`Self::rows`] rows of raw logits over `vocab`
    /// tokens, and is rewritten in place.
    pub fn advance(&mut self, scores: &mut [f32], vocab: usize) -> Result<Advance> {
        match &mut self.search {
            Search::Tokens(search) => {
                self.processors.apply(search.tokens(), scores);
                let token = search.push_next(scores)?;
                let finished =
                    token == self.eos_token_id || search.tokens().len() >= self.max_length;
                Ok(Advance {
                    sources: None,
                    finished,
                })
            }
            Search::Beams(input) => {
                // Rows are independent: each thread normalises whole rows, so the values are the
                // same as one after the other.
                scores
                    .par_chunks_exact_mut(vocab)
                    .for_each(log_softmax_in_place);
                for (row, beam) in scores.chunks_exact_mut(vocab).zip(input.beams()) {
                    self.processors.apply(&beam.tokens, row);
                }
                let outcome = input.step(scores, vocab, self.max_length);
                Ok(Advance {
                    finished: input.is_done(self.early_stopping, outcome.all_finished),
                    sources: Some(outcome.sources),
                })
            }
        }
    }

    /// The generated tokens (start token first): the best hypothesis for beam search.
    pub fn into_tokens(self) -> Vec<u32> {
        match self.search {
            Search::Tokens(search) => search.into_tokens(),
            Search::Beams(input) => input.into_best(),
        }
    }
}
