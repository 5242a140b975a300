//! Whole-batch tests with a fake summariser: planning, resuming, stopping, streaming.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::rc::Rc;

use super::*;

/// Summarises a text as its first words, counting calls and round sizes.
#[derive(Default)]
struct Fake {
    rounds: Vec<usize>,
}

impl Fake {
    fn summarize(&mut self, texts: &[&str]) -> Result<Vec<Result<BatchSummary>>> {
        self.rounds.push(texts.len());
        let summaries = texts.iter().map(|text| {
            if text.contains("FAIL") {
                return Err(Error::Input {
                    source_name: "fake".into(),
                    problem: crate::text::InputProblem::Empty,
                    source: None,
                });
            }
            let words: Vec<&str> = text.split_whitespace().collect();
            Ok(BatchSummary {
                text: format!("Summary: {}", words[..words.len().min(3)].join(" ")),
                output_ids: Some(vec![0, words.len() as u32, 1]),
                chunks: 1,
                input_tokens: words.len(),
                output_tokens: 4,
                seconds: 0.01,
            })
        });
        Ok(summaries.collect())
    }

    fn calls(&self) -> usize {
        self.rounds.len()
    }
}

/// Input files, written a minute ago: file times are only as fine as the kernel's clock tick,
/// and a summary written in the same tick as its input is (safely) not taken as newer.
fn tree(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, bytes) in files {
        write_old(&dir.path().join(path), bytes);
    }
    dir
}

fn write_old(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
    let a_minute_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
    let file = fs::File::options().write(true).open(path).expect("open");
    file.set_modified(a_minute_ago).expect("set mtime");
}

fn identity(beams: usize) -> RunIdentity {
    RunIdentity::new("fake-model", &serde_json::json!({ "num_beams": beams })).expect("hash")
}

fn folder(in_dir: &Path, out_dir: &Path) -> FolderBatch {
    FolderBatch {
        walk: WalkOptions::new(in_dir),
        destination: Destination::Dir {
            out_dir: out_dir.to_path_buf(),
            format: OutputFormat::Text,
        },
        shard: None,
        force: false,
        identity: identity(4),
    }
}

fn run_plan(plan: BatchPlan, fake: &mut Fake, docs_per_round: usize) -> BatchReport {
    let options = RunOptions {
        docs_per_round,
        max_bytes: Some(1000),
    };
    let report = plan.run(
        &options,
        |texts| fake.summarize(texts),
        &StopFlag::new(),
        |_| {},
    );
    report.expect("the run completes")
}

fn run_folder(batch: FolderBatch, fake: &mut Fake) -> BatchReport {
    run_plan(BatchPlan::for_folder(batch).expect("plan"), fake, 2)
}

/// Every file under `dir` with its bytes and modification time.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    let mut files = BTreeMap::new();
    for entry in walkdir::WalkDir::new(dir) {
        let entry = entry.expect("walkable");
        if entry.file_type().is_file() {
            let bytes = fs::read(entry.path()).expect("read");
            let modified = fs::metadata(entry.path())
                .and_then(|m| m.modified())
                .expect("mtime");
            files.insert(entry.path().display().to_string(), (bytes, modified));
        }
    }
    files
}

fn manifest_rows(out_dir: &Path) -> Vec<ManifestRow> {
    let text = fs::read_to_string(out_dir.join("precis-manifest.jsonl")).expect("manifest");
    text.lines()
        .map(|line| serde_json::from_str(line).expect("row"))
        .collect()
}

const ARTICLES: &[(&str, &[u8])] = &[
    ("a.txt", b"Alpha beta gamma delta."),
    ("sub/b.md", b"# Bravo\n\nCharlie delta echo."),
    (
        "sub/deep/c.html",
        b"<html><body><p>Hotel india juliet.</p></body></html>",
    ),
    ("empty.txt", b"  \n"),
    ("binary.txt", b"PK\x03\x04\0\0"),
    ("refused.txt", b"Please FAIL here."),
    ("skipped.pdf", b"%PDF"),
];

