//! Summarization defaults of a checkpoint, merged from its `config.json`, its optional
//! `generation_config.json` and the catalogue as `pipeline("summarization")` merged them.
//!
//! transformers 5.24 no longer has that pipeline (pipelines/__init__.py `REMOVED_TASKS`: asking
//! for it raises `KeyError`) and its `generate()` never reads `task_specific_params`, so a T5
//! run through plain 5.24 `generate()` decodes greedily for 20 tokens. precis therefore follows
//! the last pipeline that existed, transformers 4.57 (checked against it on tiny models), which
//! is also what the golden fixtures emulate. Precedence, highest first:
//! 1. `config.json` → `task_specific_params.summarization`: 4.57 `Pipeline.__init__`
//!    (pipelines/base.py) pops `prefix` and `generation_config.update(**rest)`.
//! 2. Catalogue overrides (`[generation]` in `models/*.toml`): the task parameters a checkpoint
//!    lacks, so they sit where (1) would.
//! 3. The pipeline's own defaults, `GenerationConfig(max_new_tokens=256, num_beams=4)`
//!    (4.57 pipelines/text2text_generation.py `_default_generation_config`), merged with the
//!    model's by `_prepare_generation_config(use_model_defaults=True)` (generation/utils.py):
//!    a model value only replaces a pipeline value still at the global default, so `num_beams=4`
//!    beats the model's own, and `max_new_tokens=256` is dropped only when the model sets a
//!    `max_length` other than 20 (base.py, right after that call).
//! 4. The model's generation config: `generation_config.json` when present, else the top-level
//!    keys of `config.json`, never both (5.24 and 4.57 `GenerationMixin.adjust_generation_fn`).
//!    In the second case 4.57 read the config *object* (`GenerationConfig.from_model_config`), so
//!    the config class's defaults and legacy keys count too (see `legacy_config_defaults`).
//! 5. Global defaults, 5.24 `GenerationConfig._get_default_generation_params`
//!    (generation/configuration_utils.py): 20 tokens, greedy, no penalties.
//!
//! Kept independent of the generation module: the lead maps this plain struct onto it.

use std::path::Path;

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

use crate::catalogue::Preset;
use crate::error::{Error, Result};
use crate::loading::JsonFile;

/// `Text2TextGenerationPipeline._default_generation_config` of transformers 4.57.
const PIPELINE_NUM_BEAMS: usize = 4;
const PIPELINE_MAX_NEW_TOKENS: usize = 256;
/// transformers' global default `max_length`, which the pipeline treats as "not set".
const GLOBAL_MAX_LENGTH: usize = 20;

/// Input window assumed when neither the catalogue nor `config.json` names one: the length
/// T5 and most BART-era checkpoints were trained on.
const FALLBACK_WINDOW: usize = 512;

/// When beam search stops (transformers' `early_stopping`: `true`, `false` or `"never"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawEarlyStopping")]
pub enum EarlyStopping {
    /// Stop as soon as `num_beams` hypotheses are finished.
    True,
    /// Stop when the best running beam can no longer beat the finished ones (heuristic).
    False,
    /// Canonical beam search: stop only when no better hypothesis is possible.
    Never,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawEarlyStopping {
    Flag(bool),
    Word(String),
}

impl TryFrom<RawEarlyStopping> for EarlyStopping {
    type Error = String;

