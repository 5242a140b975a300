//! The server's life: 503 while loading, 429 past the concurrency limit, SIGTERM draining
//! (in-flight work finishes, new work gets 503, exit 0), and model failures answered 500 while
//! everything else goes on.

use std::sync::mpsc;

use candle_core::Tensor;
use precis::SummaryOptions;
use precis::generation::GenerationOverrides;
use precis::models::{DecoderSpec, DecoderState, Quantization, Seq2Seq};
use serde_json::{Value, json};

use super::common;
use super::support::{InProcess, PATIENCE, Server, assert_error, eventually, get, post, wrapped};

/// A request that keeps a chunk decoding for a while: every pass generates `tokens` tokens.
fn slow_request(tokens: usize) -> Value {
    let golden = common::golden("t5-tiny");
    let text = common::pipeline_texts(&golden, 7)[5].clone();
    json!({"text": text, "chunk_tokens": 64, "max_new_tokens": tokens, "min_length": tokens + 1})
}

#[test]
fn past_the_concurrency_limit_requests_get_429_at_once() {
    let server = Server::start("t5-tiny", &["--max-concurrent-requests", "1"]);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| post(&server.base, "/summarize", &slow_request(300)));
        eventually("the first request decodes", || {
            server.metric("precis_batch_size") > 0.0
        });
        let second = post(&server.base, "/", &json!({"inputs": "A second text."}));
        assert_error(
            &second,
            429,
            "overloaded",
            &["--max-concurrent-requests", "1"],
        );
        // Health and metrics are not summarisation requests: never limited.
        assert_eq!(get(&server.base, "/health", None).0, 200);
        assert_eq!(first.join().unwrap().0, 200);
    });
    let (status, _) = post(&server.base, "/", &json!({"inputs": "A third text."}));
    assert_eq!(status, 200, "the slot is free again");
}

