//! Every route answers as documented: the two summarisation routes, health, info, metrics,
//! the OpenAPI document and its page, and JSON errors for unknown routes and methods.

use serde_json::{Value, json};

use super::support::{Server, assert_error, get, post, request};

#[test]
fn every_route_answers_and_is_documented() {
    let server = Server::start("t5-tiny", &["--max-new-tokens", "8"]);
    let base = &server.base;

    let (status, health) = get(base, "/health", None);
    assert_eq!((status, health.as_str()), (200, r#"{"status":"ready"}"#));

    let (status, info) = get(base, "/info", None);
    assert_eq!(status, 200, "{info}");
    let info: Value = serde_json::from_str(&info).unwrap();
    assert!(info["model"].as_str().unwrap().ends_with("t5-tiny"));
    assert_eq!(info["architecture"], "t5");
    assert_eq!(
        (info["dtype"].as_str(), info["device"].as_str()),
        (Some("f32"), Some("cpu"))
    );
    assert_eq!(info["window"], 512);
    assert_eq!(info["prefix"], "summarize: ");
    // The model's own settings, with this server's --max-new-tokens over them.
    assert_eq!(info["defaults"]["num_beams"], 4);
    assert_eq!(info["defaults"]["max_new_tokens"], 8);
    assert_eq!(info["limits"]["max_input_bytes"], 16 * 1024 * 1024);
    assert_eq!(info["limits"]["max_prefill_tokens"], 4096);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));

    let text = "The council approved the budget on Monday. Taxes will rise next year.";
    let (status, summaries) = post(base, "/", &json!({ "inputs": text }));
    assert_eq!(status, 200, "{summaries}");
    assert_eq!(summaries.as_array().map(Vec::len), Some(1));
    assert!(summaries[0]["summary_text"].is_string());
    let (status, record) = post(base, "/summarize", &json!({ "text": text }));
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["summary"], summaries[0]["summary_text"]);
    assert_eq!(record["chunk_count"], 1);
    assert!(record.get("source").is_none(), "{record}");

    let metrics = server.metrics_text();
    for name in [
        "precis_http_requests_total{route=\"/\",status=\"200\"} 1",
        "precis_http_requests_total{route=\"/summarize\",status=\"200\"} 1",
        "precis_http_request_duration_seconds_count{route=\"/\"} 1",
        "precis_queue_time_seconds_count 2",
        "precis_queue_length 0",
        "precis_batch_size 0",
        "precis_generated_tokens_total 16",
    ] {
        assert!(metrics.contains(name), "no '{name}' in:\n{metrics}");
    }
    assert!(server.metric("precis_input_tokens_total") > 0.0);
    // The scheduler's time by phase: both requests were encoded, joined and decoded.
    for phase in ["encode", "join", "step"] {
        let sample = format!("precis_scheduler_busy_seconds_total{{phase=\"{phase}\"}} ");
        let seconds: f64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(&sample)?.parse().ok())
            .unwrap_or_else(|| panic!("no '{sample}' sample in:\n{metrics}"));
        assert!(seconds > 0.0, "{sample}{seconds}");
    }

    let (status, document) = get(base, "/api-doc/openapi.json", None);
    assert_eq!(status, 200);
    let document: Value = serde_json::from_str(&document).unwrap();
    for path in ["/", "/summarize", "/health", "/info", "/metrics"] {
        assert!(document["paths"][path].is_object(), "{path} undocumented");
    }
    for (path, code) in ["/", "/summarize"]
        .iter()
        .flat_map(|path| ["200", "401", "413", "422", "429", "500", "503"].map(|c| (path, c)))
    {
        let response = &document["paths"][path]["post"]["responses"][code];
        assert!(response.is_object(), "POST {path} does not document {code}");
        if code != "200" {
            let schema = &response["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/ErrorBody",
                "POST {path} {code}"
            );
        }
    }
    assert!(document["components"]["schemas"]["ErrorBody"].is_object());
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    let (status, page) = get(base, "/docs", None);
    assert_eq!(status, 200);
    assert!(
        page.contains("api-reference") && page.contains("/summarize"),
        "{page}"
    );

    let missing = request("GET", &format!("{base}/nowhere"), None, None);
    let missing = (missing.0, serde_json::from_str(&missing.1).unwrap());
    assert_error(&missing, 404, "not_found", &["/nowhere"]);
    let wrong = request("GET", &format!("{base}/summarize"), None, None);
    let wrong = (wrong.0, serde_json::from_str(&wrong.1).unwrap());
    assert_error(&wrong, 405, "method_not_allowed", &[]);
    assert!(server.metric("precis_errors_total") >= 2.0);
}

#[test]
fn the_api_key_guards_every_route_but_health() {
    let key = "s3cret-key";
    let server = Server::start_with_env(
        "t5-tiny",
        &["--max-new-tokens", "4"],
        &[("PRECIS_API_KEY", key)],
    );
    let base = &server.base;
    assert_eq!(get(base, "/health", None).0, 200);
    let body = json!({ "inputs": "A short text about the harbour." }).to_string();
    for (method, path, body) in [
        ("GET", "/info", None),
        ("GET", "/metrics", None),
        ("GET", "/docs", None),
        ("GET", "/api-doc/openapi.json", None),
        ("POST", "/", Some(body.as_str())),
        ("POST", "/summarize", Some(r#"{"text": "x"}"#)),
    ] {
        let url = format!("{base}{path}");
        for wrong in [None, Some("s3cret"), Some("s3cret-key-2"), Some("")] {
            let (status, answer) = request(method, &url, body, wrong);
            let answer = (status, serde_json::from_str(&answer).unwrap());
            assert_error(&answer, 401, "unauthorized", &["Bearer"]);
        }
        let (status, answer) = request(method, &url, body, Some(key));
        assert!(
            status == 200 || status == 422,
            "{method} {path}: {status} {answer}"
        );
    }
    let (status, _) = post(base, "/", &json!({ "inputs": "x" }));
    assert_eq!(status, 401);
}

#[test]
fn a_body_over_the_limit_is_413() {
    let server = Server::start("t5-tiny", &["--max-input-bytes", "2000"]);
    let long = "word ".repeat(500);
    let answer = post(&server.base, "/", &json!({ "inputs": long }));
    assert_error(
        &answer,
        413,
        "payload_too_large",
        &["--max-input-bytes", "2000"],
    );
    // Just under the limit is fine.
    let fits = "word ".repeat(300);
    let (status, _) = post(
        &server.base,
        "/",
        &json!({ "inputs": fits, "parameters": {"max_new_tokens": 3} }),
    );
    assert_eq!(status, 200);
}

#[test]
fn the_server_binds_localhost_and_bad_flags_exit_2() {
    // Server::spawn asserts the 127.0.0.1 address: the default host.
    let server = Server::spawn("t5-tiny", &[], &[]);
    drop(server);
    for args in [
        &["--max-batch-size", "0"][..],
        &["--host", "localhost:80"],
        &["--shutdown-timeout", "-1"],
        &["--api-key", ""],
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_precis"))
            .args(["serve", "--port", "0"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        let option = args[0];
        assert!(stderr.contains(option), "{args:?}: {stderr}");
    }
}
