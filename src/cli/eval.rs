//! `precis eval`: ROUGE (identical to rouge-score 0.1.2) and summary statistics, either for
//! summaries that exist (`--predictions P --references R`, JSONL files or folders, matched by id)
//! or for summaries precis makes of a JSONL data set (`precis eval DATA.jsonl --model M`), with
//! comma-separated `--model`, `--quantize` and `--merge` scored side by side on the same data.
//!
//! Bad records are reported with their line numbers and left out; the run goes on and exits 1.

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use precis::batch::RunOptions;
use precis::eval::data::{self, Fields, Pair, Problem, Records, Wanted};
use precis::eval::{BootstrapOptions, RougeOptions};

use super::UsageError;
use super::common::{DEFAULT_BATCH_TOKENS, GenerationArgs, InputArgs, ModelArgs, OutputFormat};
use super::eval_output::{self, Report, VariantReport};
use super::eval_summarize::{self, ModelVariants};

#[derive(Debug, Args)]
#[command(
    after_help = "The model, decoding and chunking options apply when precis summarises DATA. \
                  Exit status: 0 all scored, 1 some records were left out (listed on stderr) or \
                  could not be summarised, 2 usage error."
)]
pub struct EvalArgs {
    /// JSONL data set to summarise and score: one {"id", "text", "reference"} object per line
    /// (see --text-field, --reference-field).
    #[arg(
        value_name = "DATA",
        required_unless_present = "predictions",
        conflicts_with = "predictions"
    )]
    pub data: Option<PathBuf>,

    /// Existing summaries: a JSONL file of {"id", "summary"} (e.g. `precis batch --input-jsonl`
    /// output) or a `precis batch` output folder (<path>.summary.txt / .summary.json).
    #[arg(long, value_name = "FILE|DIR", requires = "references")]
    pub predictions: Option<PathBuf>,

    /// References for --predictions: a JSONL file of {"id", "reference"} or a folder of
    /// <path>.txt files, matched to summaries of <path>.<ext> by relative path.
    #[arg(long, value_name = "FILE|DIR", requires = "predictions")]
    pub references: Option<PathBuf>,

    /// JSON field of the record id.
    #[arg(long, value_name = "NAME", default_value = "id")]
    pub id_field: String,

    /// JSON field of the article (CNN/DailyMail: article, XSum: document, SAMSum: dialogue).
    #[arg(long, value_name = "NAME", default_value = "text")]
    pub text_field: String,

    /// JSON field of the reference summary (CNN/DailyMail: highlights, XSum and SAMSum: summary).
    #[arg(long, value_name = "NAME", default_value = "reference")]
    pub reference_field: String,

    /// JSON field of a prediction in --predictions.
    #[arg(long, value_name = "NAME", default_value = "summary")]
    pub summary_field: String,

    /// Porter-stem words before matching (on by default, as transformers' summarization example).
    #[arg(long, overrides_with = "no_stemmer")]
    pub stemmer: bool,

    /// Match words as written, without the Porter stemmer.
    #[arg(long, overrides_with = "stemmer")]
    pub no_stemmer: bool,

    /// Put each sentence of both texts on its own line before rougeLsum (which otherwise takes
    /// the lines of each text as its sentences), split as NLTK's `sent_tokenize` (English Punkt).
    #[arg(long)]
    pub split_sentences: bool,

    /// Output: a table, or one JSON object with every figure.
    #[arg(long, value_enum, default_value_t = OutputFormat::Text)]
    pub format: OutputFormat,

    /// Also write each document's scores as JSON lines to FILE (refused if FILE exists).
    #[arg(long, value_name = "FILE")]
    pub per_doc: Option<PathBuf>,

    /// Overwrite the --per-doc file if it exists.
    #[arg(long, requires = "per_doc")]
    pub force: bool,

    /// Bootstrap resamples for the 95% interval (0: none).
    #[arg(long, value_name = "N", default_value_t = precis::eval::bootstrap::DEFAULT_SAMPLES)]
    pub bootstrap_samples: usize,

    /// Seed of the bootstrap resamples: the same as np.random.seed(N) before rouge-score's
    /// BootstrapAggregator, so both give the same interval.
    #[arg(long, value_name = "N", default_value_t = 42)]
    pub bootstrap_seed: u32,

    /// Articles summarised together (with DATA).
    #[arg(long, value_name = "N", default_value_t = precis::batch::DEFAULT_DOCS_PER_ROUND)]
    pub docs_per_round: usize,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,

    #[command(flatten)]
    pub input: InputArgs,
}

