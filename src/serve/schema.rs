//! The JSON the server reads and writes, each type with its OpenAPI schema.
//!
//! `POST /` takes the Hugging Face summarization task schema (`inputs` and `parameters`, with
//! transformers' generation arguments flat or as `generate_parameters`), so the
//! `huggingface_hub` client works unchanged. `POST /summarize` takes precis's richer form and
//! answers with the record `precis summarize --format json` prints. Unknown parameters are
//! refused rather than ignored, so that a misspelt one is a 422 naming it.
//!
//! The requests with settings beside other fields are read through a JSON map (`try_from`):
//! each group of fields is taken out by name and read on its own, so that an error names the
//! field at fault (serde's `flatten` would lose it).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Decoding settings a request may give, with transformers' `generate()` names. Each one left
/// out keeps the server's default (its command-line options, else the model's own settings).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationParameters {
    /// Longest summary in tokens, counting the decoder start token.
    #[schema(minimum = 2)]
    pub max_length: Option<usize>,
    /// End of sequence is blocked below this length (start token included).
    pub min_length: Option<usize>,
    /// Most generated tokens; wins over `max_length`. At most the server's
    /// `--max-new-tokens-limit`.
    #[schema(minimum = 1)]
    pub max_new_tokens: Option<usize>,
    /// Beam width (1: greedy search). At most the server's `--max-num-beams`.
    #[schema(minimum = 1)]
    pub num_beams: Option<usize>,
    /// Exponent of the beam-search length normalisation (>0 favours longer summaries).
    pub length_penalty: Option<f64>,
    /// Never repeat an n-gram of this size (0 disables).
    pub no_repeat_ngram_size: Option<usize>,
    /// Beam search stopping rule: `true`, `false` (the heuristic) or `"never"`.
    pub early_stopping: Option<EarlyStoppingParameter>,
    /// Penalise tokens already generated (1.0 disables).
    pub repetition_penalty: Option<f32>,
    /// Sample instead of searching (seeded, so reproducible).
    pub do_sample: Option<bool>,
    /// Sampling temperature (with `do_sample`).
    pub temperature: Option<f64>,
    /// Keep only the k most likely tokens when sampling; 0 keeps all (default: the model's
    /// setting, else 50, as in transformers).
    pub top_k: Option<usize>,
    /// Nucleus sampling probability mass, in [0, 1]; 1 keeps all.
    pub top_p: Option<f64>,
    /// Random seed for sampling.
    pub seed: Option<u64>,
}

/// `early_stopping` as transformers takes it: a boolean or the word `never`.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum EarlyStoppingParameter {
    Flag(bool),
    Word(String),
}

/// `truncation` as the Hugging Face task schema and transformers' pipeline take it.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TruncationParameter {
    /// `true`: keep only the first window of a long input; `false`: chunk and merge.
    Flag(bool),
    /// `do_not_truncate` (chunk and merge), or `longest_first` / `only_first` (keep the first
    /// window). `only_second` names a second sequence that summarisation does not have.
    Strategy(String),
}

/// Input handling shared by both summarisation routes.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
pub struct TextParameters {
    /// Off by default: precis summarises a long input in chunks and merges them. On, only the
    /// first window is summarised, as transformers' pipeline does with `truncation=True`.
    pub truncation: Option<TruncationParameter>,
    /// Tidy spaces the tokenizer left before punctuation and in contractions (" ." → ".",
    /// " n't" → "n't"), as `tokenizer.decode(clean_up_tokenization_spaces=True)` does. Off by
    /// default, as in transformers' summarization pipeline.
    pub clean_up_tokenization_spaces: Option<bool>,
}

/// `inputs`: one text or a list of texts.
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum HfInputs {
    One(String),
    Many(Vec<String>),
}

/// A Hugging Face summarization task request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HfRequest {
    pub inputs: HfInputs,
    #[serde(default)]
    pub parameters: HfParameters,
}

/// The task's `parameters`: generation settings flat, or nested as `generate_parameters`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(try_from = "Map<String, Value>")]
pub struct HfParameters {
    #[serde(flatten)]
    pub generation: GenerationParameters,
    /// The same settings, nested as the `huggingface_hub` client sends them.
    pub generate_parameters: Option<GenerationParameters>,
    #[serde(flatten)]
    pub text: TextParameters,
}

impl TryFrom<Map<String, Value>> for HfParameters {
    type Error = String;

    fn try_from(mut map: Map<String, Value>) -> Result<Self, String> {
        Ok(Self {
            generate_parameters: take(&mut map, "generate_parameters")?,
            text: TextParameters::take(&mut map)?,
            generation: rest(map)?,
        })
    }
}

