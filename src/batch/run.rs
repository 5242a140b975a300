//! The batch loop: take a round of items, read and clean each, summarise the readable ones in
//! one call (so the model can share batches across documents), record every outcome, then check
//! the stop flag. Per-file trouble becomes a failed outcome and the loop goes on; only a
//! summariser error, a manifest that cannot be written or a stream that cannot be read ends it.

use std::time::{Duration, Instant};

use super::item::{BatchSummary, Item, ItemId, Outcome, Source};
use super::manifest::Status;
use super::sink::Sink;
use super::stop::StopFlag;
use crate::{Error, Result, text};

/// The most documents per round by default: enough to fill model batches on a GPU, few enough
/// that a stop request is answered quickly.
pub const DEFAULT_DOCS_PER_ROUND: usize = 32;

/// How a batch runs (as opposed to what it produces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunOptions {
    /// Documents read and handed to the summariser together.
    pub docs_per_round: usize,
    /// Larger inputs are failed unread.
    pub max_bytes: Option<u64>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            docs_per_round: DEFAULT_DOCS_PER_ROUND,
            max_bytes: None,
        }
    }
}

impl RunOptions {
    /// Refuses zero documents per round, naming the option.
    pub fn validate(&self) -> Result<()> {
        if self.docs_per_round == 0 {
            return Err(Error::InvalidOption {
                option: "docs_per_round",
                value: "0".into(),
                expected: "at least 1".into(),
            });
        }
        Ok(())
    }
}

/// What a batch reports as it goes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Progress<'a> {
    /// A round of `files` documents is being read and summarised.
    RoundStarted { files: usize, first: &'a ItemId },
    /// A document is done: `done` of `total` this run (`total` unknown for a stream input).
    FileDone {
        done: usize,
        total: Option<usize>,
        id: &'a ItemId,
        status: Status,
    },
}

/// Why a batch ended before its last document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    /// SIGINT / SIGTERM (or the flag set by other means): the CLI exits 130.
    Signal,
    /// The output stream was closed (`precis batch ... -o - | head`): not an error.
    OutputClosed,
}

/// A document that failed or was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemNote {
    pub id: String,
    pub message: String,
}

/// The end-of-run account.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BatchReport {
    pub ok: usize,
    pub failed: Vec<ItemNote>,
    /// Left out on purpose (a symbolic link loop, a named pipe); not a failure.
    pub skipped: Vec<ItemNote>,
    /// Not redone: done by an earlier run with the same model and options.
    pub up_to_date: usize,
    pub input_tokens: usize,
    pub output_tokens: usize,
    pub elapsed: Duration,
    pub stopped: Option<StopCause>,
}

impl BatchReport {
    /// Summaries made per second of this run.
    pub fn docs_per_second(&self) -> f64 {
        per_second(self.ok, self.elapsed)
    }

    /// Generated tokens per second of this run.
    pub fn tokens_per_second(&self) -> f64 {
        per_second(self.output_tokens, self.elapsed)
    }

    pub fn has_failures(&self) -> bool {
        !self.failed.is_empty()
    }

    fn add(&mut self, id: &ItemId, outcome: &Outcome) {
        let note = || ItemNote {
            id: id.to_string(),
            message: outcome.message().unwrap_or_default(),
        };
        match outcome {
            Outcome::Ok(summary) => {
                self.ok += 1;
                self.input_tokens += summary.input_tokens;
                self.output_tokens += summary.output_tokens;
            }
            Outcome::Failed(_) => self.failed.push(note()),
            Outcome::Skipped(_) => self.skipped.push(note()),
        }
    }
}

fn per_second(count: usize, elapsed: Duration) -> f64 {
    let seconds = elapsed.as_secs_f64();
    if seconds > 0.0 {
        count as f64 / seconds
    } else {
        0.0
    }
}

/// Everything the loop needs besides the items and the sink.
pub(crate) struct Runner<'a, F, P> {
    pub options: &'a RunOptions,
    pub summarize: F,
    pub stop: &'a StopFlag,
    pub progress: P,
    pub total: Option<usize>,
}

