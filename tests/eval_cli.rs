//! `precis eval` end to end, each test in its own temp dir: scoring existing summaries (JSONL and
//! folders), summarising a data set with the tiny fixture models and scoring it, variants side by
//! side, bad records reported with their line numbers (exit 1), and `--per-doc` never replacing
//! a file unasked.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::fixture_dir;
use serde_json::Value;

fn precis(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_precis"))
        .current_dir(dir)
        .env("HF_HUB_OFFLINE", "1")
        .env_remove("PRECIS_MODEL")
        .args(args)
        .output()
        .expect("precis runs")
}

fn write(dir: &Path, relative: &str, text: &str) {
    let path = dir.join(relative);
    fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    fs::write(path, text).expect("write");
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            stderr(output)
        )
    })
}

fn f1(variant: &Value, rouge_type: &str) -> f64 {
    variant[rouge_type]["mean"]["fmeasure"]
        .as_f64()
        .expect("fmeasure")
}

/// `precis eval` on p.jsonl and r.jsonl, and the same with JSON output.
const SCORE_ARGS: [&str; 5] = [
    "eval",
    "--predictions",
    "p.jsonl",
    "--references",
    "r.jsonl",
];
const JSON_ARGS: [&str; 7] = [
    "eval",
    "--predictions",
    "p.jsonl",
    "--references",
    "r.jsonl",
    "--format",
    "json",
];

const PREDICTIONS: &str = "{\"id\": \"same\", \"summary\": \"The council approved the budget.\"}\n\
                           {\"id\": 2, \"summary\": \"Markets closed higher.\"}\n";
const REFERENCES: &str = "{\"id\": \"same\", \"reference\": \"The council approved the budget.\"}\n\
                          {\"id\": \"2\", \"reference\": \"Rain fell in the valley.\"}\n";

#[test]
fn scores_jsonl_predictions_against_references_by_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "p.jsonl", PREDICTIONS);
    write(dir.path(), "r.jsonl", REFERENCES);
    let args = SCORE_ARGS;
    let output = precis(
        dir.path(),
        &[&args[..], &["--format", "json", "--per-doc", "d.jsonl"]].concat(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    let variant = &report["variants"][0];
    assert_eq!(variant["documents"], 2);
    // One identical pair, one with nothing in common.
    for rouge_type in ["rouge1", "rouge2", "rougeL", "rougeLsum"] {
        assert_eq!(f1(variant, rouge_type), 0.5, "{rouge_type}");
    }
    let interval = &variant["rouge1"]["interval"];
    assert_eq!(interval["low"]["fmeasure"], 0.0);
    assert_eq!(interval["high"]["fmeasure"], 1.0);
    assert_eq!(report["bootstrap"]["seed"], 42);
    let per_doc = fs::read_to_string(dir.path().join("d.jsonl")).expect("per-doc file");
    let lines: Vec<Value> = per_doc
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], "same");
    assert_eq!(lines[0]["rougeL"]["recall"], 1.0);
    assert_eq!(lines[1]["rouge1"]["fmeasure"], 0.0);
    assert_eq!(lines[1]["words"], 3);

    let table = precis(dir.path(), &args);
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("rougeLsum  50.00 [0.00, 100.00]"), "{text}");
}

#[test]
fn bad_records_are_listed_with_line_numbers_and_the_rest_is_scored_exit_1() {
    let dir = tempfile::tempdir().expect("temp dir");
    let predictions = format!(
        "{PREDICTIONS}not json\n{{\"id\": \"x\"}}\n{{\"id\": \"same\", \"summary\": \"again\"}}\n\
         {{\"id\": \"orphan\", \"summary\": \"o\"}}\n{{\"id\": \"f\", \"summary\": null, \"status\": \"failed\"}}\n"
    );
    write(dir.path(), "p.jsonl", &predictions);
    let references = format!("{REFERENCES}{{\"id\": \"lonely\", \"reference\": \"r\"}}\n[]\n");
    write(dir.path(), "r.jsonl", &references);
    let output = precis(dir.path(), &JSON_ARGS);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(json(&output)["variants"][0]["documents"], 2);
    let err = stderr(&output);
    for expected in [
        "precis: left out: p.jsonl:3: not valid JSON",
        "precis: left out: p.jsonl:4: no \"summary\" field",
        "precis: left out: p.jsonl:5: id \"same\" repeats line 1; this line is left out",
        "precis: left out: p.jsonl:6: id \"orphan\" has no reference",
        "precis: left out: p.jsonl:7: the \"summary\" field is null, not a string",
        "precis: left out: r.jsonl:3: id \"lonely\" has no prediction",
        "precis: left out: r.jsonl:4: not a JSON object",
        "precis: 7 records left out",
    ] {
        assert!(err.contains(expected), "{expected:?} not in:\n{err}");
    }
}

