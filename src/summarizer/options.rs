//! What a caller may ask of one summary, and how that meets the model's own defaults.
//!
//! Every decoding option is an `Option`: left out, the model's summarisation defaults apply, so
//! that with no options the result equals transformers' `pipeline("summarization")`.

use candle_core::DType;
use serde::Serialize;

use crate::generation::{GenerationConfig, GenerationOverrides};
use crate::loading::defaults::SummarizationDefaults;
use crate::merge::MergeStrategy;
use crate::models::Quantization;
use crate::{Error, Result};

/// Options for one `summarize` call. `Default` keeps every model default.
///
/// Serialised, it holds exactly the options that change what a summary says (the batching
/// sizes change only speed, as a text's summary does not depend on what it is batched with):
/// see [`SummaryOptions::output_options`].
#[derive(Debug, Clone, Default, Serialize)]
pub struct SummaryOptions {
    /// Decoding settings over the model's own.
    #[serde(flatten)]
    pub generation: GenerationOverrides,
    /// Encoder window in tokens (default: the model's).
    pub max_input_tokens: Option<usize>,
    /// Largest chunk in tokens (default: the window less the prefix and special tokens).
    pub chunk_tokens: Option<usize>,
    /// Sentences repeated at the start of the next chunk (default 1).
    pub chunk_overlap: Option<usize>,
    pub merge: MergeStrategy,
    /// Sequences per model batch (default: 8 on CPU, 32 on a GPU).
    #[serde(skip)]
    pub batch_size: Option<usize>,
    /// Most padded input tokens per model batch (rows × longest row); no cap when `None`.
    #[serde(skip)]
    pub batch_tokens: Option<usize>,
}

/// The options that change what a summary says, and the weight precision, which changes it a
/// little too: what a batch manifest hashes to tell a finished summary from a stale one.
#[derive(Debug, Clone, Serialize)]
pub struct OutputOptions<'a> {
    #[serde(flatten)]
    pub options: &'a SummaryOptions,
    pub dtype: &'static str,
    /// `--quantize`; left out of the manifest when off, so unquantized runs hash as before.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quantize: Option<&'static str>,
}

fn at_least(option: &'static str, value: usize, bound: usize) -> Result<()> {
    if value < bound {
        return Err(Error::InvalidOption {
            option,
            value: value.to_string(),
            expected: format!("must be at least {bound}"),
        });
    }
    Ok(())
}

impl SummaryOptions {
    /// The output-affecting part of these options, for a model loaded in `dtype` and maybe
    /// quantized.
    pub fn output_options(
        &self,
        dtype: DType,
        quantization: Option<Quantization>,
    ) -> OutputOptions<'_> {
        OutputOptions {
            options: self,
            dtype: dtype.as_str(),
            quantize: quantization.map(Quantization::as_str),
        }
    }

    /// Checks every option on its own, before any model is loaded: decoding options as
    /// generation would (over a neutral base), and the chunking and batching sizes.
    pub fn validate(&self) -> Result<()> {
        let neutral = GenerationConfig {
            max_length: usize::from(u16::MAX),
            ..GenerationConfig::default()
        };
        let mut probe = self.generation.apply(neutral);
        if self.generation.max_length.is_none() && self.generation.max_new_tokens.is_none() {
            probe.min_length = probe.min_length.min(probe.max_length);
        }
        probe.validate()?;
        if let Some(tokens) = self.max_input_tokens {
            // The window must hold at least one content token plus the special tokens.
            at_least("max_input_tokens", tokens, 4)?;
        }
        if let Some(tokens) = self.chunk_tokens {
            at_least("chunk_tokens", tokens, 1)?;
        }
        if let Some(size) = self.batch_size {
            at_least("batch_size", size, 1)?;
        }
        if let Some(tokens) = self.batch_tokens {
            at_least("batch_tokens", tokens, 1)?;
        }
        Ok(())
    }

    /// The decoding settings for the last pass: the model's defaults, then these options.
    pub fn generation_config(&self, defaults: &SummarizationDefaults) -> GenerationConfig {
        self.generation.apply(defaults.generation.clone())
    }
}