#[test]
fn writes_summaries_and_manifest_rows_and_goes_on_after_bad_files() {
    let input = tree(ARTICLES);
    let out = tempfile::tempdir().expect("temp dir");
    let mut fake = Fake::default();
    let report = run_folder(folder(input.path(), out.path()), &mut fake);

    assert_eq!(report.ok, 3);
    let failed: Vec<&str> = report.failed.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(failed, ["binary.txt", "empty.txt", "refused.txt"]);
    assert!(
        report.failed[0]
            .message
            .contains("looks like a binary file"),
        "{:?}",
        report.failed
    );
    assert_eq!(
        (report.up_to_date, report.skipped.len(), report.stopped),
        (0, 0, None)
    );
    assert_eq!(report.input_tokens, 4 + 4 + 3);
    // Six files in rounds of two; the unreadable ones never reach the model.
    assert_eq!(fake.rounds, [1, 1, 2]);

    let summary = fs::read_to_string(out.path().join("sub/b.md.summary.txt")).expect("summary");
    assert_eq!(summary, "Summary: Bravo Charlie delta\n");
    assert!(out.path().join("sub/deep/c.html.summary.txt").is_file());
    assert!(!out.path().join("empty.txt.summary.txt").exists());

    let rows = manifest_rows(out.path());
    assert_eq!(rows.len(), 6);
    let a = rows
        .iter()
        .find(|r| r.path == "a.txt")
        .expect("row for a.txt");
    assert_eq!(a.status, Status::Ok);
    assert_eq!(a.output.as_deref(), Some("a.txt.summary.txt"));
    assert_eq!(
        (a.model.as_str(), a.input_tokens, a.output_tokens),
        ("fake-model", 4, 4)
    );
    let refused = rows.iter().find(|r| r.path == "refused.txt").expect("row");
    assert_eq!(refused.status, Status::Failed);
    assert_eq!(
        refused.error.as_deref(),
        Some("fake: is empty or only whitespace; nothing to summarise")
    );
}

#[test]
fn inputs_are_byte_identical_and_untouched_after_a_run() {
    let input = tree(ARTICLES);
    let out = tempfile::tempdir().expect("temp dir");
    let before = snapshot(input.path());
    run_folder(folder(input.path(), out.path()), &mut Fake::default());
    assert_eq!(snapshot(input.path()), before);
}

#[test]
fn a_second_run_resumes_and_redoes_only_failures() {
    let input = tree(ARTICLES);
    let out = tempfile::tempdir().expect("temp dir");
    run_folder(folder(input.path(), out.path()), &mut Fake::default());
    write_old(&input.path().join("refused.txt"), b"Now it works."); // fixed before the rerun

    let mut fake = Fake::default();
    let report = run_folder(folder(input.path(), out.path()), &mut fake);
    assert_eq!(report.up_to_date, 3);
    assert_eq!(report.ok, 1);
    assert_eq!(report.failed.len(), 2); // empty and binary, tried again
    assert_eq!(fake.rounds, [1]);

    let mut fake = Fake::default();
    let report = run_folder(folder(input.path(), out.path()), &mut fake);
    assert_eq!(
        (report.up_to_date, report.ok, report.failed.len()),
        (4, 0, 2)
    );
    assert!(fake.rounds.is_empty());
}

#[test]
fn an_input_edited_after_its_summary_is_redone() {
    let input = tree(&ARTICLES[..2]);
    let out = tempfile::tempdir().expect("temp dir");
    run_folder(folder(input.path(), out.path()), &mut Fake::default());
    fs::write(input.path().join("a.txt"), b"Edited just now.").expect("edit");
    let report = run_folder(folder(input.path(), out.path()), &mut Fake::default());
    assert_eq!((report.up_to_date, report.ok), (1, 1));
    let summary = fs::read_to_string(out.path().join("a.txt.summary.txt")).expect("summary");
    assert_eq!(summary, "Summary: Edited just now.\n");
}

#[test]
fn changed_options_or_force_redo_everything() {
    let input = tree(&ARTICLES[..3]);
    let out = tempfile::tempdir().expect("temp dir");
    run_folder(folder(input.path(), out.path()), &mut Fake::default());

    let mut changed = folder(input.path(), out.path());
    changed.identity = identity(2);
    let report = run_folder(changed, &mut Fake::default());
    assert_eq!((report.up_to_date, report.ok), (0, 3));

    let mut forced = folder(input.path(), out.path());
    forced.identity = identity(2);
    forced.force = true;
    let report = run_folder(forced, &mut Fake::default());
    assert_eq!((report.up_to_date, report.ok), (0, 3));
    assert_eq!(manifest_rows(out.path()).len(), 9);
}