    fn try_from(raw: RawEarlyStopping) -> std::result::Result<Self, String> {
        match raw {
            RawEarlyStopping::Flag(true) => Ok(Self::True),
            RawEarlyStopping::Flag(false) => Ok(Self::False),
            RawEarlyStopping::Word(word) if word == "never" => Ok(Self::Never),
            RawEarlyStopping::Word(word) => Err(format!(
                "early_stopping must be true, false or \"never\", not \"{word}\""
            )),
        }
    }
}

/// Everything generation needs to summarise like the reference implementation, per model.
#[derive(Debug, Clone, PartialEq)]
pub struct SummarizationDefaults {
    /// Text put before every input (T5: `"summarize: "`); empty for most models.
    pub prefix: String,
    pub num_beams: usize,
    pub length_penalty: f64,
    pub early_stopping: EarlyStopping,
    /// Minimum total decoder length, counting the start token (transformers semantics).
    pub min_length: usize,
    /// Maximum total decoder length, counting the start token (transformers semantics).
    pub max_length: usize,
    /// When set, caps the new tokens and `max_length` is ignored (transformers' rule). The
    /// pipeline sets 256 unless the model's generation config names its own `max_length`.
    pub max_new_tokens: Option<usize>,
    pub no_repeat_ngram_size: usize,
    pub repetition_penalty: f64,
    pub forced_bos_token_id: Option<u32>,
    pub forced_eos_token_id: Option<u32>,
    /// First decoder token; `None` only for a config that names neither it nor `bos_token_id`.
    pub decoder_start_token_id: Option<u32>,
    pub bos_token_id: Option<u32>,
    /// Tokens that end a hypothesis (configs may list several).
    pub eos_token_ids: Vec<u32>,
    /// Padding token; transformers falls back to the first eos token when unset.
    pub pad_token_id: Option<u32>,
    /// Most input tokens per pass (the chunk size for long articles).
    pub window: usize,
}

/// Catalogue-supplied settings for checkpoints whose own config lacks them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GenerationOverrides {
    pub prefix: Option<String>,
    pub num_beams: Option<usize>,
    pub length_penalty: Option<f64>,
    pub early_stopping: Option<EarlyStopping>,
    pub min_length: Option<usize>,
    pub max_length: Option<usize>,
    pub max_new_tokens: Option<usize>,
    pub no_repeat_ngram_size: Option<usize>,
    pub repetition_penalty: Option<f64>,
}

/// One source of settings (a JSON object or the catalogue); `None` means "not said here".
#[derive(Debug, Clone, Default, Deserialize)]
struct Layer {
    prefix: Option<String>,
    num_beams: Option<usize>,
    length_penalty: Option<f64>,
    early_stopping: Option<EarlyStopping>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    max_new_tokens: Option<usize>,
    no_repeat_ngram_size: Option<usize>,
    repetition_penalty: Option<f64>,
    forced_bos_token_id: Option<u32>,
    #[serde(default, deserialize_with = "single_token_id")]
    forced_eos_token_id: Option<u32>,
    decoder_start_token_id: Option<u32>,
    bos_token_id: Option<u32>,
    eos_token_id: Option<TokenIds>,
    pad_token_id: Option<u32>,
    max_position_embeddings: Option<usize>,
    n_positions: Option<usize>,
}

/// transformers accepts one token id or a list wherever several ids make sense.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    fn into_vec(self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![id],
            TokenIds::Many(ids) => ids,
        }
    }
}

impl From<&GenerationOverrides> for Layer {
    fn from(o: &GenerationOverrides) -> Self {
        Layer {
            prefix: o.prefix.clone(),
            num_beams: o.num_beams,
            length_penalty: o.length_penalty,
            early_stopping: o.early_stopping,
            min_length: o.min_length,
            max_length: o.max_length,
            max_new_tokens: o.max_new_tokens,
            no_repeat_ngram_size: o.no_repeat_ngram_size,
            repetition_penalty: o.repetition_penalty,
            ..Layer::default()
        }
    }
}

/// precis forces at most one end token, so a config listing several is refused (naming the
/// file) rather than silently honoured in part.
fn single_token_id<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    match Option::<TokenIds>::deserialize(d)?
        .map(TokenIds::into_vec)
        .as_deref()
    {
        None | Some([]) => Ok(None),
        Some([id]) => Ok(Some(*id)),
        Some(ids) => Err(D::Error::custom(format!(
            "forced_eos_token_id lists {} ids ({ids:?}); precis supports exactly one",
            ids.len()
        ))),
    }
}

/// Picks the first layer that says something about a field.
fn first<T: Clone>(layers: &[&Layer], field: impl Fn(&Layer) -> Option<T>) -> Option<T> {
    layers.iter().find_map(|layer| field(layer))
}

