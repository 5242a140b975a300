//! Where a batch puts each result: summary files plus manifest rows in an output folder
//! ([`DirSink`]), or one JSON line per document on a stream ([`super::jsonl::JsonlSink`]).

use std::path::PathBuf;

use super::item::{ItemId, Outcome};
use super::manifest::{ManifestRow, ManifestWriter, timestamp_now};
use super::output::{
    DocRecord, OutputFormat, TempFiles, write_atomic_with, write_json, write_text,
};
use super::resume::RunIdentity;
use crate::Result;

/// Receives results a round at a time.
pub(crate) trait Sink {
    /// Stores one item's outcome and returns it, or the failure to store it (a summary that
    /// could not be written is a failed file). `Err` is for trouble that ends the whole run.
    fn record(&mut self, id: &ItemId, outcome: Outcome) -> Result<Outcome>;

    /// Makes the round's results durable (flushes the manifest or the stream).
    fn end_round(&mut self) -> Result<()>;
}

/// Summary files under an output folder, and the manifest.
pub(crate) struct DirSink {
    pub out_dir: PathBuf,
    pub format: OutputFormat,
    pub identity: RunIdentity,
    pub manifest: ManifestWriter,
    pub temps: TempFiles,
}

impl DirSink {
    fn write_summary(&self, path: &str, outcome: &Outcome) -> Result<()> {
        let Some(summary) = outcome.summary() else {
            return Ok(());
        };
        let target = self.format.output_path(&self.out_dir, path);
        match self.format {
            OutputFormat::Text => {
                write_atomic_with(&target, &self.temps, |w| write_text(w, &summary.text))
            }
            OutputFormat::Json => {
                let id = ItemId::Path(path.to_string());
                let record = doc_record(&id, outcome, None);
                write_atomic_with(&target, &self.temps, |w| write_json(w, &record))
            }
        }
    }
}

impl Sink for DirSink {
    fn record(&mut self, id: &ItemId, outcome: Outcome) -> Result<Outcome> {
        let path = id.to_string();
        let outcome = match self.write_summary(&path, &outcome) {
            Ok(()) => outcome,
            Err(error) => Outcome::Failed(error),
        };
        let summary = outcome.summary().cloned().unwrap_or_default();
        let output = outcome
            .summary()
            .map(|_| self.format.output_relative(&path));
        self.manifest.push(&ManifestRow {
            path,
            status: outcome.status(),
            error: outcome.message(),
            chunks: summary.chunks,
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
            seconds: summary.seconds,
            model: self.identity.model.clone(),
            options_hash: self.identity.options_hash.clone(),
            output,
            finished_at: timestamp_now(),
        })?;
        Ok(outcome)
    }

    fn end_round(&mut self) -> Result<()> {
        self.manifest.flush()
    }
}

/// The JSON record of one outcome; `message` is the outcome's [`Outcome::message`], made by the
/// caller so that the record can borrow it.
pub(crate) fn doc_record<'a>(
    id: &'a ItemId,
    outcome: &'a Outcome,
    message: Option<&'a str>,
) -> DocRecord<'a> {
    let summary = outcome.summary();
    let (id, line, path) = match id {
        ItemId::Path(path) => (None, None, Some(path.as_str())),
        ItemId::Record { id, line } => (Some(id), Some(*line), None),
    };
    DocRecord {
        id,
        line,
        path,
        status: outcome.status(),
        summary: summary.map(|s| s.text.as_str()),
        output_ids: summary.and_then(|s| s.output_ids.as_deref()),
        error: message,
        chunks: summary.map_or(0, |s| s.chunks),
        input_tokens: summary.map_or(0, |s| s.input_tokens),
        output_tokens: summary.map_or(0, |s| s.output_tokens),
        seconds: summary.map_or(0.0, |s| s.seconds),
    }
}
