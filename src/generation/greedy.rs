//! Greedy search and sampling: one decoder row per sequence, one token per step.
//!
//! Mirrors transformers' `_sample`: the logits processors rewrite the raw scores, then the next
//! token is the first highest score (greedy) or a seeded draw (sampling). A sequence ends at EOS
//! or at `max_length`. In transformers' batches a finished row keeps being fed padding until
//! every row is done; here it leaves the batch instead, which changes no other row.

use super::config::Sampling;
use super::sampling::RowSampler;
use super::scores::argmax;
use crate::Result;

/// The tokens of one greedy or sampled sequence.
pub struct TokenSearch {
    tokens: Vec<u32>,
    sampler: Option<RowSampler>,
}

impl TokenSearch {
    /// Starts from the decoder start token; samples with `sampling`, else searches greedily.
    pub fn new(start_token: u32, sampling: Option<&Sampling>) -> Self {
        Self {
            tokens: vec![start_token],
            sampler: sampling.map(RowSampler::new),
        }
    }

    /// The tokens so far, the decoder start token first.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// Appends the token chosen from `scores` (already processed) and returns it.
    pub fn push_next(&mut self, scores: &[f32]) -> Result<u32> {
        let token = match &mut self.sampler {
            Some(sampler) => sampler.sample(scores)?,
            // A row index is a token id, and token ids are u32 throughout.
            None => argmax(scores) as u32,
        };
        self.tokens.push(token);
        Ok(token)
    }

    pub fn into_tokens(self) -> Vec<u32> {
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_takes_the_first_best_and_sampling_draws_what_the_warpers_left() {
        let mut greedy = TokenSearch::new(0, None);
        assert_eq!(greedy.push_next(&[1.0, 3.0, 3.0]).ok(), Some(1));
        assert_eq!(greedy.tokens(), &[0, 1]);
        let sampling = Sampling {
            seed: 5,
            ..Sampling::default()
        };
        let mut sampled = TokenSearch::new(0, Some(&sampling));
        let neg = f32::NEG_INFINITY;
        for _ in 0..5 {
            assert_eq!(sampled.push_next(&[neg, neg, 2.0]).ok(), Some(2));
        }
        assert_eq!(sampled.into_tokens().len(), 6);
    }
}