impl SummarizationDefaults {
    /// Merges an already parsed `config.json`, the optional `generation_config.json` and the
    /// preset's window and overrides (see the module docs for the order). Reads no file; an
    /// error names the file whose keys are wrong.
    pub fn from_json(
        config: &JsonFile,
        generation_config: Option<&JsonFile>,
        preset: Option<&Preset>,
    ) -> Result<Self> {
        let generation_json = generation_config.map(|file| &file.json);
        let layers = Layers::parse(&config.json, generation_json).map_err(|e| match e {
            LayerError::Config(source) => json_error(&config.path, source),
            LayerError::Generation(source) => {
                json_error(generation_config.map_or(&config.path, |g| &g.path), source)
            }
        })?;
        Ok(layers.merge(preset))
    }
}

/// The parsed layers of one checkpoint, before merging.
struct Layers {
    task: Layer,
    model: Layer,
    config_top: Layer,
}

enum LayerError {
    Config(serde_json::Error),
    Generation(serde_json::Error),
}

impl Layers {
    fn parse(config: &Value, generation: Option<&Value>) -> std::result::Result<Self, LayerError> {
        let config_top = Layer::deserialize(config).map_err(LayerError::Config)?;
        let task = match config.pointer("/task_specific_params/summarization") {
            Some(params) => Layer::deserialize(params).map_err(LayerError::Config)?,
            None => Layer::default(),
        };
        // transformers builds the generation config from config.json only when the checkpoint
        // ships no generation_config.json (GenerationMixin.adjust_generation_fn).
        let model = match generation {
            Some(generation) => Layer::deserialize(generation).map_err(LayerError::Generation)?,
            None => legacy_config_defaults(config, config_top.clone()),
        };
        Ok(Layers {
            task,
            model,
            config_top,
        })
    }

    fn merge(&self, preset: Option<&Preset>) -> SummarizationDefaults {
        let overrides = preset
            .map(|p| Layer::from(&p.generation))
            .unwrap_or_default();
        let tuning = [&self.task, &overrides, &self.model];
        // Token ids describe the vocabulary, not decoding taste: fall back to config.json when
        // a generation_config.json omits them (transformers would fail instead).
        let tokens = [&self.model, &self.config_top];
        let eos_token_ids = first(&tokens, |l| l.eos_token_id.clone()).map(TokenIds::into_vec);
        let eos_token_ids = eos_token_ids.unwrap_or_default();
        let bos_token_id = first(&tokens, |l| l.bos_token_id);
        SummarizationDefaults {
            prefix: first(&[&self.task, &overrides, &self.config_top], |l| {
                l.prefix.clone()
            })
            .unwrap_or_default(),
            // The pipeline's 4 beams differ from the global default, so the model's never apply.
            num_beams: first(&[&self.task, &overrides], |l| l.num_beams)
                .unwrap_or(PIPELINE_NUM_BEAMS),
            length_penalty: first(&tuning, |l| l.length_penalty).unwrap_or(1.0),
            early_stopping: first(&tuning, |l| l.early_stopping).unwrap_or(EarlyStopping::False),
            min_length: first(&tuning, |l| l.min_length).unwrap_or(0),
            max_length: first(&tuning, |l| l.max_length).unwrap_or(GLOBAL_MAX_LENGTH),
            max_new_tokens: first(&[&self.task, &overrides], |l| l.max_new_tokens)
                .or_else(|| self.pipeline_max_new_tokens()),
            no_repeat_ngram_size: first(&tuning, |l| l.no_repeat_ngram_size).unwrap_or(0),
            repetition_penalty: first(&tuning, |l| l.repetition_penalty).unwrap_or(1.0),
            forced_bos_token_id: first(&tuning, |l| l.forced_bos_token_id),
            forced_eos_token_id: first(&tuning, |l| l.forced_eos_token_id),
            // transformers' _prepare_special_tokens: an encoder-decoder without a decoder start
            // token starts from bos.
            decoder_start_token_id: first(&tokens, |l| l.decoder_start_token_id).or(bos_token_id),
            bos_token_id,
            // ... and pads with the first eos token when no pad token is set.
            pad_token_id: first(&tokens, |l| l.pad_token_id).or(eos_token_ids.first().copied()),
            eos_token_ids,
            window: self.window(preset),
        }
    }

