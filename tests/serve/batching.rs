//! Continuous batching through HTTP: concurrent clients with mixed texts and settings each get
//! exactly the summary `precis summarize` makes; `/summarize` answers the record the CLI
//! prints; a client that disconnects cancels its work.

use std::io::Write;
use std::net::TcpStream;

use candle_core::Device;
use precis::generation::{
    EarlyStopping, GenerationOverrides, SamplingOverrides, generate, pad_batch,
};
use precis::merge::MergeStrategy;
use precis::text::{Document, prepare};
use precis::{Summarizer, SummaryOptions, SummaryPlan};
use serde_json::{Value, json};

use super::common;
use super::support::{Server, eventually, post};

/// The server's defaults for these tests (the model's settings, 24 new tokens at most).
fn defaults() -> SummaryOptions {
    SummaryOptions {
        generation: GenerationOverrides {
            max_new_tokens: Some(24),
            ..Default::default()
        },
        chunk_overlap: Some(1),
        ..Default::default()
    }
}

/// One client: what it sends, and the options that make the CLI summarise the same way.
struct Case {
    route: &'static str,
    body: Value,
    texts: Vec<String>,
    options: SummaryOptions,
    truncate: bool,
    clean_up: bool,
}

fn texts() -> Vec<String> {
    let golden = common::golden("t5-tiny");
    let mut texts = common::pipeline_texts(&golden, 7);
    // Longer than the 512-token window: chunked and merged unless truncated.
    texts.push(texts[6].repeat(2));
    texts
}

fn cases() -> Vec<Case> {
    let texts = texts();
    let mut cases = Vec::new();
    for i in 0..32 {
        let text = texts[i % texts.len()].clone();
        let mut options = defaults();
        let (route, body, truncate, clean_up) = match i % 8 {
            0 => {
                // Untidy whitespace, cleaned as the CLI cleans standard input.
                let untidy = format!("  {}\r\n\r\n\r\n", text.replace(". ", ".  \t"));
                cases.push(Case {
                    route: "/",
                    body: json!({ "inputs": untidy }),
                    texts: vec![untidy],
                    options,
                    truncate: false,
                    clean_up: false,
                });
                continue;
            }
            1 => {
                options.generation.num_beams = Some(2);
                options.generation.min_length = Some(5);
                options.generation.max_new_tokens = Some(20);
                let parameters = json!({"num_beams": 2, "min_length": 5, "max_new_tokens": 20});
                (
                    "/",
                    json!({ "inputs": text, "parameters": parameters }),
                    false,
                    false,
                )
            }
            2 => {
                options.generation.sampling = Some(SamplingOverrides {
                    do_sample: Some(true),
                    temperature: Some(0.8),
                    top_k: Some(20),
                    top_p: None,
                    seed: Some(7 + i as u64),
                });
                let parameters = json!({"generate_parameters": {
                    "do_sample": true, "temperature": 0.8, "top_k": 20, "seed": 7 + i
                }});
                (
                    "/",
                    json!({ "inputs": text, "parameters": parameters }),
                    false,
                    false,
                )
            }
            3 => {
                options.generation.num_beams = Some(1);
                // An explicit total length replaces the server's cap on new tokens, as it
                // replaces a model's: what `precis summarize --max-length 18` does.
                options.generation.max_length = Some(18);
                options.generation.max_new_tokens = None;
                options.generation.no_repeat_ngram_size = Some(2);
                options.generation.repetition_penalty = Some(1.3);
                let parameters = json!({"num_beams": 1, "max_length": 18,
                    "no_repeat_ngram_size": 2, "repetition_penalty": 1.3,
                    "clean_up_tokenization_spaces": true});
                (
                    "/",
                    json!({ "inputs": text, "parameters": parameters }),
                    false,
                    true,
                )
            }
            4 => {
                options.chunk_tokens = Some(40);
                options.generation.num_beams = Some(3);
                options.generation.max_new_tokens = Some(12);
                options.generation.length_penalty = Some(0.5);
                options.generation.early_stopping = Some(EarlyStopping::Never);
                let body = json!({"text": text, "chunk_tokens": 40, "num_beams": 3,
                    "max_new_tokens": 12, "length_penalty": 0.5, "early_stopping": "never"});
                ("/summarize", body, false, false)
            }
            5 => {
                options.chunk_tokens = Some(48);
                options.merge = MergeStrategy::Concat;
                options.generation.max_new_tokens = Some(10);
                let body = json!({"text": text, "chunk_tokens": 48, "merge": "concat",
                    "max_new_tokens": 10});
                ("/summarize", body, false, false)
            }
            6 => {
                options.generation.max_new_tokens = Some(10);
                let text = texts[7].clone();
                let body = json!({"text": text, "truncation": "longest_first",
                    "max_new_tokens": 10});
                cases.push(Case {
                    route: "/summarize",
                    body,
                    texts: vec![text],
                    options,
                    truncate: true,
                    clean_up: false,
                });
                continue;
            }
            _ => {
                options.generation.num_beams = Some(2);
                options.generation.max_new_tokens = Some(12);
                let second = texts[(i + 3) % texts.len()].clone();
                let parameters = json!({"generate_parameters": {"num_beams": 2,
                    "max_new_tokens": 12}, "truncation": false});
                cases.push(Case {
                    route: "/",
                    body: json!({ "inputs": [text, second], "parameters": parameters }),
                    texts: vec![text, second],
                    options,
                    truncate: false,
                    clean_up: false,
                });
                continue;
            }
        };
        cases.push(Case {
            route,
            body,
            texts: vec![text],
            options,
            truncate,
            clean_up,
        });
    }
    cases
}

