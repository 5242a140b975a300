//! Command-line flags as clap sees them. They are turned once into validated library options
//! (`SummaryOptions`, `LoadOptions`) by the commands; nothing here runs a model.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "precis",
    version,
    about = "Summarise long articles with pretrained seq2seq models, locally on CPU or GPU"
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// No progress bars and no warnings on stderr (errors are still printed).
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process, so the size of its largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Summarise one or more articles (files, or - for standard input) and print the summaries.
    Summarize(SummarizeArgs),
    /// List the model presets that --model accepts as short names.
    Models,
    /// Time a model's encoder and decoder on synthetic inputs of a fixed size.
    Bench(super::bench::BenchArgs),
}

#[derive(Debug, Args)]
pub struct SummarizeArgs {
    /// Text, Markdown or HTML files to summarise; `-` (the default) reads standard input.
    #[arg(value_name = "FILE")]
    pub files: Vec<PathBuf>,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,

    #[command(flatten)]
    pub input: InputArgs,

    /// Output format: plain text, or one JSON object per input with timings and token counts.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Which model to run and where.
#[derive(Debug, Args)]
pub struct ModelArgs {
    /// A preset name (see `precis models`), a Hugging Face repo id, or a local model folder.
    #[arg(short, long, default_value = "t5-small", env = "PRECIS_MODEL")]
    pub model: String,

    /// auto, cpu, cuda, cuda:N or metal.
    #[arg(long, default_value = "auto")]
    pub device: String,

    /// Weight and activation precision: f32, f16 or bf16 (f32 on CPU unless asked).
    #[arg(long)]
    pub dtype: Option<String>,

    /// Never touch the network: use only models already in the Hugging Face cache or on disk.
    #[arg(long, env = "HF_HUB_OFFLINE", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0..=1, default_missing_value = "true")]
    pub offline: bool,

    /// CPU threads for the tensor kernels (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Decoding options. Each one left out keeps the model's own default, so that with none given
/// the output equals transformers' `pipeline("summarization")`.
#[derive(Debug, Args, Default)]
pub struct GenerationArgs {
    /// Beam width (1 = greedy search).
    #[arg(long)]
    pub num_beams: Option<usize>,

    /// Maximum summary length in tokens, counting the decoder start token as transformers does.
    #[arg(long)]
    pub max_length: Option<usize>,

    /// Maximum number of generated tokens (overrides --max-length).
    #[arg(long)]
    pub max_new_tokens: Option<usize>,

    /// Minimum summary length in tokens (end of sequence is blocked until then).
    #[arg(long)]
    pub min_length: Option<usize>,

    /// Exponent of the beam-search length normalisation (>0 favours longer summaries).
    #[arg(long, allow_negative_numbers = true)]
    pub length_penalty: Option<f64>,

    /// Never repeat an n-gram of this size (0 disables).
    #[arg(long)]
    pub no_repeat_ngram_size: Option<usize>,

    /// Beam search stopping rule: true, false (heuristic) or never.
    #[arg(long)]
    pub early_stopping: Option<String>,

    /// Penalise tokens already generated (1.0 = off).
    #[arg(long)]
    pub repetition_penalty: Option<f32>,

    /// Sample instead of searching (seeded, reproducible).
    #[arg(long)]
    pub do_sample: bool,

    /// Sampling temperature (with --do-sample).
    #[arg(long)]
    pub temperature: Option<f64>,

    /// Keep only the k most likely tokens when sampling.
    #[arg(long)]
    pub top_k: Option<usize>,

    /// Nucleus sampling probability mass.
    #[arg(long)]
    pub top_p: Option<f64>,

    /// Random seed for sampling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// How long inputs are split and merged.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Encoder window in tokens (default: the model's, 512 for T5, 1024 for BART).
    #[arg(long)]
    pub max_input_tokens: Option<usize>,

    /// Largest chunk in tokens (default: the window minus the prefix and special tokens).
    #[arg(long)]
    pub chunk_tokens: Option<usize>,

    /// Sentences repeated at the start of the next chunk.
    #[arg(long, default_value_t = 1)]
    pub chunk_overlap: usize,

    /// How chunk summaries become one abstract: reduce (summarise them again) or concat.
    #[arg(long, default_value = "reduce")]
    pub merge: String,

    /// Chunks per model batch (default: chosen for the device).
    #[arg(long)]
    pub batch_size: Option<usize>,

    /// Refuse inputs larger than this many bytes.
    #[arg(long)]
    pub max_bytes: Option<u64>,
}
