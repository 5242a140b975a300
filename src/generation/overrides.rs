//! Decoding settings given over a base [`GenerationConfig`] (a model's defaults): what a
//! command line, a catalogue entry or a request says, each field left `None` keeping the base's
//! value. Field names are transformers' `generate()` arguments, so JSON deserialises straight
//! into it.

use serde::{Deserialize, Serialize};

use super::config::{EarlyStopping, GenerationConfig};

/// Decoding settings over a base; `Default` changes nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationOverrides {
    /// Beam width (1: greedy search).
    pub num_beams: Option<usize>,
    /// Longest summary in tokens, counting the decoder start token (transformers' meaning).
    pub max_length: Option<usize>,
    /// Most generated tokens; wins over `max_length`.
    pub max_new_tokens: Option<usize>,
    /// End of sequence is blocked below this length (start token included).
    pub min_length: Option<usize>,
    pub length_penalty: Option<f64>,
    pub no_repeat_ngram_size: Option<usize>,
    pub early_stopping: Option<EarlyStopping>,
    pub repetition_penalty: Option<f32>,
    /// Sampling settings; `None` (the usual case) keeps all of the base's.
    pub sampling: Option<SamplingOverrides>,
}

/// Sampling settings over a base, by transformers' names; each `None` keeps the base's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SamplingOverrides {
    /// Sample (`true`) or search (`false`). Sampling searches with one beam unless beams are
    /// asked for too, which validation refuses (beam sampling is not supported).
    pub do_sample: Option<bool>,
    pub temperature: Option<f64>,
    /// 0 keeps every token.
    pub top_k: Option<usize>,
    /// 1.0 keeps every token.
    pub top_p: Option<f64>,
    pub seed: Option<u64>,
}

impl SamplingOverrides {
    fn apply(&self, config: &mut GenerationConfig) {
        if let Some(do_sample) = self.do_sample {
            config.do_sample = do_sample;
        }
        let sampling = &mut config.sampling;
        if let Some(temperature) = self.temperature {
            sampling.temperature = temperature;
        }
        if let Some(top_k) = self.top_k {
            sampling.top_k = top_k;
        }
        if let Some(top_p) = self.top_p {
            sampling.top_p = top_p;
        }
        if let Some(seed) = self.seed {
            sampling.seed = seed;
        }
    }
}

impl GenerationOverrides {
    /// Whether these overrides give `option` (a setting's library name, as in
    /// [`crate::Error::InvalidOption`]) a value, rather than leaving the base's.
    pub fn sets(&self, option: &str) -> bool {
        // The serde names are the settings' names, so no list here can fall out of step.
        let value = serde_json::to_value(self).unwrap_or_default();
        let given = |v: &serde_json::Value| v.get(option).is_some_and(|v| !v.is_null());
        given(&value) || given(&value["sampling"])
    }