pub fn run(args: EvalArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let rouge = RougeOptions {
        stemmer: !args.no_stemmer,
        split_sentences: args.split_sentences,
    };
    let bootstrap = BootstrapOptions {
        samples: args.bootstrap_samples,
        seed: args.bootstrap_seed,
        ..BootstrapOptions::default()
    };
    check_per_doc(args.per_doc.as_deref(), args.force)?;
    let fields = Fields {
        id: args.id_field.clone(),
        text: args.text_field.clone(),
        reference: args.reference_field.clone(),
        summary: args.summary_field.clone(),
    };
    let (variants, problems) = match &args.data {
        Some(data) => summarise_and_score(&args, data, &fields, rouge, quiet)?,
        None => score_existing(&args, &fields, rouge)?,
    };
    let report = Report::new(variants, rouge, bootstrap);
    eval_output::print_problems(&problems);
    if report.variants.iter().all(|v| v.docs.is_empty()) {
        return Err(anyhow::anyhow!(
            "nothing to score: no prediction could be paired with a reference (see above)"
        ));
    }
    if let Some(path) = &args.per_doc {
        eval_output::write_per_doc(path, &report)?;
    }
    eval_output::print_report(&report, args.format)?;
    let failed = !problems.is_empty() || report.variants.iter().any(|v| v.failed > 0);
    Ok(if failed {
        ExitCode::from(super::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

/// `--per-doc` never replaces a file silently: an existing one is refused before any work,
/// unless `--force` is given.
fn check_per_doc(path: Option<&Path>, force: bool) -> anyhow::Result<()> {
    match path {
        Some(path) if !force && path.exists() => Err(UsageError(format!(
            "--per-doc {}: the file exists and precis does not overwrite it; choose another \
             name, remove it, or add --force",
            path.display()
        ))
        .into()),
        _ => Ok(()),
    }
}

fn score_existing(
    args: &EvalArgs,
    fields: &Fields,
    rouge: RougeOptions,
) -> anyhow::Result<(Vec<VariantReport>, Vec<Problem>)> {
    let (Some(predictions), Some(references)) = (&args.predictions, &args.references) else {
        return Err(UsageError("give DATA.jsonl, or --predictions and --references".into()).into());
    };
    let predicted = read_side(
        predictions,
        "--predictions",
        fields,
        &[&fields.summary],
        true,
    )?;
    let referenced = read_side(
        references,
        "--references",
        fields,
        &[&fields.reference],
        false,
    )?;
    let mut problems = predicted.problems.clone();
    problems.extend(referenced.problems.iter().cloned());
    let (pairs, unmatched) = data::pair_up(predicted, referenced);
    problems.extend(unmatched);
    problems.sort();
    let docs = pairs
        .iter()
        .map(|pair| score_pair(pair, rouge, None, None))
        .collect();
    let variant = VariantReport::scored("predictions", docs);
    Ok((vec![variant], problems))
}

/// Reads one side: a JSONL file, or a folder of summaries (`predictions`) or references.
fn read_side(
    path: &Path,
    option: &str,
    fields: &Fields,
    required: &[&str],
    predictions: bool,
) -> anyhow::Result<Records> {
    if path.is_dir() {
        let suffixes: &[&str] = if predictions {
            &[".summary.txt", ".summary.json"]
        } else {
            &[".txt"]
        };
        return Ok(data::read_folder(path, suffixes, &fields.summary)?);
    }
    let reader = open(path, option)?;
    let mut wanted: Vec<Wanted<'_>> = required
        .iter()
        .map(|name| Wanted {
            name,
            required: true,
        })
        .collect();
    if !predictions {
        // The article, when the references carry it: compression and novelty need it.
        wanted.push(Wanted {
            name: &fields.text,
            required: false,
        });
    }
    let name = path.display().to_string();
    Ok(data::read_jsonl(&name, reader, &fields.id, true, &wanted)?)
}

fn open(path: &Path, option: &str) -> anyhow::Result<BufReader<File>> {
    match File::open(path) {
        Ok(file) => Ok(BufReader::new(file)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(UsageError(format!(
            "{option} {}: no such file or folder",
            path.display()
        ))
        .into()),
        Err(source) => Err(precis::Error::Io {
            path: path.to_path_buf(),
            source,
        }
        .into()),
    }
}

pub(super) fn score_pair(
    pair: &Pair,
    rouge: RougeOptions,
    tokens: Option<usize>,
    seconds: Option<f64>,
) -> precis::eval::DocResult {
    precis::eval::DocResult {
        id: pair.id.clone(),
        rouge: precis::eval::score(&pair.reference, &pair.prediction, rouge),
        stats: precis::eval::summary_stats(&pair.prediction, pair.source.as_deref(), tokens),
        seconds,
    }
}

fn summarise_and_score(
    args: &EvalArgs,
    data: &Path,
    fields: &Fields,
    rouge: RougeOptions,
    quiet: bool,
) -> anyhow::Result<(Vec<VariantReport>, Vec<Problem>)> {
    let rounds = RunOptions {
        docs_per_round: args.docs_per_round,
        max_bytes: args.input.max_bytes,
    };
    rounds.validate()?;
    let variants = variants(args, quiet)?;
    let reader = open(data, "DATA")?;
    let wanted = [
        Wanted {
            name: &fields.text,
            required: true,
        },
        Wanted {
            name: &fields.reference,
            required: true,
        },
    ];
    let name = data.display().to_string();
    let records = data::read_jsonl(&name, reader, &fields.id, false, &wanted)
        .with_context(|| format!("cannot read {name}"))?;
    let mut problems = records.problems.clone();
    let mut reports = Vec::new();
    for model in &variants {
        for run in eval_summarize::run(model, &records.records, &rounds, quiet)? {
            let docs = run
                .summaries
                .iter()
                .map(|s| score_pair(&s.pair, rouge, Some(s.tokens), Some(s.seconds)))
                .collect();
            problems.extend(run.problems);
            reports.push(VariantReport::summarised(
                &run.name,
                docs,
                run.seconds,
                run.failed,
            ));
        }
    }
    // A record that cannot be read fails alike in every variant: report it once.
    problems.sort();
    problems.dedup();
    Ok((reports, problems))
}

/// Every combination of the comma-separated `--model`, `--quantize` and `--merge` values, grouped
/// by model (loaded once for all its merges), checked before any model loads.
fn variants(args: &EvalArgs, quiet: bool) -> anyhow::Result<Vec<ModelVariants>> {
    let models = list(&args.model.model, "--model")?;
    let quantizes = match &args.model.quantize {
        Some(values) => list(values, "--quantize")?,
        None => vec!["none".to_string()],
    };
    let merges = list(&args.input.chunking.merge, "--merge")?;
    let mut variants = Vec::new();
    for model in &models {
        for quantize in &quantizes {
            let mut model_args = args.model.clone();
            model_args.model = model.clone();
            model_args.quantize = (quantize != "none").then(|| quantize.clone());
            let mut runs = Vec::new();
            for merge in &merges {
                let mut input = args.input.clone();
                input.chunking.merge = merge.clone();
                let options =
                    input.summary_options(&args.generation, Some(DEFAULT_BATCH_TOKENS))?;
                // The model, and the values that differ between variants: `t5-small q8 concat`.
                let label = model_label(model);
                let mut name = vec![label.as_str()];
                if quantizes.len() > 1 {
                    name.push(quantize);
                }
                if merges.len() > 1 {
                    name.push(merge);
                }
                runs.push((name.join(" "), options));
            }
            let load = model_args.load_options(quiet)?;
            variants.push(ModelVariants { load, runs });
        }
    }
    Ok(variants)
}

/// A model folder by its name, not its whole path; presets and repo ids as given.
fn model_label(model: &str) -> String {
    let path = Path::new(model);
    match path.file_name() {
        Some(name) if path.is_dir() => name.to_string_lossy().into_owned(),
        _ => model.to_string(),
    }
}

/// The values of a comma-separated option, each trimmed; an empty one is a usage error.
fn list(value: &str, option: &str) -> anyhow::Result<Vec<String>> {
    let values: Vec<String> = value.split(',').map(|v| v.trim().to_string()).collect();
    if values.iter().any(String::is_empty) {
        return Err(UsageError(format!(
            "{option} {value:?}: an empty value in the comma-separated list"
        ))
        .into());
    }
    Ok(values)
}
