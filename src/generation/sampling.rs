//! The multinomial draw of sampling, one seeded generator per input row.
//!
//! Everything that shapes the distribution runs before, as in transformers: the logits
//! processors, then the warpers (temperature, top-k, top-p; see [`super::warpers`]), which leave
//! removed tokens at -inf. What is left here is transformers' `softmax` + `torch.multinomial`.
//! transformers' RNG (torch) cannot be reproduced, so sampled outputs are deterministic for a
//! given seed, not equal to Python's; what matches is the distribution drawn from.

use candle_core::{Device, Tensor};
use candle_transformers::generation::{
    LogitsProcessor as CandleSampler, Sampling as CandleSampling,
};

use super::config::Sampling;
use crate::Result;

/// Draws one sequence's tokens from its processed scores with its own seeded generator, so a
/// sequence's draws do not depend on what it is batched with.
pub struct RowSampler {
    sampler: CandleSampler,
}

impl RowSampler {
    pub fn new(sampling: &Sampling) -> Self {
        // The warpers have already applied the temperature: draw from the softmax as it is.
        let draw = CandleSampling::All { temperature: 1.0 };
        Self {
            sampler: CandleSampler::from_sampling(sampling.seed, draw),
        }
    }

    /// The next token, drawn from the softmax of `scores` (processors and warpers applied).
    pub fn sample(&mut self, scores: &[f32]) -> Result<u32> {
        let logits = Tensor::from_slice(scores, scores.len(), &Device::Cpu)?;
        Ok(self.sampler.sample(&logits)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(seed: u64, scores: &[f32]) -> Vec<u32> {
        let sampling = Sampling {
            seed,
            ..Sampling::default()
        };
        let mut sampler = RowSampler::new(&sampling);
        (0..40)
            .map(|_| sampler.sample(scores).expect("sampling a valid row"))
            .collect()
    }

    #[test]
    fn same_seed_same_draws() {
        let scores = [1.0, 1.2, 0.8, 1.1, 0.9, 1.0];
        assert_eq!(draws(7, &scores), draws(7, &scores));
        assert_ne!(draws(7, &scores), draws(8, &scores));
    }

    #[test]
    fn removed_tokens_are_never_drawn_and_the_rest_are() {
        let neg = f32::NEG_INFINITY;
        let tokens = draws(3, &[neg, 0.0, neg, 0.0, neg]);
        assert!(tokens.iter().all(|&t| t == 1 || t == 3), "{tokens:?}");
        assert!(tokens.contains(&1) && tokens.contains(&3), "{tokens:?}");
    }
}