impl<F, P> Runner<'_, F, P>
where
    F: FnMut(&[&str]) -> Result<Vec<Result<BatchSummary>>>,
    P: FnMut(Progress<'_>),
{
    /// Works through `items` into `sink`, adding to `report`.
    pub fn run(
        mut self,
        items: &mut dyn Iterator<Item = Result<Item>>,
        sink: &mut dyn Sink,
        report: &mut BatchReport,
    ) -> Result<()> {
        self.options.validate()?;
        let started = Instant::now();
        let result = self.rounds(items, sink, report);
        report.elapsed = started.elapsed();
        match result {
            Err(error) if is_broken_pipe(&error) => {
                report.stopped = Some(StopCause::OutputClosed);
                Ok(())
            }
            other => other,
        }
    }

    fn rounds(
        &mut self,
        items: &mut dyn Iterator<Item = Result<Item>>,
        sink: &mut dyn Sink,
        report: &mut BatchReport,
    ) -> Result<()> {
        let mut done = 0;
        loop {
            if self.stop.is_requested() {
                report.stopped = Some(StopCause::Signal);
                return Ok(());
            }
            let round = (&mut *items)
                .take(self.options.docs_per_round)
                .collect::<Result<Vec<Item>>>()?;
            let Some(first) = round.first() else {
                return Ok(());
            };
            let files = round.len();
            (self.progress)(Progress::RoundStarted {
                files,
                first: &first.id,
            });
            let (ids, sources): (Vec<ItemId>, Vec<Source>) =
                round.into_iter().map(|item| (item.id, item.source)).unzip();
            let outcomes = self.summarise_round(sources)?;
            for (id, outcome) in ids.iter().zip(outcomes) {
                let outcome = sink.record(id, outcome)?;
                report.add(id, &outcome);
                done += 1;
                let status = outcome.status();
                let total = self.total;
                (self.progress)(Progress::FileDone {
                    done,
                    total,
                    id,
                    status,
                });
            }
            sink.end_round()?;
        }
    }

    /// One outcome per source, in order.
    fn summarise_round(&mut self, sources: Vec<Source>) -> Result<Vec<Outcome>> {
        let max_bytes = self.options.max_bytes;
        let loaded: Vec<Result<String, Outcome>> = sources
            .into_iter()
            .map(|source| load(source, max_bytes))
            .collect();
        let texts: Vec<&str> = loaded.iter().filter_map(|l| l.as_deref().ok()).collect();
        let expected = texts.len();
        let summaries = if texts.is_empty() {
            Vec::new()
        } else {
            (self.summarize)(&texts)?
        };
        let got = summaries.len();
        if got != expected {
            return Err(Error::SummaryCount { expected, got });
        }
        let mut summaries = summaries.into_iter();
        let outcomes = loaded.into_iter().map(|loaded| match loaded {
            Err(outcome) => outcome,
            Ok(_) => match summaries.next() {
                Some(Ok(summary)) => Outcome::Ok(summary),
                Some(Err(error)) => Outcome::Failed(error),
                // Counted equal above; a failure rather than a panic all the same.
                None => Outcome::Failed(Error::SummaryCount { expected, got }),
            },
        });
        Ok(outcomes.collect())
    }
}

/// The cleaned text of an input, or the outcome that says why it has none.
fn load(source: Source, max_bytes: Option<u64>) -> Result<String, Outcome> {
    let document = match source {
        Source::File(path) => text::read_document(&path, max_bytes),
        Source::Text { name, text } => text::read_from(&name, text.as_bytes(), max_bytes, None),
        Source::Failed(error) => return Err(Outcome::Failed(error)),
        Source::Skipped(error) => return Err(Outcome::Skipped(error)),
    };
    document
        .and_then(|document| text::prepare(&document))
        .map_err(Outcome::Failed)
}

fn is_broken_pipe(error: &Error) -> bool {
    matches!(error, Error::WriteStream { source, .. }
        if source.kind() == std::io::ErrorKind::BrokenPipe)
}
