//! Printing summaries: plain text, or one JSON object per input.

use std::io::{self, Write};

use precis::{Summarizer, Summary, device};
use serde::Serialize;

use super::common::OutputFormat;

/// The JSON record of one summarised input.
#[derive(Serialize)]
struct Record<'a> {
    source: &'a str,
    summary: &'a str,
    output_ids: Option<&'a [u32]>,
    model: &'a str,
    device: String,
    input_tokens: usize,
    output_tokens: usize,
    seconds: f64,
    tokens_per_second: f64,
    chunk_count: usize,
    chunks: &'a [precis::ChunkSummary],
    merge_passes: &'a [precis::MergePass],
}

pub struct Printer {
    format: OutputFormat,
    several: bool,
    printed: usize,
}

impl Printer {
    pub fn new(format: OutputFormat, several: bool) -> Self {
        Self {
            format,
            several,
            printed: 0,
        }
    }

    /// Prints one summary; `Ok(false)` when stdout is closed and printing should stop.
    pub fn print(
        &mut self,
        source: &str,
        summarizer: &Summarizer,
        summary: &Summary,
    ) -> io::Result<bool> {
        let text = match self.format {
            OutputFormat::Text if self.several => {
                let gap = if self.printed > 0 { "\n" } else { "" };
                format!("{gap}==> {source} <==\n{}\n", summary.text)
            }
            OutputFormat::Text => format!("{}\n", summary.text),
            OutputFormat::Json => {
                let record = Record {
                    source,
                    summary: &summary.text,
                    output_ids: summary.output_ids.as_deref(),
                    model: summarizer.name(),
                    device: device::describe(summarizer.device()),
                    input_tokens: summary.input_tokens,
                    output_tokens: summary.output_tokens,
                    seconds: summary.seconds,
                    tokens_per_second: summary.output_tokens as f64 / summary.seconds.max(1e-9),
                    chunk_count: summary.chunks.len(),
                    chunks: &summary.chunks,
                    merge_passes: &summary.merge_passes,
                };
                format!(
                    "{}\n",
                    serde_json::to_string(&record).map_err(io::Error::other)?
                )
            }
        };
        self.printed += 1;
        write_stdout(&text)
    }
}

/// Writes to stdout; a closed pipe means "stop", not an error.
pub(super) fn write_stdout(text: &str) -> io::Result<bool> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e),
    }
}
