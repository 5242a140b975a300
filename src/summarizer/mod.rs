//! The public entry point: a loaded model plus its tokenizer and defaults, turning text into
//! a [`Summary`].
//!
//! ```no_run
//! use precis::{LoadOptions, Summarizer, SummaryOptions};
//! let summarizer = Summarizer::load(&LoadOptions::new("t5-small"))?;
//! let summary = summarizer.summarize("A long article ...", &SummaryOptions::default())?;
//! println!("{}", summary.text);
//! # Ok::<(), precis::Error>(())
//! ```

mod batching;
mod decode;
mod offsets;
mod options;
mod pipeline;
mod plan;
mod record;

use std::time::Instant;

use candle_core::{DType, Device};
use serde::Serialize;

pub use decode::clean_up_tokenization;
pub use options::{OutputOptions, SummaryOptions};
pub use plan::{Pass, PassOutput, PendingSummary, SummaryPlan};
pub use record::SummaryRecord;

use crate::Result;
pub use crate::loading::LoadOptions;
use crate::loading::defaults::SummarizationDefaults;
use crate::loading::{self, LoadedModel, ModelFiles};
use crate::models::Quantization;

/// One chunk of a long input and what the model made of it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChunkSummary {
    /// Character (not byte) range of the chunk in the cleaned input text.
    pub chars: (usize, usize),
    pub tokens: usize,
    pub summary: String,
    /// The ids generated for this chunk's summary, laid out like [`Summary::output_ids`].
    pub output_ids: Vec<u32>,
}

/// One round of the reduce merge: how many texts went in and came out.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MergePass {
    pub inputs: usize,
    pub outputs: usize,
}

/// A finished summary with the facts a caller may want to report.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub text: String,
    /// The token ids the model generated for `text`, as transformers' summarization pipeline
    /// returns them with `return_tensors=True` (`summary_token_ids`): the decoder start token
    /// first (and a forced BOS token, for BART), then the generated tokens, ending with EOS
    /// when one was generated; no padding. For a long input merged with `reduce`, the ids of
    /// the last pass. `None` when `concat` joined several chunk summaries: no one generation
    /// wrote that abstract (each chunk has its own ids).
    pub output_ids: Option<Vec<u32>>,
    /// Tokens of the input as the model saw it (all chunks, without overlap repeats).
    pub input_tokens: usize,
    /// Tokens generated over every pass.
    pub output_tokens: usize,
    /// The chunks a long input was split into (one for an input within the window).
    pub chunks: Vec<ChunkSummary>,
    /// Reduce rounds after the chunk summaries (empty for one chunk or `concat`).
    pub merge_passes: Vec<MergePass>,
    /// Model time spent on this text (its share of every batch it was in).
    pub seconds: f64,
}

impl Summary {
    fn empty() -> Self {
        Self {
            text: String::new(),
            output_ids: None,
            input_tokens: 0,
            output_tokens: 0,
            chunks: Vec::new(),
            merge_passes: Vec::new(),
            seconds: 0.0,
        }
    }
}

/// Progress of a long summary, reported between model batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// `done` of `total` chunks summarised.
    Chunks { done: usize, total: usize },
    /// A reduce round over `inputs` summaries has started.
    Merging { inputs: usize },
}

/// A loaded seq2seq model ready to summarise.
#[derive(Debug)]
pub struct Summarizer {
    loaded: LoadedModel,
}

impl From<LoadedModel> for Summarizer {
    fn from(loaded: LoadedModel) -> Self {
        Self { loaded }
    }
}

impl Summarizer {
    /// Finds the model (downloading it if needed), reads its defaults and loads its weights.
    pub fn load(options: &LoadOptions) -> Result<Self> {
        Ok(Self::from(loading::load(options)?))
    }

    /// The quantization of the model's projections, if any.
    pub fn quantization(&self) -> Option<Quantization> {
        self.loaded.quantization
    }

    /// Loads a model whose files are already on disk.
    pub fn from_files(files: &ModelFiles, device: &Device, dtype: DType) -> Result<Self> {
        Self::from_files_with(files, device, dtype, None)
    }

    /// [`Summarizer::from_files`], quantizing the projections layer by layer as they load.
    pub fn from_files_with(
        files: &ModelFiles,
        device: &Device,
        dtype: DType,
        quantization: Option<Quantization>,
    ) -> Result<Self> {
        Ok(Self::from(loading::load_files(
            files,
            device,
            dtype,
            quantization,
        )?))
    }

    /// The model, tokenizer, config and defaults this summariser runs.
    pub fn loaded(&self) -> &LoadedModel {
        &self.loaded
    }

    /// The model name as the user gave it.
    pub fn name(&self) -> &str {
        &self.loaded.name
    }

    pub fn device(&self) -> &Device {
        &self.loaded.device
    }

    /// The precision the weights were loaded in.
    pub fn dtype(&self) -> DType {
        self.loaded.dtype
    }

    /// The model's own summarisation settings (prefix, beams, lengths, window).
    pub fn defaults(&self) -> &SummarizationDefaults {
        &self.loaded.defaults
    }

    /// Summarise `text` (already cleaned prose).
    pub fn summarize(&self, text: &str, options: &SummaryOptions) -> Result<Summary> {
        self.summarize_with_progress(text, options, &mut |_| {})
    }

    /// [`Summarizer::summarize`], calling `progress` between model batches.
    pub fn summarize_with_progress(
        &self,
        text: &str,
        options: &SummaryOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Summary> {
        let started = Instant::now();
        let mut results = self.summarize_many_with_progress(&[text], options, progress)?;
        let mut summary = results.pop().unwrap_or_else(|| Ok(Summary::empty()))?;
        summary.seconds = started.elapsed().as_secs_f64();
        Ok(summary)
    }

    /// Summarise many texts at once, sharing model batches between them (much faster than one
    /// call per text for short articles). A text that cannot be summarised fails alone; an
    /// error of the model itself fails the call.
    pub fn summarize_many(
        &self,
        texts: &[&str],
        options: &SummaryOptions,
    ) -> Result<Vec<Result<Summary>>> {
        self.summarize_many_with_progress(texts, options, &mut |_| {})
    }

    /// [`Summarizer::summarize_many`], calling `progress` between model batches.
    pub fn summarize_many_with_progress(
        &self,
        texts: &[&str],
        options: &SummaryOptions,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Vec<Result<Summary>>> {
        options.validate()?;
        let plan = SummaryPlan::new(self, options)?;
        let batches = batching::Batches::new(options, self.loaded.device.is_cpu());
        pipeline::run(&plan, &batches, texts, progress)
    }

    /// Special tokens the tokenizer adds around one sequence (T5: `</s>`; BART: `<s>`, `</s>`).
    fn special_tokens(&self) -> usize {
        self.loaded
            .tokenizer
            .get_post_processor()
            .map_or(0, |p| tokenizers::PostProcessor::added_tokens(p, false))
    }
}
