//! Bad requests are 422s whose message names the parameter, the bound and the value given;
//! the server's limits cap what a request may ask for.

use serde_json::{Value, json};

use super::support::{Server, assert_error, post, request};

fn hf(parameters: Value) -> Value {
    json!({ "inputs": "The river flooded the old town on Monday night.", "parameters": parameters })
}

#[test]
fn bad_parameters_are_422_naming_parameter_bound_and_value() {
    let server = Server::start(
        "t5-tiny",
        &[
            "--max-new-tokens",
            "24",
            "--max-new-tokens-limit",
            "64",
            "--max-num-beams",
            "6",
            "--max-inputs-per-request",
            "3",
        ],
    );
    let base = &server.base;
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (
            hf(json!({"num_beams": 0})),
            vec!["num_beams", "0", "at least 1"],
        ),
        (
            hf(json!({"num_beams": 7})),
            vec!["num_beams", "7", "at most 6", "--max-num-beams"],
        ),
        (
            hf(json!({"max_new_tokens": 65})),
            vec![
                "max_new_tokens",
                "65",
                "at most 64",
                "--max-new-tokens-limit",
            ],
        ),
        (
            hf(json!({"max_length": 66})),
            vec!["max_length", "66", "at most 65"],
        ),
        (
            hf(json!({"min_length": 500})),
            vec!["min_length", "500", "at most 65"],
        ),
        (
            hf(json!({"do_sample": true, "top_p": 1.5})),
            vec!["top_p", "1.5", "[0, 1]"],
        ),
        (
            hf(json!({"do_sample": true, "temperature": 0})),
            vec!["temperature", "0"],
        ),
        (
            hf(json!({"repetition_penalty": -1.0})),
            vec!["repetition_penalty", "-1"],
        ),
        (
            hf(json!({"early_stopping": "sometimes"})),
            vec!["early_stopping", "sometimes"],
        ),
        (
            hf(json!({"truncation": "only_second"})),
            vec!["truncation", "only_second"],
        ),
        (hf(json!({"beams": 3})), vec!["beams", "num_beams"]),
        (
            hf(json!({"generate_parameters": {"num_beam": 3}})),
            vec!["num_beam"],
        ),
        (
            hf(json!({"num_beams": 2, "generate_parameters": {"num_beams": 3}})),
            vec!["num_beams", "2", "3"],
        ),
        (hf(json!({"num_beams": "four"})), vec!["num_beams", "four"]),
        (hf(json!({"num_beams": -2})), vec!["num_beams", "-2"]),
        (json!({"inputs": ""}), vec!["empty"]),
        (json!({"inputs": []}), vec!["inputs", "0", "1 to 3"]),
        (
            json!({"inputs": ["a", "b", "c", "d"]}),
            vec!["inputs", "4", "--max-inputs-per-request"],
        ),
        (json!({"text": "no inputs"}), vec!["text"]),
    ];
    for (body, words) in cases {
        let answer = post(base, "/", &body);
        assert_error(&answer, 422, "validation", &words);
    }
    let text = "A text long enough to chunk. ".repeat(10);
    let summarize_cases: Vec<(Value, Vec<&str>)> = vec![
        (
            json!({"text": text, "merge": "mean"}),
            vec!["merge", "mean", "reduce"],
        ),
        (
            json!({"text": text, "chunk_tokens": 0}),
            vec!["chunk_tokens", "0", "at least 1"],
        ),
        (
            json!({"text": text, "max_input_tokens": 513}),
            vec!["max_input_tokens", "513", "at most 512"],
        ),
        (
            json!({"text": text, "max_input_tokens": 2}),
            vec!["max_input_tokens", "2"],
        ),
        (
            json!({"text": text, "chunk_tokenz": 5}),
            vec!["chunk_tokenz"],
        ),
        (json!({"txt": text}), vec!["text"]),
    ];
    for (body, words) in summarize_cases {
        let answer = post(base, "/summarize", &body);
        assert_error(&answer, 422, "validation", &words);
    }
    let (status, body) = request("POST", &format!("{base}/"), Some("{not json"), None);
    let answer = (status, serde_json::from_str(&body).unwrap());
    assert_error(&answer, 422, "validation", &["JSON"]);
    // Every refusal was counted, and nothing reached the model.
    assert_eq!(server.metric("precis_input_tokens_total"), 0.0);
    assert!(server.metric("precis_errors_total") >= 26.0);
}

#[test]
fn a_server_whose_defaults_exceed_its_limit_refuses_to_start() {
    // The fixture's own summaries are longer than a 50-token limit allows.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_precis"))
        .args([
            "serve",
            "--port",
            "0",
            "--max-new-tokens-limit",
            "50",
            "--model",
        ])
        .arg(super::support::fixture("t5-tiny"))
        .env("HF_HUB_OFFLINE", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    for words in [
        "--max-new-tokens-limit: 50",
        "default summary length",
        "--max-new-tokens",
    ] {
        assert!(stderr.contains(words), "{stderr}");
    }
}
