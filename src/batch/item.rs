//! What a batch works through: items (a file of the input folder or a record of a JSONL input),
//! what happened to each, and the summary a summariser hands back for one.

use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use super::manifest::Status;
use crate::Error;

/// Which document an item is, as reports, manifests and the JSONL stream name it.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemId {
    /// A file, by its path relative to the input folder.
    Path(String),
    /// A `--input-jsonl` record: its `id` as given (`null` when the line had none readable)
    /// and its line number, from 1.
    Record { id: Value, line: usize },
}

impl fmt::Display for ItemId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemId::Path(path) => f.write_str(path),
            ItemId::Record {
                id: Value::Null,
                line,
            } => write!(f, "line {line}"),
            ItemId::Record { id, line } => write!(f, "line {line} (id {id})"),
        }
    }
}

/// Where an item's text comes from, or why it has none.
#[derive(Debug)]
pub(crate) enum Source {
    File(PathBuf),
    /// `name` is what messages call it, e.g. `<stdin>:7`.
    Text {
        name: String,
        text: String,
    },
    Failed(Error),
    Skipped(Error),
}

/// One document of a batch.
#[derive(Debug)]
pub struct Item {
    pub id: ItemId,
    pub(crate) source: Source,
}

/// What a summariser returns for one text: the part of a full summary a batch records.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchSummary {
    pub text: String,
    /// The ids generated for `text` (see [`crate::Summary::output_ids`]).
    pub output_ids: Option<Vec<u32>>,
    /// How many chunks the input was split into.
    pub chunks: usize,
    pub input_tokens: usize,
    pub output_tokens: usize,
    /// Model time spent on this text.
    pub seconds: f64,
}

impl From<crate::Summary> for BatchSummary {
    fn from(summary: crate::Summary) -> BatchSummary {
        BatchSummary {
            chunks: summary.chunks.len(),
            text: summary.text,
            output_ids: summary.output_ids,
            input_tokens: summary.input_tokens,
            output_tokens: summary.output_tokens,
            seconds: summary.seconds,
        }
    }
}

/// What happened to one item.
#[derive(Debug)]
pub enum Outcome {
    Ok(BatchSummary),
    Failed(Error),
    Skipped(Error),
}

impl Outcome {
    pub fn status(&self) -> Status {
        match self {
            Outcome::Ok(_) => Status::Ok,
            Outcome::Failed(_) => Status::Failed,
            Outcome::Skipped(_) => Status::Skipped,
        }
    }

    pub fn summary(&self) -> Option<&BatchSummary> {
        match self {
            Outcome::Ok(summary) => Some(summary),
            _ => None,
        }
    }

    /// Why the item failed or was skipped, for people: the error and all its causes.
    pub fn message(&self) -> Option<String> {
        match self {
            Outcome::Ok(_) => None,
            Outcome::Failed(error) | Outcome::Skipped(error) => Some(error_chain(error)),
        }
    }
}

/// An error and its sources on one line, `outer: inner: innermost`, for manifests and reports
/// (which are read by people long after the error value is gone).
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_read_well_in_messages() {
        assert_eq!(ItemId::Path("a/b.txt".into()).to_string(), "a/b.txt");
        let record = ItemId::Record {
            id: Value::from("x1"),
            line: 7,
        };
        assert_eq!(record.to_string(), r#"line 7 (id "x1")"#);
        let unknown = ItemId::Record {
            id: Value::Null,
            line: 3,
        };
        assert_eq!(unknown.to_string(), "line 3");
    }

    #[test]
    fn error_chain_joins_causes_once() {
        let error = Error::Write {
            path: "/out/a.summary.txt".into(),
            source: std::io::Error::other("No space left on device"),
        };
        assert_eq!(
            error_chain(&error),
            "cannot write /out/a.summary.txt; check that the disk has space and that you may \
             write there: No space left on device"
        );
    }
}
