//! Logits processors: each rewrites one row's next-token scores given that row's decoder ids.
//!
//! Each mirrors the transformers `LogitsProcessor` of the same name in
//! `generation/logits_process.py`. Decoder ids always include the decoder start token, so
//! "current length" means `decoder_ids.len()`, exactly as transformers' `input_ids.shape[-1]`.

use std::fmt::Debug;

use super::config::{DECODER_PROMPT_LEN, GenerationConfig};

/// Rewrites one row of next-token scores (logits, or log-probabilities in beam search).
pub trait LogitsProcessor: Debug + Send + Sync {
    fn process(&self, decoder_ids: &[u32], scores: &mut [f32]);
}

/// Set `scores[token]` if the token is inside the vocabulary the model scores.
fn set(scores: &mut [f32], token: u32, value: f32) {
    if let Some(score) = usize::try_from(token).ok().and_then(|t| scores.get_mut(t)) {
        *score = value;
    }
}

/// Forbid EOS while the decoder sequence is shorter than `min_length` (transformers'
/// `MinLengthLogitsProcessor`; `MinNewTokensLengthLogitsProcessor` is the same test shifted by
/// the decoder prompt, so `min_new_tokens` is folded into `min_length`).
#[derive(Debug, Clone)]
pub struct MinLength {
    pub min_length: usize,
    pub eos_token_id: u32,
}

impl LogitsProcessor for MinLength {
    fn process(&self, decoder_ids: &[u32], scores: &mut [f32]) {
        if decoder_ids.len() < self.min_length {
            set(scores, self.eos_token_id, f32::NEG_INFINITY);
        }
    }
}

/// Penalise every token already in the decoder sequence, once per distinct token: negative
/// scores are multiplied by the penalty, others divided (transformers'
/// `RepetitionPenaltyLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct RepetitionPenalty {
    pub penalty: f32,
}

impl LogitsProcessor for RepetitionPenalty {
    fn process(&self, decoder_ids: &[u32], scores: &mut [f32]) {
        let mut seen = decoder_ids.to_vec();
        seen.sort_unstable();
        seen.dedup();
        for token in seen {
            let Some(score) = scores.get_mut(token as usize) else {
                continue;
            };
            *score = if *score < 0.0 {
                *score * self.penalty
            } else {
                *score / self.penalty
            };
        }
    }
}

/// Forbid any token that would complete an n-gram already present in the decoder sequence
/// (transformers' `NoRepeatNGramLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct NoRepeatNGram {
    pub size: usize,
}

impl LogitsProcessor for NoRepeatNGram {
    fn process(&self, decoder_ids: &[u32], scores: &mut [f32]) {
        let n = self.size;
        if n == 0 || decoder_ids.len() < n {
            return;
        }
        // The next token completes an n-gram whose first n-1 tokens are the current suffix; any
        // earlier window starting with that suffix bans its own last token.
        let suffix = &decoder_ids[decoder_ids.len() + 1 - n..];
        for window in decoder_ids.windows(n) {
            if let Some((&last, head)) = window.split_last()
                && head == suffix
            {
                set(scores, last, f32::NEG_INFINITY);
            }
        }
    }
}

/// Force `token` as the first generated token (transformers' `ForcedBOSTokenLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct ForcedBos {
    pub token: u32,
}

impl LogitsProcessor for ForcedBos {
    fn process(&self, decoder_ids: &[u32], scores: &mut [f32]) {
        if decoder_ids.len() == 1 {
            force(scores, self.token);
        }
    }
}

/// Force `token` as the last token that fits in `max_length` (transformers'
/// `ForcedEOSTokenLogitsProcessor`).
#[derive(Debug, Clone)]
pub struct ForcedEos {
    pub max_length: usize,
    pub token: u32,
}

impl LogitsProcessor for ForcedEos {
    fn process(&self, decoder_ids: &[u32], scores: &mut [f32]) {
        if decoder_ids.len() + 1 == self.max_length {
            force(scores, self.token);
        }
    }
}

/// Make `token` the only possible choice: score 0, everything else -inf.
fn force(scores: &mut [f32], token: u32) {
    scores.fill(f32::NEG_INFINITY);
    set(scores, token, 0.0);
}

