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
use super::greedy::NextToken;
use super::processors::ProcessorList;
use crate::Result;

/// Draws each row's next token from its processed scores.
pub struct Sampler<'a> {
    processors: &'a ProcessorList,
    rows: Vec<CandleSampler>,
}

impl<'a> Sampler<'a> {
    pub fn new(sampling: &Sampling, rows: usize, processors: &'a ProcessorList) -> Self {
        let strategy = candle_strategy(sampling);
        let rows = (0..rows)
            .map(|_| CandleSampler::from_sampling(sampling.seed, strategy.clone()))
            .collect();
        Self { processors, rows }
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

impl NextToken for Sampler<'_> {
    fn next_token(&mut self, row: usize, decoder_ids: &[u32], scores: &mut [f32]) -> Result<u32> {
        self.processors.apply(decoder_ids, scores);
        let logits = Tensor::from_slice(scores, scores.len(), &Device::Cpu)?;
        match self.rows.get_mut(row) {
            Some(sampler) => Ok(sampler.sample(&logits)?),
            None => Err(candle_core::Error::Msg(format!(
                "sampler built for {} rows asked for row {row}",
                self.rows.len()
            ))
            .into()),
        }
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
        let processors = ProcessorList::default();
        let mut sampler = Sampler::new(&sampling, 1, &processors);
        (0..40)
            .map(|_| {
                let mut scores = vec![1.0, 1.2, 0.8, 1.1, 0.9, 1.0];
                sampler
                    .next_token(0, &[0], &mut scores)
                    .expect("sampling a valid row")
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
    fn processors_run_before_sampling() {
        let sampling = Sampling {
            temperature: 1.0,
            top_k: None,
            top_p: None,
            seed: 1,
        };
        let mut processors = ProcessorList::default();
        processors.push(super::super::processors::ForcedBos { token: 4 });
        let mut sampler = Sampler::new(&sampling, 1, &processors);
        let mut scores = vec![1.0; 6];
        assert_eq!(
            sampler.next_token(0, &[0], &mut scores).expect("valid row"),
            4
        );
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
