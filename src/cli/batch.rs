//! `precis batch IN_DIR -o OUT_DIR` (or JSONL in and out): the flags become a validated
//! [`BatchConfig`] before anything runs, the model is loaded once, and [`precis::batch`] does the
//! walking, resuming, writing and stopping. This file only prints notices, progress and the
//! final account, and picks the exit status: 130 when stopped by a signal, 1 when a file failed.

use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use precis::batch::{
    BatchPlan, BatchReport, BatchSummary, Destination, FolderBatch, RunIdentity, RunOptions, Shard,
    StopCause, StopFlag, WalkOptions, walk,
};
use precis::{LoadOptions, Summarizer, SummaryOptions};

use super::allocator;
use super::common::{DEFAULT_BATCH_TOKENS, GenerationArgs, InputArgs, ModelArgs, OutputFormat};
use super::progress::BatchProgress;
use super::{EXIT_FAILURE, UsageError};

/// Exit status after a stop request (SIGINT, SIGTERM): 128 + SIGINT, as shells report Ctrl-C.
const EXIT_STOPPED: u8 = 130;

const STDOUT_NAME: &str = "<stdout>";

#[derive(Debug, Args)]
#[command(
    after_help = "Exit status: 0 all done, 1 some files failed (listed at the end), \
                        2 usage error, 130 stopped by Ctrl-C or SIGTERM (rerun to resume)."
)]
pub struct BatchArgs {
    /// Folder of articles, walked recursively (symbolic links followed, loops skipped).
    #[arg(
        value_name = "IN_DIR",
        required_unless_present = "input_jsonl",
        conflicts_with = "input_jsonl"
    )]
    pub in_dir: Option<PathBuf>,

    /// Output folder: OUT_DIR/<path>.summary.txt per article plus precis-manifest.jsonl; `-`
    /// writes JSON lines to standard output instead.
    #[arg(
        short,
        long,
        value_name = "OUT_DIR",
        required_unless_present_any = ["jsonl", "input_jsonl"]
    )]
    pub output: Option<PathBuf>,

    /// Write one JSON line per article to standard output (the same as `-o -`).
    #[arg(long, conflicts_with = "output")]
    pub jsonl: bool,

    /// Read `{"id": ..., "text": ...}` lines from FILE (`-` for standard input) instead of a
    /// folder; results go to standard output as JSON lines.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["hidden", "extensions", "globs", "shard", "force", "format"])]
    pub input_jsonl: Option<PathBuf>,

    /// Also walk files and folders whose name starts with a dot.
    #[arg(long)]
    pub hidden: bool,

    /// File extensions to summarise, repeatable or comma-separated [default: txt,md,html,htm].
    #[arg(long = "ext", value_name = "EXT", value_delimiter = ',')]
    pub extensions: Vec<String>,

    /// Only files matching this glob too (repeatable): `*.md` matches names at any depth,
    /// `2024/**/*.md` whole relative paths.
    #[arg(long = "glob", value_name = "GLOB")]
    pub globs: Vec<String>,

    /// Summary file type in OUT_DIR: text (<path>.summary.txt) or json (<path>.summary.json).
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,

    /// Most padded input tokens (rows × longest row) per model batch; bounds memory.
    #[arg(long, value_name = "TOKENS", default_value_t = DEFAULT_BATCH_TOKENS)]
    pub batch_tokens: usize,

    /// Articles read and summarised together; a stop request is answered after the round.
    #[arg(long, value_name = "N", default_value_t = precis::batch::DEFAULT_DOCS_PER_ROUND)]
    pub docs_per_round: usize,

    /// Summarise again the files an earlier run finished with the same model and options.
    #[arg(long)]
    pub force: bool,

    /// Process only shard I of N (I from 0), e.g. `--shard $SLURM_ARRAY_TASK_ID/4`; every
    /// file belongs to exactly one shard.
    #[arg(long, value_name = "I/N")]
    pub shard: Option<String>,

    #[command(flatten)]
    pub model: ModelArgs,

    #[command(flatten)]
    pub generation: GenerationArgs,

    #[command(flatten)]
    pub input: InputArgs,
}

