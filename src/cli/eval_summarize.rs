//! The summarising half of `precis eval DATA.jsonl`: load a model once, then for each of its
//! variants summarise the data set a round of documents at a time with the same library calls
//! and progress bar as `precis batch --input-jsonl` (each text read and cleaned as batch reads a
//! JSONL record, `Summarizer::summarize_many` per round), timing the summarising alone.

use std::time::Instant;

use anyhow::Context;
use precis::batch::{ItemId, Progress as BatchEvent, RunOptions, Status};
use precis::eval::data::{Pair, Problem, Record};
use precis::{LoadOptions, Summarizer, SummaryOptions, text};
use serde_json::Value;

use super::allocator;
use super::progress::BatchProgress;

/// One model (and quantization) and the summary options to run it with, each named.
pub struct ModelVariants {
    pub load: LoadOptions,
    pub runs: Vec<(String, SummaryOptions)>,
}

/// A summary precis made, with its reference.
pub struct Summarised {
    pub pair: Pair,
    /// Tokens of the summary as the model generated them.
    pub tokens: usize,
    /// Model time spent on this document.
    pub seconds: f64,
}

/// What one variant made of the data set.
pub struct VariantRun {
    pub name: String,
    pub summaries: Vec<Summarised>,
    /// Records that could not be summarised.
    pub problems: Vec<Problem>,
    pub failed: usize,
    /// Wall time of the summarising, without loading the model.
    pub seconds: f64,
}

/// Loads `model` and summarises `records` (values: text, reference) with each of its variants.
pub fn run(
    model: &ModelVariants,
    records: &[Record],
    rounds: &RunOptions,
    quiet: bool,
) -> anyhow::Result<Vec<VariantRun>> {
    let summarizer = Summarizer::load(&model.load)
        .with_context(|| format!("cannot load model '{}'", model.load.model))?;
    allocator::after_load();
    model
        .runs
        .iter()
        .map(|(name, options)| {
            let started = Instant::now();
            let mut run = summarise(&summarizer, options, records, rounds, quiet)?;
            run.seconds = started.elapsed().as_secs_f64();
            run.name = name.clone();
            Ok(run)
        })
        .collect()
}

fn summarise(
    summarizer: &Summarizer,
    options: &SummaryOptions,
    records: &[Record],
    rounds: &RunOptions,
    quiet: bool,
) -> anyhow::Result<VariantRun> {
    let mut out = VariantRun {
        name: String::new(),
        summaries: Vec::new(),
        problems: Vec::new(),
        failed: 0,
        seconds: 0.0,
    };
    let mut progress = BatchProgress::new(Some(records.len()), quiet);
    let mut done = 0;
    for round in records.chunks(rounds.docs_per_round) {
        let first = item_id(&round[0]);
        progress.update(BatchEvent::RoundStarted {
            files: round.len(),
            first: &first,
        });
        let mut ready = Vec::new();
        for record in round {
            match cleaned_text(record, rounds.max_bytes) {
                Ok(text) => ready.push((record, text)),
                Err(error) => out.fail(record, &error),
            }
        }
        let texts: Vec<&str> = ready.iter().map(|(_, text)| text.as_str()).collect();
        let results = summarizer
            .summarize_many(&texts, options)
            .context("summarising failed")?;
        for ((record, _), result) in ready.iter().zip(results) {
            match result {
                Ok(summary) => out.summaries.push(Summarised {
                    tokens: summary
                        .output_ids
                        .as_ref()
                        .map_or(summary.output_tokens, Vec::len),
                    seconds: summary.seconds,
                    pair: pair(record, summary.text),
                }),
                Err(error) => out.fail(record, &error),
            }
        }
        for record in round {
            done += 1;
            let id = item_id(record);
            progress.update(BatchEvent::FileDone {
                done,
                total: Some(records.len()),
                id: &id,
                status: Status::Ok,
            });
        }
    }
    progress.finish();
    Ok(out)
}

impl VariantRun {
    fn fail(&mut self, record: &Record, error: &precis::Error) {
        self.failed += 1;
        let message = format!(
            "cannot be summarised: {}",
            precis::batch::error_chain(error)
        );
        self.problems.push(Problem::at(record, message));
    }
}

/// The record's text read and cleaned as `precis batch --input-jsonl` reads a record.
fn cleaned_text(record: &Record, max_bytes: Option<u64>) -> precis::Result<String> {
    let raw = record.values[0].as_deref().unwrap_or_default();
    // The problem line already names the file and line.
    let document = text::read_from("its text", raw.as_bytes(), max_bytes, None)?;
    text::prepare(&document)
}

fn pair(record: &Record, summary: String) -> Pair {
    Pair {
        id: record.id.clone(),
        prediction: summary,
        reference: record.values[1].clone().unwrap_or_default(),
        source: record.values[0].clone(),
    }
}

fn item_id(record: &Record) -> ItemId {
    ItemId::Record {
        id: Value::String(record.id.clone()),
        line: record.line,
    }
}
