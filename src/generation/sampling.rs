//! Multinomial sampling through candle's `LogitsProcessor`, one seeded generator per input row.
//!
//! transformers' RNG (torch) cannot be reproduced, so sampled outputs are only deterministic for
//! a given seed, not equal to Python's. The logits processors run first, as in transformers;
//! candle then applies temperature, top-k and top-p.

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
        Self {
            sampler: CandleSampler::from_sampling(sampling.seed, candle_strategy(sampling)),
        }
    }

    /// The next token, drawn from `scores` (the logits processors already applied).
    pub fn sample(&mut self, scores: &[f32]) -> Result<u32> {
        let logits = Tensor::from_slice(scores, scores.len(), &Device::Cpu)?;
        Ok(self.sampler.sample(&logits)?)
    }
}

/// Translate our options into candle's sampling strategy; `top_p == 1.0` keeps every token.
fn candle_strategy(sampling: &Sampling) -> CandleSampling {
    let temperature = sampling.temperature;
    let top_p = sampling.top_p.filter(|&p| p < 1.0);
    match (sampling.top_k, top_p) {
        (None, None) => CandleSampling::All { temperature },
        (Some(k), None) => CandleSampling::TopK { k, temperature },
        (None, Some(p)) => CandleSampling::TopP { p, temperature },
        (Some(k), Some(p)) => CandleSampling::TopKThenTopP { k, p, temperature },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draws(seed: u64, top_k: Option<usize>, top_p: Option<f64>) -> Vec<u32> {
        let sampling = Sampling {
            temperature: 1.0,
            top_k,
            top_p,
            seed,
        };
        let mut sampler = RowSampler::new(&sampling);
        (0..40)
            .map(|_| {
                let scores = [1.0, 1.2, 0.8, 1.1, 0.9, 1.0];
                sampler.sample(&scores).expect("sampling a valid row")
            })
            .collect()
    }

    #[test]
    fn same_seed_same_draws() {
        assert_eq!(draws(7, None, None), draws(7, None, None));
        assert_ne!(draws(7, None, None), draws(8, None, None));
    }

    #[test]
    fn top_k_limits_the_choices() {
        let tokens = draws(3, Some(2), None);
        assert!(tokens.iter().all(|&t| t == 1 || t == 3), "{tokens:?}");
    }

    #[test]
    fn strategy_ignores_top_p_of_one() {
        let sampling = Sampling {
            temperature: 0.5,
            top_k: None,
            top_p: Some(1.0),
            seed: 0,
        };
        assert_eq!(
            candle_strategy(&sampling),
            CandleSampling::All { temperature: 0.5 }
        );
    }
}
