//! The sampling warpers transformers appends to the logits processors when `do_sample=True`
//! (generation/utils.py `_get_logits_processor`): temperature, then top-k, then top-p, each left
//! out when it would change nothing (temperature 1.0, top_k 0, top_p 1.0). A removed token's
//! score becomes -inf, so the draw that follows never picks it.
//!
//! Each mirrors its namesake in generation/logits_process.py to the float: top-k keeps every
//! token tied with the k-th best score; top-p ranks tokens in the ascending order torch's sort
//! gives, ties included (see [`super::torch_sort`]), takes the softmax in float32 and the running
//! sum with a float64 accumulator (torch's CPU `cumsum`), and compares it with `1 - top_p`
//! rounded to float32. `tests/fixtures/golden/warpers.json` (scripts/warper_goldens.py) pins
//! the kept sets against transformers.

use super::config::{GenerationConfig, Sampling};
use super::processors::{LogitsProcessor, ProcessorList};
use super::torch_sort::ascending_order;

/// Divide every score by the temperature (transformers' `TemperatureLogitsWarper`).
#[derive(Debug, Clone)]
pub struct Temperature {
    pub temperature: f32,
}

impl LogitsProcessor for Temperature {
    fn process(&self, _: &[u32], scores: &mut [f32]) {
        for score in scores {
            *score /= self.temperature;
        }
    }
}

/// Keep the `k` best scores and every score tied with the k-th (transformers'
/// `TopKLogitsWarper`); at least `min_tokens_to_keep`.
#[derive(Debug, Clone)]
pub struct TopK {
    pub k: usize,
    pub min_tokens_to_keep: usize,
}

impl LogitsProcessor for TopK {
    fn process(&self, _: &[u32], scores: &mut [f32]) {
        let k = self.k.max(self.min_tokens_to_keep).min(scores.len());
        if k == 0 {
            return;
        }
        let mut sorted = scores.to_vec();
        sorted.sort_unstable_by(|a, b| b.total_cmp(a));
        let kth = sorted[k - 1];
        for score in scores.iter_mut().filter(|s| **s < kth) {
            *score = f32::NEG_INFINITY;
        }
    }
}

/// Keep the most likely tokens whose probabilities sum past `top_p` (transformers'
/// `TopPLogitsWarper`); at least `min_tokens_to_keep`.
#[derive(Debug, Clone)]
pub struct TopP {
    pub top_p: f64,
    pub min_tokens_to_keep: usize,
}

impl LogitsProcessor for TopP {
    fn process(&self, _: &[u32], scores: &mut [f32]) {
        // Ascending, ties as torch leaves them: the least likely tokens come first and go first.
        let order = ascending_order(scores);
        let sorted: Vec<f32> = order.iter().map(|&i| scores[i]).collect();
        let threshold = (1.0 - self.top_p) as f32;
        let keep_from = order.len().saturating_sub(self.min_tokens_to_keep);
        let mut running = 0.0f64;
        for (rank, probability) in softmax(&sorted).into_iter().enumerate() {
            running += f64::from(probability);
            if rank < keep_from && running as f32 <= threshold {
                scores[order[rank]] = f32::NEG_INFINITY;
            }
        }
    }
}

/// Float32 softmax as torch's CPU kernel computes it: exponentials of the scores less their
/// maximum, then each times the reciprocal of their sum.
fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = scores.iter().map(|&s| (s - max).exp()).collect();
    let inverse = 1.0 / exps.iter().sum::<f32>();
    exps.into_iter().map(|e| e * inverse).collect()
}

