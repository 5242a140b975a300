//! Generation options with the meaning transformers gives them, validated once at the boundary.
//!
//! Lengths count decoder tokens *including* the decoder start token, as transformers' `max_length`
//! and `min_length` do for encoder-decoder models; `max_new_tokens` / `min_new_tokens` count only
//! generated tokens and take precedence when set.

use crate::{Error, Result};

/// Tokens the decoder holds before generating anything: the decoder start token.
pub const DECODER_PROMPT_LEN: usize = 1;

/// When beam search may stop before `max_length` (transformers' `early_stopping`).
///
/// Read from JSON as transformers writes it (`true`, `false` or `"never"`) or by name; written
/// by name (`"heuristic"`, `"always"`, `"never"`), the form batch manifests hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", try_from = "RawEarlyStopping")]
pub enum EarlyStopping {
    /// `early_stopping=False`: stop an input once its best running beam, scored at the current
    /// length, can no longer beat its worst kept hypothesis.
    #[default]
    Heuristic,
    /// `early_stopping=True`: stop an input as soon as it has `num_beams` finished hypotheses.
    Always,
    /// `early_stopping="never"`: as `Heuristic`, but with a positive length penalty the best
    /// running score is estimated at `max_length`, so search only stops when no beam can win.
    Never,
}

/// `early_stopping` as JSON holds it: a flag or a word.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum RawEarlyStopping {
    Flag(bool),
    Word(String),
}

impl TryFrom<RawEarlyStopping> for EarlyStopping {
    type Error = Error;

    fn try_from(raw: RawEarlyStopping) -> Result<Self> {
        match raw {
            RawEarlyStopping::Flag(true) => Ok(Self::Always),
            RawEarlyStopping::Flag(false) => Ok(Self::Heuristic),
            RawEarlyStopping::Word(word) => word.parse(),
        }
    }
}

impl std::str::FromStr for EarlyStopping {
    type Err = Error;

    /// transformers' values `true`, `false` and `never` (any case), or the variant names.
    fn from_str(value: &str) -> Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "always" => Ok(Self::Always),
            "false" | "heuristic" => Ok(Self::Heuristic),
            "never" => Ok(Self::Never),
            _ => Err(invalid(
                "early_stopping",
                value,
                "one of: true, false, never",
            )),
        }
    }
}

/// The seed of a sampled row when the caller gives none (as `--seed` defaults).
pub const DEFAULT_SEED: u64 = 42;

/// How to sample when `do_sample` is on, with transformers' meanings and defaults
/// (`GenerationConfig._get_default_generation_params`): temperature 1.0, top_k 50, top_p 1.0.
#[derive(Debug, Clone, PartialEq)]
pub struct Sampling {
    /// Scores are divided by this; 1.0 changes nothing.
    pub temperature: f64,
    /// Keep only the `top_k` most likely tokens (and any tied with the last); 0 keeps all.
    pub top_k: usize,
    /// Keep the most likely tokens whose probability reaches `top_p`; 1.0 keeps all.
    pub top_p: f64,
    /// Every input row draws from its own generator seeded with this, so a row's output does not
    /// depend on what it is batched with.
    pub seed: u64,
}

impl Default for Sampling {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_k: 50,
            top_p: 1.0,
            seed: DEFAULT_SEED,
        }
    }
}

/// How to decode: search strategy, lengths and logits processors.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    /// Longest decoder sequence, counting the decoder start token.
    pub max_length: usize,
    /// Most tokens to generate; overrides `max_length` (as `DECODER_PROMPT_LEN + n`) when set.
    pub max_new_tokens: Option<usize>,
    /// EOS is forbidden while the decoder sequence (start token included) is shorter than this.
    pub min_length: usize,
    /// Fewest tokens to generate; overrides `min_length` when set.
    pub min_new_tokens: Option<usize>,
    pub num_beams: usize,
    /// Finished beams score `sum_logprobs / generated_len ^ length_penalty`.
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// Forbid repeating any n-gram of this size; 0 disables.
    pub no_repeat_ngram_size: usize,
    /// Scores of tokens already in the decoder sequence are divided (positive) or multiplied
    /// (negative) by this; 1.0 disables.
    pub repetition_penalty: f32,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<u32>,
    /// Sample instead of searching (transformers' `do_sample`); requires `num_beams == 1`.
    pub do_sample: bool,
    /// How to sample; kept when `do_sample` is off, as transformers keeps a model's settings.
    pub sampling: Sampling,
}

impl Default for GenerationConfig {
    /// transformers' `GenerationConfig()` defaults. Note transformers adds the decoder prompt to a
    /// `max_length` the caller never set (20 becomes 21); set `max_new_tokens` to be explicit.
    fn default() -> Self {
        Self {
            max_length: 20,
            max_new_tokens: None,
            min_length: 0,
            min_new_tokens: None,
            num_beams: 1,
            length_penalty: 1.0,
            early_stopping: EarlyStopping::Heuristic,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.0,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            do_sample: false,
            sampling: Sampling::default(),
        }
    }
}