pub fn run(args: BatchArgs, quiet: bool) -> anyhow::Result<ExitCode> {
    let config = BatchConfig::from_args(args, quiet)?;
    // Installed before the model loads, so that Ctrl-C during a long load is a clean stop too.
    let stop = StopFlag::on_signals()?;
    let summarizer = Summarizer::load(&config.load)
        .with_context(|| format!("cannot load model '{}'", config.load.model))?;
    allocator::after_load();
    let output_options = config
        .options
        .output_options(summarizer.dtype(), summarizer.quantization());
    let identity = RunIdentity::new(summarizer.name(), &output_options)?;
    let resumable = matches!(config.output, Output::Dir { .. });
    let plan = config.input.plan(config.output, identity)?;
    print_notices(&plan, quiet);

    let mut progress = BatchProgress::new(plan.total, quiet);
    let options = config.options;
    let report = plan
        .run(
            &config.run,
            |texts| summarise(&summarizer, texts, &options),
            &stop,
            |event| progress.update(event),
        )
        .context("the batch stopped early")?;
    progress.finish();
    Ok(finish(&report, resumable, quiet))
}

fn summarise(
    summarizer: &Summarizer,
    texts: &[&str],
    options: &SummaryOptions,
) -> precis::Result<Vec<precis::Result<BatchSummary>>> {
    let summaries = summarizer.summarize_many(texts, options)?;
    Ok(summaries
        .into_iter()
        .map(|summary| summary.map(BatchSummary::from))
        .collect())
}

/// Everything a batch needs, checked: the flags turned once into library options.
struct BatchConfig {
    load: LoadOptions,
    options: SummaryOptions,
    run: RunOptions,
    input: Input,
    output: Output,
}

enum Input {
    Folder {
        walk: WalkOptions,
        shard: Option<Shard>,
    },
    /// `--input-jsonl`, already opened, so that a missing file fails before the model loads.
    Jsonl {
        name: String,
        reader: Box<dyn BufRead>,
    },
}

enum Output {
    Dir {
        out_dir: PathBuf,
        format: precis::batch::OutputFormat,
        force: bool,
    },
    Stdout,
}

impl BatchConfig {
    fn from_args(args: BatchArgs, quiet: bool) -> anyhow::Result<BatchConfig> {
        let options = args
            .input
            .summary_options(&args.generation, Some(args.batch_tokens))?;
        let run = RunOptions {
            docs_per_round: args.docs_per_round,
            max_bytes: args.input.max_bytes,
        };
        run.validate()?;
        let output = output(&args)?;
        let input = input(&args)?;
        Ok(BatchConfig {
            load: args.model.load_options(quiet)?,
            options,
            run,
            input,
            output,
        })
    }
}

fn output(args: &BatchArgs) -> anyhow::Result<Output> {
    let out_dir = match &args.output {
        Some(path) if path.as_os_str() != "-" => path.clone(),
        _ => {
            // JSON lines on stdout: nothing is written to disk, so nothing is resumed.
            let useless = [("--force", args.force), ("--format", args.format.is_some())];
            if let Some((flag, _)) = useless.iter().find(|(_, given)| *given) {
                return Err(UsageError(format!(
                    "{flag} applies only to an output folder (-o OUT_DIR); JSON lines on \
                     standard output are never resumed and always JSON"
                ))
                .into());
            }
            return Ok(Output::Stdout);
        }
    };
    if args.input_jsonl.is_some() {
        return Err(UsageError(format!(
            "--input-jsonl writes JSON lines to standard output, not to a folder; leave out \
             -o {} or give -o -",
            out_dir.display()
        ))
        .into());
    }
    let format = match args.format.unwrap_or(OutputFormat::Text) {
        OutputFormat::Text => precis::batch::OutputFormat::Text,
        OutputFormat::Json => precis::batch::OutputFormat::Json,
    };
    Ok(Output::Dir {
        out_dir,
        format,
        force: args.force,
    })
}

fn input(args: &BatchArgs) -> anyhow::Result<Input> {
    if let Some(path) = &args.input_jsonl {
        return open_jsonl(path);
    }
    let in_dir = args
        .in_dir
        .clone()
        .ok_or_else(|| UsageError("give an input folder IN_DIR, or --input-jsonl FILE".into()))?;
    // Checked now so that a mistyped folder fails before the model loads.
    walk::canonical_input_dir(&in_dir)?;
    let mut walk = WalkOptions::new(in_dir);
    if !args.extensions.is_empty() {
        walk.extensions = args.extensions.clone();
    }
    walk.globs = args.globs.clone();
    walk.hidden = args.hidden;
    walk.validate()?;
    let shard = args.shard.as_deref().map(Shard::parse).transpose()?;
    Ok(Input::Folder { walk, shard })
}