/// The processors a config asks for, in the order transformers' `_get_logits_processor` applies
/// them: repetition penalty, no-repeat-ngram, min length, forced BOS, forced EOS, and when
/// sampling the warpers (temperature, top-k, top-p; see [`super::warpers`]). The order
/// matters where processors disagree: with `min_length == max_length` the min-length ban on EOS
/// runs first and forced EOS then overrides it, so the last step still ends the sequence.
#[derive(Debug, Default)]
pub struct ProcessorList {
    processors: Vec<Box<dyn LogitsProcessor>>,
}

impl ProcessorList {
    pub fn from_config(config: &GenerationConfig, eos_token_id: u32) -> Self {
        let mut list = Self::default();
        if config.repetition_penalty != 1.0 {
            list.push(RepetitionPenalty {
                penalty: config.repetition_penalty,
            });
        }
        if config.no_repeat_ngram_size > 0 {
            list.push(NoRepeatNGram {
                size: config.no_repeat_ngram_size,
            });
        }
        let min_length = config.effective_min_length();
        // A sequence always holds the decoder prompt, so shorter minimums never bite.
        if min_length > DECODER_PROMPT_LEN {
            list.push(MinLength {
                min_length,
                eos_token_id,
            });
        }
        if let Some(token) = config.forced_bos_token_id {
            list.push(ForcedBos { token });
        }
        if let Some(token) = config.forced_eos_token_id {
            list.push(ForcedEos {
                max_length: config.effective_max_length(),
                token,
            });
        }
        if config.do_sample {
            super::warpers::push_warpers(&mut list, &config.sampling, config);
        }
        list
    }

    pub fn push(&mut self, processor: impl LogitsProcessor + 'static) {
        self.processors.push(Box::new(processor));
    }

    pub fn is_empty(&self) -> bool {
        self.processors.is_empty()
    }

