//! `precis batch` end to end, each test in its own temp dir with the tiny fixture model: which
//! files become summaries and manifest rows, exit statuses, resuming, shards, JSONL. Signals and
//! kills are in `tests/batch_signals.rs`.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use common::batch::*;
use serde_json::Value;

/// A tree with every kind of input a folder can hold.
fn mixed_tree(root: &Path) {
    write(root, "a.txt", article(1).as_bytes());
    let markdown = format!("# Pier\n\n{}\n", article(2));
    write(root, "news/b.md", markdown.as_bytes());
    let html = format!("<html><body><p>{}</p></body></html>", article(3));
    write(root, "news/2024/c.html", html.as_bytes());
    write(root, "empty.txt", b"");
    write(root, "news/binary.txt", b"PK\x03\x04\x00\x00\x08\x00binary");
    write(
        root,
        "latin1.md",
        b"Caf\xe9 au lait is popular in the harbour town.",
    );
    write(root, ".hidden/secret.txt", article(4).as_bytes());
    write(root, ".notes.txt", article(5).as_bytes());
    write(root, "data.csv", b"a,b\n1,2\n");
    std::os::unix::fs::symlink("..", root.join("news/loop")).expect("symlink");
}

#[test]
fn summarises_a_tree_and_records_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    mixed_tree(&input);
    let before = files(&input);

    let output = batch(&[path_str(&input), "-o", path_str(&out)]);

    assert_status(&output, 1);
    assert_eq!(files(&input), before, "inputs are never modified");
    assert_eq!(
        summaries(&out),
        [
            "a.txt.summary.txt",
            "news/2024/c.html.summary.txt",
            "news/b.md.summary.txt"
        ]
    );
    let expected: BTreeMap<String, String> = [
        ("a.txt", "ok"),
        ("news/b.md", "ok"),
        ("news/2024/c.html", "ok"),
        ("empty.txt", "failed"),
        ("news/binary.txt", "failed"),
        ("latin1.md", "failed"),
        ("news/loop", "skipped"),
    ]
    .into_iter()
    .map(|(path, status)| (path.to_string(), status.to_string()))
    .collect();
    assert_eq!(statuses(&out), expected);
    let err = stderr(&output);
    for failed in ["empty.txt", "news/binary.txt", "latin1.md"] {
        let line = format!("precis: failed: {failed}: ");
        assert!(err.contains(&line), "stderr lists {failed}:\n{err}");
    }
    assert!(err.contains("3 ok, 3 failed, 1 skipped"), "{err}");
    let summary = fs::read_to_string(out.join("a.txt.summary.txt")).unwrap();
    assert!(summary.ends_with('\n') && summary.lines().count() == 1);
}

#[test]
fn hidden_and_ext_select_more_files() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    write(&input, ".hidden/secret.txt", article(1).as_bytes());
    write(&input, "notes.TEXT", article(2).as_bytes());
    write(&input, "skip.md", article(3).as_bytes());

    let args = [path_str(&input), "-o", path_str(&out), "--hidden"];
    let output = batch(&[&args[..], &["--ext", "txt", "--ext", ".text"]].concat());

    assert_status(&output, 0);
    let expected = [".hidden/secret.txt.summary.txt", "notes.TEXT.summary.txt"];
    assert_eq!(summaries(&out), expected);
}

