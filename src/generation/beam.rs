//! Beam search with transformers 5.x semantics: a per-input step function and a batch driver.
//!
//! Per step and input (transformers' `_beam_search` and its helpers in `generation/utils.py`):
//! 1. each beam's logits become log-probabilities, the processors rewrite them, and the beam's
//!    running score is added (all in f32);
//! 2. the top `2 × num_beams` (beam, token) pairs are kept, enough that `num_beams` of them
//!    continue even if `num_beams` end on EOS;
//! 3. a candidate "finishes" on EOS, or on any token once it reaches `max_length`; finished
//!    candidates ranked within the first `num_beams` are offered to [`BeamHypotheses`] with score
//!    `sum_logprobs / generated_len ^ length_penalty`, EOS counted in `generated_len`;
//! 4. the best `num_beams` unfinished candidates become the new running beams;
//! 5. the input's early-stop heuristic is updated.
//!
//! transformers stops a batch when no input can improve, or under `early_stopping=True` every
//! input is full, or every candidate finished (max length). Here each input stops on its own by
//! the same rule ([`InputSearch::is_done`]) and leaves the batch: an input that transformers
//! would keep stepping only because others still run cannot change its kept hypotheses any
//! more (every offer is masked by -1e9), so its result is the same.

use super::config::{DECODER_PROMPT_LEN, EarlyStopping};
use super::hypotheses::{BeamHypotheses, EXCLUDED, Offer, StopRule};
use super::scores::{TopK, top_k};

/// A live beam: its tokens (start token first) and summed log-probability.
#[derive(Debug, Clone, PartialEq)]
pub struct Beam {
    pub tokens: Vec<u32>,
    pub score: f32,
}

/// One of the top-k (beam, token) continuations of a step.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Candidate {
    beam: usize,
    token: u32,
    score: f32,
}

/// What the driver needs from one input's step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// For each new running beam, the beam (within this input) it continues.
    pub sources: Vec<usize>,
    /// Every candidate finished, so no beam can continue.
    pub all_finished: bool,
}

/// The beam search state of one input.
#[derive(Debug, Clone)]
pub struct InputSearch {
    beams: Vec<Beam>,
    hypotheses: BeamHypotheses,
    eos_token_id: u32,
}

impl InputSearch {
    /// Start from the decoder start token. Only the first beam scores 0: the others are copies
    /// and start at -1e9 so the first step does not pick the same token `num_beams` times.
    pub fn new(num_beams: usize, start_token: u32, eos_token_id: u32, rule: StopRule) -> Self {
        let beams = (0..num_beams)
            .map(|i| Beam {
                tokens: vec![start_token],
                score: if i == 0 { 0.0 } else { EXCLUDED },
            })
            .collect();
        Self {
            beams,
            hypotheses: BeamHypotheses::new(num_beams, &[start_token], rule),
            eos_token_id,
        }
    }

    pub fn beams(&self) -> &[Beam] {
        &self.beams
    }

    pub fn hypotheses(&self) -> &BeamHypotheses {
        &self.hypotheses
    }

    /// Whether this input's search is over after a step whose candidates all finished or not:
    /// no running beam can beat a kept hypothesis, or under `early_stopping=True` every slot is
    /// taken (transformers' `_beam_search_has_unfinished_sequences` for one input).
    pub fn is_done(&self, early_stopping: EarlyStopping, all_finished: bool) -> bool {
        let full = self.hypotheses.is_full() && early_stopping == EarlyStopping::Always;
        all_finished || full || !self.hypotheses.can_improve()
    }

    /// The best kept sequence.
    pub fn into_best(self) -> Vec<u32> {
        self.hypotheses.into_best().tokens
    }

    /// Advance by one token. `log_probs` holds this input's processed log-probabilities,
    /// `num_beams` rows of `vocab`, in beam order.
    pub fn step(&mut self, log_probs: &[f32], vocab: usize, max_length: usize) -> StepOutcome {
        let num_beams = self.beams.len();
        let cur_len = self.beams[0].tokens.len();
        let candidates = self.top_candidates(log_probs, vocab, 2 * num_beams);
        let finished: Vec<bool> = candidates
            .iter()
            .map(|c| c.token == self.eos_token_id || cur_len + 1 >= max_length)
            .collect();

        // Finished candidates sink by -1e9 so the best unfinished ones keep running.
        let running_scores = candidates
            .iter()
            .zip(&finished)
            .map(|(c, &f)| if f { c.score + EXCLUDED } else { c.score });
        let survivors = top_k(running_scores, num_beams);

        let offers: Vec<Offer> = candidates
            .iter()
            .zip(&finished)
            .enumerate()
            .map(|(rank, (c, &f))| Offer {
                score: c.score,
                finished: f && rank < num_beams,
            })
            .collect();
        let extend = |c: &Candidate| extended(&self.beams[c.beam].tokens, c.token);
        self.hypotheses
            .offer(&offers, cur_len + 1 - DECODER_PROMPT_LEN, |i| {
                extend(&candidates[i])
            });

        let sources = survivors.iter().map(|&(i, _)| candidates[i].beam).collect();
        self.beams = survivors
            .iter()
            .map(|&(i, score)| Beam {
                tokens: extend(&candidates[i]),
                score,
            })
            .collect();
        self.hypotheses
            .update_can_improve(self.beams[0].score, cur_len + 1);
        StepOutcome {
            sources,
            all_finished: finished.iter().all(|&f| f),
        }
    }