    /// `base` with every setting given here put over it.
    pub fn apply(&self, mut config: GenerationConfig) -> GenerationConfig {
        if let Some(max_length) = self.max_length {
            // An explicit total length replaces a default cap on new tokens.
            config.max_length = max_length;
            config.max_new_tokens = None;
        }
        if self.max_new_tokens.is_some() {
            config.max_new_tokens = self.max_new_tokens;
        }
        if let Some(min_length) = self.min_length {
            config.min_length = min_length;
        }
        if let Some(beams) = self.num_beams {
            config.num_beams = beams;
        }
        if let Some(penalty) = self.length_penalty {
            config.length_penalty = penalty;
        }
        if let Some(size) = self.no_repeat_ngram_size {
            config.no_repeat_ngram_size = size;
        }
        if let Some(stopping) = self.early_stopping {
            config.early_stopping = stopping;
        }
        if let Some(penalty) = self.repetition_penalty {
            config.repetition_penalty = penalty;
        }
        if let Some(sampling) = &self.sampling {
            sampling.apply(&mut config);
        }
        // transformers would sample several beams (beam sampling), which precis does not do:
        // beams that came with the base give way to one; beams asked for here are refused by
        // `GenerationConfig::validate`.
        if config.do_sample && self.num_beams.is_none() {
            config.num_beams = 1;
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::Sampling;

    fn base() -> GenerationConfig {
        GenerationConfig {
            max_length: 200,
            max_new_tokens: Some(256),
            min_length: 30,
            num_beams: 4,
            length_penalty: 2.0,
            early_stopping: EarlyStopping::Always,
            no_repeat_ngram_size: 3,
            ..GenerationConfig::default()
        }
    }

    #[test]
    fn nothing_given_changes_nothing() {
        assert_eq!(GenerationOverrides::default().apply(base()), base());
    }

    #[test]
    fn every_setting_given_replaces_the_base() {
        let overrides = GenerationOverrides {
            num_beams: Some(2),
            max_length: Some(60),
            max_new_tokens: None,
            min_length: Some(5),
            length_penalty: Some(0.5),
            no_repeat_ngram_size: Some(0),
            early_stopping: Some(EarlyStopping::Never),
            repetition_penalty: Some(1.3),
            sampling: None,
        };
        let config = overrides.apply(base());
        let expected = GenerationConfig {
            max_length: 60,
            // An explicit max_length drops the base's cap on new tokens.
            max_new_tokens: None,
            min_length: 5,
            num_beams: 2,
            length_penalty: 0.5,
            early_stopping: EarlyStopping::Never,
            no_repeat_ngram_size: 0,
            repetition_penalty: 1.3,
            ..base()
        };
        assert_eq!(config, expected);
        let capped = GenerationOverrides {
            max_new_tokens: Some(12),
            ..overrides
        };
        assert_eq!(capped.apply(base()).max_new_tokens, Some(12));
    }

    #[test]
    fn sampling_searches_with_one_beam_over_the_base_settings() {
        let overrides = GenerationOverrides {
            sampling: Some(SamplingOverrides {
                do_sample: Some(true),
                top_k: Some(5),
                ..Default::default()
            }),
            ..Default::default()
        };
        let config = overrides.apply(base());
        assert!(config.do_sample);
        assert_eq!(config.num_beams, 1);
        let expected = Sampling {
            top_k: 5,
            ..Sampling::default()
        };
        assert_eq!(config.sampling, expected, "the rest stays the base's");

        // Beams asked for are kept (and refused by validation); so is switching sampling off.
        let beams = GenerationOverrides {
            num_beams: Some(3),
            ..overrides.clone()
        };
        assert_eq!(beams.apply(base()).num_beams, 3);
        let sampling_base = GenerationConfig {
            do_sample: true,
            ..base()
        };
        assert_eq!(
            GenerationOverrides::default()
                .apply(sampling_base.clone())
                .num_beams,
            1
        );
        let off = GenerationOverrides {
            sampling: Some(SamplingOverrides {
                do_sample: Some(false),
                seed: Some(9),
                ..Default::default()
            }),
            ..Default::default()
        };
        let searched = off.apply(sampling_base);
        assert_eq!((searched.do_sample, searched.num_beams), (false, 4));
        assert_eq!(searched.sampling.seed, 9);
    }

    #[test]
    fn knows_which_settings_it_gives() {
        let overrides = GenerationOverrides {
            num_beams: Some(2),
            sampling: Some(SamplingOverrides {
                temperature: Some(0.5),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(overrides.sets("num_beams") && overrides.sets("temperature"));
        for option in ["min_length", "top_p", "do_sample", "no_such_setting"] {
            assert!(!overrides.sets(option), "{option}");
        }
        assert!(!GenerationOverrides::default().sets("temperature"));
    }

    #[test]
    fn reads_transformers_names_and_refuses_unknown_ones() {
        let overrides: GenerationOverrides = serde_json::from_value(serde_json::json!({
            "num_beams": 3, "early_stopping": true, "repetition_penalty": 1.2,
            "sampling": {"do_sample": true, "temperature": 0.5, "top_p": 0.9, "seed": 7}
        }))
        .unwrap();
        assert_eq!(overrides.num_beams, Some(3));
        assert_eq!(overrides.early_stopping, Some(EarlyStopping::Always));
        assert_eq!(overrides.repetition_penalty, Some(1.2));
        let sampling = overrides.sampling.unwrap();
        assert_eq!((sampling.seed, sampling.top_k), (Some(7), None));
        let err = serde_json::from_value::<GenerationOverrides>(serde_json::json!({"beams": 3}));
        assert!(err.unwrap_err().to_string().contains("beams"));
        let err = serde_json::from_value::<GenerationOverrides>(
            serde_json::json!({"sampling": {"topk": 3}}),
        );
        assert!(err.unwrap_err().to_string().contains("topk"));
    }
}