#[test]
fn sigterm_drains_requests_in_flight_then_exits_0() {
    let mut server = Server::start("t5-tiny", &["--shutdown-timeout", "300"]);
    let request = slow_request(120);
    let (status, answer) = std::thread::scope(|scope| {
        let in_flight = scope.spawn(|| post(&server.base, "/summarize", &request));
        eventually("the request decodes", || {
            server.metric("precis_batch_size") > 0.0
        });
        server.terminate();
        eventually("health says shutting down", || {
            get(&server.base, "/health", None) == (503, r#"{"status":"shutting_down"}"#.into())
        });
        let refused = post(&server.base, "/", &json!({"inputs": "Too late."}));
        assert_error(&refused, 503, "shutting_down", &[]);
        in_flight.join().unwrap()
    });
    assert_eq!(status, 200, "{answer}");
    let summarizer = common::summarizer("t5-tiny");
    let options = SummaryOptions {
        chunk_tokens: Some(64),
        generation: GenerationOverrides {
            max_new_tokens: Some(120),
            min_length: Some(121),
            ..Default::default()
        },
        chunk_overlap: Some(1),
        ..Default::default()
    };
    let text = request["text"].as_str().unwrap();
    let expected = summarizer
        .summarize(&super::batching::prepared(text), &options)
        .unwrap();
    assert_eq!(answer["summary"], expected.text);
    let status = server.wait_exit(PATIENCE).expect("the server exits");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn past_the_shutdown_timeout_work_is_cancelled_and_the_server_still_exits_0() {
    let mut server = Server::start("t5-tiny", &["--shutdown-timeout", "0.2"]);
    let answer = std::thread::scope(|scope| {
        let in_flight = scope.spawn(|| post(&server.base, "/summarize", &slow_request(1000)));
        eventually("the request decodes", || {
            server.metric("precis_batch_size") > 0.0
        });
        server.terminate();
        in_flight.join().unwrap()
    });
    assert_error(&answer, 503, "shutting_down", &[]);
    let status = server.wait_exit(PATIENCE).expect("the server exits");
    assert_eq!(status.code(), Some(0));
    let log = server.stderr_lines().join("\n");
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn while_the_model_loads_everything_but_metrics_is_503() {
    let (release, released) = mpsc::channel::<()>();
    let server = InProcess::start(move || {
        let _ = released.recv_timeout(PATIENCE);
        Ok(common::summarizer("t5-tiny"))
    });
    let base = &server.base;
    assert_eq!(
        get(base, "/health", None),
        (503, r#"{"status":"loading"}"#.into())
    );
    assert_error(
        &post(base, "/", &json!({"inputs": "Early."})),
        503,
        "loading",
        &["loading"],
    );
    let info = get(base, "/info", None);
    assert_error(
        &(info.0, serde_json::from_str(&info.1).unwrap()),
        503,
        "loading",
        &[],
    );
    assert_eq!(get(base, "/metrics", None).0, 200);
    release.send(()).unwrap();
    eventually("the model is loaded", || {
        get(base, "/health", None).0 == 200
    });
    assert_eq!(post(base, "/", &json!({"inputs": "On time."})).0, 200);
}

/// The fixture model, failing (or panicking) on any batch with an input holding `trigger`.
struct Faulty {
    inner: Box<dyn Seq2Seq>,
    trigger: u32,
    panics: bool,
}

impl Seq2Seq for Faulty {
    fn spec(&self) -> &DecoderSpec {
        self.inner.spec()
    }
    fn encode(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        if ids.flatten_all()?.to_vec1::<u32>()?.contains(&self.trigger) {
            if self.panics {
                panic!("poisoned input");
            }
            candle_core::bail!("poisoned input");
        }
        self.inner.encode(ids, mask)
    }
    fn start_decoding(&self, hidden: &Tensor, mask: &Tensor) -> candle_core::Result<DecoderState> {
        self.inner.start_decoding(hidden, mask)
    }
    fn decode_step(&self, last: &Tensor, state: &mut DecoderState) -> candle_core::Result<Tensor> {
        self.inner.decode_step(last, state)
    }
    fn quantize(&mut self, q: Quantization) -> candle_core::Result<(usize, usize)> {
        self.inner.quantize(q)
    }
}

#[test]
fn a_model_failure_is_500_for_its_request_only() {
    let normal = "The ferry to the island runs twice a day in summer.";
    let poison = "Quartz xylophones vex the jury.";
    let summarizer = common::summarizer("t5-tiny");
    let ids = |text: &str| {
        let encoding = summarizer.loaded().tokenizer.encode(text, false).unwrap();
        encoding.get_ids().to_vec()
    };
    let normal_ids = ids(normal);
    let trigger = *ids(poison)
        .iter()
        .find(|id| !normal_ids.contains(id))
        .unwrap();
    let options = SummaryOptions {
        generation: GenerationOverrides {
            max_new_tokens: Some(16),
            ..Default::default()
        },
        ..Default::default()
    };
    let expected = summarizer.summarize(normal, &options).unwrap().text;
    for panics in [false, true] {
        let server = InProcess::start(move || {
            wrapped("t5-tiny", |inner| {
                Box::new(Faulty {
                    inner,
                    trigger,
                    panics,
                })
            })
        });
        eventually("the model is loaded", || {
            get(&server.base, "/health", None).0 == 200
        });
        let (bad, good) = std::thread::scope(|scope| {
            let bad = scope.spawn(|| post(&server.base, "/", &json!({"inputs": poison})));
            let good = scope.spawn(|| post(&server.base, "/", &json!({"inputs": normal})));
            (bad.join().unwrap(), good.join().unwrap())
        });
        assert_error(&bad, 500, "model", &["poisoned input"]);
        assert_eq!(good, (200, json!([{ "summary_text": expected }])));
        assert_eq!(get(&server.base, "/health", None).0, 200, "still serving");
        let metrics = get(&server.base, "/metrics", None).1;
        assert!(
            metrics.contains("precis_errors_total{error_type=\"model\"} 1"),
            "{metrics}"
        );
    }
}
