//! What `precis eval` prints: the variants side by side in a table (or one JSON object), the
//! records it left out on stderr, and the per-document scores as JSON lines.

use std::io::{self, Write};
use std::path::Path;

use precis::eval::{Aggregate, BootstrapOptions, DocResult, RougeOptions, RougeType, aggregate};
use serde::Serialize;

use super::common::OutputFormat;
use super::output::write_stdout;
use precis::eval::data::Problem;

/// Problems listed one by one on stderr before the rest are only counted.
const PROBLEMS_SHOWN: usize = 100;

/// One scored variant: its documents and, when precis made the summaries, how that went.
pub struct VariantReport {
    pub name: String,
    pub docs: Vec<DocResult>,
    /// Wall time of the summarising, when precis summarised.
    pub seconds: Option<f64>,
    /// Documents that could not be summarised.
    pub failed: usize,
}

impl VariantReport {
    pub fn scored(name: &str, docs: Vec<DocResult>) -> Self {
        VariantReport {
            name: name.to_string(),
            docs,
            seconds: None,
            failed: 0,
        }
    }

    pub fn summarised(name: &str, docs: Vec<DocResult>, seconds: f64, failed: usize) -> Self {
        VariantReport {
            name: name.to_string(),
            docs,
            seconds: Some(seconds),
            failed,
        }
    }

    /// Documents summarised per second of summarising.
    fn docs_per_second(&self) -> Option<f64> {
        self.seconds
            .map(|s| (self.docs.len() + self.failed) as f64 / s.max(1e-9))
    }
}

/// Every variant with its aggregate, and how they were scored.
pub struct Report {
    pub variants: Vec<VariantReport>,
    aggregates: Vec<Aggregate>,
    rouge: RougeOptions,
    bootstrap: BootstrapOptions,
}

impl Report {
    pub fn new(
        variants: Vec<VariantReport>,
        rouge: RougeOptions,
        bootstrap: BootstrapOptions,
    ) -> Self {
        let aggregates = variants
            .iter()
            .map(|v| aggregate(&v.docs, &bootstrap))
            .collect();
        Report {
            variants,
            aggregates,
            rouge,
            bootstrap,
        }
    }
}

/// Lists the left-out records on stderr (the run's exit status says they were there).
pub fn print_problems(problems: &[Problem]) {
    for problem in problems.iter().take(PROBLEMS_SHOWN) {
        eprintln!("precis: left out: {problem}");
    }
    let more = problems.len().saturating_sub(PROBLEMS_SHOWN);
    if more > 0 {
        eprintln!("precis: left out: {more} more records");
    }
    if !problems.is_empty() {
        eprintln!(
            "precis: {} records left out (listed above); the scores cover the rest",
            problems.len()
        );
    }
}

#[derive(Serialize)]
struct JsonReport<'a> {
    reference: &'static str,
    stemmer: bool,
    split_sentences: bool,
    bootstrap: &'a BootstrapOptions,
    variants: Vec<JsonVariant<'a>>,
}

#[derive(Serialize)]
struct JsonVariant<'a> {
    name: &'a str,
    #[serde(flatten)]
    aggregate: &'a Aggregate,
    #[serde(skip_serializing_if = "Option::is_none")]
    summarize_seconds: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    docs_per_second: Option<f64>,
    failed: usize,
}

/// The table or JSON on stdout; a closed stdout (`| head`) is not an error.
pub fn print_report(report: &Report, format: OutputFormat) -> io::Result<()> {
    let text = match format {
        OutputFormat::Text => table(report),
        OutputFormat::Json => {
            let json = JsonReport {
                reference: "rouge-score 0.1.2",
                stemmer: report.rouge.stemmer,
                split_sentences: report.rouge.split_sentences,
                bootstrap: &report.bootstrap,
                variants: report
                    .variants
                    .iter()
                    .zip(&report.aggregates)
                    .map(|(variant, aggregate)| JsonVariant {
                        name: &variant.name,
                        aggregate,
                        summarize_seconds: variant.seconds,
                        docs_per_second: variant.docs_per_second(),
                        failed: variant.failed,
                    })
                    .collect(),
            };
            format!(
                "{}\n",
                serde_json::to_string_pretty(&json).map_err(io::Error::other)?
            )
        }
    };
    write_stdout(&text).map(|_| ())
}

