//! Printing summaries: plain text, or one JSON object per input.

use std::io::{self, Write};

use precis::text::Document;
use precis::{Summarizer, Summary, SummaryRecord};

use super::common::OutputFormat;

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
                let record = SummaryRecord::new(document, cleaned, summarizer, summary.clone());
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
