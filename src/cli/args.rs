//! The command line as clap sees it: global flags and the commands. Each command's own flags
//! live beside it (`summarize.rs`, `batch.rs`, ...), the groups they share in `common.rs`,
//! with the methods that turn them into checked library options; nothing here runs a model.

use clap::{Parser, Subcommand};

use super::batch::BatchArgs;
use super::bench::BenchArgs;
use super::eval::EvalArgs;
use super::serve::ServeArgs;
use super::summarize::SummarizeArgs;

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
    Bench(BenchArgs),
    /// Serve summaries over HTTP (Hugging Face task schema and precis's own), with continuous
    /// batching, until SIGTERM or Ctrl-C.
    Serve(ServeArgs),
    /// Score summaries against references with ROUGE, identical to rouge-score 0.1.2: existing
    /// ones (--predictions, --references), or summaries made of a JSONL data set (DATA --model).
    Eval(EvalArgs),
}

impl Command {
    /// `--threads` of the commands that run a model (`None`: not given, or no model).
    pub fn threads(&self) -> Option<usize> {
        match self {
            Command::Summarize(args) => args.model.threads,
            Command::Batch(args) => args.model.threads,
            Command::Bench(args) => args.model.threads,
            Command::Eval(args) => args.model.threads,
            Command::Serve(args) => args.model.threads,
            Command::Models => None,
        }
    }
}
