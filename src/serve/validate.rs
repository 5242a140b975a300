//! A request, checked once into the settings it runs with: the server's defaults with the
//! request's parameters over them, within the server's limits. Every refusal names the
//! parameter, the bound and the value given (as text-generation-inference's `validation.rs`
//! does), and becomes a 422.

use crate::generation::{EarlyStopping, SamplingOverrides};
use crate::merge::MergeStrategy;
use crate::{Error, Result, Summarizer, SummaryOptions};

use super::Limits;
use super::schema::{
    EarlyStoppingParameter, GenerationParameters, HfParameters, SummarizeRequest, TextParameters,
    TruncationParameter,
};

/// What one text is summarised with.
#[derive(Debug, Clone)]
pub struct RequestSettings {
    pub options: SummaryOptions,
    /// Summarise only the first window instead of chunking.
    pub truncate: bool,
    /// Tidy the tokenizer's spaces in the final summary.
    pub clean_up: bool,
}

fn invalid(option: &'static str, value: impl ToString, expected: impl Into<String>) -> Error {
    Error::InvalidOption {
        option,
        value: value.to_string(),
        expected: expected.into(),
    }
}

fn at_most(option: &'static str, value: Option<usize>, bound: usize, why: &str) -> Result<()> {
    match value {
        Some(value) if value > bound => {
            Err(invalid(option, value, format!("at most {bound}, {why}")))
        }
        _ => Ok(()),
    }
}

impl HfParameters {
    /// The settings of a task request, flat and nested generation settings merged (the same
    /// setting given both ways must agree).
    pub fn settings(
        &self,
        defaults: &SummaryOptions,
        limits: &Limits,
        summarizer: &Summarizer,
    ) -> Result<RequestSettings> {
        let mut generation = self.generation.clone();
        if let Some(nested) = &self.generate_parameters {
            generation = merge_nested(generation, nested)?;
        }
        let mut options = defaults.clone();
        apply_generation(&mut options, &generation)?;
        finish(options, &self.text, limits, summarizer)
    }
}

impl SummarizeRequest {
    /// The settings of a `/summarize` request.
    pub fn settings(
        &self,
        defaults: &SummaryOptions,
        limits: &Limits,
        summarizer: &Summarizer,
    ) -> Result<RequestSettings> {
        let mut options = defaults.clone();
        apply_generation(&mut options, &self.generation)?;
        if let Some(merge) = &self.merge {
            options.merge = merge
                .parse::<MergeStrategy>()
                .map_err(|_| invalid("merge", merge, "one of: reduce, concat"))?;
        }
        options.chunk_tokens = self.chunk_tokens.or(options.chunk_tokens);
        options.chunk_overlap = self.chunk_overlap.or(options.chunk_overlap);
        options.max_input_tokens = self.max_input_tokens.or(options.max_input_tokens);
        finish(options, &self.text_handling, limits, summarizer)
    }
}

/// Checks `options` on their own and against the server's limits and the model.
fn finish(
    options: SummaryOptions,
    text: &TextParameters,
    limits: &Limits,
    summarizer: &Summarizer,
) -> Result<RequestSettings> {
    options.validate()?;
    check_limits(&options, limits, summarizer.defaults().window)?;
    Ok(RequestSettings {
        options,
        truncate: truncation(text.truncation.as_ref())?,
        clean_up: text.clean_up_tokenization_spaces.unwrap_or(false),
    })
}

fn check_limits(options: &SummaryOptions, limits: &Limits, window: usize) -> Result<()> {
    let generation = &options.generation;
    let new_tokens = limits.max_new_tokens_limit;
    let why = "the server's --max-new-tokens-limit";
    at_most("max_new_tokens", generation.max_new_tokens, new_tokens, why)?;
    // Lengths count the decoder start token.
    at_most("max_length", generation.max_length, new_tokens + 1, why)?;
    at_most("min_length", generation.min_length, new_tokens + 1, why)?;
    let beams = "the server's --max-num-beams";
    at_most(
        "num_beams",
        generation.num_beams,
        limits.max_num_beams,
        beams,
    )?;
    at_most(
        "max_input_tokens",
        options.max_input_tokens,
        window,
        "the model's window",
    )
}

