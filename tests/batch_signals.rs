//! `precis batch` started the ways long jobs are started (`nohup`, `cmd &` in a script) and
//! stopped mid-round by Ctrl-C, SIGTERM, a second Ctrl-C and SIGKILL: what each leaves behind
//! (complete summaries only, a readable manifest, no temporary files for good, untouched
//! inputs) and that a rerun finishes exactly the rest. Also stopped by a closed stdout.
//!
//! A run is signalled while *held* inside a round (see [`Held`]), never at a moment picked by a
//! timer, so every test sees the same sequence of events on a fast or a loaded machine.

#![cfg(target_os = "linux")] // holding a run relies on /proc and F_SETPIPE_SZ

mod common;

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::batch::*;
use libc::{SIGHUP, SIGINT, SIGKILL, SIGTERM};
use serde_json::Value;

/// Two-token greedy summaries with a minimum length (8) above the maximum (3): precis, like
/// transformers, then warns on every `generate` call, so each model batch (one document, with
/// `--batch-size 1`) writes a line to stderr from inside its round. That line is what holds a
/// run (see [`Held`]).
const WARNS_EACH_BATCH: &[&str] = &[
    "--max-length",
    "3",
    "--min-length",
    "8",
    "--num-beams",
    "1",
    "--batch-size",
    "1",
];

/// Articles per test: enough that a held run is far from its end.
const ARTICLES: usize = 40;

/// How precis is started.
#[derive(Debug, Clone, Copy)]
enum Launch {
    /// Directly, with SIGINT and SIGHUP at their defaults (whatever `cargo test` inherited).
    Direct,
    /// `nohup precis ...`: SIGHUP ignored.
    Nohup,
    /// `bash -c 'precis ... & wait'`: a background job of a non-interactive shell, which runs
    /// it with SIGINT (and SIGQUIT) ignored. The shell prints its pid first.
    Background,
}

