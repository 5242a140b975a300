//! Starting `precis serve` on an ephemeral 127.0.0.1 port and talking to it with a real HTTP
//! client (ureq). Every wait is bounded; a server is killed when its handle is dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use candle_core::{DType, Device};
use precis::generation::GenerationOverrides;
use precis::loading::{LoadedModel, load_files};
use precis::models::Seq2Seq;
use precis::serve::ServeOptions;
use precis::{Summarizer, SummaryOptions};
use serde_json::Value;

/// Long enough for a loaded CI machine, short enough that a hang fails the test.
pub const PATIENCE: Duration = Duration::from_secs(120);

pub fn fixture(model: &str) -> String {
    format!("{}/tests/fixtures/{model}", env!("CARGO_MANIFEST_DIR"))
}

/// A `precis serve` child process.
pub struct Server {
    child: Child,
    pub base: String,
    stderr: Receiver<String>,
}

impl Server {
    /// Starts a server over the fixture `model` with extra flags, and waits until it is ready.
    pub fn start(model: &str, args: &[&str]) -> Server {
        Self::start_with_env(model, args, &[])
    }

    pub fn start_with_env(model: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let server = Self::spawn(model, args, env);
        server.wait_ready();
        server
    }

    /// Starts a server and returns once it listens (the model may still be loading).
    pub fn spawn(model: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let mut command = Command::new(env!("CARGO_BIN_EXE_precis"));
        command
            .args(["serve", "--model", &fixture(model), "--port", "0"])
            .args(args)
            .env_remove("PRECIS_API_KEY")
            .env("HF_HUB_OFFLINE", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("precis serve starts");
        let pipe = child.stderr.take().expect("stderr is piped");
        let (lines, stderr) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match stderr.recv_timeout(left) {
                Ok(line) => {
                    if let Some(address) = line.strip_prefix("precis: listening on ") {
                        break address.trim().to_string();
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!(
                        "precis serve did not report its address: {:?}",
                        child.wait()
                    );
                }
            }
        };
        assert!(base.starts_with("http://127.0.0.1:"), "{base}");
        Server {
            child,
            base,
            stderr,
        }
    }

    /// Polls `/health` until it answers 200.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + PATIENCE;
        while Instant::now() < deadline {
            if get(&self.base, "/health", None).0 == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("server at {} never became ready", self.base);
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM, as `kill` and Kubernetes do.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// The stderr lines printed so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.try_iter().collect()
    }

    /// A counter or gauge from `/metrics` (the sum over its label sets), 0 if absent.
    pub fn metric(&self, name: &str) -> f64 {
        metric(&self.metrics_text(), name)
    }

    pub fn metrics_text(&self) -> String {
        let (status, text) = get(&self.base, "/metrics", None);
        assert_eq!(status, 200, "{text}");
        text
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sum of `name`'s samples (any labels) in OpenMetrics text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn agent() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(PATIENCE).build()
}

/// Status and body of a request; `key` goes in `Authorization: Bearer`.
pub fn request(method: &str, url: &str, body: Option<&str>, key: Option<&str>) -> (u16, String) {
    let mut request = agent().request(method, url);
    if let Some(key) = key {
        request = request.set("Authorization", &format!("Bearer {key}"));
    }
    let response = match body {
        Some(body) => request
            .set("Content-Type", "application/json")
            .send_string(body),
        None => request.call(),
    };
    match response {
        Ok(response) => (response.status(), response.into_string().expect("body")),
        Err(ureq::Error::Status(status, response)) => {
            (status, response.into_string().expect("error body"))
        }
        Err(e) => panic!("{method} {url}: {e}"),
    }
}

pub fn get(base: &str, path: &str, key: Option<&str>) -> (u16, String) {
    request("GET", &format!("{base}{path}"), None, key)
}

/// POSTs JSON and parses the JSON answer.
pub fn post(base: &str, path: &str, body: &Value) -> (u16, Value) {
    let (status, text) = request(
        "POST",
        &format!("{base}{path}"),
        Some(&body.to_string()),
        None,
    );
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    (status, value)
}

/// Asserts an error answer: its status, `error_type`, and that its message names each of
/// `words`.
pub fn assert_error(answer: &(u16, Value), status: u16, error_type: &str, words: &[&str]) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error_type"], error_type, "{body}");
    let message = body["error"].as_str().expect("error message");
    for word in words {
        assert!(message.contains(word), "'{word}' missing from: {message}");
    }
}

/// Polls `check` every 20 ms until it holds, for at most `PATIENCE`.
pub fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out waiting until {what}");
}

/// A server running in this process on its own runtime, stopped when dropped.
pub struct InProcess {
    runtime: tokio::runtime::Runtime,
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<precis::Result<()>>>,
}

impl InProcess {
    pub fn start(load: impl FnOnce() -> precis::Result<Summarizer> + Send + 'static) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let options = ServeOptions {
            defaults: SummaryOptions {
                generation: GenerationOverrides {
                    max_new_tokens: Some(16),
                    ..Default::default()
                },
                ..Default::default()
            },
            limits: Default::default(),
            api_key: None,
            shutdown_timeout: Duration::from_secs(5),
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let shutdown = async {
            let _ = stopped.await;
        };
        let task = runtime.spawn(precis::serve::serve(listener, options, load, shutdown));
        InProcess {
            runtime,
            base,
            stop: Some(stop),
            task: Some(task),
        }
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let result = self
                .runtime
                .block_on(async { tokio::time::timeout(PATIENCE, task).await });
            if !std::thread::panicking() {
                assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
            }
        }
    }
}

/// The fixture `model` loaded with its network wrapped by `wrap` (to fail or script it).
pub fn wrapped(
    model: &str,
    wrap: impl FnOnce(Box<dyn Seq2Seq>) -> Box<dyn Seq2Seq>,
) -> precis::Result<Summarizer> {
    let files = super::common::model_files(model);
    let loaded = load_files(&files, &Device::Cpu, DType::F32, None)?;
    let model = wrap(loaded.model);
    Ok(Summarizer::from(LoadedModel { model, ..loaded }))
}
