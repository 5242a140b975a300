//! The finished hypotheses of one input during beam search, kept as transformers 5.x keeps them.
//!
//! transformers' vectorised beam search (`_update_finished_beams`, `_check_early_stop_heuristic`
//! in `generation/utils.py`) holds exactly `num_beams` slots per input, sorted best first, that
//! start as placeholders scored -1e9. Each step it offers every top-k candidate; the ones that may
//! not enter get -1e9 added to their score instead of being dropped, and the best `num_beams` of
//! slots + offers are kept. This type reproduces that arithmetic in f32 so that even the odd
//! corners (a masked offer displacing a placeholder) come out the same.

use super::config::EarlyStopping;
use super::scores::top_k;

/// transformers' "very large negative" score for excluded beams and empty slots.
pub const EXCLUDED: f32 = -1.0e9;

/// A kept sequence and its length-penalised score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hypothesis {
    /// Decoder tokens, starting with the decoder start token.
    pub tokens: Vec<u32>,
    pub score: f32,
    /// False for a placeholder slot (or a masked running candidate that displaced one).
    pub finished: bool,
}

/// A top-k candidate offered to the hypotheses, in rank order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Offer {
    /// Sum of the sequence's processed log-probabilities.
    pub score: f32,
    /// Whether it ended (EOS or max length) *and* ranked within the first `num_beams`.
    pub finished: bool,
}

/// `score / generated_len ^ length_penalty`, with the power taken in f64 and rounded to f32 first,
/// as torch divides an f32 tensor by a Python float.
pub fn length_penalised(score: f32, generated_len: usize, length_penalty: f64) -> f32 {
    score / (generated_len as f64).powf(length_penalty) as f32
}

/// How one input's search ranks and stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StopRule {
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// Longest decoder sequence, start token included.
    pub max_length: usize,
    /// Tokens before generation starts (the decoder start token).
    pub prompt_len: usize,
}

#[derive(Debug, Clone)]
pub struct BeamHypotheses {
    /// Always `num_beams` entries, best first.
    slots: Vec<Hypothesis>,
    /// transformers' `is_early_stop_heuristic_unsatisfied`: once false it stays false.
    can_improve: bool,
    rule: StopRule,
}

impl BeamHypotheses {
    pub fn new(num_beams: usize, prompt: &[u32], rule: StopRule) -> Self {
        let placeholder = Hypothesis {
            tokens: prompt.to_vec(),
            score: EXCLUDED,
            finished: false,
        };
        Self {
            slots: vec![placeholder; num_beams],
            can_improve: true,
            rule,
        }
    }

    /// Every slot holds a finished hypothesis.
    pub fn is_full(&self) -> bool {
        self.slots.iter().all(|h| h.finished)
    }

    /// Whether a running beam might still beat a kept hypothesis.
    pub fn can_improve(&self) -> bool {
        self.can_improve
    }

    pub fn slots(&self) -> &[Hypothesis] {
        &self.slots
    }

    /// The winner: the best slot (a placeholder only if nothing ever finished).
    pub fn into_best(mut self) -> Hypothesis {
        self.slots.swap_remove(0)
    }

    /// Merge this step's candidates (in rank order, each `generated_len` tokens long once its new
    /// token is added) into the slots. `tokens_of(i)` builds offer `i`'s sequence; it is only
    /// called for offers that win a slot.
    pub fn offer(
        &mut self,
        offers: &[Offer],
        generated_len: usize,
        tokens_of: impl Fn(usize) -> Vec<u32>,
    ) {
        let scores: Vec<f32> = offers
            .iter()
            .map(|o| self.masked_score(o, generated_len))
            .collect();
        let kept = self.slots.len();
        let merged = self
            .slots
            .iter()
            .map(|h| h.score)
            .chain(scores.iter().copied());
        let winners = top_k(merged, kept);
        let mut old: Vec<Option<Hypothesis>> = self.slots.drain(..).map(Some).collect();
        for (index, score) in winners {
            let hypothesis = match index.checked_sub(kept) {
                None => old[index].take(),
                Some(i) => Some(Hypothesis {
                    tokens: tokens_of(i),
                    score,
                    finished: offers[i].finished,
                }),
            };
            self.slots.extend(hypothesis);
        }
    }