impl Launch {
    fn command(self, args: &[&str]) -> Command {
        let batch: Vec<OsString> = batch_args(args, WARNS_EACH_BATCH);
        let mut command = match self {
            Launch::Direct => Command::new(PRECIS),
            Launch::Nohup => {
                let mut nohup = Command::new("nohup");
                nohup.arg(PRECIS);
                nohup
            }
            Launch::Background => {
                let mut bash = Command::new("bash");
                bash.args(["-c", r#""$0" "$@" & echo $!; wait $!"#, PRECIS]);
                bash
            }
        };
        command.args(batch);
        // SAFETY: signal() is async-signal-safe, as code between fork and exec must be.
        unsafe {
            command.pre_exec(|| {
                libc::signal(SIGINT, libc::SIG_DFL);
                libc::signal(SIGHUP, libc::SIG_DFL);
                Ok(())
            });
        }
        precis_through(command)
    }
}

/// A `precis batch` run whose stderr is a one-page pipe that nobody reads until
/// [`Held::finish`]. A few rounds of warnings fill it, and the run then blocks on its next
/// warning, inside a round, where it stays: a point at which signals can be sent without
/// racing the run, and where the round in flight has written nothing yet.
struct Held {
    child: Child,
    /// The precis process (a grandchild when started through a shell).
    pid: i32,
    stderr: std::io::PipeReader,
    _stdout: ChildStdout,
}

impl Held {
    fn start(launch: Launch, args: &[&str]) -> Held {
        let (stderr, writer) = std::io::pipe().expect("pipe");
        // SAFETY: F_SETPIPE_SZ on a pipe we own.
        let size = unsafe { libc::fcntl(stderr.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
        assert!(
            size > 0,
            "F_SETPIPE_SZ: {}",
            std::io::Error::last_os_error()
        );
        let mut command = launch.command(args);
        command.stdout(Stdio::piped()).stderr(writer);
        let mut child = command.spawn().expect("precis starts");
        drop(command); // our copy of the pipe's write end: EOF comes when precis is gone
        let mut stdout = child.stdout.take().expect("stdout");
        let pid = match launch {
            Launch::Background => read_pid(&mut stdout),
            Launch::Direct | Launch::Nohup => child.id() as i32,
        };
        let mut held = Held {
            child,
            pid,
            stderr,
            _stdout: stdout,
        };
        held.wait_until(blocked_writing_stderr, "blocked on its stderr");
        held
    }

    fn send(&self, signal: i32) {
        // SAFETY: kill() with a pid we started and a valid signal.
        let sent = unsafe { libc::kill(self.pid, signal) };
        assert_eq!(sent, 0, "kill: {}", std::io::Error::last_os_error());
    }

    /// Sends `signal` and waits until precis has taken it off its pending set (its handler
    /// runs, or the kernel dropped it as ignored), so that a next signal is a separate one.
    fn deliver(&mut self, signal: i32) {
        self.send(signal);
        self.wait_until(|pid| !pending(pid, signal), "to take the signal");
    }

    /// Polls `ready` (a bound guards against a hang; nothing is timed).
    fn wait_until(&mut self, ready: impl Fn(i32) -> bool, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ready(self.pid) {
            let ended = self.child.try_wait().expect("try_wait");
            assert!(
                ended.is_none(),
                "precis ended ({ended:?}) before being {what}"
            );
            assert!(Instant::now() < deadline, "precis not {what} after 120 s");
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Lets the run go on (reads its stderr to the end) and returns how it ended.
    fn finish(mut self) -> (ExitStatus, String) {
        let mut err = String::new();
        self.stderr.read_to_string(&mut err).expect("stderr");
        (self.child.wait().expect("wait"), err)
    }
}

fn read_pid(stdout: &mut ChildStdout) -> i32 {
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("pid line");
    line.trim().parse().expect("the shell prints precis's pid")
}

/// Whether a thread of `pid` is inside write(2) on fd 2.
fn blocked_writing_stderr(pid: i32) -> bool {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    let write = libc::SYS_write.to_string();
    tasks.filter_map(Result::ok).any(|task| {
        let call = fs::read_to_string(task.path().join("syscall")).unwrap_or_default();
        let mut fields = call.split_whitespace();
        fields.next() == Some(write.as_str()) && fields.next() == Some("0x2")
    })
}

/// A signal mask line of /proc/PID/status (`SigIgn`, `SigCgt`, `ShdPnd`, ...).
fn signal_mask(pid: i32, field: &str) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    u64::from_str_radix(line.trim(), 16).expect("hex mask")
}

fn has(mask: u64, signal: i32) -> bool {
    mask & (1 << (signal - 1)) != 0
}

fn pending(pid: i32, signal: i32) -> bool {
    ["ShdPnd", "SigPnd"]
        .iter()
        .any(|field| has(signal_mask(pid, field), signal))
}

/// An input folder of [`ARTICLES`] articles, the output folder beside it, and the arguments.
struct Job {
    dir: tempfile::TempDir,
    all: Vec<String>,
}

impl Job {
    fn new() -> Job {
        let dir = tempfile::tempdir().unwrap();
        let all = articles(&dir.path().join("in"), ARTICLES);
        Job { dir, all }
    }

    fn input(&self) -> std::path::PathBuf {
        self.dir.path().join("in")
    }

    fn out(&self) -> std::path::PathBuf {
        self.dir.path().join("out")
    }

    /// Small rounds and JSON summaries, so a cut-off summary could not pass for a whole one.
    fn args(&self) -> Vec<String> {
        let [input, out] = [self.input(), self.out()].map(|p| path_str(&p).to_string());
        let rest = ["-o", &out, "--docs-per-round", "2", "--format", "json"];
        [&[input.as_str()][..], &rest]
            .concat()
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn run(&self, launch: Launch) -> std::process::Output {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        launch.command(&args).output().expect("precis runs")
    }

    fn hold(&self, launch: Launch) -> Held {
        let args = self.args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Held::start(launch, &args)
    }

    /// What a stopped run must leave in the output folder: only complete summaries, each with
    /// an `ok` manifest row, every manifest line a row, no temporary files. Returns the rows.
    fn check_left_behind(&self) -> usize {
        let out = self.out();
        let written = files(&out);
        let temporary: Vec<&String> = written.keys().filter(|n| n.contains(".precis-")).collect();
        assert!(temporary.is_empty(), "temporary files left: {temporary:?}");
        let done = summaries(&out);
        for name in &done {
            let record: Value = serde_json::from_slice(&written[name]).expect("complete JSON");
            assert_eq!(record["status"], "ok", "{name}");
        }
        let recorded = statuses(&out); // panics on a line that is not a row
        let mut ok: Vec<String> = recorded
            .iter()
            .filter(|(_, status)| *status == "ok")
            .map(|(path, _)| format!("{path}.summary.json"))
            .collect();
        ok.sort();
        assert_eq!(ok, done, "one ok manifest row per summary");
        assert!(
            done.len() < self.all.len(),
            "stopped early: {} done",
            done.len()
        );
        done.len()
    }

    /// The same command again does exactly the files not done (`done` of them were).
    fn check_rerun_finishes_the_rest(&self, done: usize) -> String {
        let rerun = self.run(Launch::Direct);
        assert_status(&rerun, 0);
        let err = stderr(&rerun);
        let rest = self.all.len() - done;
        let account = format!("{rest} ok, 0 failed, 0 skipped, {done} up to date");
        assert!(err.contains(&account), "{err}");
        let mut complete: Vec<String> = self
            .all
            .iter()
            .map(|p| format!("{p}.summary.json"))
            .collect();
        complete.sort();
        assert_eq!(summaries(&self.out()), complete);
        assert_eq!(
            manifest_rows(&self.out()).len(),
            self.all.len(),
            "each file done once"
        );
        err
    }
}

#[test]
fn starts_and_finishes_under_nohup_and_as_a_background_job() {
    for launch in [Launch::Nohup, Launch::Background] {
        let job = Job::new();
        let before = files(&job.input());
        let output = job.run(launch);
        assert_status(&output, 0);
        let account = format!("{} ok, 0 failed", ARTICLES);
        assert!(
            stderr(&output).contains(&account),
            "{launch:?}: {}",
            stderr(&output)
        );
        assert_eq!(summaries(&job.out()).len(), ARTICLES, "{launch:?}");
        assert_eq!(files(&job.input()), before, "inputs are never modified");
    }
}

/// The ignored signal stays ignored: had precis taken it as a first stop request, SIGTERM would
/// be the second and exit at once, without finishing the round or saying so.
#[test]
fn an_inherited_ignored_sigint_or_sighup_stays_ignored_and_sigterm_still_stops() {
    for (launch, ignored) in [(Launch::Background, SIGINT), (Launch::Nohup, SIGHUP)] {
        let job = Job::new();
        let before = files(&job.input());
        let mut held = job.hold(launch);
        assert!(has(signal_mask(held.pid, "SigIgn"), ignored), "{launch:?}");
        assert!(has(signal_mask(held.pid, "SigCgt"), SIGTERM), "{launch:?}");
        held.deliver(ignored);
        held.deliver(SIGTERM);
        let (status, err) = held.finish();
        assert_eq!(status.code(), Some(130), "{launch:?}: {err}");
        assert!(err.contains("stopped by signal"), "{launch:?}: {err}");
        let done = job.check_left_behind();
        job.check_rerun_finishes_the_rest(done);
        assert_eq!(files(&job.input()), before, "inputs are never modified");
    }
}

/// Ctrl-C or SIGTERM mid-round: the round in flight finishes and is recorded, then exit 130.
#[test]
fn sigint_or_sigterm_stops_after_the_round_and_a_rerun_finishes_the_rest() {
    for signal in [SIGINT, SIGTERM] {
        let job = Job::new();
        let before = files(&job.input());
        let mut held = job.hold(Launch::Direct);
        let rows_held = manifest_rows(&job.out()).len();
        assert!(rows_held > 0, "some rounds were done before the hold");
        held.deliver(signal);
        let (status, err) = held.finish();
        assert_eq!(status.code(), Some(130), "signal {signal}: {err}");
        assert!(err.contains("stopped by signal"), "{err}");
        let done = job.check_left_behind();
        assert_eq!(
            done,
            rows_held + 2,
            "the round in flight was finished and recorded"
        );
        job.check_rerun_finishes_the_rest(done);
        assert_eq!(files(&job.input()), before, "inputs are never modified");
    }
}

/// A second Ctrl-C exits at once, mid-round: the round in flight is dropped whole.
#[test]
fn a_second_ctrl_c_exits_at_once_losing_only_the_round_in_flight() {
    let job = Job::new();
    let before = files(&job.input());
    let mut held = job.hold(Launch::Direct);
    let rows_held = manifest_rows(&job.out()).len();
    held.deliver(SIGINT);
    held.send(SIGINT);
    let (status, err) = held.finish();
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(!err.contains("stopped by signal"), "no orderly stop: {err}");
    let done = job.check_left_behind();
    assert_eq!(
        done, rows_held,
        "nothing of the round in flight was written"
    );
    job.check_rerun_finishes_the_rest(done);
    assert_eq!(files(&job.input()), before, "inputs are never modified");
}

/// SIGKILL mid-round, plus what a kill at a worse moment leaves: a temporary summary file
/// (killed mid-write) and half a manifest row (killed mid-append). The rerun removes the
/// temporary file, cuts the half row, and finishes exactly the rest; another shard's temporary
/// file is left to that shard, whose next run removes it.
#[test]
fn sigkill_mid_round_loses_nothing_and_the_rerun_clears_what_a_kill_leaves() {
    let job = Job::new();
    let before = files(&job.input());
    let held = job.hold(Launch::Direct);
    held.send(SIGKILL);
    let (status, _) = held.finish();
    assert_eq!(status.signal(), Some(SIGKILL));
    let done = job.check_left_behind();

    let out = job.out();
    let stale = out.join("part-1/.precis-Ab12Cd.tmp");
    fs::create_dir_all(stale.parent().unwrap()).unwrap();
    fs::write(&stale, b"{\"path\": \"part-1/doc-0").unwrap();
    let other_shard = out.join("part-2/.precis-shard-1-of-2-Ef34Gh.tmp");
    fs::create_dir_all(other_shard.parent().unwrap()).unwrap();
    fs::write(&other_shard, b"partial").unwrap();
    let manifest = out.join("precis-manifest.jsonl");
    let half_row = br#"{"path":"part-0/doc-039.txt","status":"ok","error":nu"#;
    let mut file = fs::OpenOptions::new().append(true).open(&manifest).unwrap();
    file.write_all(half_row).unwrap();
    drop(file);

    let err = job.check_rerun_finishes_the_rest(done);
    assert!(err.contains("removed 1 temporary files"), "{err}");
    assert!(!err.contains("warning"), "{err}");
    assert!(!stale.exists());
    assert!(
        other_shard.exists(),
        "another shard's file is not this run's to remove"
    );
    let args = job.args();
    let shard: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .chain(["--shard", "1/2"])
        .collect();
    let shard_run = batch_command(&shard, WARNS_EACH_BATCH).output().unwrap();
    assert_status(&shard_run, 0);
    assert!(!other_shard.exists(), "the shard's next run removes it");
    let temporary: Vec<String> = files(&out)
        .into_keys()
        .filter(|n| n.contains(".precis-"))
        .collect();
    assert!(temporary.is_empty(), "{temporary:?}");
    assert_eq!(files(&job.input()), before, "inputs are never modified");
}

/// `precis batch ... -o - | head -1`: once the reader is gone the run ends quietly. stdout is a
/// one-page pipe read one small block at a time, so at most a few of the 40 lines fit before
/// the reader goes, and the run must meet the closed pipe.
#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    articles(&input, ARTICLES);
    let (reader, writer) = std::io::pipe().expect("pipe");
    // SAFETY: F_SETPIPE_SZ on a pipe we own.
    let size = unsafe { libc::fcntl(reader.as_raw_fd(), libc::F_SETPIPE_SZ, 4096) };
    assert_eq!(
        size,
        4096,
        "F_SETPIPE_SZ: {}",
        std::io::Error::last_os_error()
    );
    let args = [path_str(&input), "-o", "-", "--docs-per-round", "1"];
    let mut command = batch_command(&args, FAST);
    command.stdout(writer).stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    drop(command);
    let mut lines = BufReader::with_capacity(64, reader).lines();
    let first = lines.next().expect("one line").unwrap();
    assert!(first.contains("\"status\":\"ok\""), "{first}");
    drop(lines); // like `| head -1`
    let output = child.wait_with_output().unwrap();
    assert_status(&output, 0);
    let err = stderr(&output);
    assert!(!err.contains("error"), "{err}");
    let done: usize = err
        .split(" ok,")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("an account line: {err}"));
    assert!(done < ARTICLES, "stopped when stdout closed: {err}");
}
