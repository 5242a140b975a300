//! JSON Lines in and out: `--input-jsonl FILE|-` reads one `{"id": ..., "text": ...}` object per
//! line, and `-o -` / `--jsonl` writes one result object per document (see
//! [`super::output::DocRecord`]) so that another program can consume a batch as it goes.
//!
//! A line that is not such an object becomes a failed record naming its line number; the run
//! goes on. Blank lines are ignored. Only a failure to read the stream itself ends the run.

use std::io::{BufRead, Write};
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;

use super::item::{Item, ItemId, Outcome, Source};
use super::sink::{Sink, doc_record};
use crate::{Error, Result};

#[derive(Deserialize)]
struct InputRecord {
    id: Value,
    text: String,
}

/// The records of a JSONL input, in order, as batch items.
pub struct JsonlRecords<R> {
    name: String,
    reader: R,
    line: usize,
    failed: bool,
}

impl<R: BufRead> JsonlRecords<R> {
    /// Reads records from `reader`; `name` (a path, or `<stdin>`) is what messages call it.
    pub fn new(name: &str, reader: R) -> JsonlRecords<R> {
        JsonlRecords {
            name: name.to_string(),
            reader,
            line: 0,
            failed: false,
        }
    }

    fn item(&self, bytes: &[u8]) -> Item {
        let line = self.line;
        match serde_json::from_slice::<InputRecord>(bytes) {
            Ok(record) => Item {
                id: ItemId::Record {
                    id: record.id,
                    line,
                },
                source: Source::Text {
                    name: format!("{}:{line}", self.name),
                    text: record.text,
                },
            },
            Err(source) => Item {
                id: ItemId::Record {
                    id: readable_id(bytes),
                    line,
                },
                source: Source::Failed(Error::JsonlRecord {
                    source_name: self.name.clone(),
                    line,
                    source,
                }),
            },
        }
    }
}

/// The `id` of a line that is not a valid record, when one can still be read from it.
fn readable_id(bytes: &[u8]) -> Value {
    let value: Option<Value> = serde_json::from_slice(bytes).ok();
    value
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null)
}

impl<R: BufRead> Iterator for JsonlRecords<R> {
    type Item = Result<Item>;

    fn next(&mut self) -> Option<Result<Item>> {
        if self.failed {
            return None;
        }
        let mut bytes = Vec::new();
        loop {
            bytes.clear();
            match self.reader.read_until(b'\n', &mut bytes) {
                Ok(0) => return None,
                Ok(_) => self.line += 1,
                Err(source) => {
                    self.failed = true;
                    let path = PathBuf::from(&self.name);
                    return Some(Err(Error::Io { path, source }));
                }
            }
            if !bytes.iter().all(u8::is_ascii_whitespace) {
                return Some(Ok(self.item(&bytes)));
            }
        }
    }
}

/// Writes one JSON line per document to a stream, flushed after every round.
pub(crate) struct JsonlSink<W> {
    pub name: String,
    pub writer: W,
}

impl<W: Write> JsonlSink<W> {
    fn write_error(&self, source: std::io::Error) -> Error {
        Error::WriteStream {
            name: self.name.clone(),
            source,
        }
    }
}

impl<W: Write> Sink for JsonlSink<W> {
    fn record(&mut self, id: &ItemId, outcome: Outcome) -> Result<Outcome> {
        let message = outcome.message();
        let record = doc_record(id, &outcome, message.as_deref());
        let mut line = serde_json::to_vec(&record).map_err(|source| Error::ToJson {
            what: format!("the result of {id}"),
            source,
        })?;
        line.push(b'\n');
        self.writer
            .write_all(&line)
            .map_err(|e| self.write_error(e))?;
        Ok(outcome)
    }

    fn end_round(&mut self) -> Result<()> {
        self.writer.flush().map_err(|e| self.write_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(input: &str) -> Vec<Item> {
        let records = JsonlRecords::new("in.jsonl", input.as_bytes());
        records.map(|r| r.expect("readable")).collect()
    }

    #[test]
    fn reads_records_and_numbers_lines_from_one() {
        let input =
            "{\"id\": \"a\", \"text\": \"First.\"}\n\n{\"id\": 7, \"text\": \"Second.\", \"x\": 1}";
        let items = items(input);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items[0].id,
            ItemId::Record {
                id: Value::from("a"),
                line: 1
            }
        );
        assert_eq!(
            items[1].id,
            ItemId::Record {
                id: Value::from(7),
                line: 3
            }
        );
        let Source::Text { name, text } = &items[1].source else {
            panic!("{:?}", items[1].source);
        };
        assert_eq!((name.as_str(), text.as_str()), ("in.jsonl:3", "Second."));
    }

    #[test]
    fn a_bad_line_is_a_failed_record_and_reading_goes_on() {
        let input = "{\"id\": 1, \"text\": \"ok\"}\nnot json\n{\"id\": 3}\n\u{FF}\n{\"id\": 5, \"text\": \"ok\"}\n";
        let items = items(input);
        assert_eq!(items.len(), 5);
        let failed: Vec<String> = items
            .iter()
            .filter_map(|item| match &item.source {
                Source::Failed(error) => Some(error.to_string()),
                _ => None,
            })
            .collect();
        assert_eq!(failed.len(), 3);
        assert_eq!(
            failed[0],
            "in.jsonl:2: not a JSON object with \"id\" and \"text\"; fix or remove the line"
        );
        assert!(failed[1].starts_with("in.jsonl:3:"), "{}", failed[1]);
        assert_eq!(
            items[2].id,
            ItemId::Record {
                id: Value::from(3),
                line: 3
            }
        );
        assert!(matches!(items[4].source, Source::Text { .. }));
    }

    #[test]
    fn a_read_error_ends_the_records() {
        struct Broken;
        impl std::io::Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("device gone"))
            }
        }
        let mut records = JsonlRecords::new("<stdin>", std::io::BufReader::new(Broken));
        let error = records.next().expect("one result").expect_err("read error");
        assert_eq!(error.to_string(), "cannot read <stdin>");
        assert!(records.next().is_none());
    }
}
