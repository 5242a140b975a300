//! Shared helpers for the integration tests: fixture paths and golden files from transformers.

#![allow(dead_code)]

pub mod batch;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use precis::Summarizer;
use precis::loading::{self, HubSettings, ModelFiles};
use precis::models::{self, Seq2Seq};
use serde_json::Value;

/// Expands to one `#[test]` per fixture model and check: `fixture_model_tests!(name => check)`
/// makes `mod bart_tiny { #[test] fn name() { super::check("bart-tiny") } }` and so on, so
/// every parity test runs over every architecture and a failure names the model.
#[allow(unused_macros)]
macro_rules! fixture_model_tests {
    ($($test:ident => $check:ident),* $(,)?) => {
        fixture_model_tests!(@models [$($test => $check),*]
            t5_tiny "t5-tiny",
            flan_t5_tiny "flan-t5-tiny",
            bart_tiny "bart-tiny",
            distilbart_tiny "distilbart-tiny",
            pegasus_tiny "pegasus-tiny");
    };
    (@models $tests:tt $($module:ident $model:literal),*) => {
        $(fixture_model_tests!(@module $module $model $tests);)*
    };
    (@module $module:ident $model:literal [$($test:ident => $check:ident),*]) => {
        mod $module {
            $(
                #[test]
                fn $test() {
                    super::$check($model)
                }
            )*
        }
    };
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture_dir(model: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(model)
}

pub fn golden(model: &str) -> Value {
    let path = repo_root()
        .join("tests/fixtures/golden")
        .join(format!("{model}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read golden file {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("bad golden file {}: {e}", path.display()))
}

pub fn ids(value: &Value) -> Vec<u32> {
    value
        .as_array()
        .expect("array of ids")
        .iter()
        .map(|v| v.as_u64().expect("id") as u32)
        .collect()
}

pub fn id_rows(value: &Value) -> Vec<Vec<u32>> {
    value
        .as_array()
        .expect("array of rows")
        .iter()
        .map(ids)
        .collect()
}

pub fn floats(value: &Value) -> Vec<f64> {
    value
        .as_array()
        .expect("array of floats")
        .iter()
        .map(|v| v.as_f64().expect("float"))
        .collect()
}

/// A `(rows, cols)` u32 tensor from equal-length rows.
pub fn id_tensor(rows: &[Vec<u32>]) -> Tensor {
    let cols = rows[0].len();
    let flat: Vec<u32> = rows.iter().flatten().copied().collect();
    Tensor::from_vec(flat, (rows.len(), cols), &Device::Cpu).unwrap()
}

pub fn weights(dir: &Path) -> candle_nn::VarBuilder<'static> {
    let file = dir.join("model.safetensors");
    // SAFETY: the fixture file is not modified while the test runs.
    unsafe { candle_nn::VarBuilder::from_mmaped_safetensors(&[file], DType::F32, &Device::Cpu) }
        .expect("fixture weights load")
}

/// `|got - want| <= tol * scale`, where `scale` is the magnitude of the tensor the value comes
/// from (its largest |element|, or for a sum, the sum of |elements|): float32 error grows with
/// the size of what is summed, so a tolerance relative to the value itself would flag noise.
pub fn assert_close(what: &str, got: f64, want: f64, scale: f64, tol: f64) {
    let bound = tol * scale.max(1.0);
    assert!(
        (got - want).abs() <= bound,
        "{what}: got {got}, want {want} (|difference| {} > {bound}: tolerance {tol} x scale {scale})",
        (got - want).abs()
    );
}

/// The texts of the golden summarization-pipeline cases of `golden`, the first `n` of them.
pub fn pipeline_texts(golden: &Value, n: usize) -> Vec<String> {
    golden["pipeline"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .take(n)
        .map(|case| case["text"].as_str().unwrap().to_string())
        .collect()
}

/// The fixture's config.json as JSON.
pub fn config(model: &str) -> Value {
    let path = fixture_dir(model).join("config.json");
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("bad config {}: {e}", path.display()))
}

/// A fixture model built by its `model_type`, as the library builds it.
pub fn load_model(model: &str) -> Box<dyn Seq2Seq> {
    models::from_config(&config(model), weights(&fixture_dir(model))).unwrap()
}

/// Runs `net` on a fixed short input: the encoder output and the first decoder step's logits.
pub fn first_step(net: &dyn Seq2Seq) -> (Tensor, Vec<f32>) {
    let ids = Tensor::new(&[[5u32, 17, 42, 8, 1]], &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 5), DType::U32, &Device::Cpu).unwrap();
    let hidden = net.encode(&ids, &mask).unwrap();
    let mut state = net.start_decoding(&hidden, &mask).unwrap();
    let start = Tensor::new(&[[net.spec().decoder_start_token_id]], &Device::Cpu).unwrap();
    let logits = net.decode_step(&start, &mut state).unwrap();
    (hidden, logits.flatten_all().unwrap().to_vec1().unwrap())
}

/// A fixture folder's files, found the way `--model <folder>` finds them (never the network).
pub fn model_files(model: &str) -> ModelFiles {
    let mut hub = HubSettings::from_vars(|_| None);
    hub.offline = true;
    loading::resolve(fixture_dir(model).to_str().unwrap(), &hub).unwrap()
}

/// A CPU f32 summarizer over a fixture folder.
pub fn summarizer(model: &str) -> Summarizer {
    Summarizer::from_files(&model_files(model), &Device::Cpu, DType::F32).unwrap()
}

/// Expands to a test that runs every other test of its binary again on each other kernel path
/// the CPU supports (see [`rerun_on_other_kernel_paths`]), so parity holds on every path.
#[allow(unused_macros)]
macro_rules! on_every_kernel_path {
    () => {
        #[test]
        fn every_other_cpu_kernel_path() {
            common::rerun_on_other_kernel_paths("every_other_cpu_kernel_path");
        }
    };
}

/// Runs this test binary once more per kernel path the CPU supports other than the one in use,
/// with `PRECIS_CPU_KERNELS` naming it and `this_test` left out (it would recurse). Fails with
/// the run's output when any test fails there, or when the run passed no test at all.
pub fn rerun_on_other_kernel_paths(this_test: &str) {
    let binary = std::env::current_exe().expect("the test binary's path");
    let in_use = models::cpu_kernels().expect("the kernel path in use");
    let others = models::KernelPath::supported()
        .into_iter()
        .filter(|path| *path != in_use);
    for path in others {
        let output = std::process::Command::new(&binary)
            .args(["--skip", this_test])
            .env(models::KERNELS_ENV, path.as_str())
            .output()
            .expect("rerun the test binary");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let report = || {
            let stderr = String::from_utf8_lossy(&output.stderr);
            format!(
                "{}={path}: {}\n{stdout}\n{stderr}",
                models::KERNELS_ENV,
                output.status
            )
        };
        assert!(output.status.success(), "tests failed with {}", report());
        let passed = stdout
            .lines()
            .filter_map(|line| line.strip_prefix("test result: ok. "))
            .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
            .sum::<usize>();
        assert!(passed > 0, "no test ran with {}", report());
    }
}

/// Set to 1 to rewrite the snapshot files the tests compare with (see `assert_snapshot`).
pub const BLESS_VAR: &str = "PRECIS_BLESS";

/// Compares `value` with the committed snapshot `tests/fixtures/snapshots/<name>.json`: precis's
/// own output, kept so that any change to it shows up in review. After a deliberate change,
/// `PRECIS_BLESS=1 cargo test --test <file>` rewrites the snapshots from the current output
/// (review and commit the diff).
pub fn assert_snapshot(name: &str, value: &Value) {
    let path = repo_root()
        .join("tests/fixtures/snapshots")
        .join(format!("{name}.json"));
    if std::env::var(BLESS_VAR).as_deref() == Ok("1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let text = serde_json::to_string_pretty(value).unwrap() + "\n";
        std::fs::write(&path, text).unwrap();
        eprintln!("blessed {}", path.display());
        return;
    }
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read snapshot {} ({e}); create it with {BLESS_VAR}=1",
            path.display()
        )
    });
    let want: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("bad snapshot {}: {e}", path.display()));
    if let Some(difference) = first_difference("", value, &want) {
        panic!(
            "output differs from snapshot {}: {difference}\nIf the change is intended, rerun with \
             {BLESS_VAR}=1 and commit the new snapshot.",
            path.display()
        );
    }
}

/// Where `got` and `want` first differ, as a JSON path with both values.
fn first_difference(path: &str, got: &Value, want: &Value) -> Option<String> {
    match (got, want) {
        (Value::Object(g), Value::Object(w)) => {
            let keys: std::collections::BTreeSet<&String> = g.keys().chain(w.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (g, w) = (
                    g.get(k).unwrap_or(&Value::Null),
                    w.get(k).unwrap_or(&Value::Null),
                );
                first_difference(&format!("{path}.{k}"), g, w)
            })
        }
        (Value::Array(g), Value::Array(w)) if g.len() == w.len() => g
            .iter()
            .zip(w)
            .enumerate()
            .find_map(|(i, (g, w))| first_difference(&format!("{path}[{i}]"), g, w)),
        _ if got == want => None,
        _ => Some(format!("at {path}: got {got}, snapshot has {want}")),
    }
}