#[test]
fn a_rerun_skips_done_files_and_force_or_new_options_redo_them() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    articles(&input, 4);
    let args = [path_str(&input), "-o", path_str(&out)];
    assert_status(&batch(&args), 0);
    let first = files(&out);

    let again = batch(&args);
    assert_status(&again, 0);
    let err = stderr(&again);
    assert!(err.contains("4 files already summarised"), "{err}");
    assert!(
        err.contains("0 ok, 0 failed, 0 skipped, 4 up to date"),
        "{err}"
    );
    assert_eq!(
        files(&out),
        first,
        "nothing rewritten, no manifest rows added"
    );

    // Batching sizes change only speed: still up to date.
    let faster = [&args[..], &["--batch-size", "2", "--batch-tokens", "64"]].concat();
    assert!(stderr(&batch(&faster)).contains("4 up to date"));

    let forced = batch(&[&args[..], &["--force"]].concat());
    assert!(
        stderr(&forced).contains("4 ok, 0 failed"),
        "{}",
        stderr(&forced)
    );
    assert_eq!(manifest_rows(&out).len(), 8);

    let shorter = batch_command(&args, SHORTER).output().expect("precis runs");
    assert!(
        stderr(&shorter).contains("4 ok, 0 failed"),
        "{}",
        stderr(&shorter)
    );
    let rows = manifest_rows(&out);
    assert_ne!(rows[0]["options_hash"], rows[11]["options_hash"]);

    // A summary deleted by hand is made again, and only it.
    fs::remove_file(out.join("part-0/doc-000.txt.summary.txt")).unwrap();
    let repaired = batch_command(&args, SHORTER).output();
    let err = stderr(&repaired.expect("precis runs"));
    assert!(
        err.contains("1 ok, 0 failed, 0 skipped, 3 up to date"),
        "{err}"
    );
}

#[test]
fn shards_together_do_every_file_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    let mut all = articles(&input, 12);
    all.sort();
    let before = files(&input);
    let args = [path_str(&input), "-o", path_str(&out)];
    for shard in ["0/3", "1/3", "2/3"] {
        let output = batch(&[&args[..], &["--shard", shard]].concat());
        assert_status(&output, 0);
    }
    assert_eq!(files(&input), before, "inputs are never modified");

    let mut done: Vec<String> = manifest_rows(&out)
        .iter()
        .map(|row| text(&row["path"]))
        .collect();
    done.sort();
    assert_eq!(done, all, "every file once, none twice");
    let manifests: Vec<String> = files(&out)
        .into_keys()
        .filter(|n| n.starts_with("precis-manifest"))
        .collect();
    assert_eq!(manifests.len(), 3, "one manifest per shard: {manifests:?}");
    assert_eq!(summaries(&out).len(), 12);
    let whole = batch(&args);
    assert!(stderr(&whole).contains("0 ok, 0 failed, 0 skipped, 12 up to date"));
}

#[test]
fn streams_json_lines_to_stdout_and_writes_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    write(&input, "a.txt", article(1).as_bytes());
    write(&input, "b/empty.md", b"  \n");
    let before = files(dir.path());

    for flag in [&["-o", "-"][..], &["--jsonl"]] {
        let output = batch(&[&[path_str(&input)][..], flag].concat());
        assert_status(&output, 1);
        let records = jsonl(&output.stdout);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0]["path"], "a.txt");
        assert_eq!(records[0]["status"], "ok");
        assert!(records[0]["summary"].is_string());
        assert_eq!(records[1]["path"], "b/empty.md");
        assert_eq!(records[1]["status"], "failed");
        assert!(text(&records[1]["error"]).contains("empty"));
        assert_eq!(files(dir.path()), before, "nothing written to disk");
    }
}

/// Summary files in JSON and JSON lines carry each summary's token ids as transformers'
/// pipeline returned them (`summary_token_ids`), also when articles share model batches.
#[test]
fn json_summaries_carry_the_pipelines_token_ids() {
    let model = "bart-tiny"; // a forced BOS token after the decoder start: [2, 0, ...]
    let golden = common::golden(model);
    let cases = &golden["pipeline"]["cases"].as_array().unwrap()[..3];
    let dir = tempfile::tempdir().unwrap();
    let (input, out) = (dir.path().join("in"), dir.path().join("out"));
    for case in cases {
        let name = format!("{}.txt", text(&case["case"]));
        write(&input, &name, text(&case["text"]).as_bytes());
    }
    let run = |args: &[&str]| {
        let output = precis()
            .arg("batch")
            .arg(&input)
            .args(args)
            .arg("--model")
            .arg(common::fixture_dir(model))
            .output()
            .expect("precis runs");
        assert_status(&output, 0);
        output
    };
    run(&["-o", path_str(&out), "--format", "json"]);
    let streamed = jsonl(&run(&["-o", "-"]).stdout);
    assert_eq!(streamed.len(), cases.len());
    for case in cases {
        let name = format!("{}.txt", text(&case["case"]));
        let line = streamed
            .iter()
            .find(|r| r["path"] == name.as_str())
            .unwrap();
        let file = out.join(format!("{name}.summary.json"));
        let record: Value = serde_json::from_slice(&fs::read(file).unwrap()).unwrap();
        for record in [&record, line] {
            let want = text(&case["summary"]);
            assert_eq!(text(&record["summary"]), want.trim(), "{record}");
            assert_eq!(
                common::ids(&record["output_ids"]),
                common::ids(&case["output_ids"]),
                "{record}"
            );
        }
    }
}