fn invalid(option: &'static str, value: impl ToString, expected: impl Into<String>) -> Error {
    Error::InvalidOption {
        option,
        value: value.to_string(),
        expected: expected.into(),
    }
}

impl GenerationConfig {
    /// The decoder length generation stops at, start token included.
    pub fn effective_max_length(&self) -> usize {
        match self.max_new_tokens {
            Some(n) => n.saturating_add(DECODER_PROMPT_LEN),
            None => self.max_length,
        }
    }

    /// The decoder length (start token included) below which EOS is forbidden.
    pub fn effective_min_length(&self) -> usize {
        match self.min_new_tokens {
            Some(n) => n.saturating_add(DECODER_PROMPT_LEN),
            None => self.min_length,
        }
    }

    /// Decoder rows one input takes: its beams (greedy search and sampling take one).
    pub fn beam_width(&self) -> usize {
        if self.do_sample {
            1
        } else {
            self.num_beams.max(1)
        }
    }

    /// Reject options that transformers rejects or that would make generation meaningless.
    pub fn validate(&self) -> Result<()> {
        self.validate_lengths()?;
        self.validate_search()?;
        if self.do_sample {
            self.validate_sampling(&self.sampling)?;
        }
        Ok(())
    }

    fn validate_lengths(&self) -> Result<()> {
        if self.max_new_tokens == Some(0) {
            return Err(invalid("max_new_tokens", 0, "at least 1"));
        }
        let max_length = self.effective_max_length();
        if max_length <= DECODER_PROMPT_LEN {
            return Err(invalid(
                "max_length",
                max_length,
                "at least 2: the decoder start token plus one generated token",
            ));
        }
        if self.effective_min_length() > max_length {
            // transformers only warns here: end of sequence stays blocked and the output runs
            // to the maximum length. A model's default minimum (T5: 30) meeting a short
            // `--max-length` is common, so this is not an error.
            tracing::warn!(
                "minimum length {} exceeds the maximum length {max_length}: every summary will \
                 be exactly {max_length} tokens long",
                self.effective_min_length()
            );
        }
        Ok(())
    }

    fn validate_search(&self) -> Result<()> {
        if self.num_beams == 0 {
            return Err(invalid("num_beams", 0, "at least 1"));
        }
        if !self.length_penalty.is_finite() {
            return Err(invalid(
                "length_penalty",
                self.length_penalty,
                "a finite number",
            ));
        }
        // `!(x > 0)` also catches NaN.
        if !(self.repetition_penalty > 0.0 && self.repetition_penalty.is_finite()) {
            return Err(invalid(
                "repetition_penalty",
                self.repetition_penalty,
                "a finite number greater than 0 (1.0 disables it)",
            ));
        }
        Ok(())
    }