    /// The pipeline's 256-token cap survives unless the model names its own `max_length`.
    fn pipeline_max_new_tokens(&self) -> Option<usize> {
        match self.model.max_length {
            Some(max_length) if max_length != GLOBAL_MAX_LENGTH => None,
            _ => Some(PIPELINE_MAX_NEW_TOKENS),
        }
    }

    fn window(&self, preset: Option<&Preset>) -> usize {
        let from_config = self
            .config_top
            .max_position_embeddings
            .or(self.config_top.n_positions);
        match preset.map(|p| p.window).or(from_config) {
            Some(window) => window,
            None => {
                tracing::warn!(
                    "config.json names neither max_position_embeddings nor n_positions; \
                     assuming a {FALLBACK_WINDOW}-token input window"
                );
                FALLBACK_WINDOW
            }
        }
    }
}

/// The generation settings transformers 4.57 took from a checkpoint's config *object* beyond the
/// keys of its config.json, for checkpoints without generation_config.json (4.57
/// `GenerationConfig.from_model_config` reads every attribute, class defaults included):
/// * `BartConfig` defaults `forced_eos_token_id` to 2 and `PegasusConfig` to 1, so the end token
///   is forced at `max_length` even when config.json does not say so;
/// * `BartConfig` turns the `force_bos_token_to_be_generated: true` of old CNN checkpoints (the
///   sshleifer/distilbart-cnn-* configs have no `forced_bos_token_id`) into
///   `forced_bos_token_id = bos_token_id` (4.57 configuration_bart.py, "backward compatibility
///   for BART CNN models").
///
/// transformers 5.24 keeps the second (in `GenerationConfig.__init__`) but not the first: there
/// the end token is forced only when config.json names it.
fn legacy_config_defaults(config: &Value, mut layer: Layer) -> Layer {
    let model_type = config.get("model_type").and_then(Value::as_str);
    let class_forced_eos = match model_type {
        Some("bart") => Some(2),
        Some("pegasus") => Some(1),
        _ => None,
    };
    // An explicit `"forced_eos_token_id": null` overrides the class default.
    if config.get("forced_eos_token_id").is_none() {
        layer.forced_eos_token_id = class_forced_eos;
    }
    let force_bos = config.get("force_bos_token_to_be_generated") == Some(&Value::Bool(true));
    if model_type == Some("bart") && force_bos && layer.forced_bos_token_id.is_none() {
        // BartConfig's bos_token_id defaults to 0.
        layer.forced_bos_token_id = Some(layer.bos_token_id.unwrap_or(0));
    }
    layer
}