/// One row per figure, one column per variant; rows no variant has are left out.
fn table(report: &Report) -> String {
    let mut rows: Vec<Vec<String>> = vec![
        std::iter::once(String::new())
            .chain(report.variants.iter().map(|v| v.name.clone()))
            .collect(),
    ];
    let mut add = |label: &str, cell: &dyn Fn(&VariantReport, &Aggregate) -> Option<String>| {
        let cells: Vec<Option<String>> = report
            .variants
            .iter()
            .zip(&report.aggregates)
            .map(|(v, a)| cell(v, a))
            .collect();
        if cells.iter().any(Option::is_some) {
            let row = std::iter::once(label.to_string())
                .chain(cells.into_iter().map(|c| c.unwrap_or_else(|| "-".into())));
            rows.push(row.collect());
        }
    };
    add("documents", &|_, a| Some(a.documents.to_string()));
    for rouge_type in RougeType::ALL {
        add(rouge_type.name(), &|_, a| Some(rouge_cell(a, rouge_type)));
    }
    add("words", &|_, a| a.words.map(|w| format!("{w:.1}")));
    add("tokens", &|_, a| a.tokens.map(|t| format!("{t:.1}")));
    add("compression", &|_, a| {
        a.compression.map(|c| format!("{c:.1}x"))
    });
    for n in [1, 2] {
        add(&format!("novel {n}-grams"), &|_, a| {
            a.novel_ngrams[n - 1].map(|s| format!("{:.1}%", 100.0 * s))
        });
    }
    add("seconds", &|v, _| v.seconds.map(|s| format!("{s:.2}")));
    add("docs/s", &|v, _| {
        v.docs_per_second().map(|d| format!("{d:.2}"))
    });
    add("failed", &|v, _| v.seconds.map(|_| v.failed.to_string()));
    format!("{}\n{}", header(report), layout(&rows))
}

fn header(report: &Report) -> String {
    let stemmer = if report.rouge.stemmer { "on" } else { "off" };
    let lines = if report.rouge.split_sentences {
        "split into sentences"
    } else {
        "split at newlines"
    };
    let interval = match report.bootstrap.samples {
        0 => String::new(),
        n => format!(
            " [95% bootstrap interval: {n} resamples, seed {}]",
            report.bootstrap.seed
        ),
    };
    format!(
        "ROUGE F1 x 100 as rouge-score 0.1.2 computes it (stemmer {stemmer}, rougeLsum on \
         texts {lines}): mean{interval}\n"
    )
}

/// `41.23 [39.10, 43.31]`: the mean F1 and its interval, times 100.
fn rouge_cell(aggregate: &Aggregate, rouge_type: RougeType) -> String {
    let figures = aggregate.rouge(rouge_type);
    let mean = 100.0 * figures.mean.fmeasure;
    match figures.interval {
        Some(i) => format!(
            "{mean:.2} [{:.2}, {:.2}]",
            100.0 * i.low.fmeasure,
            100.0 * i.high.fmeasure
        ),
        None => format!("{mean:.2}"),
    }
}

/// Columns padded to their widest cell: labels left, figures right.
fn layout(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = format!("{:<width$}", row[0], width = widths[0]);
        for (cell, width) in row.iter().zip(&widths).skip(1) {
            line.push_str(&format!("  {cell:>width$}"));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct PerDoc<'a> {
    variant: &'a str,
    #[serde(flatten)]
    doc: &'a DocResult,
}

/// Writes every document's scores, one JSON line each, atomically (a failed write leaves any
/// earlier file as it was).
pub fn write_per_doc(path: &Path, report: &Report) -> precis::Result<()> {
    precis::batch::output::write_atomic(path, |writer: &mut dyn Write| {
        for variant in &report.variants {
            for doc in &variant.docs {
                let line = PerDoc {
                    variant: &variant.name,
                    doc,
                };
                serde_json::to_writer(&mut *writer, &line)?;
                writer.write_all(b"\n")?;
            }
        }
        Ok(())
    })
}