/// Flat settings with the nested `generate_parameters` over them; a setting given both ways
/// with different values is refused.
fn merge_nested(
    flat: GenerationParameters,
    nested: &GenerationParameters,
) -> Result<GenerationParameters> {
    macro_rules! merge {
        ($($field:ident),*) => {
            GenerationParameters { $($field: pick(stringify!($field), flat.$field, &nested.$field)?,)* }
        };
    }
    Ok(merge!(
        max_length,
        min_length,
        max_new_tokens,
        num_beams,
        length_penalty,
        no_repeat_ngram_size,
        early_stopping,
        repetition_penalty,
        do_sample,
        temperature,
        top_k,
        top_p,
        seed
    ))
}

fn pick<T: Clone + PartialEq + std::fmt::Debug>(
    name: &'static str,
    flat: Option<T>,
    nested: &Option<T>,
) -> Result<Option<T>> {
    match (flat, nested) {
        (Some(a), Some(b)) if a != *b => Err(invalid(
            name,
            format!("{a:?} and generate_parameters.{name}={b:?}"),
            "one value, given either flat or in generate_parameters",
        )),
        (flat, nested) => Ok(nested.clone().or(flat)),
    }
}

/// Puts the request's generation settings over the defaults in `options`, as the same flags
/// would over the model's settings on the command line.
fn apply_generation(options: &mut SummaryOptions, given: &GenerationParameters) -> Result<()> {
    let generation = &mut options.generation;
    if given.max_length.is_some() && given.max_new_tokens.is_none() {
        // As over a model's own settings: an explicit total length replaces a default cap on
        // new tokens (the server's --max-new-tokens).
        generation.max_new_tokens = None;
    }
    generation.max_length = given.max_length.or(generation.max_length);
    generation.min_length = given.min_length.or(generation.min_length);
    generation.max_new_tokens = given.max_new_tokens.or(generation.max_new_tokens);
    generation.num_beams = given.num_beams.or(generation.num_beams);
    generation.length_penalty = given.length_penalty.or(generation.length_penalty);
    generation.no_repeat_ngram_size = given
        .no_repeat_ngram_size
        .or(generation.no_repeat_ngram_size);
    generation.repetition_penalty = given.repetition_penalty.or(generation.repetition_penalty);
    if let Some(stopping) = &given.early_stopping {
        generation.early_stopping = Some(match stopping {
            EarlyStoppingParameter::Flag(true) => EarlyStopping::Always,
            EarlyStoppingParameter::Flag(false) => EarlyStopping::Heuristic,
            EarlyStoppingParameter::Word(word) => word
                .parse()
                .map_err(|_| invalid("early_stopping", word, "true, false or \"never\""))?,
        });
    }
    let sampling = SamplingOverrides {
        do_sample: given.do_sample,
        temperature: given.temperature,
        top_k: given.top_k,
        top_p: given.top_p,
        seed: given.seed,
    };
    if sampling != SamplingOverrides::default() {
        // Over the server's own sampling settings, each one given replacing its default.
        let mut merged = generation.sampling.clone().unwrap_or_default();
        merged.do_sample = sampling.do_sample.or(merged.do_sample);
        merged.temperature = sampling.temperature.or(merged.temperature);
        merged.top_k = sampling.top_k.or(merged.top_k);
        merged.top_p = sampling.top_p.or(merged.top_p);
        merged.seed = sampling.seed.or(merged.seed);
        generation.sampling = Some(merged);
    }
    Ok(())
}

fn truncation(given: Option<&TruncationParameter>) -> Result<bool> {
    match given {
        None => Ok(false),
        Some(TruncationParameter::Flag(on)) => Ok(*on),
        Some(TruncationParameter::Strategy(strategy)) => match strategy.as_str() {
            "do_not_truncate" => Ok(false),
            "longest_first" | "only_first" => Ok(true),
            other => Err(invalid(
                "truncation",
                other,
                "true, false, do_not_truncate, longest_first or only_first (summaries have \
                 one input sequence)",
            )),
        },
    }
}