    /// Apply every processor in order to one row.
    pub fn apply(&self, decoder_ids: &[u32], scores: &mut [f32]) {
        for processor in &self.processors {
            processor.process(decoder_ids, scores);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG: f32 = f32::NEG_INFINITY;

    #[test]
    fn min_length_bans_eos_only_while_short() {
        let p = MinLength {
            min_length: 3,
            eos_token_id: 1,
        };
        let mut scores = vec![0.5; 4];
        p.process(&[0, 2], &mut scores);
        assert_eq!(scores, vec![0.5, NEG, 0.5, 0.5]);
        let mut scores = vec![0.5; 4];
        p.process(&[0, 2, 3], &mut scores);
        assert_eq!(scores, vec![0.5; 4]);
    }

    #[test]
    fn min_new_tokens_counts_after_the_start_token() {
        let config = GenerationConfig {
            min_new_tokens: Some(2),
            ..Default::default()
        };
        let list = ProcessorList::from_config(&config, 1);
        let mut scores = vec![0.0; 3];
        list.apply(&[0, 2], &mut scores);
        assert_eq!(scores[1], NEG, "one token generated: EOS still banned");
        let mut scores = vec![0.0; 3];
        list.apply(&[0, 2, 2], &mut scores);
        assert_eq!(scores[1], 0.0, "two tokens generated: EOS allowed");
    }

    #[test]
    fn repetition_penalty_scales_each_seen_token_once() {
        let p = RepetitionPenalty { penalty: 2.0 };
        let mut scores = vec![4.0, -4.0, 4.0, -4.0, 0.0];
        // Token 1 appears twice but is penalised once; token 4 (score 0) is divided.
        p.process(&[1, 2, 1, 4, 99], &mut scores);
        assert_eq!(scores, vec![4.0, -8.0, 2.0, -4.0, 0.0]);
    }

    #[test]
    fn no_repeat_ngram_bans_completions_of_seen_ngrams() {
        let p = NoRepeatNGram { size: 3 };
        // Suffix (5, 6) was seen before followed by 7 and by 8.
        let mut scores = vec![0.0; 10];
        p.process(&[0, 5, 6, 7, 5, 6, 8, 5, 6], &mut scores);
        let banned: Vec<usize> = (0..10).filter(|&t| scores[t] == NEG).collect();
        assert_eq!(banned, vec![7, 8]);
    }

    #[test]
    fn no_repeat_ngram_waits_for_a_full_ngram() {
        let p = NoRepeatNGram { size: 3 };
        let mut scores = vec![0.0; 4];
        p.process(&[0, 0], &mut scores);
        assert_eq!(scores, vec![0.0; 4]);
        // Size 1 bans every token already present, the start token included.
        let mut scores = vec![0.0; 4];
        NoRepeatNGram { size: 1 }.process(&[0, 2], &mut scores);
        assert_eq!(scores, vec![NEG, 0.0, NEG, 0.0]);
    }

    #[test]
    fn no_repeat_ngram_counts_the_start_token() {
        // (start, 3) was seen, so after a later 0 the token 3 is banned.
        let p = NoRepeatNGram { size: 2 };
        let mut scores = vec![0.0; 4];
        p.process(&[0, 3, 0], &mut scores);
        assert_eq!(scores, vec![0.0, 0.0, 0.0, NEG]);
    }

    #[test]
    fn forced_bos_applies_only_to_the_first_step() {
        let p = ForcedBos { token: 2 };
        let mut scores = vec![1.0; 4];
        p.process(&[0], &mut scores);
        assert_eq!(scores, vec![NEG, NEG, 0.0, NEG]);
        let mut scores = vec![1.0; 4];
        p.process(&[0, 2], &mut scores);
        assert_eq!(scores, vec![1.0; 4]);
    }

    #[test]
    fn forced_eos_applies_at_the_last_position() {
        let p = ForcedEos {
            max_length: 4,
            token: 1,
        };
        let mut scores = vec![1.0; 3];
        p.process(&[0, 2], &mut scores);
        assert_eq!(scores, vec![1.0; 3]);
        p.process(&[0, 2, 2], &mut scores);
        assert_eq!(scores, vec![NEG, 0.0, NEG]);
    }

    #[test]
    fn out_of_vocabulary_ids_are_ignored() {
        let mut scores = vec![1.0; 3];
        ForcedBos { token: 9 }.process(&[0], &mut scores);
        assert_eq!(scores, vec![NEG; 3]);
        let mut scores = vec![1.0; 3];
        NoRepeatNGram { size: 1 }.process(&[7], &mut scores);
        assert_eq!(scores, vec![1.0; 3]);
    }

    #[test]
    fn pipeline_applies_penalty_before_bans() {
        // Penalty first, then no-repeat-ngram: the banned token ends at -inf either way, and the
        // others carry the penalty; min length then bans EOS.
        let config = GenerationConfig {
            repetition_penalty: 2.0,
            no_repeat_ngram_size: 1,
            min_length: 5,
            ..Default::default()
        };
        let list = ProcessorList::from_config(&config, 1);
        let mut scores = vec![-1.0, -1.0, -1.0, -1.0];
        list.apply(&[0, 3], &mut scores);
        assert_eq!(scores, vec![NEG, NEG, -1.0, NEG]);
        assert!(ProcessorList::from_config(&GenerationConfig::default(), 1).is_empty());
    }

    #[test]
    fn forced_eos_overrides_min_length() {
        let config = GenerationConfig {
            max_length: 3,
            min_length: 3,
            forced_eos_token_id: Some(1),
            ..Default::default()
        };
        let list = ProcessorList::from_config(&config, 1);
        let mut scores = vec![0.5; 3];
        list.apply(&[0, 2], &mut scores);
        assert_eq!(scores, vec![NEG, 0.0, NEG]);
    }

    #[test]
    fn forced_eos_uses_max_new_tokens() {
        let config = GenerationConfig {
            max_new_tokens: Some(2),
            forced_eos_token_id: Some(1),
            ..Default::default()
        };
        let list = ProcessorList::from_config(&config, 1);
        let mut scores = vec![0.5; 3];
        list.apply(&[0, 2], &mut scores);
        assert_eq!(scores, vec![NEG, 0.0, NEG]);
    }
}