    /// An offer's length-penalised score, pushed down by -1e9 once per reason it may not enter:
    /// the slots are full under `early_stopping=True`, no improvement is possible any more, or the
    /// offer has not finished. Each addition rounds in f32, as in transformers.
    fn masked_score(&self, offer: &Offer, generated_len: usize) -> f32 {
        let mut score = length_penalised(offer.score, generated_len, self.rule.length_penalty);
        if self.rule.early_stopping == EarlyStopping::Always && self.is_full() {
            score += EXCLUDED;
        }
        if !self.can_improve {
            score += EXCLUDED;
        }
        if !offer.finished {
            score += EXCLUDED;
        }
        score
    }

    /// After a step, with decoder sequences now `cur_len` long (start token included) and the
    /// best running beam scoring `best_running`, decide whether this input may still improve.
    ///
    /// transformers estimates the best reachable score as `best_running / len ^ length_penalty`
    /// with `len` the running beams' generated length, except under `early_stopping="never"` with
    /// a positive penalty, where longer is better and `len` is the longest possible. Improvement
    /// stays possible while some slot is empty (compared against -1e9) or the estimate beats the
    /// worst kept score.
    pub fn update_can_improve(&mut self, best_running: f32, cur_len: usize) {
        let rule = &self.rule;
        let hypothetical_len =
            if rule.early_stopping == EarlyStopping::Never && rule.length_penalty > 0.0 {
                rule.max_length - rule.prompt_len
            } else {
                cur_len - rule.prompt_len
            };
        let best_possible = length_penalised(best_running, hypothetical_len, rule.length_penalty);
        let worst_kept = self.worst_score();
        let beats_a_slot = self.slots.iter().any(|h| {
            let bar = if h.finished { worst_kept } else { EXCLUDED };
            best_possible > bar
        });
        self.can_improve &= beats_a_slot;
    }