/// Settings for the passes before the last one (chunk summaries and intermediate merges):
/// at most a third of the window each, so that every reduce group holds two or more summaries
/// and the recursion always shrinks. The minimum length shrinks with it.
pub(crate) fn intermediate_config(last: &GenerationConfig, budget: usize) -> GenerationConfig {
    let cap = (budget / 3).max(1);
    let new_tokens = last.effective_max_length().saturating_sub(1).clamp(1, cap);
    let mut config = last.clone();
    config.max_new_tokens = Some(new_tokens);
    config.min_length = last.effective_min_length().min(new_tokens / 2 + 1);
    config.min_new_tokens = None;
    config
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::{EarlyStopping, SamplingOverrides};

    fn t5_defaults() -> SummarizationDefaults {
        SummarizationDefaults {
            prefix: "summarize: ".into(),
            generation: GenerationConfig {
                num_beams: 4,
                length_penalty: 2.0,
                early_stopping: EarlyStopping::Always,
                min_length: 30,
                max_length: 200,
                no_repeat_ngram_size: 3,
                ..GenerationConfig::default()
            },
            decoder_start_token_id: Some(0),
            bos_token_id: None,
            eos_token_ids: vec![1],
            pad_token_id: Some(0),
            window: 512,
        }
    }

    #[test]
    fn no_options_keep_model_defaults() {
        let config = SummaryOptions::default().generation_config(&t5_defaults());
        assert_eq!(config.num_beams, 4);
        assert_eq!(config.max_length, 200);
        assert_eq!(config.min_length, 30);
        assert_eq!(config.no_repeat_ngram_size, 3);
        assert_eq!(config.early_stopping, EarlyStopping::Always);
        assert_eq!(config.length_penalty, 2.0);
    }

    #[test]
    fn options_override_defaults() {
        let options = SummaryOptions {
            generation: GenerationOverrides {
                num_beams: Some(1),
                max_length: Some(60),
                min_length: Some(5),
                early_stopping: Some(EarlyStopping::Never),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = options.generation_config(&t5_defaults());
        assert_eq!(
            (config.num_beams, config.max_length, config.min_length),
            (1, 60, 5)
        );
        assert_eq!(config.early_stopping, EarlyStopping::Never);
    }

    #[test]
    fn explicit_max_length_replaces_a_default_new_token_cap() {
        let mut defaults = t5_defaults();
        defaults.generation.max_new_tokens = Some(256);
        let options = SummaryOptions {
            generation: GenerationOverrides {
                max_length: Some(50),
                ..Default::default()
            },
            ..Default::default()
        };
        let config = options.generation_config(&defaults);
        assert_eq!(config.max_new_tokens, None);
        assert_eq!(config.effective_max_length(), 50);
    }

    #[test]
    fn intermediate_passes_fit_three_to_a_window() {
        let last = SummaryOptions::default().generation_config(&t5_defaults());
        let config = intermediate_config(&last, 510);
        assert_eq!(config.effective_max_length(), 171);
        assert!(config.effective_min_length() <= 86);
        // A short final length is kept as it is.
        let short = SummaryOptions {
            generation: GenerationOverrides {
                max_length: Some(40),
                min_length: Some(10),
                ..Default::default()
            },
            ..Default::default()
        }
        .generation_config(&t5_defaults());
        let config = intermediate_config(&short, 510);
        assert_eq!(config.effective_max_length(), 40);
        assert_eq!(config.effective_min_length(), 10);
    }

    #[test]
    fn output_options_leave_out_only_the_batching_sizes() {
        let options = SummaryOptions {
            generation: GenerationOverrides {
                num_beams: Some(2),
                ..Default::default()
            },
            ..Default::default()
        };
        let faster = SummaryOptions {
            batch_size: Some(64),
            batch_tokens: Some(1000),
            ..options.clone()
        };
        let json = |view: OutputOptions| serde_json::to_value(view).unwrap();
        let view = json(options.output_options(DType::F32, None));
        assert_eq!(view, json(faster.output_options(DType::F32, None)));
        assert_ne!(view, json(options.output_options(DType::BF16, None)));
        assert_ne!(
            view,
            json(options.output_options(DType::F32, Some(Quantization::Q8)))
        );
        let mut wider = options.clone();
        wider.generation.num_beams = Some(4);
        assert_ne!(view, json(wider.output_options(DType::F32, None)));
    }

    /// Batch manifests store a hash of this JSON: a change to it redoes every finished batch.
    #[test]
    fn output_options_serialise_as_the_manifest_hash_expects() {
        let options = SummaryOptions {
            generation: GenerationOverrides {
                num_beams: Some(1),
                max_length: Some(60),
                max_new_tokens: Some(40),
                min_length: Some(5),
                length_penalty: Some(0.5),
                no_repeat_ngram_size: Some(3),
                early_stopping: Some(EarlyStopping::Never),
                repetition_penalty: Some(1.5),
                sampling: Some(SamplingOverrides {
                    do_sample: Some(true),
                    temperature: Some(0.7),
                    top_k: Some(50),
                    top_p: None,
                    seed: Some(42),
                }),
            },
            max_input_tokens: Some(256),
            chunk_tokens: Some(100),
            chunk_overlap: Some(1),
            merge: MergeStrategy::Concat,
            batch_size: Some(4),
            batch_tokens: Some(999),
        };
        let json = serde_json::to_value(options.output_options(DType::F32, Some(Quantization::Q8)));
        assert_eq!(
            json.unwrap(),
            serde_json::json!({
                "num_beams": 1, "max_length": 60, "max_new_tokens": 40, "min_length": 5,
                "length_penalty": 0.5, "no_repeat_ngram_size": 3, "early_stopping": "never",
                "repetition_penalty": 1.5,
                "sampling": {
                    "do_sample": true, "temperature": 0.7, "top_k": 50, "top_p": null, "seed": 42
                },
                "max_input_tokens": 256, "chunk_tokens": 100, "chunk_overlap": 1,
                "merge": "concat", "dtype": "f32", "quantize": "q8"
            })
        );
        let defaults =
            serde_json::to_value(SummaryOptions::default().output_options(DType::BF16, None));
        assert_eq!(
            defaults.unwrap(),
            serde_json::json!({
                "num_beams": null, "max_length": null, "max_new_tokens": null, "min_length": null,
                "length_penalty": null, "no_repeat_ngram_size": null, "early_stopping": null,
                "repetition_penalty": null, "sampling": null, "max_input_tokens": null,
                "chunk_tokens": null, "chunk_overlap": null, "merge": "reduce", "dtype": "bf16"
            })
        );
        for (stopping, name) in [
            (EarlyStopping::Always, "always"),
            (EarlyStopping::Heuristic, "heuristic"),
        ] {
            let mut options = SummaryOptions::default();
            options.generation.early_stopping = Some(stopping);
            let json = serde_json::to_value(options.output_options(DType::F32, None)).unwrap();
            assert_eq!(json["early_stopping"], name);
        }
    }

    #[test]
    fn bad_sizes_name_the_option_and_bound() {
        let options = SummaryOptions {
            batch_size: Some(0),
            ..Default::default()
        };
        let err = options.validate().unwrap_err().to_string();
        assert!(
            err.contains("batch_size") && err.contains("at least 1"),
            "{err}"
        );
    }
}
