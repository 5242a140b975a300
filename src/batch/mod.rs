//! `precis batch`: summarise every article of a folder (or every record of a JSONL stream),
//! resumably, losing nothing. Model-independent: the summariser is a closure, so the CLI passes
//! `Summarizer::summarize_many` and tests pass a fake.
//!
//! A [`BatchPlan`] is made first (walk, shard, resume decisions), then [`BatchPlan::run`] works
//! through it a round of documents at a time: read and clean each, summarise the round in one
//! call, write each summary atomically, append the round's manifest rows, check the stop flag.
//! A bad file is recorded as failed and the run goes on; the [`BatchReport`] at the end says
//! what failed, so the CLI can set the exit status.

mod item;
pub mod jsonl;
pub mod manifest;
pub mod output;
pub mod resume;
mod run;
pub mod shard;
mod sink;
pub mod stop;
pub mod walk;

#[cfg(test)]
mod tests;

use std::fs;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

pub use item::{BatchSummary, Item, ItemId, Outcome, error_chain};
pub use jsonl::JsonlRecords;
pub use manifest::{Manifest, ManifestRow, Status};
pub use output::{DocRecord, OutputFormat, TempFiles};
pub use resume::{Decision, RedoReason, RunIdentity, options_hash};
pub use run::{BatchReport, DEFAULT_DOCS_PER_ROUND, ItemNote, Progress, RunOptions, StopCause};
pub use shard::Shard;
pub use stop::StopFlag;
pub use walk::{DEFAULT_EXTENSIONS, WalkEntry, WalkOptions};

use item::Source;
use jsonl::JsonlSink;
use manifest::ManifestWriter;
use run::Runner;
use sink::{DirSink, Sink};

use crate::{Error, Result};

/// Where results go.
pub enum Destination {
    /// Summary files and the manifest under `out_dir`, which is created if missing.
    Dir {
        out_dir: PathBuf,
        format: OutputFormat,
    },
    /// One JSON line per document (`-o -`, `--jsonl`); nothing is resumed. `name` is what
    /// messages call the stream, e.g. `<stdout>`.
    Stream {
        name: String,
        writer: Box<dyn Write>,
    },
}

/// A batch over an input folder.
pub struct FolderBatch {
    pub walk: WalkOptions,
    pub destination: Destination,
    pub shard: Option<Shard>,
    /// Redo files an earlier run finished.
    pub force: bool,
    /// The model and output-affecting options, recorded in the manifest for resuming.
    pub identity: RunIdentity,
}

/// What a batch will do, decided before any model work; [`BatchPlan::run`] does it.
pub struct BatchPlan {
    items: Box<dyn Iterator<Item = Result<Item>>>,
    sink: Box<dyn Sink>,
    /// Documents to process, when known (not for a JSONL input, which is read as it comes).
    pub total: Option<usize>,
    /// Files an earlier run finished, left alone.
    pub up_to_date: usize,
    /// The output folder, when it lay inside the input folder and was left out of the walk;
    /// the CLI should say so.
    pub excluded_out_dir: Option<PathBuf>,
    /// The manifest this run appends to.
    pub manifest_path: Option<PathBuf>,
    /// Manifest lines that could not be read (their files are redone); the CLI may warn.
    pub damaged_manifest_lines: Vec<(PathBuf, usize)>,
    /// Temporary files a killed run of this owner left in the output folder, now removed.
    pub removed_temp_files: usize,
}

impl BatchPlan {
    /// Plans a batch over a folder: walks it, keeps this shard's files, and (for an output
    /// folder) leaves out files done by an earlier run with the same model and options.
    ///
    /// Refuses an output folder that is the input folder or contains it; one inside the input
    /// folder is left out of the walk and named in [`BatchPlan::excluded_out_dir`].
    pub fn for_folder(batch: FolderBatch) -> Result<BatchPlan> {
        let in_dir = walk::canonical_input_dir(&batch.walk.in_dir)?;
        let shard = batch.shard;
        match batch.destination {
            Destination::Dir { out_dir, format } => {
                let out_dir = prepare_out_dir(&in_dir, &out_dir)?;
                let (entries, excluded) = list(&batch.walk, Some(&out_dir), shard)?;
                let resume = Resume {
                    out_dir,
                    format,
                    shard,
                    force: batch.force,
                };
                resume.plan(entries, batch.identity, excluded)
            }
            Destination::Stream { name, writer } => {
                let (entries, _) = list(&batch.walk, None, shard)?;
                let items = entries.into_iter().map(|entry| Ok(item(entry))).collect();
                Ok(BatchPlan::new(items, JsonlSink { name, writer }))
            }
        }
    }

    /// Plans a batch over a JSONL input (`--input-jsonl`), written as JSONL to `writer`.
    /// Records are read as the batch goes, so a pipe can feed it.
    pub fn for_jsonl(
        input_name: &str,
        reader: impl BufRead + 'static,
        output_name: &str,
        writer: impl Write + 'static,
    ) -> BatchPlan {
        let name = output_name.to_string();
        let mut plan = BatchPlan::new(Vec::new(), JsonlSink { name, writer });
        plan.items = Box::new(JsonlRecords::new(input_name, reader));
        plan.total = None;
        plan
    }