fn json_error(path: &Path, source: serde_json::Error) -> Error {
    Error::JsonFile {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// t5-small's config.json and generation_config.json, trimmed to the keys that matter.
    fn t5_config() -> Value {
        json!({
            "model_type": "t5", "n_positions": 512, "decoder_start_token_id": 0,
            "eos_token_id": 1, "pad_token_id": 0,
            "task_specific_params": {
                "summarization": {
                    "early_stopping": true, "length_penalty": 2.0, "max_length": 200,
                    "min_length": 30, "no_repeat_ngram_size": 3, "num_beams": 4,
                    "prefix": "summarize: "
                },
                "translation_en_to_de": {"prefix": "translate English to German: "}
            }
        })
    }

    fn t5_generation() -> Value {
        json!({"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0})
    }

    /// bart-large-cnn style: generation settings at the top level of config.json.
    fn bart_config() -> Value {
        json!({
            "model_type": "bart", "max_position_embeddings": 1024, "bos_token_id": 0,
            "eos_token_id": 2, "pad_token_id": 1, "decoder_start_token_id": 2,
            "forced_bos_token_id": 0, "forced_eos_token_id": 2, "num_beams": 4,
            "length_penalty": 2.0, "max_length": 142, "min_length": 56,
            "no_repeat_ngram_size": 3, "early_stopping": true
        })
    }

    fn merge(
        config: &Value,
        generation: Option<&Value>,
        preset: Option<&Preset>,
    ) -> SummarizationDefaults {
        let layers = Layers::parse(config, generation).unwrap_or_else(|_| panic!("parse failed"));
        layers.merge(preset)
    }

    fn preset(window: usize, generation: GenerationOverrides) -> Preset {
        Preset {
            name: "p".into(),
            repo: "o/p".into(),
            architecture: crate::catalogue::Architecture::T5,
            window,
            parameters_millions: 1,
            download_mb: 1,
            description: "d".into(),
            generation,
        }
    }

    #[test]
    fn t5_gets_its_task_params_and_the_pipeline_token_cap() {
        let d = merge(&t5_config(), Some(&t5_generation()), None);
        let expected = SummarizationDefaults {
            prefix: "summarize: ".into(),
            num_beams: 4,
            length_penalty: 2.0,
            early_stopping: EarlyStopping::True,
            min_length: 30,
            max_length: 200,
            max_new_tokens: Some(256),
            no_repeat_ngram_size: 3,
            repetition_penalty: 1.0,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            decoder_start_token_id: Some(0),
            bos_token_id: None,
            eos_token_ids: vec![1],
            pad_token_id: Some(0),
            window: 512,
        };
        assert_eq!(d, expected);
    }

    #[test]
    fn bart_reads_top_level_config_when_it_has_no_generation_config() {
        let d = merge(&bart_config(), None, None);
        assert_eq!((d.num_beams, d.min_length, d.max_length), (4, 56, 142));
        assert_eq!(
            d.max_new_tokens, None,
            "the model's own max_length drops the 256 cap"
        );
        assert_eq!((d.length_penalty, d.no_repeat_ngram_size), (2.0, 3));
        assert_eq!(
            (d.forced_bos_token_id, d.forced_eos_token_id),
            (Some(0), Some(2))
        );
        assert_eq!(
            (d.decoder_start_token_id, d.bos_token_id),
            (Some(2), Some(0))
        );
        assert_eq!((d.prefix.as_str(), d.window), ("", 1024));
    }

    /// sshleifer/distilbart-cnn-12-6 style: the old CNN flag instead of forced token ids.
    fn distilbart_config() -> Value {
        json!({
            "model_type": "bart", "max_position_embeddings": 1024, "bos_token_id": 0,
            "eos_token_id": 2, "pad_token_id": 1, "decoder_start_token_id": 2,
            "force_bos_token_to_be_generated": true, "num_beams": 4, "max_length": 142,
            "min_length": 56, "prefix": " ",
            "task_specific_params": {"summarization": {"num_beams": 4, "max_length": 142}}
        })
    }

    #[test]
    fn old_bart_configs_get_transformers_4_class_defaults_and_forced_bos() {
        let d = merge(&distilbart_config(), None, None);
        assert_eq!(
            (d.forced_bos_token_id, d.forced_eos_token_id),
            (Some(0), Some(2)),
            "4.57 BartConfig: force_bos_token_to_be_generated and forced_eos_token_id=2"
        );
        assert_eq!(d.prefix, " ");
        let mut explicit_null = distilbart_config();
        explicit_null["forced_eos_token_id"] = Value::Null;
        explicit_null["force_bos_token_to_be_generated"] = json!(false);
        let d = merge(&explicit_null, None, None);
        assert_eq!((d.forced_bos_token_id, d.forced_eos_token_id), (None, None));
        let pegasus = json!({"model_type": "pegasus", "max_position_embeddings": 512});
        assert_eq!(merge(&pegasus, None, None).forced_eos_token_id, Some(1));
        assert_eq!(merge(&t5_config(), None, None).forced_eos_token_id, None);
    }

    #[test]
    fn a_generation_config_file_has_no_class_defaults() {
        let generation = json!({"decoder_start_token_id": 2, "eos_token_id": 2});
        let d = merge(&distilbart_config(), Some(&generation), None);
        assert_eq!((d.forced_bos_token_id, d.forced_eos_token_id), (None, None));
    }

    #[test]
    fn a_generation_config_replaces_the_top_level_config_keys() {
        let generation =
            json!({"length_penalty": 0.5, "eos_token_id": 2, "decoder_start_token_id": 2});
        let d = merge(&bart_config(), Some(&generation), None);
        assert_eq!((d.length_penalty, d.max_new_tokens), (0.5, Some(256)));
        // Not in generation_config.json, so transformers does not use config.json's.
        assert_eq!(
            (d.max_length, d.min_length, d.forced_bos_token_id),
            (20, 0, None)
        );
        // Token ids still fall back to config.json.
        assert_eq!((d.bos_token_id, d.pad_token_id), (Some(0), Some(1)));
    }

    #[test]
    fn task_params_beat_the_generation_config() {
        let generation = json!({"num_beams": 8, "max_length": 64, "length_penalty": 0.6});
        let d = merge(&t5_config(), Some(&generation), None);
        assert_eq!((d.num_beams, d.max_length, d.length_penalty), (4, 200, 2.0));
        assert_eq!(
            d.max_new_tokens, None,
            "the model's max_length 64 dropped the cap"
        );
    }

    #[test]
    fn only_the_plain_summarization_task_counts() {
        let config = json!({
            "max_position_embeddings": 512, "num_beams": 8, "max_length": 64,
            "length_penalty": 0.6,
            "task_specific_params": {"summarization_cnn_dailymail": {"num_beams": 2}}
        });
        let d = merge(&config, None, None);
        assert_eq!((d.max_length, d.length_penalty, d.window), (64, 0.6, 512));
        // The legacy pipeline's 4 beams beat the model's 8 (checked against transformers 4.57).
        assert_eq!(d.num_beams, 4);
    }

    #[test]
    fn nothing_said_means_pipeline_then_global_defaults() {
        let d = merge(&json!({}), None, None);
        assert_eq!((d.num_beams, d.max_new_tokens), (4, Some(256)));
        assert_eq!((d.min_length, d.max_length), (0, 20));
        assert_eq!((d.length_penalty, d.repetition_penalty), (1.0, 1.0));
        assert_eq!(
            (d.early_stopping, d.no_repeat_ngram_size),
            (EarlyStopping::False, 0)
        );
        assert_eq!((d.decoder_start_token_id, d.pad_token_id), (None, None));
        assert!(d.eos_token_ids.is_empty());
        assert_eq!(d.window, FALLBACK_WINDOW);
    }

    #[test]
    fn special_token_fallbacks_follow_transformers() {
        let d = merge(
            &json!({"bos_token_id": 5, "eos_token_id": [7, 9]}),
            None,
            None,
        );
        assert_eq!(
            d.decoder_start_token_id,
            Some(5),
            "decoder start falls back to bos"
        );
        assert_eq!(d.eos_token_ids, vec![7, 9]);
        assert_eq!(d.pad_token_id, Some(7), "pad falls back to the first eos");
    }

    #[test]
    fn nulls_are_unset_and_never_parses() {
        let config =
            json!({"max_length": null, "early_stopping": "never", "forced_eos_token_id": [2]});
        let d = merge(&config, None, None);
        assert_eq!(d.max_length, 20);
        assert_eq!(d.early_stopping, EarlyStopping::Never);
        assert_eq!(d.forced_eos_token_id, Some(2));
    }

    #[test]
    fn preset_overrides_act_as_missing_task_params() {
        let overrides = GenerationOverrides {
            num_beams: Some(2),
            max_length: Some(99),
            max_new_tokens: Some(80),
            prefix: Some("tl;dr: ".into()),
            ..GenerationOverrides::default()
        };
        let p = preset(384, overrides);
        let config = json!({"n_positions": 512, "max_length": 50, "length_penalty": 0.7});
        let d = merge(&config, None, Some(&p));
        assert_eq!((d.window, d.num_beams, d.max_length), (384, 2, 99));
        assert_eq!((d.max_new_tokens, d.length_penalty), (Some(80), 0.7));
        assert_eq!(d.prefix, "tl;dr: ");
        let d = merge(&t5_config(), None, Some(&p));
        let got = (d.prefix.as_str(), d.num_beams, d.max_length);
        assert_eq!(got, ("summarize: ", 4, 200));
    }

    #[test]
    fn config_prefix_is_used_when_the_task_has_none() {
        let d = merge(&json!({"prefix": "summarise: "}), None, None);
        assert_eq!(d.prefix, "summarise: ");
    }

    /// One field of `d` under its transformers name, as the golden JSON records it.
    fn param(d: &SummarizationDefaults, key: &str) -> Value {
        match key {
            "num_beams" => json!(d.num_beams),
            "length_penalty" => json!(d.length_penalty),
            "early_stopping" => match d.early_stopping {
                EarlyStopping::True => json!(true),
                EarlyStopping::False => json!(false),
                EarlyStopping::Never => json!("never"),
            },
            "min_length" => json!(d.min_length),
            "max_length" => json!(d.max_length),
            "max_new_tokens" => json!(d.max_new_tokens),
            "no_repeat_ngram_size" => json!(d.no_repeat_ngram_size),
            "repetition_penalty" => json!(d.repetition_penalty),
            "forced_bos_token_id" => json!(d.forced_bos_token_id),
            "forced_eos_token_id" => json!(d.forced_eos_token_id),
            other => panic!("golden names a parameter this test does not map: {other}"),
        }
    }

    /// The fixture models' merged defaults must equal the parameters recorded by
    /// scripts/make_fixtures.py (`pipeline.effective_params`, the emulated 4.57 pipeline).
    #[test]
    fn fixture_models_match_their_golden_pipeline_params() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        for name in [
            "t5-tiny",
            "flan-t5-tiny",
            "bart-tiny",
            "bart-tiny-vocab-merges",
            "distilbart-tiny",
            "pegasus-tiny",
        ] {
            let golden_name = name.trim_end_matches("-vocab-merges");
            let golden_path = root.join("golden").join(format!("{golden_name}.json"));
            // The goldens are committed: a missing one is a broken checkout, not a reason to skip.
            let golden = JsonFile::read(&golden_path).unwrap().json;
            let model = root.join(name);
            let generation = model.join("generation_config.json");
            let generation = generation.exists().then_some(generation);
            let d = defaults_of(&model.join("config.json"), generation.as_deref()).unwrap();
            let pipeline = &golden["pipeline"];
            assert_eq!(json!(d.prefix), pipeline["prefix"], "{name}: prefix");
            let params = pipeline["effective_params"].as_object().unwrap();
            for (key, expected) in params {
                assert_eq!(&param(&d, key), expected, "{name}: {key}");
            }
        }
    }

    /// The defaults of the checkpoint files at `config` and `generation`, read as loading
    /// reads them.
    fn defaults_of(config: &Path, generation: Option<&Path>) -> Result<SummarizationDefaults> {
        let config = JsonFile::read(config)?;
        let generation = generation.map(JsonFile::read).transpose()?;
        SummarizationDefaults::from_json(&config, generation.as_ref(), None)
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn load_reads_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = write(&dir, "config.json", &t5_config().to_string());
        let generation = write(&dir, "generation_config.json", &t5_generation().to_string());
        let d = defaults_of(&config, Some(&generation)).unwrap();
        assert_eq!((d.num_beams, d.prefix.as_str()), (4, "summarize: "));
    }

    #[test]
    fn load_errors_name_the_file_at_fault() {
        let dir = tempfile::tempdir().unwrap();
        let good = write(&dir, "config.json", "{}");
        let broken = write(&dir, "broken.json", "{\"num_beams\": ");
        let bad_type = write(&dir, "bad_type.json", "{\"num_beams\": \"four\"}");
        let bad_stop = write(&dir, "bad_stop.json", "{\"early_stopping\": \"sometimes\"}");
        let two_eos = write(&dir, "two_eos.json", "{\"forced_eos_token_id\": [1, 2]}");
        for (config, generation, culprit) in [
            (&broken, None, &broken),
            (&bad_type, None, &bad_type),
            (&good, Some(&bad_stop), &bad_stop),
            (&good, Some(&two_eos), &two_eos),
        ] {
            let err = defaults_of(config, generation.map(|p| p.as_path()));
            match err {
                Err(Error::JsonFile { path, .. }) => assert_eq!(&path, culprit),
                other => panic!(
                    "{}: expected a JSON error, got {other:?}",
                    culprit.display()
                ),
            }
        }
        let missing = dir.path().join("missing.json");
        let err = defaults_of(&missing, None).unwrap_err();
        assert!(matches!(err, Error::Io { ref path, .. } if *path == missing));
    }
}