/// Appends the warpers `sampling` asks for to `list`, in transformers' order. `num_beams` and
/// the number of end tokens decide how many tokens each must keep: one, or in beam methods one
/// more than the end tokens, so a continuation always remains.
pub fn push_warpers(list: &mut ProcessorList, sampling: &Sampling, config: &GenerationConfig) {
    let min_tokens_to_keep = if config.num_beams > 1 { 2 } else { 1 };
    if sampling.temperature != 1.0 {
        list.push(Temperature {
            temperature: sampling.temperature as f32,
        });
    }
    if sampling.top_k != 0 {
        list.push(TopK {
            k: sampling.top_k,
            min_tokens_to_keep,
        });
    }
    if sampling.top_p < 1.0 {
        list.push(TopP {
            top_p: sampling.top_p,
            min_tokens_to_keep,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::torch_sort::tests::{golden_vector, golden_warpers};

    const NEG: f32 = f32::NEG_INFINITY;

    fn run(processor: &dyn LogitsProcessor, scores: &[f32]) -> Vec<f32> {
        let mut scores = scores.to_vec();
        processor.process(&[0], &mut scores);
        scores
    }

    fn kept(scores: &[f32]) -> Vec<usize> {
        (0..scores.len()).filter(|&i| scores[i] != NEG).collect()
    }

    #[test]
    fn temperature_divides_every_score() {
        let t = Temperature { temperature: 0.5 };
        assert_eq!(run(&t, &[1.0, -2.0, NEG]), [2.0, -4.0, NEG]);
    }

    #[test]
    fn top_k_keeps_ties_with_the_kth_score_and_at_least_the_minimum() {
        let scores = [1.0, 3.0, 2.0, 2.0, 0.5];
        let top = |k, min_tokens_to_keep| {
            kept(&run(
                &TopK {
                    k,
                    min_tokens_to_keep,
                },
                &scores,
            ))
        };
        assert_eq!(top(1, 1), [1]);
        assert_eq!(top(2, 1), [1, 2, 3], "the tie at rank 2 stays whole");
        assert_eq!(top(1, 2), [1, 2, 3]);
        assert_eq!(
            top(9, 1),
            [0, 1, 2, 3, 4],
            "k beyond the row keeps everything"
        );
        // Scores already at -inf count as the lowest: fewer finite scores than k stay as they are.
        let mut few = vec![NEG, 0.3, NEG];
        TopK {
            k: 2,
            min_tokens_to_keep: 1,
        }
        .process(&[0], &mut few);
        assert_eq!(few, [NEG, 0.3, NEG]);
    }

    #[test]
    fn top_p_drops_the_unlikely_tail_and_ties_go_in_index_order() {
        // Probabilities 0.25 each: the running sums are exact.
        let uniform = [0.0; 4];
        let top = |top_p, min_tokens_to_keep| {
            kept(&run(
                &TopP {
                    top_p,
                    min_tokens_to_keep,
                },
                &uniform,
            ))
        };
        assert_eq!(top(0.75, 1), [1, 2, 3], "0.25 <= 1 - 0.75 goes");
        assert_eq!(top(0.5, 1), [2, 3]);
        assert_eq!(top(0.0, 1), [3], "top_p 0 keeps only the last-ranked best");
        assert_eq!(top(0.0, 2), [2, 3]);
        let peaked = [5.0, 0.0, 0.1, -1.0];
        assert_eq!(
            kept(&run(
                &TopP {
                    top_p: 0.9,
                    min_tokens_to_keep: 1
                },
                &peaked
            )),
            [0]
        );
    }

    /// The warpers `push_warpers` builds, applied to `scores`.
    fn warped(sampling: &Sampling, num_beams: usize, scores: &[f32]) -> Vec<f32> {
        let config = GenerationConfig {
            num_beams,
            ..GenerationConfig::default()
        };
        let mut list = ProcessorList::default();
        push_warpers(&mut list, sampling, &config);
        let mut scores = scores.to_vec();
        list.apply(&[0], &mut scores);
        scores
    }

    #[test]
    fn warpers_follow_the_settings_and_beams_keep_two_tokens() {
        let scores: Vec<f32> = (0..60).map(|i| i as f32 / 10.0).collect();
        let off = Sampling {
            temperature: 1.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
        };
        assert_eq!(warped(&off, 1, &scores), scores, "nothing to do");
        let default = warped(&Sampling::default(), 1, &scores);
        assert_eq!(kept(&default), (10..60).collect::<Vec<_>>(), "top_k 50");
        let hot = Sampling {
            temperature: 2.0,
            ..off.clone()
        };
        assert_eq!(warped(&hot, 1, &scores)[59], 2.95);
        let top1 = Sampling { top_k: 1, ..off };
        assert_eq!(kept(&warped(&top1, 1, &scores)), [59]);
        assert_eq!(kept(&warped(&top1, 4, &scores)), [58, 59]);
    }

    /// transformers' own warpers on recorded score vectors (scripts/warper_goldens.py): the same
    /// tokens kept, with the same float32 scores, for every setting and every vector.
    #[test]
    fn keeps_exactly_what_transformers_keeps() {
        let golden = golden_warpers();
        let vector = |name: &str| golden_vector(&golden, name);
        let cases = golden["cases"].as_array().expect("cases");
        assert!(cases.len() > 1000, "{} cases", cases.len());
        for case in cases {
            let sampling = Sampling {
                temperature: case["temperature"].as_f64().expect("temperature"),
                top_k: case["top_k"].as_u64().expect("top_k") as usize,
                top_p: case["top_p"].as_f64().expect("top_p"),
                seed: 0,
            };
            // Beam methods keep two tokens (one more than the end tokens).
            let beams = match case["min_tokens_to_keep"].as_u64() {
                Some(1) => 1,
                _ => 4,
            };
            let scores = warped(
                &sampling,
                beams,
                &vector(case["vector"].as_str().expect("name")),
            );
            let want: Vec<usize> = serde_json::from_value(case["kept"].clone()).expect("kept");
            assert_eq!(kept(&scores), want, "{case}");
            if let Some(values) = case.get("kept_scores") {
                let want: Vec<f32> = serde_json::from_value(values.clone()).expect("scores");
                let got: Vec<f32> = want
                    .iter()
                    .zip(kept(&scores))
                    .map(|(_, i)| scores[i])
                    .collect();
                assert_eq!(got, want, "{case}");
            }
        }
    }
}