    fn new(items: Vec<Result<Item>>, sink: impl Sink + 'static) -> BatchPlan {
        BatchPlan {
            total: Some(items.len()),
            items: Box::new(items.into_iter()),
            sink: Box::new(sink),
            up_to_date: 0,
            excluded_out_dir: None,
            manifest_path: None,
            damaged_manifest_lines: Vec::new(),
            removed_temp_files: 0,
        }
    }

    /// Runs the plan. `summarize` gets the cleaned texts of one round and returns one result
    /// per text (an inner `Err` fails that document only; an outer `Err` ends the run, as
    /// after it nothing can be trusted to work). `progress` hears of every round and document.
    /// The run stops between rounds once `stop` is set, or when the output stream is closed.
    pub fn run<F, P>(
        mut self,
        options: &RunOptions,
        summarize: F,
        stop: &StopFlag,
        progress: P,
    ) -> Result<BatchReport>
    where
        F: FnMut(&[&str]) -> Result<Vec<Result<BatchSummary>>>,
        P: FnMut(Progress<'_>),
    {
        let mut report = BatchReport {
            up_to_date: self.up_to_date,
            ..BatchReport::default()
        };
        let runner = Runner {
            options,
            summarize,
            stop,
            progress,
            total: self.total,
        };
        runner.run(&mut self.items, self.sink.as_mut(), &mut report)?;
        Ok(report)
    }
}

/// This shard's entries of the walk, and the output folder if the walk left it out.
fn list(
    options: &WalkOptions,
    out_dir: Option<&Path>,
    shard: Option<Shard>,
) -> Result<(Vec<WalkEntry>, Option<PathBuf>)> {
    let listing = walk::walk(options, out_dir)?;
    let mine = |entry: &WalkEntry| shard.is_none_or(|shard| shard.contains(entry.relative()));
    let entries = listing.entries.into_iter().filter(mine).collect();
    Ok((entries, listing.excluded_out_dir))
}

/// Creates the output folder and checks it against the (canonical) input folder; returns it
/// canonical.
fn prepare_out_dir(in_dir: &Path, out_dir: &Path) -> Result<PathBuf> {
    let canonical = fs::create_dir_all(out_dir)
        .and_then(|()| fs::canonicalize(out_dir))
        .map_err(|source| Error::Write {
            path: out_dir.to_path_buf(),
            source,
        })?;
    let overlap = |problem| Error::OverlappingDirs {
        in_dir: in_dir.to_path_buf(),
        out_dir: out_dir.to_path_buf(),
        problem,
    };
    if canonical == in_dir {
        return Err(overlap("is the"));
    }
    if in_dir.starts_with(&canonical) {
        // Summaries mirror the input tree, so some could land among the inputs.
        return Err(overlap("contains the"));
    }
    Ok(canonical)
}

fn item(entry: WalkEntry) -> Item {
    match entry {
        WalkEntry::File(file) => Item {
            id: ItemId::Path(file.relative),
            source: Source::File(file.absolute),
        },
        WalkEntry::Skipped { relative, error } => Item {
            id: ItemId::Path(relative),
            source: Source::Skipped(error),
        },
        WalkEntry::Failed { relative, error } => Item {
            id: ItemId::Path(relative),
            source: Source::Failed(error),
        },
    }
}

/// The resume side of planning into an output folder.
struct Resume {
    out_dir: PathBuf,
    format: OutputFormat,
    shard: Option<Shard>,
    force: bool,
}

impl Resume {
    fn plan(
        self,
        entries: Vec<WalkEntry>,
        identity: RunIdentity,
        excluded_out_dir: Option<PathBuf>,
    ) -> Result<BatchPlan> {
        let temps = TempFiles::for_run(self.shard);
        let removed_temp_files = temps.remove_stale(&self.out_dir);
        let manifest = Manifest::load(&self.out_dir)?;
        let mut up_to_date = 0;
        let mut items = Vec::new();
        for entry in entries {
            if self.is_up_to_date(&entry, &manifest, &identity) {
                up_to_date += 1;
            } else {
                items.push(Ok(item(entry)));
            }
        }
        let manifest_path = manifest::manifest_path(&self.out_dir, self.shard);
        let writer = ManifestWriter::open(&manifest_path)?;
        let sink = DirSink {
            out_dir: self.out_dir,
            format: self.format,
            identity,
            manifest: writer,
            temps,
        };
        let mut plan = BatchPlan::new(items, sink);
        plan.up_to_date = up_to_date;
        plan.excluded_out_dir = excluded_out_dir;
        plan.manifest_path = Some(manifest_path);
        plan.damaged_manifest_lines = manifest.damaged_lines;
        plan.removed_temp_files = removed_temp_files;
        Ok(plan)
    }

    fn is_up_to_date(
        &self,
        entry: &WalkEntry,
        manifest: &Manifest,
        identity: &RunIdentity,
    ) -> bool {
        let WalkEntry::File(file) = entry else {
            return false;
        };
        let output = self.format.output_path(&self.out_dir, &file.relative);
        let output_relative = self.format.output_relative(&file.relative);
        let row = manifest.latest(&file.relative);
        let decision = resume::decide(
            &file.absolute,
            &output,
            &output_relative,
            row,
            identity,
            self.force,
        );
        decision == Decision::UpToDate
    }
}
