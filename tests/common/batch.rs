//! Helpers for the `precis batch` tests (`tests/batch.rs`, `tests/batch_signals.rs`): running
//! the binary on the tiny T5 fixture, writing article trees and reading what a run left behind.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

/// Short, greedy generation: these tests are about files, not summaries.
pub const FAST: &[&str] = &[
    "--max-new-tokens",
    "8",
    "--num-beams",
    "1",
    "--min-length",
    "1",
];

pub fn precis() -> Command {
    precis_through(Command::new(PRECIS))
}

/// The binary under test.
pub const PRECIS: &str = env!("CARGO_BIN_EXE_precis");

/// `launcher` (precis itself, or a program that starts it) with the environment every test
/// gives precis: never reach for the network, whatever the environment says.
pub fn precis_through(mut launcher: Command) -> Command {
    launcher
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("PRECIS_MODEL")
        .env_remove("PRECIS_LOG");
    launcher
}

/// The same, with summaries of 4 tokens: other output-affecting options.
pub const SHORTER: &[&str] = &[
    "--max-new-tokens",
    "4",
    "--num-beams",
    "1",
    "--min-length",
    "1",
];

/// `precis batch ARGS --model t5-tiny GENERATION...`.
pub fn batch_command(args: &[&str], generation: &[&str]) -> Command {
    let mut command = precis();
    command.args(batch_args(args, generation));
    command
}

/// The arguments of [`batch_command`], for a launcher that runs precis.
pub fn batch_args(args: &[&str], generation: &[&str]) -> Vec<OsString> {
    let model = super::fixture_dir("t5-tiny").into_os_string();
    let mut all: Vec<OsString> = vec!["batch".into()];
    all.extend(args.iter().map(OsString::from));
    all.extend(["--model".into(), model]);
    all.extend(generation.iter().map(OsString::from));
    all
}

/// `precis batch ARGS` with the tiny model and [`FAST`] settings, run to the end.
pub fn batch(args: &[&str]) -> Output {
    batch_command(args, FAST).output().expect("precis runs")
}

pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn assert_status(output: &Output, status: i32) {
    assert_eq!(
        output.status.code(),
        Some(status),
        "exit status; stderr:\n{}",
        stderr(output)
    );
    assert!(!stderr(output).contains("panicked"), "{}", stderr(output));
}

pub fn write(root: &Path, relative: &str, bytes: &[u8]) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    fs::write(path, bytes).expect("write");
}

/// A short article whose wording differs with `n`.
pub fn article(n: usize) -> String {
    let towns = ["harbour town", "hill village", "river city", "market town"];
    let works = ["stone pier", "old library", "railway bridge", "school roof"];
    format!(
        "The {} voted on Tuesday to rebuild its {} after storm {n} damaged it last winter. \
         Residents said the repairs would take about {} months, and the council expects the \
         work to cost less than planned.",
        towns[n % towns.len()],
        works[(n / 4) % works.len()],
        n % 9 + 2
    )
}

/// `count` articles `doc-NNN.txt`, spread over a few subfolders.
pub fn articles(root: &Path, count: usize) -> Vec<String> {
    (0..count)
        .map(|n| {
            let relative = format!("part-{}/doc-{n:03}.txt", n % 3);
            write(root, &relative, article(n).as_bytes());
            relative
        })
        .collect()
}

/// Every regular file under `root` by `/`-separated relative path, with its bytes; symbolic
/// links are not followed.
pub fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    if !root.exists() {
        return found;
    }
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            let kind = fs::symlink_metadata(&path).expect("metadata").file_type();
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                let relative = path.strip_prefix(root).expect("below root");
                let relative = relative.to_string_lossy().replace('\\', "/");
                found.insert(relative, fs::read(&path).expect("read"));
            }
        }
    }
    found
}

/// The summary files under `out` (names ending `.summary.txt` / `.summary.json`).
pub fn summaries(out: &Path) -> Vec<String> {
    files(out)
        .into_keys()
        .filter(|name| name.contains(".summary."))
        .collect()
}

/// The rows of every manifest in `out`, in file and line order.
pub fn manifest_rows(out: &Path) -> Vec<Value> {
    let mut rows = Vec::new();
    for (name, bytes) in files(out) {
        if name.starts_with("precis-manifest") && name.ends_with(".jsonl") {
            let text = String::from_utf8(bytes).expect("UTF-8 manifest");
            rows.extend(text.lines().map(|line| {
                serde_json::from_str::<Value>(line).expect("every manifest line is JSON")
            }));
        }
    }
    rows
}

/// The latest status per path, as the manifest records it.
pub fn statuses(out: &Path) -> BTreeMap<String, String> {
    manifest_rows(out)
        .iter()
        .map(|row| (row["path"].as_str().unwrap().into(), text(&row["status"])))
        .collect()
}

pub fn text(value: &Value) -> String {
    value.as_str().expect("a string").to_string()
}

pub fn jsonl(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("every stdout line is JSON"))
        .collect()
}
