//! The `precis` binary end to end, each test in its own temp dir: summaries on stdout, JSON
//! output, and a one-line error with the right exit status for every kind of bad input.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;

const ARTICLE: &str = "The harbour town voted on Tuesday to rebuild its old stone pier, \
    which storms damaged last winter. Fishermen said the repairs would let larger boats \
    land their catch again, and the council expects work to finish before the summer.";

fn precis() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_precis"));
    // Never reach for the network, whatever the environment says.
    command
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("PRECIS_MODEL");
    command
}

fn model() -> String {
    fixture_dir("t5-tiny").display().to_string()
}

fn run(args: &[&str]) -> Output {
    precis().args(args).output().expect("precis runs")
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A failure: given exit status, nothing on stdout, one error line naming `needles`.
fn assert_fails(output: &Output, status: i32, needles: &[&str]) {
    let err = stderr(output);
    assert_eq!(
        output.status.code(),
        Some(status),
        "exit status; stderr: {err}"
    );
    assert!(
        output.stdout.is_empty(),
        "no partial output, got {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
    let lines: Vec<&str> = err.lines().filter(|l| l.contains("error")).collect();
    assert_eq!(lines.len(), 1, "one error line, got: {err}");
    for needle in needles {
        assert!(
            err.contains(needle),
            "error should mention {needle:?}: {err}"
        );
    }
    assert!(!err.contains("panicked"), "no panic: {err}");
}

#[test]
fn summarizes_a_file_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let output = run(&["summarize", "--model", &model(), file.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = String::from_utf8(output.stdout).unwrap();
    assert!(!text.trim().is_empty());
    assert_eq!(text.lines().count(), 1, "one summary line: {text:?}");
}

#[test]
fn reads_standard_input() {
    let mut child = precis()
        .args(["summarize", "--model", &model(), "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ARTICLE.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let from_file = run(&["summarize", "--model", &model(), file.to_str().unwrap()]);
    assert_eq!(
        output.stdout, from_file.stdout,
        "stdin and file give the same summary"
    );
}

#[test]
fn json_output_has_the_documented_fields() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let output = run(&[
        "summarize",
        "--model",
        &model(),
        "--format",
        "json",
        file.to_str().unwrap(),
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let record: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    for field in [
        "summary",
        "model",
        "input_tokens",
        "output_tokens",
        "seconds",
        "tokens_per_second",
        "chunks",
    ] {
        assert!(record.get(field).is_some(), "missing {field}: {record}");
    }
    assert!(record["summary"].as_str().unwrap().len() > 1);
    assert!(record["input_tokens"].as_u64().unwrap() > 10);
    assert!(record["output_tokens"].as_u64().unwrap() >= 1);
    assert_eq!(record["chunk_count"].as_u64().unwrap(), 1);
    assert_eq!(record["source"].as_str().unwrap(), file.to_str().unwrap());
}

/// `summarize --format json` of `text` with the fixture `model`, as one JSON record.
fn summarize_json(model: &str, text: &str, extra: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", text.as_bytes());
    let fixture = fixture_dir(model).display().to_string();
    let args = ["summarize", "--model", &fixture, "--format", "json"];
    let output = run(&[&args[..], extra, &[file.to_str().unwrap()]].concat());
    assert!(output.status.success(), "{model}: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).expect("valid JSON")
}

/// `output_ids` is what transformers' summarization pipeline returned as `summary_token_ids`
/// (`return_tensors=True`): the decoder start token, BART's forced BOS, the generated tokens
/// and EOS, for every family.
#[test]
fn json_output_carries_the_pipelines_token_ids() {
    for model in [
        "t5-tiny",
        "flan-t5-tiny",
        "bart-tiny",
        "distilbart-tiny",
        "pegasus-tiny",
    ] {
        let golden = golden(model);
        let case = &golden["pipeline"]["cases"][0];
        let record = summarize_json(model, case["text"].as_str().unwrap(), &[]);
        // precis trims the summary's outer spaces (the pipeline keeps BART's leading one).
        let want = case["summary"].as_str().unwrap().trim();
        assert_eq!(record["summary"], want, "{model}");
        assert_eq!(
            ids(&record["output_ids"]),
            ids(&case["output_ids"]),
            "{model}: output_ids differ from the pipeline's summary_token_ids"
        );
    }
}

/// For a long article, `output_ids` are those of the final abstract (the last reduce pass) and
/// each chunk carries the ids of its own summary; `concat` writes no abstract of its own, so it
/// has none.
#[test]
fn json_output_ids_of_a_long_article_follow_the_merge() {
    let model = "t5-tiny";
    let tokenizer = tokenizers::Tokenizer::from_file(fixture_dir(model).join("tokenizer.json"))
        .expect("fixture tokenizer");
    let decode = |ids: &serde_json::Value| -> String {
        let text = tokenizer.decode(&common::ids(ids), true).expect("decode");
        text.trim().to_string()
    };
    let golden = golden(model);
    let long = golden["pipeline"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|case| case["case"] == "long")
        .expect("a long case");
    let text = long["text"].as_str().unwrap();
    let fast = ["--num-beams", "1", "--max-new-tokens", "12"];

    let reduced = summarize_json(model, text, &fast);
    let chunks = reduced["chunks"].as_array().unwrap();
    assert!(chunks.len() > 1, "{reduced}");
    assert!(!reduced["merge_passes"].as_array().unwrap().is_empty());
    let abstract_ids = ids(&reduced["output_ids"]);
    assert_eq!(abstract_ids[0], 0, "decoder start token first");
    assert_eq!(decode(&reduced["output_ids"]), reduced["summary"]);
    for chunk in chunks {
        assert_eq!(decode(&chunk["output_ids"]), chunk["summary"], "{chunk}");
        assert_ne!(ids(&chunk["output_ids"]), abstract_ids);
    }

    let concat = summarize_json(model, text, &[&fast[..], &["--merge", "concat"]].concat());
    assert!(concat["output_ids"].is_null(), "{concat}");
    for chunk in concat["chunks"].as_array().unwrap() {
        assert_eq!(decode(&chunk["output_ids"]), chunk["summary"], "{chunk}");
    }
}

#[test]
fn bench_reports_medians_for_the_asked_shape() {
    let model = model();
    let bench = |extra: &[&str]| -> Output {
        let mut args = vec!["-q", "bench", "--model", &model, "--input-tokens", "12"];
        // A warm-up and a few decoder steps, timed apart from the encoder in the same run.
        args.extend_from_slice(&["--new-tokens", "8", "--runs", "2", "--warmup", "1"]);
        args.extend_from_slice(extra);
        run(&args)
    };
    let output = bench(&["--batch", "2", "--num-beams", "2", "--format", "json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    assert_eq!(report["batch"], 2);
    assert_eq!(report["num_beams"], 2);
    assert_eq!(report["runs"].as_array().map(Vec::len), Some(2), "{report}");
    for field in ["encoder_ms", "decode_tokens_per_s", "total_ms"] {
        let median = report[field]["median"].as_f64().unwrap();
        assert!(median > 0.0 && median.is_finite(), "{field}: {report}");
    }
    // The phases are timed apart within each call: they do not overlap.
    for run in report["runs"].as_array().unwrap() {
        let ms = |field: &str| run[field].as_f64().unwrap();
        assert!(ms("encoder_ms") > 0.0 && ms("decode_ms") > 0.0, "{run}");
        assert!(
            ms("encoder_ms") + ms("decode_ms") <= ms("generate_ms"),
            "{run}"
        );
    }
    // The same ids every time: scripts/bench.py checks other engines against this checksum.
    let again: serde_json::Value =
        serde_json::from_slice(&bench(&["--format", "json"]).stdout).expect("valid JSON");
    let single: serde_json::Value =
        serde_json::from_slice(&bench(&["--format", "json"]).stdout).unwrap();
    assert_eq!(again["input_checksum"], single["input_checksum"]);
    assert!(
        String::from_utf8_lossy(&bench(&[]).stdout).contains("decode"),
        "text report"
    );
    let zero_batch = run(&["bench", "--model", &model, "--batch", "0"]);
    assert_fails(&zero_batch, 2, &["--batch", "at least 1"]);
}

/// `precis bench` flags for a run that only shows what it reports.
const TINY_BENCH: [&str; 8] = [
    "--input-tokens",
    "8",
    "--new-tokens",
    "2",
    "--runs",
    "1",
    "--warmup",
    "0",
];

#[test]
fn candle_element_wise_operations_stay_on_the_calling_kernel_thread_unless_told() {
    let threads_line = |candle_threads: Option<&str>| -> String {
        let mut command = precis();
        command.args(["-v", "bench", "--model", &model(), "--threads", "2"]);
        command.args(TINY_BENCH).env_remove("CANDLE_NUM_THREADS");
        if let Some(threads) = candle_threads {
            command.env("CANDLE_NUM_THREADS", threads);
        }
        let output = command.output().expect("precis runs");
        assert!(output.status.success(), "{}", stderr(&output));
        let log = stderr(&output);
        log.lines()
            .find(|line| line.contains("threads: "))
            .unwrap_or_else(|| panic!("no threads line in {log}"))
            .to_string()
    };
    let by_default = threads_line(None);
    assert!(
        by_default.contains("2 for the kernels, 1 for candle's element-wise operations"),
        "{by_default}"
    );
    let told = threads_line(Some("2"));
    assert!(
        told.ends_with("2 for the kernels, 2 for candle's element-wise operations"),
        "{told}"
    );
}

#[test]
fn memory_settings_follow_the_load_unless_the_environment_says() {
    // The settings themselves are checked in src/cli/allocator.rs; this checks that the
    // commands make each of them once their model is loaded, and leave the one whose mimalloc
    // variable the environment sets.
    let mut settings = vec![(
        "memory: freed buffers now stay with the process",
        "MIMALLOC_PURGE_DELAY",
        "10",
    )];
    // Transparent huge pages, and the call that turns them off, are Linux's.
    if cfg!(target_os = "linux") {
        settings.push((
            "memory: new buffers now come in 4 KiB pages",
            "MIMALLOC_ALLOW_THP",
            "1",
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let article = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let model = model();
    let log = |command: &[&str], set: Option<(&str, &str)>| -> String {
        let mut precis = precis();
        precis.arg("-v").args(command);
        for (_, variable, _) in &settings {
            precis.env_remove(variable);
        }
        if let Some((variable, value)) = set {
            precis.env(variable, value);
        }
        let output = precis.output().expect("precis runs");
        assert!(output.status.success(), "{}", stderr(&output));
        stderr(&output)
    };
    let mut bench = vec!["bench", "--model", &model];
    bench.extend(TINY_BENCH);
    let summarize = ["summarize", "--model", &model, article.to_str().unwrap()];
    for command in [&bench[..], &summarize[..]] {
        let by_default = log(command, None);
        // Loading packs the weights, which picks (and logs) the CPU kernels.
        let loading = by_default
            .find("CPU kernels:")
            .unwrap_or_else(|| panic!("{by_default}"));
        for &(line, variable, value) in &settings {
            let made = by_default
                .find(line)
                .unwrap_or_else(|| panic!("{command:?}: no '{line}' in {by_default}"));
            assert!(
                made > loading,
                "set before the model was loaded: {by_default}"
            );
            let told = log(command, Some((variable, value)));
            assert!(
                !told.contains(line),
                "{command:?} overrode {variable}: {told}"
            );
            let others_made = settings
                .iter()
                .filter(|(_, other, _)| *other != variable)
                .all(|(other_line, ..)| told.contains(other_line));
            assert!(others_made, "{variable} stopped another setting: {told}");
        }
    }
}

#[test]
fn the_cpu_kernel_path_is_reported_forced_and_checked() {
    use precis::models::{KERNELS_ENV, KernelPath};
    let model = model();
    let bench = |path: Option<&str>| -> Output {
        let mut command = precis();
        command.args(["-q", "bench", "--model", &model, "--format", "json"]);
        command.args(TINY_BENCH).env_remove(KERNELS_ENV);
        if let Some(path) = path {
            command.env(KERNELS_ENV, path);
        }
        command.output().expect("precis runs")
    };
    let reported = |output: &Output| -> String {
        assert!(output.status.success(), "{}", stderr(output));
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        report["cpu_kernels"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(reported(&bench(None)), KernelPath::detected().as_str());
    for path in KernelPath::supported() {
        assert_eq!(reported(&bench(Some(path.as_str()))), path.as_str());
    }
    let verbose = precis()
        .args(["-v", "bench", "--model", &model])
        .args(TINY_BENCH)
        .env(KERNELS_ENV, "portable")
        .output()
        .unwrap();
    assert!(
        stderr(&verbose).contains("CPU kernels: portable"),
        "{}",
        stderr(&verbose)
    );
    assert!(String::from_utf8_lossy(&verbose.stdout).contains("(portable kernels)"));
    assert_fails(&bench(Some("sse9")), 2, &[KERNELS_ENV, "sse9", "avx2"]);
}

#[test]
fn quantize_q8_summarizes_and_says_so_in_the_bench_report() {
    let output = precis()
        .args(["summarize", "--model", &model(), "--quantize", "q8", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(ARTICLE.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).trim().is_empty());

    let args = [
        "bench",
        "--model",
        &model(),
        "--quantize",
        "q8",
        "--format",
        "json",
    ];
    let tiny = [
        "--input-tokens",
        "16",
        "--new-tokens",
        "4",
        "--runs",
        "1",
        "--warmup",
        "0",
    ];
    let output = run(&[&args[..], &tiny[..]].concat());
    assert!(output.status.success(), "{}", stderr(&output));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["dtype"], "q8");
}

#[test]
fn options_override_model_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let model = model();
    let json = |extra: &[&str]| -> serde_json::Value {
        let mut args = vec!["summarize", "--model", &model, "--format", "json"];
        args.extend_from_slice(extra);
        args.push(file.to_str().unwrap());
        let output = precis().args(&args).output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        serde_json::from_slice(&output.stdout).unwrap()
    };
    let short = json(&[
        "--max-new-tokens",
        "5",
        "--num-beams",
        "1",
        "--min-length",
        "0",
    ]);
    assert!(short["output_tokens"].as_u64().unwrap() <= 5, "{short}");
    let exact = json(&[
        "--max-length",
        "12",
        "--min-length",
        "12",
        "--num-beams",
        "2",
    ]);
    assert_eq!(exact["output_tokens"].as_u64().unwrap(), 11, "{exact}");
}

/// The sampling flags reach the sampler: `--top-k 1` leaves only the best token (so sampling
/// gives greedy search's summary), a seed fixes the draws, `--do-sample=false` searches as if
/// the flag were absent, and an out-of-range value is a usage error naming it.
#[test]
fn sampling_flags_reach_the_sampler() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let model = model();
    let run_with = |extra: &[&str]| -> Output {
        let lengths = ["--max-new-tokens", "12", "--min-length", "0"];
        let args = [&["summarize", "--model", &model][..], &lengths, extra];
        let mut args = args.concat();
        args.push(file.to_str().unwrap());
        precis().args(&args).output().unwrap()
    };
    let summary = |extra: &[&str]| -> String {
        let output = run_with(extra);
        assert!(output.status.success(), "{extra:?}: {}", stderr(&output));
        String::from_utf8(output.stdout).unwrap()
    };
    let greedy = summary(&["--num-beams", "1"]);
    // The bare flag takes no value, so the file may follow it.
    assert_eq!(
        summary(&["--top-k", "1", "--seed", "5", "--do-sample"]),
        greedy
    );
    let hot = |seed: &str| summary(&["--do-sample", "--temperature", "50", "--seed", seed]);
    assert_eq!(hot("1"), hot("1"));
    assert_ne!(hot("1"), hot("2"), "the seed decides the draws");
    assert_ne!(hot("1"), greedy);
    assert_eq!(summary(&["--do-sample=false"]), summary(&[]));
    assert_fails(
        &run_with(&["--do-sample", "--top-p", "1.5"]),
        2,
        &["--top-p", "1.5", "[0, 1]"],
    );
}

#[test]
fn empty_and_whitespace_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in [
        ("empty.txt", &b""[..]),
        ("blank.txt", &b"  \n\t \r\n  "[..]),
    ] {
        let file = write(dir.path(), name, bytes);
        let output = run(&["summarize", "--model", &model(), file.to_str().unwrap()]);
        assert_fails(&output, 1, &[name, "empty"]);
    }
}

#[test]
fn binary_input_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "image.txt",
        &[0x89, b'P', b'N', b'G', 0, 0, 1, 2, 3, 0, 7],
    );
    let output = run(&["summarize", "--model", &model(), file.to_str().unwrap()]);
    assert_fails(&output, 1, &["image.txt", "binary"]);
}

#[test]
fn non_utf8_input_is_refused_with_the_offset() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "latin1.txt", b"caf\xe9 au lait, tr\xe8s bien");
    let output = run(&["summarize", "--model", &model(), file.to_str().unwrap()]);
    assert_fails(&output, 1, &["latin1.txt", "UTF-8", "3"]);
}

#[test]
fn missing_file_and_directory_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.txt");
    let output = run(&["summarize", "--model", &model(), missing.to_str().unwrap()]);
    assert_fails(&output, 2, &["nope.txt"]);
    let output = run(&[
        "summarize",
        "--model",
        &model(),
        dir.path().to_str().unwrap(),
    ]);
    assert_fails(&output, 2, &["directory"]);
}

#[test]
fn one_bad_file_among_good_ones_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.txt", ARTICLE.as_bytes());
    let bad = write(dir.path(), "bad.txt", b"");
    let output = run(&[
        "summarize",
        "--model",
        &model(),
        good.to_str().unwrap(),
        bad.to_str().unwrap(),
    ]);
    assert_fails(&output, 1, &["bad.txt"]);
}

#[test]
fn invalid_option_values_name_the_option_the_bound_and_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let file = file.to_str().unwrap();
    let cases: [(&[&str], &[&str]); 9] = [
        (&["--num-beams", "0"], &["--num-beams", "0", "at least 1"]),
        (&["--device", "tpu"], &["--device", "tpu", "cpu"]),
        (&["--dtype", "f8"], &["--dtype", "f8", "bf16"]),
        (&["--merge", "mean"], &["--merge", "mean", "reduce"]),
        (
            &["--early-stopping", "soon"],
            &["--early-stopping", "soon", "never"],
        ),
        (&["--batch-size", "0"], &["--batch-size", "0", "at least 1"]),
        (&["--threads", "0"], &["--threads", "0", "at least 1"]),
        (&["--quantize", "q3"], &["--quantize", "q3", "q8"]),
        (
            &["--quantize", "q8", "--dtype", "bf16"],
            &["--quantize", "float32 model on the CPU", "bf16"],
        ),
    ];
    let model = model();
    for (extra, needles) in cases {
        let mut args = vec!["summarize", "--model", &model];
        args.extend_from_slice(extra);
        args.push(file);
        let output = precis().args(&args).output().unwrap();
        assert_fails(&output, 2, needles);
    }
}

/// Offline (`precis()` sets HF_HUB_OFFLINE), a Hub model not in the cache fails at once with
/// advice, and the Hub is not contacted: a connection to the stand-in Hub would wait in its
/// listening socket's backlog, where `accept` would find it.
#[test]
fn a_hub_model_offline_asks_nothing_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let hub = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    hub.set_nonblocking(true).unwrap();
    let output = precis()
        .env("HF_HOME", dir.path().join("hf"))
        .env(
            "HF_ENDPOINT",
            format!("http://{}", hub.local_addr().unwrap()),
        )
        .env("HF_HUB_ETAG_TIMEOUT", "1")
        .args([
            "summarize",
            "--model",
            "google-t5/t5-small",
            file.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_fails(&output, 1, &["google-t5/t5-small"]);
    let err = stderr(&output);
    assert!(
        err.contains("--model") || err.contains("folder"),
        "should say how to use a local folder: {err}"
    );
    let contacted = hub.accept();
    assert!(
        matches!(&contacted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "offline, yet the Hub was contacted: {contacted:?}"
    );
}

#[test]
fn unknown_model_name_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "article.txt", ARTICLE.as_bytes());
    let output = run(&[
        "summarize",
        "--model",
        "no-such-model",
        file.to_str().unwrap(),
    ]);
    assert_fails(&output, 2, &["no-such-model"]);
}

#[test]
fn models_lists_the_presets() {
    let output = run(&["models"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).unwrap();
    for name in [
        "t5-small",
        "flan-t5-base",
        "bart-large-cnn",
        "distilbart-cnn-12-6",
        "pegasus-xsum",
    ] {
        assert!(text.contains(name), "missing {name}");
    }
    let t5 = text.lines().find(|l| l.starts_with("t5-small ")).unwrap();
    assert!(
        t5.contains("google-t5/t5-small") && t5.contains("242 MB"),
        "{t5}"
    );
}