#[test]
fn stop_flag_stops_after_the_current_round() {
    let input = tree(&[
        ("1.txt", b"one"),
        ("2.txt", b"two"),
        ("3.txt", b"three"),
        ("4.txt", b"four"),
        ("5.txt", b"five"),
    ]);
    let out = tempfile::tempdir().expect("temp dir");
    let plan = BatchPlan::for_folder(folder(input.path(), out.path())).expect("plan");
    let stop = StopFlag::new();
    let mut fake = Fake::default();
    let summarize = |texts: &[&str]| {
        stop.request(); // as if Ctrl-C arrived while the model works
        fake.summarize(texts)
    };
    let options = RunOptions {
        docs_per_round: 2,
        max_bytes: None,
    };
    let report = plan.run(&options, summarize, &stop, |_| {}).expect("run");
    assert_eq!(report.stopped, Some(StopCause::Signal));
    assert_eq!(report.ok, 2);
    assert_eq!(fake.calls(), 1);
    assert_eq!(manifest_rows(out.path()).len(), 2);
    assert!(out.path().join("2.txt.summary.txt").is_file());
    assert!(!out.path().join("3.txt.summary.txt").exists());

    // The next run picks up where this one stopped.
    let mut fake = Fake::default();
    let report = run_folder(folder(input.path(), out.path()), &mut fake);
    assert_eq!((report.up_to_date, report.ok), (2, 3));
}

#[test]
fn a_summariser_error_ends_the_run_keeping_finished_rounds() {
    let input = tree(&[("1.txt", b"one"), ("2.txt", b"two"), ("3.txt", b"three")]);
    let out = tempfile::tempdir().expect("temp dir");
    let plan = BatchPlan::for_folder(folder(input.path(), out.path())).expect("plan");
    let mut fake = Fake::default();
    let summarize = |texts: &[&str]| {
        if fake.calls() == 1 {
            return Err(Error::Device("cuda:0".into(), "device lost".into()));
        }
        fake.summarize(texts)
    };
    let options = RunOptions {
        docs_per_round: 2,
        max_bytes: None,
    };
    let error = plan
        .run(&options, summarize, &StopFlag::new(), |_| {})
        .expect_err("fatal");
    assert!(matches!(error, Error::Device(..)));
    assert_eq!(manifest_rows(out.path()).len(), 2);
}

#[test]
fn a_summariser_returning_the_wrong_count_is_an_error_not_a_panic() {
    let input = tree(&[("1.txt", b"one"), ("2.txt", b"two")]);
    let out = tempfile::tempdir().expect("temp dir");
    let plan = BatchPlan::for_folder(folder(input.path(), out.path())).expect("plan");
    let options = RunOptions::default();
    let error = plan
        .run(&options, |_| Ok(Vec::new()), &StopFlag::new(), |_| {})
        .expect_err("broken summariser");
    assert_eq!(
        error.to_string(),
        "the summariser returned 0 results for 2 texts"
    );
}

#[test]
fn progress_counts_every_document() {
    let input = tree(&ARTICLES[..4]);
    let out = tempfile::tempdir().expect("temp dir");
    let plan = BatchPlan::for_folder(folder(input.path(), out.path())).expect("plan");
    assert_eq!(plan.total, Some(4));
    let mut events = Vec::new();
    let mut fake = Fake::default();
    let options = RunOptions {
        docs_per_round: 3,
        max_bytes: None,
    };
    let progress = |event: Progress<'_>| match event {
        Progress::RoundStarted { files, .. } => events.push(format!("round of {files}")),
        Progress::FileDone {
            done,
            total,
            id,
            status,
        } => events.push(format!("{done}/{} {id} {status:?}", total.unwrap_or(0))),
    };
    plan.run(&options, |t| fake.summarize(t), &StopFlag::new(), progress)
        .expect("run");
    assert_eq!(
        events,
        [
            "round of 3",
            "1/4 a.txt Ok",
            "2/4 empty.txt Failed",
            "3/4 sub/b.md Ok",
            "round of 1",
            "4/4 sub/deep/c.html Ok",
        ]
    );
}