    /// The lowest slot score, NaN if any is NaN (as `torch.min`).
    fn worst_score(&self) -> f32 {
        self.slots
            .iter()
            .map(|h| h.score)
            .fold(f32::INFINITY, |worst, s| {
                if s.is_nan() || worst.is_nan() {
                    f32::NAN
                } else {
                    worst.min(s)
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(early_stopping: EarlyStopping, length_penalty: f64) -> StopRule {
        StopRule {
            length_penalty,
            early_stopping,
            max_length: 10,
            prompt_len: 1,
        }
    }

    fn finished(score: f32) -> Offer {
        Offer {
            score,
            finished: true,
        }
    }

    fn running(score: f32) -> Offer {
        Offer {
            score,
            finished: false,
        }
    }

    /// Offer `offers` as sequences `[0, i]` of `len` generated tokens.
    fn offer_all(h: &mut BeamHypotheses, offers: &[Offer], len: usize) {
        h.offer(offers, len, |i| vec![0, i as u32]);
    }

    #[test]
    fn starts_with_placeholders() {
        let h = BeamHypotheses::new(2, &[0], rule(EarlyStopping::Heuristic, 1.0));
        assert!(!h.is_full() && h.can_improve());
        assert_eq!(h.slots()[0].score, EXCLUDED);
        assert_eq!(h.into_best().tokens, vec![0]);
    }

    #[test]
    fn keeps_best_finished_with_length_penalty() {
        let mut h = BeamHypotheses::new(2, &[0], rule(EarlyStopping::Heuristic, 1.0));
        offer_all(&mut h, &[finished(-3.0), running(-0.5), finished(-1.0)], 2);
        let slots = h.slots();
        assert!(h.is_full());
        assert_eq!(
            (slots[0].score, slots[0].tokens.clone()),
            (-0.5, vec![0, 2])
        );
        assert_eq!(
            (slots[1].score, slots[1].tokens.clone()),
            (-1.5, vec![0, 0])
        );
        // A later, longer hypothesis with a better average wins.
        offer_all(&mut h, &[finished(-1.2)], 4);
        assert_eq!(h.slots()[0].score, -0.3);
        assert_eq!(h.slots()[1].score, -0.5);
    }

    #[test]
    fn length_penalty_uses_f64_power_rounded_to_f32() {
        let got = length_penalised(-7.0, 3, 0.7);
        assert_eq!(got, -7.0f32 / 3f64.powf(0.7) as f32);
        assert_eq!(length_penalised(-7.0, 3, 0.0), -7.0);
    }

    #[test]
    fn masked_running_offer_never_beats_a_placeholder() {
        // -5 - 1e9 rounds to -1e9 in f32: a tie, which the placeholder wins by coming first.
        let mut h = BeamHypotheses::new(1, &[0], rule(EarlyStopping::Heuristic, 1.0));
        offer_all(&mut h, &[running(-5.0)], 1);
        assert_eq!(h.slots()[0].tokens, vec![0]);
        assert!(!h.slots()[0].finished);
    }

    #[test]
    fn full_slots_accept_nothing_under_early_stopping_true() {
        let mut h = BeamHypotheses::new(1, &[0], rule(EarlyStopping::Always, 1.0));
        offer_all(&mut h, &[finished(-4.0)], 1);
        offer_all(&mut h, &[finished(-0.1)], 1);
        assert_eq!(h.slots()[0].score, -4.0);

        let mut h = BeamHypotheses::new(1, &[0], rule(EarlyStopping::Heuristic, 1.0));
        offer_all(&mut h, &[finished(-4.0)], 1);
        offer_all(&mut h, &[finished(-0.1)], 1);
        assert_eq!(h.slots()[0].score, -0.1);
    }

    #[test]
    fn improvement_stays_possible_while_a_slot_is_empty() {
        let mut h = BeamHypotheses::new(2, &[0], rule(EarlyStopping::Heuristic, 1.0));
        offer_all(&mut h, &[finished(-1.0)], 1);
        h.update_can_improve(-100.0, 2);
        assert!(h.can_improve());
    }

    #[test]
    fn heuristic_compares_at_current_length() {
        let mut h = BeamHypotheses::new(1, &[0], rule(EarlyStopping::Heuristic, 1.0));
        offer_all(&mut h, &[finished(-2.0)], 2); // kept score -1.0
        h.update_can_improve(-2.9, 3); // best possible -2.9 / 2 = -1.45 < -1.0
        assert!(!h.can_improve());
        // Once stopped, better offers are excluded too.
        offer_all(&mut h, &[finished(-0.2)], 2);
        assert_eq!(h.slots()[0].score, -1.0);
    }

    #[test]
    fn never_with_positive_penalty_estimates_at_max_length() {
        // Same numbers as above, but "never" divides by max_length - 1 = 9: -2.9 / 9 > -1.0.
        let mut h = BeamHypotheses::new(1, &[0], rule(EarlyStopping::Never, 1.0));
        offer_all(&mut h, &[finished(-2.0)], 2);
        h.update_can_improve(-2.9, 3);
        assert!(h.can_improve());
        // With a non-positive penalty "never" uses the current length like the heuristic.
        let mut h = BeamHypotheses::new(1, &[0], rule(EarlyStopping::Never, 0.0));
        offer_all(&mut h, &[finished(-2.0)], 2);
        h.update_can_improve(-2.9, 3);
        assert!(!h.can_improve());
    }

    #[test]
    fn early_stopping_true_also_applies_the_heuristic() {
        let mut h = BeamHypotheses::new(2, &[0], rule(EarlyStopping::Always, 1.0));
        offer_all(&mut h, &[finished(-2.0), finished(-3.0)], 2);
        h.update_can_improve(-10.0, 3);
        assert!(!h.can_improve());
    }
}