/// `text` cleaned as `precis summarize` cleans standard input (and so does the server).
pub fn prepared(text: &str) -> String {
    let document = Document::from_bytes("-", text.as_bytes().to_vec(), None).unwrap();
    prepare(&document).unwrap()
}

/// What `precis summarize` makes of `text` with `options`: its text and output ids.
fn cli_summary(summarizer: &Summarizer, case: &Case, text: &str) -> (String, Option<Vec<u32>>) {
    let text = &prepared(text);
    if case.truncate {
        return truncated_summary(summarizer, &case.options, text);
    }
    let summary = summarizer.summarize(text, &case.options).unwrap();
    let text = match (&summary.output_ids, case.clean_up) {
        (Some(ids), true) => summarizer.decode_summary(ids, true).unwrap(),
        _ => summary.text,
    };
    (text, summary.output_ids)
}

/// The library's one-pass plan over the first window, generated alone.
fn truncated_summary(
    summarizer: &Summarizer,
    options: &SummaryOptions,
    text: &str,
) -> (String, Option<Vec<u32>>) {
    let plan = SummaryPlan::new(summarizer, options)
        .unwrap()
        .truncating(true);
    let (_, passes) = plan.start(1, text).unwrap();
    assert_eq!(passes.len(), 1);
    assert_eq!(passes[0].input_ids.len(), 512, "cut to the window");
    let loaded = summarizer.loaded();
    let rows = [passes[0].input_ids.as_slice()];
    let (ids, mask) = pad_batch(&rows, loaded.model.spec().pad_token_id, &Device::Cpu).unwrap();
    let ids = generate(loaded.model.as_ref(), &ids, &mask, plan.last_pass())
        .unwrap()
        .remove(0);
    (summarizer.decode_summary(&ids, false).unwrap(), Some(ids))
}

#[test]
fn thirty_two_concurrent_clients_with_mixed_settings_get_the_cli_summaries() {
    let server = Server::start("t5-tiny", &["--max-new-tokens", "24"]);
    let cases = cases();
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| scope.spawn(|| post(&server.base, case.route, &case.body)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let summarizer = common::summarizer("t5-tiny");
    for (i, (case, (status, answer))) in cases.iter().zip(&answers).enumerate() {
        assert_eq!(*status, 200, "client {i}: {answer}");
        for (j, text) in case.texts.iter().enumerate() {
            let (expected, ids) = cli_summary(&summarizer, case, text);
            if case.route == "/" {
                assert_eq!(answer[j]["summary_text"], expected, "client {i}, input {j}");
            } else {
                assert_eq!(answer["summary"], expected, "client {i}");
                assert_eq!(answer["output_ids"], json!(ids), "client {i}");
            }
        }
    }
    // The requests really shared decoder steps.
    let rows_per_step =
        server.metric("precis_decoder_rows_total") / server.metric("precis_decoder_steps_total");
    assert!(rows_per_step > 2.0, "mean batch of {rows_per_step} rows");
    assert!(server.metric("precis_queue_time_seconds_count") >= 40.0);
}

#[test]
fn summarize_answers_the_record_the_cli_prints() {
    let flags = [
        "--chunk-tokens",
        "40",
        "--num-beams",
        "2",
        "--max-new-tokens",
        "12",
    ];
    let server = Server::start("t5-tiny", &[]);
    let text = texts()[5].clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("article.txt");
    std::fs::write(&file, &text).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_precis"))
        .args(["summarize", "--format", "json", "--model"])
        .arg(super::support::fixture("t5-tiny"))
        .args(flags)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut cli: Value = serde_json::from_slice(&output.stdout).unwrap();
    let body = json!({"text": text, "chunk_tokens": 40, "num_beams": 2, "max_new_tokens": 12});
    let (status, mut served) = post(&server.base, "/summarize", &body);
    assert_eq!(status, 200, "{served}");
    assert!(cli["chunk_count"].as_u64().unwrap() > 2, "{cli}");
    assert!(!cli["merge_passes"].as_array().unwrap().is_empty());
    for timing in ["seconds", "tokens_per_second"] {
        assert!(served[timing].as_f64().unwrap() > 0.0);
        cli[timing] = Value::Null;
        served[timing] = Value::Null;
    }
    cli.as_object_mut().unwrap().remove("source");
    assert_eq!(served, cli);
}

#[test]
fn a_client_that_disconnects_cancels_its_work() {
    let server = Server::start("t5-tiny", &["--max-new-tokens", "24"]);
    // Every chunk must generate 1000 tokens with 4 beams: minutes of work if not cancelled.
    let body = json!({"text": texts()[6], "chunk_tokens": 32, "num_beams": 4,
        "max_new_tokens": 1000, "min_length": 1001})
    .to_string();
    let address = server.base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "POST /summarize HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    eventually("the request is decoding", || {
        server.metric("precis_batch_size") > 0.0
    });
    drop(stream);
    eventually("its passes are cancelled", || {
        server.metric("precis_batch_size") == 0.0 && server.metric("precis_queue_length") == 0.0
    });
    assert!(server.metric("precis_cancelled_passes_total") >= 8.0);
    assert_eq!(server.metric("precis_generated_tokens_total"), 0.0);
    // The server goes on.
    let (status, _) = post(
        &server.base,
        "/",
        &json!({"inputs": "The ferry runs again."}),
    );
    assert_eq!(status, 200);
}