#[test]
fn out_dir_inside_in_dir_is_left_out_so_summaries_are_not_summarised() {
    let input = tree(&ARTICLES[..2]);
    let out = input.path().join("summaries");
    let plan = BatchPlan::for_folder(folder(input.path(), &out)).expect("plan");
    let canonical = fs::canonicalize(&out).expect("created");
    assert_eq!(plan.excluded_out_dir, Some(canonical));
    run_plan(plan, &mut Fake::default(), 2);
    assert!(out.join("a.txt.summary.txt").is_file());

    let mut fake = Fake::default();
    let report = run_folder(folder(input.path(), &out), &mut fake);
    assert_eq!((report.up_to_date, report.ok), (2, 0));
}

#[test]
fn out_dir_equal_to_or_containing_in_dir_is_refused() {
    let root = tree(&[("articles/a.txt", b"text")]);
    let articles = root.path().join("articles");
    let same = BatchPlan::for_folder(folder(&articles, &articles))
        .err()
        .expect("refused");
    assert!(same.to_string().contains("is the input folder"), "{same}");
    let parent = BatchPlan::for_folder(folder(&articles, root.path()))
        .err()
        .expect("refused");
    let message = parent.to_string();
    assert!(message.contains("contains the input folder"), "{message}");
    assert!(
        message.ends_with("choose an output folder outside the inputs"),
        "{message}"
    );
}

#[test]
fn shards_split_the_work_and_share_an_output_folder() {
    let files: Vec<(String, &[u8])> = (0..20)
        .map(|i| (format!("d{}/f{i}.txt", i % 3), &b"Some words here."[..]))
        .collect();
    let files: Vec<(&str, &[u8])> = files.iter().map(|(p, b)| (p.as_str(), *b)).collect();
    let input = tree(&files);
    let out = tempfile::tempdir().expect("temp dir");
    let mut done = 0;
    for index in 0..3 {
        let mut batch = folder(input.path(), out.path());
        batch.shard = Some(Shard::new(index, 3).expect("valid"));
        let report = run_folder(batch, &mut Fake::default());
        assert!(report.ok > 0, "shard {index} got nothing");
        done += report.ok;
    }
    assert_eq!(done, 20);
    assert!(
        out.path()
            .join("precis-manifest.shard-2-of-3.jsonl")
            .is_file()
    );
    let report = run_folder(folder(input.path(), out.path()), &mut Fake::default());
    assert_eq!((report.up_to_date, report.ok), (20, 0));
}

#[test]
fn json_output_files_hold_the_record() {
    let input = tree(&ARTICLES[..1]);
    let out = tempfile::tempdir().expect("temp dir");
    let mut batch = folder(input.path(), out.path());
    batch.destination = Destination::Dir {
        out_dir: out.path().into(),
        format: OutputFormat::Json,
    };
    run_folder(batch, &mut Fake::default());
    let text = fs::read_to_string(out.path().join("a.txt.summary.json")).expect("json file");
    let record: serde_json::Value = serde_json::from_str(&text).expect("json");
    assert_eq!(record["path"], "a.txt");
    assert_eq!(record["summary"], "Summary: Alpha beta gamma");
    assert_eq!(record["status"], "ok");
}

/// A `Write` the test can read back after the plan (which owns its writer) is gone.
#[derive(Clone, Default)]
struct Shared(Rc<RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().write(bytes)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Shared {
    fn lines(&self) -> Vec<serde_json::Value> {
        let bytes = self.0.borrow();
        let text = std::str::from_utf8(&bytes).expect("utf-8");
        text.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line"))
            .collect()
    }
}

#[test]
fn streams_one_json_line_per_document() {
    let input = tree(&ARTICLES[..4]);
    let stdout = Shared::default();
    let mut batch = folder(input.path(), Path::new("unused"));
    batch.destination = Destination::Stream {
        name: "<stdout>".into(),
        writer: Box::new(stdout.clone()),
    };
    let report = run_folder(batch, &mut Fake::default());
    assert_eq!(report.ok, 3);
    let lines = stdout.lines();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0]["path"], "a.txt");
    assert_eq!(lines[0]["summary"], "Summary: Alpha beta gamma");
    assert_eq!(lines[1]["status"], "failed");
    assert!(
        lines[1]["error"]
            .as_str()
            .expect("message")
            .contains("is empty")
    );
    assert!(!Path::new("unused").exists());
}

