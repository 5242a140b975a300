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
    /// Summarise every article of a folder into an output folder, resumably (or JSONL in/out).
    Batch(BatchArgs),
    /// List the model presets that --model accepts as short names.
    Models,
    /// Time a model's encoder and decoder on synthetic inputs of a fixed size.
    Bench(super::bench::BenchArgs),
    /// Score summaries against references with ROUGE, identical to rouge-score 0.1.2: existing
    /// ones (--predictions, --references), or summaries made of a JSONL data set (DATA --model).
    Eval(super::eval::EvalArgs),
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

/// The padded input tokens (rows × longest row) per model batch that `precis batch` allows by
/// default: 32 rows of a full 512-token T5 window. It never cuts the default batches of T5
/// models (8 rows on CPU, 32 on a GPU), and on a GPU halves batches of full 1024-token BART
/// windows, whose encoder attention and per-beam cross-attention caches grow with
/// rows × length and would otherwise hold 32 × 1024 tokens at once.
pub const DEFAULT_BATCH_TOKENS: usize = 16_384;

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 all done, 1 some files failed (listed at the end), \
                        2 usage error, 130 stopped by Ctrl-C or SIGTERM (rerun to resume)."
)]
pub struct BatchArgs {
    /// Folder of articles, walked recursively (symbolic links followed, loops skipped).
    #[arg(
        value_name = "IN_DIR",
        required_unless_present = "input_jsonl",
        conflicts_with = "input_jsonl"
    )]
    pub in_dir: Option<PathBuf>,

    /// Output folder: OUT_DIR/<path>.summary.txt per article plus precis-manifest.jsonl; `-`
    /// writes JSON lines to standard output instead.
    #[arg(
        short,
        long,
        value_name = "OUT_DIR",
        required_unless_present_any = ["jsonl", "input_jsonl"]
    )]
    pub output: Option<PathBuf>,

    /// Write one JSON line per article to standard output (the same as `-o -`).
    #[arg(long, conflicts_with = "output")]
    pub jsonl: bool,

    /// Read `{"id": ..., "text": ...}` lines from FILE (`-` for standard input) instead of a
    /// folder; results go to standard output as JSON lines.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["hidden", "extensions", "globs", "shard", "force", "format"])]
    pub input_jsonl: Option<PathBuf>,

    /// Also walk files and folders whose name starts with a dot.
    #[arg(long)]
    pub hidden: bool,

    /// File extensions to summarise, repeatable or comma-separated [default: txt,md,html,htm].
    #[arg(long = "ext", value_name = "EXT", value_delimiter = ',')]
    pub extensions: Vec<String>,

    /// Only files matching this glob too (repeatable): `*.md` matches names at any depth,
    /// `2024/**/*.md` whole relative paths.
    #[arg(long = "glob", value_name = "GLOB")]
    pub globs: Vec<String>,

    /// Summary file type in OUT_DIR: text (<path>.summary.txt) or json (<path>.summary.json).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,

    /// Most padded input tokens (rows × longest row) per model batch; bounds memory.
    #[arg(long, value_name = "TOKENS", default_value_t = DEFAULT_BATCH_TOKENS)]
    pub batch_tokens: usize,

    /// Articles read and summarised together; a stop request is answered after the round.
    #[arg(long, value_name = "N", default_value_t = precis::batch::DEFAULT_DOCS_PER_ROUND)]
    pub docs_per_round: usize,

    /// Summarise again the files an earlier run finished with the same model and options.
    #[arg(long)]
    pub force: bool,

    /// Process only shard I of N (I from 0), e.g. `--shard $SLURM_ARRAY_TASK_ID/4`; every
    /// file belongs to exactly one shard.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,

    #[command(flatten)]
    pub input: InputArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Text,
    Json,
}

/// Which model to run and where.
#[derive(Debug, Clone, Args)]
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

    /// CPU threads for the tensor kernels (default: the physical cores).
    #[arg(long)]
    pub threads: Option<usize>,

    /// Quantize the model's weights for faster CPU inference: q8 (8-bit blocks, about 2x
    /// faster decoding, a quarter of the weight memory, summaries very close to float32).
    #[arg(long, value_name = "q8")]
    pub quantize: Option<String>,
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
#[derive(Debug, Clone, Args)]
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
