//! `precis summarize FILE...|-`: read and check every input first (so a bad file fails before
//! the model loads and before anything is printed), load the model once, print each summary.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use precis::Summarizer;
use precis::text::{self, Document};

use super::allocator;
use super::common::{GenerationArgs, InputArgs, ModelArgs, OutputFormat};
use super::output::Printer;
use super::progress::ChunkProgress;

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

pub fn run(args: SummarizeArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let options = args.input.summary_options(&args.generation, None)?;
    let load = args.model.load_options(quiet)?;
    let inputs = read_inputs(&args.files, args.input.max_bytes)?;

    let summarizer =
        Summarizer::load(&load).with_context(|| format!("cannot load model '{}'", load.model))?;
    allocator::after_load();
    let mut printer = Printer::new(args.format, inputs.len() > 1);
    for (document, text) in &inputs {
        let mut progress = ChunkProgress::new(&document.name, quiet);
        let summary = summarizer
            .summarize_with_progress(text, &options, &mut |event| progress.update(event))
            .with_context(|| format!("{}: summarising failed", document.name))?;
        progress.finish();
        if !printer.print(document, text, &summarizer, &summary)? {
            break; // stdout was closed (e.g. piped into `head`): not an error.
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads and cleans every input up front; no input means standard input.
fn read_inputs(
    files: &[PathBuf],
    max_bytes: Option<u64>,
) -> anyhow::Result<Vec<(Document, String)>> {
    let stdin = [PathBuf::from("-")];
    let files = if files.is_empty() { &stdin[..] } else { files };
    files
        .iter()
        .map(|path| {
            let document = text::read_document(Path::new(path), max_bytes)?;
            let cleaned = text::prepare(&document)?;
            Ok((document, cleaned))
        })
        .collect()
}