#[test]
fn a_closed_output_stream_ends_the_run_quietly() {
    struct ClosedPipe;
    impl Write for ClosedPipe {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let input = tree(&ARTICLES[..3]);
    let mut batch = folder(input.path(), Path::new("unused"));
    batch.destination = Destination::Stream {
        name: "<stdout>".into(),
        writer: Box::new(ClosedPipe),
    };
    let mut fake = Fake::default();
    let report = run_folder(batch, &mut fake);
    assert_eq!(report.stopped, Some(StopCause::OutputClosed));
    assert_eq!(fake.calls(), 1);
}

#[test]
fn jsonl_input_records_stream_out_with_bad_lines_failed() {
    let input = "{\"id\": \"x\", \"text\": \"Kilo lima mike.\"}\n{\"id\": 2}\n{\"id\": 3, \"text\": \"\"}\n";
    let stdout = Shared::default();
    let plan = BatchPlan::for_jsonl("in.jsonl", input.as_bytes(), "<stdout>", stdout.clone());
    assert_eq!(plan.total, None);
    let report = run_plan(plan, &mut Fake::default(), 32);
    assert_eq!((report.ok, report.failed.len()), (1, 2));
    assert_eq!(report.failed[0].id, "line 2 (id 2)");
    let lines = stdout.lines();
    assert_eq!(lines[0]["id"], "x");
    assert_eq!(lines[0]["line"], 1);
    assert_eq!(lines[0]["summary"], "Summary: Kilo lima mike.");
    assert_eq!(lines[1]["status"], "failed");
    assert!(
        lines[1]["error"]
            .as_str()
            .expect("message")
            .starts_with("in.jsonl:2: not a JSON object")
    );
    assert!(
        lines[2]["error"]
            .as_str()
            .expect("message")
            .starts_with("in.jsonl:3: is empty")
    );
}

/// Files that go bad in ways root cannot get round: too large, deleted between the listing and
/// the read, unreadable (/proc/self/mem, whose first page is never mapped), and a named pipe
/// (never opened, or the run would wait for a writer forever). Each fails or is skipped alone.
#[test]
fn too_large_vanished_unreadable_and_special_files_fail_alone() {
    let input = tree(&[
        ("big.txt", &[b'a'; 2000][..]),
        ("ok.txt", b"fine text"),
        ("vanished.txt", b"here while listed"),
    ]);
    #[cfg(target_os = "linux")]
    std::os::unix::fs::symlink("/proc/self/mem", input.path().join("mem.txt")).expect("symlink");
    #[cfg(unix)]
    {
        let fifo = input.path().join("pipe.txt");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        assert!(made.expect("mkfifo runs").success());
    }
    let out = tempfile::tempdir().expect("temp dir");
    let plan = BatchPlan::for_folder(folder(input.path(), out.path())).expect("plan");
    fs::remove_file(input.path().join("vanished.txt")).expect("remove");
    let report = run_plan(plan, &mut Fake::default(), 2);

    let failed: BTreeMap<&str, &str> = report
        .failed
        .iter()
        .map(|n| (n.id.as_str(), n.message.as_str()))
        .collect();
    let mut expected = vec!["big.txt", "vanished.txt"];
    if cfg!(target_os = "linux") {
        expected.insert(1, "mem.txt");
    }
    assert_eq!(failed.keys().copied().collect::<Vec<_>>(), expected);
    assert!(failed["big.txt"].contains("over the input limit of 1000 bytes"));
    assert!(
        failed["vanished.txt"].contains("no such file"),
        "{failed:?}"
    );
    #[cfg(target_os = "linux")]
    assert!(failed["mem.txt"].contains("reading failed"), "{failed:?}");
    #[cfg(unix)]
    {
        let skipped: Vec<&str> = report.skipped.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(skipped, ["pipe.txt"]);
        assert!(report.skipped[0].message.contains("named pipe"));
    }
    assert_eq!(report.ok, 1);
    let statuses: Vec<(String, Status)> = manifest_rows(out.path())
        .into_iter()
        .map(|row| (row.path, row.status))
        .collect();
    assert_eq!(statuses.len(), expected.len() + 2, "{statuses:?}");
}