    /// The `k` best (beam, token) pairs by running score plus log-probability.
    fn top_candidates(&self, log_probs: &[f32], vocab: usize, k: usize) -> Vec<Candidate> {
        let mut best = TopK::new(k);
        for (i, (row, beam)) in log_probs.chunks_exact(vocab).zip(&self.beams).enumerate() {
            best.offer_shifted(i * vocab, row, beam.score);
        }
        best.into_sorted()
            .into_iter()
            .map(|(index, score)| Candidate {
                beam: index / vocab,
                token: (index % vocab) as u32,
                score,
            })
            .collect()
    }
}

fn extended(tokens: &[u32], token: u32) -> Vec<u32> {
    let mut out = Vec::with_capacity(tokens.len() + 1);
    out.extend_from_slice(tokens);
    out.push(token);
    out
}

#[cfg(test)]
mod tests {
    use super::super::scores::log_softmax_in_place;
    use super::*;

    fn rule(early_stopping: EarlyStopping, length_penalty: f64, max_length: usize) -> StopRule {
        StopRule {
            length_penalty,
            early_stopping,
            max_length,
            prompt_len: 1,
        }
    }

    /// Log-probabilities for `rows` beams over a vocabulary of 4 from per-row weights.
    fn log_probs(rows: &[[f32; 4]]) -> Vec<f32> {
        rows.iter()
            .flat_map(|r| {
                let mut r = r.to_vec();
                log_softmax_in_place(&mut r);
                r
            })
            .collect()
    }

    #[test]
    fn an_input_is_done_when_it_cannot_improve_or_is_full_under_early_stopping() {
        let mut input = InputSearch::new(2, 0, 1, rule(EarlyStopping::Always, 1.0, 10));
        assert!(!input.is_done(EarlyStopping::Always, false));
        assert!(input.is_done(EarlyStopping::Always, true));
        // EOS twice at the top: both slots fill.
        let rows = log_probs(&[[0.0, 3.0, 2.0, 1.0], [0.0; 4]]);
        input.step(&rows, 4, 10);
        let rows = log_probs(&[[0.0, 9.0, 2.0, 1.0], [0.0, 9.0, 2.0, 1.0]]);
        input.step(&rows, 4, 10);
        assert!(input.hypotheses().is_full());
        assert!(input.is_done(EarlyStopping::Always, false));
        assert_eq!(
            input.is_done(EarlyStopping::Heuristic, false),
            !input.hypotheses().can_improve()
        );
    }

    #[test]
    fn first_step_expands_only_the_first_beam() {
        let mut input = InputSearch::new(2, 0, 1, rule(EarlyStopping::Heuristic, 1.0, 10));
        let rows = log_probs(&[[0.0, -5.0, 2.0, 1.0], [0.0, -5.0, 2.0, 1.0]]);
        let outcome = input.step(&rows, 4, 10);
        assert_eq!(outcome.sources, vec![0, 0]);
        let tokens: Vec<_> = input.beams().iter().map(|b| b.tokens.clone()).collect();
        assert_eq!(tokens, vec![vec![0, 2], vec![0, 3]]);
        assert!(!outcome.all_finished);
    }

    #[test]
    fn eos_within_the_top_beams_is_kept_and_replaced() {
        let mut input = InputSearch::new(2, 0, 1, rule(EarlyStopping::Heuristic, 1.0, 10));
        // EOS (1) is the best token: it finishes, and two other tokens keep running.
        let rows = log_probs(&[[0.0, 3.0, 2.0, 1.0], [0.0; 4]]);
        input.step(&rows, 4, 10);
        let best = &input.hypotheses().slots()[0];
        assert!(best.finished);
        assert_eq!(best.tokens, vec![0, 1]);
        let tokens: Vec<_> = input.beams().iter().map(|b| b.tokens.clone()).collect();
        assert_eq!(tokens, vec![vec![0, 2], vec![0, 3]]);
    }

    #[test]
    fn eos_ranked_below_num_beams_is_dropped() {
        let mut input = InputSearch::new(2, 0, 1, rule(EarlyStopping::Heuristic, 1.0, 10));
        // EOS ranks third of the 2 × 2 candidates: neither kept nor continued.
        let rows = log_probs(&[[3.0, 1.0, 2.0, -1.0], [0.0; 4]]);
        input.step(&rows, 4, 10);
        assert!(input.hypotheses().slots().iter().all(|h| !h.finished));
        let tokens: Vec<_> = input.beams().iter().map(|b| b.tokens.clone()).collect();
        assert_eq!(tokens, vec![vec![0, 0], vec![0, 2]]);
    }

    #[test]
    fn max_length_finishes_every_top_candidate() {
        let mut input = InputSearch::new(2, 0, 1, rule(EarlyStopping::Heuristic, 1.0, 2));
        let rows = log_probs(&[[0.0, -1.0, 2.0, 1.0], [0.0; 4]]);
        let outcome = input.step(&rows, 4, 2);
        assert!(outcome.all_finished);
        let kept: Vec<_> = input
            .hypotheses()
            .slots()
            .iter()
            .map(|h| h.tokens.clone())
            .collect();
        assert_eq!(kept, vec![vec![0, 2], vec![0, 3]]);
    }
}