fn open_jsonl(path: &Path) -> anyhow::Result<Input> {
    if path.as_os_str() == "-" {
        return Ok(Input::Jsonl {
            name: "<stdin>".into(),
            reader: Box::new(io::stdin().lock()),
        });
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(UsageError(format!(
                "--input-jsonl {}: no such file; check the path (use - for standard input)",
                path.display()
            ))
            .into());
        }
        Err(source) => {
            let path = path.to_path_buf();
            return Err(precis::Error::Io { path, source }.into());
        }
    };
    Ok(Input::Jsonl {
        name: path.display().to_string(),
        reader: Box::new(BufReader::new(file)),
    })
}

impl Input {
    fn plan(self, output: Output, identity: RunIdentity) -> precis::Result<BatchPlan> {
        let (walk, shard) = match self {
            Input::Jsonl { name, reader } => {
                return Ok(BatchPlan::for_jsonl(
                    &name,
                    reader,
                    STDOUT_NAME,
                    io::stdout(),
                ));
            }
            Input::Folder { walk, shard } => (walk, shard),
        };
        let (destination, force) = match output {
            Output::Dir {
                out_dir,
                format,
                force,
            } => (Destination::Dir { out_dir, format }, force),
            Output::Stdout => {
                let writer = Box::new(io::stdout());
                let name = STDOUT_NAME.to_string();
                (Destination::Stream { name, writer }, false)
            }
        };
        BatchPlan::for_folder(FolderBatch {
            walk,
            destination,
            shard,
            force,
            identity,
        })
    }
}

/// What the plan found before any model work.
fn print_notices(plan: &BatchPlan, quiet: bool) {
    if quiet {
        return;
    }
    if let Some(out_dir) = &plan.excluded_out_dir {
        eprintln!(
            "precis: note: the output folder {} is inside the input folder; it is left out of \
             the walk",
            out_dir.display()
        );
    }
    if plan.removed_temp_files > 0 {
        eprintln!(
            "precis: note: removed {} temporary files left by an interrupted run",
            plan.removed_temp_files
        );
    }
    const SHOWN: usize = 5;
    for (file, line) in plan.damaged_manifest_lines.iter().take(SHOWN) {
        eprintln!(
            "precis: warning: {}:{line}: not a manifest row; ignored, so its file may be \
             summarised again",
            file.display()
        );
    }
    let more = plan.damaged_manifest_lines.len().saturating_sub(SHOWN);
    if more > 0 {
        eprintln!("precis: warning: {more} more damaged manifest lines ignored");
    }
    if plan.up_to_date > 0 {
        eprintln!(
            "precis: {} files already summarised with this model and these options are left \
             as they are (--force redoes them)",
            plan.up_to_date
        );
    }
}

/// Prints the failed files and the one-line account, and returns the exit status.
fn finish(report: &BatchReport, resumable: bool, quiet: bool) -> ExitCode {
    for failed in &report.failed {
        eprintln!("precis: failed: {}: {}", failed.id, failed.message);
    }
    if !quiet {
        for skipped in &report.skipped {
            eprintln!("precis: skipped: {}: {}", skipped.id, skipped.message);
        }
        eprintln!("precis: {}", account(report));
    }
    if report.stopped == Some(StopCause::Signal) {
        let next = if resumable {
            "run the same command again to summarise the rest"
        } else {
            "the rest was not summarised"
        };
        eprintln!("precis: stopped by signal after the current round; {next}");
        return ExitCode::from(EXIT_STOPPED);
    }
    if report.has_failures() {
        let count = report.failed.len();
        eprintln!("precis: {count} failed (listed above); fix them and run the command again");
        return ExitCode::from(EXIT_FAILURE);
    }
    // A closed output stream (`| head`) ends the run early but is not an error.
    ExitCode::SUCCESS
}

/// `12 ok, 2 failed, 1 skipped, 30 up to date in 4.1s: 2.93 docs/s, 88.1 tokens/s`.
fn account(report: &BatchReport) -> String {
    format!(
        "{} ok, {} failed, {} skipped, {} up to date in {:.1}s: {:.2} docs/s, {:.1} tokens/s",
        report.ok,
        report.failed.len(),
        report.skipped.len(),
        report.up_to_date,
        report.elapsed.as_secs_f64(),
        report.docs_per_second(),
        report.tokens_per_second()
    )
}