impl TextParameters {
    fn take(map: &mut Map<String, Value>) -> Result<Self, String> {
        Ok(Self {
            truncation: take(map, "truncation")?,
            clean_up_tokenization_spaces: take(map, "clean_up_tokenization_spaces")?,
        })
    }
}

/// Field `name` of `map`, read as `T` (absent reads as `null`), removed from the map.
fn take<T: DeserializeOwned>(map: &mut Map<String, Value>, name: &str) -> Result<T, String> {
    let value = map.remove(name).unwrap_or(Value::Null);
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(".{path}")
        };
        format!("{name}{at}: {}", e.into_inner())
    })
}

/// The fields left in `map`: the generation settings, unknown names refused.
fn rest(map: Map<String, Value>) -> Result<GenerationParameters, String> {
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            inner.to_string()
        } else {
            format!("{path}: {inner}")
        }
    })
}

/// One summary of the task response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HfSummary {
    pub summary_text: String,
}

/// A `POST /summarize` request: the text, and beside it any generation setting and how to
/// chunk and merge.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(try_from = "Map<String, Value>")]
pub struct SummarizeRequest {
    /// The article, as plain prose.
    pub text: String,
    #[serde(flatten)]
    pub generation: GenerationParameters,
    #[serde(flatten)]
    pub text_handling: TextParameters,
    /// How chunk summaries become one abstract: `reduce` (summarise them again) or `concat`.
    pub merge: Option<String>,
    /// Largest chunk in tokens (default: the window less the prefix and special tokens).
    #[schema(minimum = 1)]
    pub chunk_tokens: Option<usize>,
    /// Sentences repeated at the start of the next chunk.
    pub chunk_overlap: Option<usize>,
    /// Encoder window in tokens; at most the model's.
    pub max_input_tokens: Option<usize>,
}

impl TryFrom<Map<String, Value>> for SummarizeRequest {
    type Error = String;

    fn try_from(mut map: Map<String, Value>) -> Result<Self, String> {
        let text: Option<String> = take(&mut map, "text")?;
        Ok(Self {
            text: text.ok_or("missing field `text`: the article to summarise")?,
            merge: take(&mut map, "merge")?,
            chunk_tokens: take(&mut map, "chunk_tokens")?,
            chunk_overlap: take(&mut map, "chunk_overlap")?,
            max_input_tokens: take(&mut map, "max_input_tokens")?,
            text_handling: TextParameters::take(&mut map)?,
            generation: rest(map)?,
        })
    }
}

/// Every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong; for a validation error, the parameter, the bound and the value given.
    pub error: String,
    /// `validation`, `payload_too_large`, `overloaded`, `unauthorized`, `loading`,
    /// `shutting_down`, `model`, `not_found` or `method_not_allowed`.
    pub error_type: String,
}

/// The error answers of both summarisation routes, for the OpenAPI document.
#[derive(utoipa::IntoResponses)]
pub enum SummarizeErrors {
    /// Missing or wrong API key
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// Body over --max-input-bytes
    #[response(status = 413)]
    PayloadTooLarge(ErrorBody),
    /// Invalid parameters or input
    #[response(status = 422)]
    Validation(ErrorBody),
    /// --max-concurrent-requests in flight
    #[response(status = 429)]
    Overloaded(ErrorBody),
    /// The model failed on this request
    #[response(status = 500)]
    Model(ErrorBody),
    /// Loading or shutting down
    #[response(status = 503)]
    Unavailable(ErrorBody),
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `loading`, `ready` or `shutting_down`.
    pub status: String,
}

/// `GET /info`: what the server runs and with which defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Info {
    /// The model as given to `--model`.
    pub model: String,
    /// The checkpoint's `model_type`.
    pub architecture: String,
    pub dtype: String,
    pub device: String,
    /// `q8` when the projections are quantized.
    pub quantize: Option<String>,
    /// Encoder window in tokens.
    pub window: usize,
    /// Text put before every input (T5: `summarize: `).
    pub prefix: String,
    /// The decoding settings a request gets by default.
    pub defaults: DefaultsInfo,
    /// The server's limits, as set on its command line.
    pub limits: super::Limits,
    /// precis's version.
    pub version: String,
}

/// The default decoding and chunking settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DefaultsInfo {
    pub max_length: usize,
    pub max_new_tokens: Option<usize>,
    pub min_length: usize,
    pub num_beams: usize,
    pub length_penalty: f64,
    pub no_repeat_ngram_size: usize,
    /// `true`, `false` or `never`.
    pub early_stopping: String,
    pub repetition_penalty: f32,
    pub do_sample: bool,
    /// Sampling settings, used when `do_sample` is on.
    pub temperature: f64,
    /// 0 keeps every token.
    pub top_k: usize,
    pub top_p: f64,
    pub seed: u64,
    pub merge: String,
    pub chunk_tokens: Option<usize>,
    pub chunk_overlap: Option<usize>,
}
