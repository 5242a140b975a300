//! Summarization defaults of a checkpoint, merged from its `config.json`, its optional
//! `generation_config.json` and the catalogue as `pipeline("summarization")` merged them.
//!
//! transformers 5.24 no longer has that pipeline (pipelines/__init__.py `REMOVED_TASKS`: asking
//! for it raises `KeyError`) and its `generate()` never reads `task_specific_params`, so a T5
//! run through plain 5.24 `generate()` decodes greedily for 20 tokens. precis therefore follows
//! the last pipeline that existed, transformers 4.57 (checked against it on tiny models), which
//! is also what the golden fixtures emulate. Precedence levels, highest first:
//! 1. `config.json` → `task_specific_params.summarization`: 4.57 `Pipeline.__init__`
//!    (pipelines/base.py) pops `prefix` and `generation_config.update(**rest)`.
//! 2. Catalogue overrides (`prefix` and `[generation]` in `models/*.toml`): the task
//!    parameters a checkpoint lacks, so they sit where (1) would.
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
//! The result holds a [`GenerationConfig`], the type generation runs on, so a caller's
//! [`GenerationOverrides`] apply straight over it.

use std::path::Path;

use serde::{Deserialize, Deserializer, de::Error as _};
use serde_json::Value;

use super::catalogue::Preset;
use super::files::JsonFile;
use crate::error::{Error, Result};
use crate::generation::{
    EarlyStopping, GenerationConfig, GenerationOverrides, Sampling, SamplingOverrides,
};

/// `Text2TextGenerationPipeline._default_generation_config` of transformers 4.57.
const PIPELINE_NUM_BEAMS: usize = 4;
const PIPELINE_MAX_NEW_TOKENS: usize = 256;
/// transformers' global default `max_length`, which the pipeline treats as "not set".
const GLOBAL_MAX_LENGTH: usize = 20;

/// Input window assumed when neither the catalogue nor `config.json` names one: the length
/// T5 and most BART-era checkpoints were trained on.
const FALLBACK_WINDOW: usize = 512;