#[test]
fn nothing_to_pair_is_an_error_and_a_missing_file_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "p.jsonl", PREDICTIONS);
    write(
        dir.path(),
        "r.jsonl",
        "{\"id\": \"other\", \"reference\": \"r\"}\n",
    );
    let eval = |references: &str| {
        let args = [
            "eval",
            "--predictions",
            "p.jsonl",
            "--references",
            references,
        ];
        precis(dir.path(), &args)
    };
    assert_fails(&eval("r.jsonl"), 1, "precis: error: nothing to score");
    assert_fails(
        &eval("no.jsonl"),
        2,
        "--references no.jsonl: no such file or folder",
    );
    let output = precis(dir.path(), &["eval", "data.jsonl", "--docs-per-round", "0"]);
    assert_fails(&output, 2, "invalid value for --docs-per-round: 0");
}

/// A failure before any scores: the exit status, nothing on stdout, `needle` on stderr.
fn assert_fails(output: &Output, status: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(status), "{err}");
    assert!(err.contains(needle), "{needle:?} not in {err}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn per_doc_never_replaces_a_file_unless_forced() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(dir.path(), "p.jsonl", PREDICTIONS);
    write(dir.path(), "r.jsonl", REFERENCES);
    write(dir.path(), "mine.jsonl", "precious\n");
    let args = [&SCORE_ARGS[..], &["--per-doc", "mine.jsonl"]].concat();
    // Refused before scoring: nothing on stdout.
    let output = precis(dir.path(), &args);
    assert_fails(&output, 2, "--per-doc mine.jsonl: the file exists");
    assert_eq!(
        fs::read_to_string(dir.path().join("mine.jsonl")).expect("read"),
        "precious\n"
    );

    let forced = precis(dir.path(), &[&args[..], &["--force"]].concat());
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    let written = fs::read_to_string(dir.path().join("mine.jsonl")).expect("read");
    assert_eq!(written.lines().count(), 2, "{written}");
}

