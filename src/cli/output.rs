//! Printing summaries: plain text, or one JSON object per input.

use std::io::{self, Write};

use precis::text::{self, Document};
use precis::{ChunkSummary, Summarizer, Summary, device};
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
    /// What the chunks' `chars` ranges count: "input" (the input's characters as given) or
    /// "cleaned_text" (HTML, whose cleaned text is then in `cleaned_text`).
    chunk_chars_of: &'static str,
    chunks: Vec<ChunkSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cleaned_text: Option<&'a str>,
    merge_passes: &'a [precis::MergePass],
}

/// The summary's chunks with their ranges in the input as given where cleaning kept a
/// correspondence (plain text, Markdown); else (HTML) in the cleaned text, which is returned
/// to go in the record.
fn located_chunks<'a>(
    document: &Document,
    cleaned: &'a str,
    summary: &Summary,
) -> (Vec<ChunkSummary>, Option<&'a str>) {
    let ranges: Vec<(usize, usize)> = summary.chunks.iter().map(|c| c.chars).collect();
    let mut chunks = summary.chunks.clone();
    match text::source_ranges(document, &ranges) {
        Some(mapped) => {
            for (chunk, chars) in chunks.iter_mut().zip(mapped) {
                chunk.chars = chars;
            }
            (chunks, None)
        }
        None => (chunks, Some(cleaned)),
    }
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

    /// Prints the summary of `document` (whose cleaned text the model read was `cleaned`);
    /// `Ok(false)` when stdout is closed and printing should stop.
    pub fn print(
        &mut self,
        document: &Document,
        cleaned: &str,
        summarizer: &Summarizer,
        summary: &Summary,
    ) -> io::Result<bool> {
        let source = document.name.as_str();
        let text = match self.format {
            OutputFormat::Text if self.several => {
                let gap = if self.printed > 0 { "\n" } else { "" };
                format!("{gap}==> {source} <==\n{}\n", summary.text)
            }
            OutputFormat::Text => format!("{}\n", summary.text),
            OutputFormat::Json => {
                let (chunks, cleaned_text) = located_chunks(document, cleaned, summary);
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
                    chunk_chars_of: if cleaned_text.is_some() {
                        "cleaned_text"
                    } else {
                        "input"
                    },
                    chunks,
                    cleaned_text,
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