    fn validate_sampling(&self, sampling: &Sampling) -> Result<()> {
        if self.num_beams > 1 {
            return Err(invalid(
                "num_beams",
                self.num_beams,
                "1 when sampling: beam sampling is not supported",
            ));
        }
        if !(sampling.temperature > 0.0 && sampling.temperature.is_finite()) {
            return Err(invalid(
                "temperature",
                sampling.temperature,
                "a finite number greater than 0",
            ));
        }
        // transformers' TopPLogitsWarper takes 0 too: only the most likely token is left.
        if !(0.0..=1.0).contains(&sampling.top_p) {
            return Err(invalid(
                "top_p",
                sampling.top_p,
                "in [0, 1] (1.0 keeps every token)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sampling() -> Sampling {
        Sampling {
            temperature: 0.7,
            top_k: 50,
            top_p: 0.9,
            seed: 42,
        }
    }

    fn sampled(sampling: Sampling) -> GenerationConfig {
        GenerationConfig {
            do_sample: true,
            sampling,
            ..Default::default()
        }
    }

    /// The option an invalid config is rejected for, and the message naming value and bound.
    fn rejected(config: GenerationConfig) -> (&'static str, String) {
        match config.validate() {
            Err(err @ Error::InvalidOption { option, .. }) => (option, err.to_string()),
            other => panic!("expected InvalidOption, got {other:?}"),
        }
    }

    #[test]
    fn early_stopping_reads_transformers_values_and_writes_names() {
        for (text, expected) in [
            ("true", EarlyStopping::Always),
            ("False", EarlyStopping::Heuristic),
            (" never ", EarlyStopping::Never),
            ("heuristic", EarlyStopping::Heuristic),
            ("always", EarlyStopping::Always),
        ] {
            assert_eq!(text.parse::<EarlyStopping>().unwrap(), expected, "{text}");
        }
        let err = "sometimes"
            .parse::<EarlyStopping>()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("early_stopping") && err.contains("sometimes") && err.contains("never"),
            "{err}"
        );
        let read = |json: &str| serde_json::from_str::<EarlyStopping>(json);
        assert_eq!(read("true").unwrap(), EarlyStopping::Always);
        assert_eq!(read("false").unwrap(), EarlyStopping::Heuristic);
        assert_eq!(read("\"never\"").unwrap(), EarlyStopping::Never);
        let err = read("\"sometimes\"").unwrap_err().to_string();
        assert!(err.contains("sometimes"), "{err}");
        assert!(read("3").is_err());
        for value in [
            EarlyStopping::Always,
            EarlyStopping::Heuristic,
            EarlyStopping::Never,
        ] {
            let written = serde_json::to_string(&value).unwrap();
            assert_eq!(read(&written).unwrap(), value, "{written} reads back");
        }
        assert_eq!(
            serde_json::to_string(&EarlyStopping::Heuristic).unwrap(),
            "\"heuristic\""
        );
    }

    #[test]
    fn defaults_are_valid() {
        assert!(GenerationConfig::default().validate().is_ok());
        assert!(sampled(sampling()).validate().is_ok());
        // transformers' defaults: temperature 1.0, top_k 50, top_p 1.0.
        assert_eq!(
            (Sampling::default().temperature, Sampling::default().top_k),
            (1.0, 50)
        );
        assert_eq!(Sampling::default().top_p, 1.0);
    }

    #[test]
    fn new_tokens_override_lengths() {
        let config = GenerationConfig {
            max_length: 5,
            max_new_tokens: Some(10),
            min_length: 3,
            min_new_tokens: Some(4),
            ..Default::default()
        };
        assert_eq!(config.effective_max_length(), 11);
        assert_eq!(config.effective_min_length(), 5);
        assert!(config.validate().is_ok());
    }

    #[test]
    fn rejects_zero_beams() {
        let (option, msg) = rejected(GenerationConfig {
            num_beams: 0,
            ..Default::default()
        });
        assert_eq!(option, "num_beams");
        assert!(msg.contains("0") && msg.contains("at least 1"), "{msg}");
    }

    #[test]
    fn rejects_max_length_without_room_to_generate() {
        for max_length in [0, 1] {
            let (option, msg) = rejected(GenerationConfig {
                max_length,
                ..Default::default()
            });
            assert_eq!(option, "max_length");
            assert!(
                msg.contains(&max_length.to_string()) && msg.contains("at least 2"),
                "{msg}"
            );
        }
    }

    #[test]
    fn rejects_zero_max_new_tokens() {
        let (option, _) = rejected(GenerationConfig {
            max_new_tokens: Some(0),
            ..Default::default()
        });
        assert_eq!(option, "max_new_tokens");
    }

    #[test]
    fn accepts_min_length_above_max_length_like_transformers() {
        let config = GenerationConfig {
            max_length: 10,
            min_length: 11,
            ..Default::default()
        };
        assert!(config.validate().is_ok());
    }

    #[test]
    fn rejects_non_finite_length_penalty() {
        for length_penalty in [f64::NAN, f64::INFINITY] {
            let (option, _) = rejected(GenerationConfig {
                length_penalty,
                ..Default::default()
            });
            assert_eq!(option, "length_penalty");
        }
    }

    #[test]
    fn rejects_non_positive_repetition_penalty() {
        for repetition_penalty in [0.0, -1.0, f32::NAN] {
            let (option, msg) = rejected(GenerationConfig {
                repetition_penalty,
                ..Default::default()
            });
            assert_eq!(option, "repetition_penalty");
            assert!(msg.contains("greater than 0"), "{msg}");
        }
    }

    #[test]
    fn rejects_sampling_with_beams() {
        let (option, msg) = rejected(GenerationConfig {
            num_beams: 4,
            ..sampled(sampling())
        });
        assert_eq!(option, "num_beams");
        assert!(msg.contains("not supported"), "{msg}");
    }

    #[test]
    fn rejects_non_positive_temperature() {
        for temperature in [0.0, -0.5, f64::NAN] {
            let (option, _) = rejected(sampled(Sampling {
                temperature,
                ..sampling()
            }));
            assert_eq!(option, "temperature");
        }
    }

    #[test]
    fn rejects_top_p_outside_unit_interval_and_takes_its_ends() {
        for top_p in [1.5, -0.1, f64::NAN] {
            let (option, msg) = rejected(sampled(Sampling {
                top_p,
                ..sampling()
            }));
            assert_eq!(option, "top_p");
            assert!(msg.contains("[0, 1]"), "{msg}");
        }
        for top_p in [0.0, 1.0] {
            let config = sampled(Sampling {
                top_p,
                ..sampling()
            });
            assert!(config.validate().is_ok(), "{top_p}");
        }
    }

    /// A model's settings are kept while sampling is off and are checked only when used: a
    /// generation_config.json may well say `"temperature": 0.0` next to `"do_sample": false`.
    #[test]
    fn sampling_settings_are_checked_only_when_sampling() {
        let config = GenerationConfig {
            num_beams: 4,
            sampling: Sampling {
                temperature: 0.0,
                top_p: 7.0,
                ..sampling()
            },
            ..Default::default()
        };
        assert!(config.validate().is_ok());
        assert!(
            sampled(Sampling {
                top_k: 0,
                ..sampling()
            })
            .validate()
            .is_ok()
        );
    }
}