#[test]
fn scores_a_batch_output_folder_against_a_folder_of_references() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    write(root, "out/a.txt.summary.txt", "The pier will be rebuilt.\n");
    write(
        root,
        "out/news/b.md.summary.json",
        "{\"path\": \"news/b.md\", \"summary\": \"Rain fell.\"}",
    );
    write(root, "out/precis-manifest.jsonl", "{}\n");
    write(root, "out/.precis-1.tmp", "half written");
    write(root, "refs/a.txt", "The pier will be rebuilt.\n");
    write(root, "refs/news/b.txt", "Sun shone.");
    write(root, "refs/c.txt", "No summary for this one.");
    let output = precis(
        root,
        &[
            "eval",
            "--predictions",
            "out",
            "--references",
            "refs",
            "--format",
            "json",
            "--per-doc",
            "d.jsonl",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let variant = &json(&output)["variants"][0];
    assert_eq!(variant["documents"], 2);
    assert_eq!(f1(variant, "rouge1"), 0.5);
    let err = stderr(&output);
    assert!(err.contains("c.txt: id \"c\" has no prediction"), "{err}");
    assert_eq!(err.matches("left out:").count(), 1, "{err}");
    let per_doc = fs::read_to_string(root.join("d.jsonl")).expect("per-doc");
    assert!(per_doc.contains("\"id\":\"news/b\""), "{per_doc}");
}

#[test]
fn stemmer_and_sentence_splitting_options_change_what_matches() {
    let dir = tempfile::tempdir().expect("temp dir");
    write(
        dir.path(),
        "p.jsonl",
        "{\"id\": 1, \"summary\": \"Runners running. Jumped hurdles.\"}\n",
    );
    write(
        dir.path(),
        "r.jsonl",
        "{\"id\": 1, \"reference\": \"Jumped hurdles. Runners running.\"}\n",
    );
    let base = JSON_ARGS;
    let run = |extra: &[&str]| {
        let output = precis(dir.path(), &[&base[..], extra].concat());
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        json(&output)["variants"][0].clone()
    };
    let default = run(&[]);
    let no_stemmer = run(&["--no-stemmer"]);
    let split = run(&["--split-sentences"]);
    assert_eq!(f1(&default, "rouge1"), 1.0);
    // rougeLsum sees one line per text unless told to split: then both orders match fully.
    assert_eq!(f1(&default, "rougeLsum"), 0.5);
    assert_eq!(f1(&split, "rougeLsum"), 1.0);
    assert_eq!(f1(&split, "rougeL"), 0.5);
    assert_eq!(f1(&no_stemmer, "rouge1"), 1.0);
    write(
        dir.path(),
        "p.jsonl",
        "{\"id\": 1, \"summary\": \"runner runs\"}\n",
    );
    write(
        dir.path(),
        "r.jsonl",
        "{\"id\": 1, \"reference\": \"runners running\"}\n",
    );
    assert_eq!(f1(&run(&[]), "rouge1"), 1.0);
    assert_eq!(f1(&run(&["--no-stemmer"]), "rouge1"), 0.0);
    assert_eq!(f1(&run(&["--no-stemmer", "--stemmer"]), "rouge1"), 1.0);
}

const ARTICLE: &str = "The harbour town voted on Tuesday to rebuild its old stone pier, which storms \
    damaged last winter. Fishermen said the repairs would let larger boats land their catch again.";

/// The summary `precis summarize` makes of ARTICLE with `model` and `extra` options.
fn summary_of(dir: &Path, model: &str, extra: &[&str]) -> String {
    write(dir, "article.txt", ARTICLE);
    let output = precis(
        dir,
        &[&["summarize", "article.txt", "--model", model][..], extra].concat(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_string()
}

#[test]
fn summarises_a_data_set_with_field_mapping_and_scores_each_variant() {
    let dir = tempfile::tempdir().expect("temp dir");
    let t5 = fixture_dir("t5-tiny").display().to_string();
    let bart = fixture_dir("bart-tiny").display().to_string();
    let options = ["--max-new-tokens", "6"];
    let t5_summary = summary_of(dir.path(), &t5, &options);
    // CNN/DailyMail's layout; the reference is the summary t5-tiny makes, so it scores 100.
    let record = |id: u32, reference: &str| {
        serde_json::json!({"id": id, "article": ARTICLE, "highlights": reference}).to_string()
    };
    let data = format!(
        "{}\n{}\n{{\"id\": 3, \"highlights\": \"no article\"}}\n{{\"id\": 4, \"article\": \" \", \"highlights\": \"x\"}}\n",
        record(1, &t5_summary),
        record(2, "Storms damaged the pier.")
    );
    write(dir.path(), "data.jsonl", &data);
    let models = format!("{t5},{bart}");
    let args = [
        "eval",
        "data.jsonl",
        "--model",
        &models,
        "--text-field",
        "article",
        "--reference-field",
        "highlights",
        "--format",
        "json",
        "--per-doc",
        "d.jsonl",
    ];
    let output = precis(dir.path(), &[&args[..], &options].concat());
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("data.jsonl:3: no \"article\" field"), "{err}");
    assert!(err.contains("data.jsonl:4: cannot be summarised"), "{err}");
    assert_eq!(
        err.matches("left out:").count(),
        2,
        "once for both variants: {err}"
    );

    let report = json(&output);
    let variants = report["variants"].as_array().expect("variants");
    let names: Vec<&str> = variants
        .iter()
        .map(|v| v["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["t5-tiny", "bart-tiny"]);
    for variant in variants {
        assert_eq!(variant["documents"], 2);
        assert_eq!(variant["failed"], 1);
        assert!(variant["docs_per_second"].as_f64().expect("docs/s") > 0.0);
        assert!(variant["tokens"].as_f64().expect("tokens") > 0.0);
        assert!(variant["compression"].as_f64().expect("compression") > 1.0);
    }
    let per_doc = fs::read_to_string(dir.path().join("d.jsonl")).expect("per-doc");
    let first: Value = serde_json::from_str(per_doc.lines().next().expect("a line")).expect("json");
    assert_eq!(
        (first["variant"].as_str(), first["id"].as_str()),
        (Some("t5-tiny"), Some("1"))
    );
    assert_eq!(
        first["rouge1"]["fmeasure"], 1.0,
        "t5-tiny's own summary as reference"
    );
    assert!(first["seconds"].as_f64().is_some());
}

#[test]
fn comma_separated_merge_and_quantize_make_one_variant_each() {
    let dir = tempfile::tempdir().expect("temp dir");
    let t5 = fixture_dir("t5-tiny").display().to_string();
    // Distinct sentences, so that the chunk summaries differ: concat drops a sentence that
    // repeats an earlier one, and a repeated paragraph can give repeated chunk summaries.
    let long_article = format!(
        "{ARTICLE} The council will pay for the work from a fund set aside after the floods. \
         Engineers expect the job to take two summers because the tide limits the hours they can \
         work. A café owner near the quay said visitors already come to watch the boats unload. \
         The school plans a lesson on how the first pier was built more than a century ago. Some \
         residents asked for a ramp so that people in wheelchairs can reach the water. The mayor \
         promised a public meeting in March to show the final drawings."
    );
    let line = serde_json::json!({"id": "a", "text": long_article, "reference": "The pier."});
    write(dir.path(), "data.jsonl", &format!("{line}\n"));
    let output = precis(
        dir.path(),
        &[
            "eval",
            "data.jsonl",
            "--model",
            &t5,
            "--merge",
            "reduce,concat",
            "--quantize",
            "none,q8",
            "--chunk-tokens",
            "48",
            "--max-new-tokens",
            "5",
            "--bootstrap-samples",
            "0",
        ],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let table = String::from_utf8_lossy(&output.stdout);
    let header = table.lines().nth(2).expect("variant names");
    let names: Vec<&str> = header
        .split("  ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        names,
        [
            "t5-tiny none reduce",
            "t5-tiny none concat",
            "t5-tiny q8 reduce",
            "t5-tiny q8 concat"
        ]
    );
    // concat keeps every chunk summary, reduce summarises them again: longer summaries.
    let words: Vec<f64> = table
        .lines()
        .find(|l| l.starts_with("words"))
        .expect("words row")
        .split_whitespace()
        .skip(1)
        .map(|w| w.parse().expect("number"))
        .collect();
    assert!(words[1] > words[0], "{table}");
}