#[test]
fn reads_json_lines_and_a_bad_line_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let lines = format!(
        "{}\nnot json at all\n\n{}\n{{\"id\": 9, \"body\": \"no text field\"}}\n",
        serde_json::json!({"id": "first", "text": article(1)}),
        serde_json::json!({"id": 2, "text": article(2)}),
    );
    let file = dir.path().join("articles.jsonl");
    fs::write(&file, &lines).unwrap();

    let from_file = batch(&["--input-jsonl", path_str(&file)]);
    let mut child = batch_command(&["--input-jsonl", "-"], FAST)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(lines.as_bytes()).unwrap();
    drop(stdin);
    let from_stdin = child.wait_with_output().unwrap();

    for output in [from_file, from_stdin] {
        assert_status(&output, 1);
        let records = jsonl(&output.stdout);
        let summary: Vec<(Value, Value, Value)> = records
            .iter()
            .map(|r| (r["id"].clone(), r["line"].clone(), r["status"].clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("first".into(), 1.into(), "ok".into()),
                (Value::Null, 2.into(), "failed".into()),
                (2.into(), 4.into(), "ok".into()),
                (9.into(), 5.into(), "failed".into()),
            ]
        );
        assert!(text(&records[1]["error"]).contains(":2: not a JSON object"));
        let err = stderr(&output);
        assert!(err.contains("precis: failed: line 2: "), "{err}");
        assert!(err.contains("precis: failed: line 5 (id 9): "), "{err}");
    }
}

#[test]
fn an_output_folder_inside_the_input_is_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    articles(&input, 2);
    let out = input.join("summaries");
    let args = [path_str(&input), "-o", path_str(&out)];
    assert_status(&batch(&args), 0);
    let again = batch(&[&args[..], &["--force"]].concat());
    assert_status(&again, 0);
    let err = stderr(&again);
    assert!(err.contains("is inside the input folder"), "{err}");
    assert!(
        err.contains("2 ok, 0 failed"),
        "summaries not summarised: {err}"
    );
}

#[test]
fn usage_mistakes_exit_2_with_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in");
    articles(&input, 1);
    let missing = dir.path().join("nope");
    let input_s = path_str(&input);
    let out = dir.path().join("out");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec![input_s], "--output"),
        (vec![path_str(&missing), "-o", path_str(&out)], "nope"),
        (
            vec![input_s, "-o", input_s],
            "choose an output folder outside",
        ),
        (vec![input_s, "-o", "-", "--force"], "--force applies only"),
        (vec![input_s, "--jsonl", "--format", "json"], "--format"),
        (
            vec![input_s, "-o", path_str(&out), "--shard", "3/3"],
            "--shard",
        ),
        (
            vec![input_s, "-o", path_str(&out), "--docs-per-round", "0"],
            "--docs-per-round",
        ),
        (
            vec![input_s, "-o", path_str(&out), "--batch-tokens", "0"],
            "--batch-tokens",
        ),
        (vec![input_s, "-o", path_str(&out), "--ext", ""], "--ext"),
        (
            vec!["--input-jsonl", "-", "-o", path_str(&out)],
            "--input-jsonl",
        ),
    ];
    for (args, needle) in cases {
        let output = batch(&args);
        assert_status(&output, 2);
        let err = stderr(&output);
        assert!(
            err.contains(needle),
            "{args:?}: should mention {needle}:\n{err}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
    }
    assert!(!out.exists(), "a usage error writes nothing");
}