/// Everything generation needs to summarise like the reference implementation, per model.
#[derive(Debug, Clone, PartialEq)]
pub struct SummarizationDefaults {
    /// Text put before every input (T5: `"summarize: "`); empty for most models.
    pub prefix: String,
    /// Beams, lengths (transformers' meaning: `max_length` counts the decoder start token, and
    /// the pipeline's `max_new_tokens = 256` stays unless the model names its own `max_length`),
    /// penalties, forced tokens, and sampling (`do_sample`, `temperature`, `top_k`, `top_p`)
    /// with the same precedence, transformers' defaults (off, 1.0, 50, 1.0) last.
    pub generation: GenerationConfig,
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

/// One precedence level: what one source (a JSON object or the catalogue) says about the
/// settings; `None` means "not said here".
#[derive(Debug, Clone, Default, Deserialize)]
struct Level {
    prefix: Option<String>,
    #[serde(flatten)]
    generation: GenerationOverrides,
    /// `do_sample`, `temperature`, `top_k`, `top_p`: top-level keys in transformers' files.
    #[serde(flatten)]
    sampling: SamplingOverrides,
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

/// The catalogue's settings sit where the checkpoint's missing task parameters would.
impl From<&Preset> for Level {
    fn from(preset: &Preset) -> Self {
        let mut generation = preset.generation.clone();
        Level {
            prefix: preset.prefix.clone(),
            sampling: generation.sampling.take().unwrap_or_default(),
            generation,
            ..Level::default()
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

/// Picks the first level that says something about a field.
fn first<T>(levels: &[&Level], field: impl Fn(&Level) -> Option<T>) -> Option<T> {
    levels.iter().find_map(|level| field(level))
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
        let levels = Levels::parse(&config.json, generation_json).map_err(|e| match e {
            LevelError::Config(source) => json_error(&config.path, source),
            LevelError::Generation(source) => {
                json_error(generation_config.map_or(&config.path, |g| &g.path), source)
            }
        })?;
        Ok(levels.merge(preset))
    }
}

/// The parsed levels of one checkpoint, before merging.
struct Levels {
    task: Level,
    model: Level,
    config_top: Level,
}

enum LevelError {
    Config(serde_json::Error),
    Generation(serde_json::Error),
}

impl Levels {
    fn parse(config: &Value, generation: Option<&Value>) -> std::result::Result<Self, LevelError> {
        let config_top = Level::deserialize(config).map_err(LevelError::Config)?;
        let task = match config.pointer("/task_specific_params/summarization") {
            Some(params) => Level::deserialize(params).map_err(LevelError::Config)?,
            None => Level::default(),
        };
        // transformers builds the generation config from config.json only when the checkpoint
        // ships no generation_config.json (GenerationMixin.adjust_generation_fn).
        let model = match generation {
            Some(generation) => Level::deserialize(generation).map_err(LevelError::Generation)?,
            None => legacy_config_defaults(config, config_top.clone()),
        };
        Ok(Levels {
            task,
            model,
            config_top,
        })
    }

    fn merge(&self, preset: Option<&Preset>) -> SummarizationDefaults {
        let catalogue = preset.map(Level::from).unwrap_or_default();
        // The task parameters and the catalogue: where the pipeline's own settings sit.
        let pipeline = [&self.task, &catalogue];
        let tuning = [&self.task, &catalogue, &self.model];
        // Token ids describe the vocabulary, not decoding taste: fall back to config.json when
        // a generation_config.json omits them (transformers would fail instead).
        let tokens = [&self.model, &self.config_top];
        let eos_token_ids = first(&tokens, |l| l.eos_token_id.clone()).map(TokenIds::into_vec);
        let eos_token_ids = eos_token_ids.unwrap_or_default();
        let bos_token_id = first(&tokens, |l| l.bos_token_id);
        let generation = GenerationConfig {
            max_length: first(&tuning, |l| l.generation.max_length).unwrap_or(GLOBAL_MAX_LENGTH),
            max_new_tokens: first(&pipeline, |l| l.generation.max_new_tokens)
                .or_else(|| self.pipeline_max_new_tokens()),
            min_length: first(&tuning, |l| l.generation.min_length).unwrap_or(0),
            min_new_tokens: None,
            // The pipeline's 4 beams differ from the global default, so the model's never apply.
            num_beams: first(&pipeline, |l| l.generation.num_beams).unwrap_or(PIPELINE_NUM_BEAMS),
            length_penalty: first(&tuning, |l| l.generation.length_penalty).unwrap_or(1.0),
            early_stopping: first(&tuning, |l| l.generation.early_stopping)
                .unwrap_or(EarlyStopping::Heuristic),
            no_repeat_ngram_size: first(&tuning, |l| l.generation.no_repeat_ngram_size)
                .unwrap_or(0),
            repetition_penalty: first(&tuning, |l| l.generation.repetition_penalty).unwrap_or(1.0),
            forced_bos_token_id: first(&tuning, |l| l.forced_bos_token_id),
            forced_eos_token_id: first(&tuning, |l| l.forced_eos_token_id),
            do_sample: first(&tuning, |l| l.sampling.do_sample).unwrap_or(false),
            sampling: sampling(&tuning),
        };
        if generation.do_sample && generation.num_beams > 1 {
            tracing::warn!(
                "the model's settings ask for sampling with {} beams (transformers' beam \
                 sampling), which precis does not do: it samples with one beam \
                 (--do-sample=false searches instead)",
                generation.num_beams
            );
        }
        SummarizationDefaults {
            prefix: first(&[&self.task, &catalogue, &self.config_top], |l| {
                l.prefix.clone()
            })
            .unwrap_or_default(),
            generation,
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
        match self.model.generation.max_length {
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

/// How to sample, each setting from the first level that names it, else transformers' default.
fn sampling(tuning: &[&Level]) -> Sampling {
    let default = Sampling::default();
    Sampling {
        temperature: first(tuning, |l| l.sampling.temperature).unwrap_or(default.temperature),
        top_k: first(tuning, |l| l.sampling.top_k).unwrap_or(default.top_k),
        top_p: first(tuning, |l| l.sampling.top_p).unwrap_or(default.top_p),
        seed: default.seed,
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
fn legacy_config_defaults(config: &Value, mut level: Level) -> Level {
    let model_type = config.get("model_type").and_then(Value::as_str);
    let class_forced_eos = match model_type {
        Some("bart") => Some(2),
        Some("pegasus") => Some(1),
        _ => None,
    };
    // An explicit `"forced_eos_token_id": null` overrides the class default.
    if config.get("forced_eos_token_id").is_none() {
        level.forced_eos_token_id = class_forced_eos;
    }
    let force_bos = config.get("force_bos_token_to_be_generated") == Some(&Value::Bool(true));
    if model_type == Some("bart") && force_bos && level.forced_bos_token_id.is_none() {
        // BartConfig's bos_token_id defaults to 0.
        level.forced_bos_token_id = Some(level.bos_token_id.unwrap_or(0));
    }
    level
}

fn json_error(path: &Path, source: serde_json::Error) -> Error {
    Error::JsonFile {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests;
