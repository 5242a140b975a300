//! Token-for-token parity of generation with transformers' `generate()` on the tiny random
//! fixtures: greedy and beam search under many settings, single inputs and padded batches.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use precis::generation::{EarlyStopping, GenerationConfig, generate};
use precis::models::{self, Seq2Seq};
use serde_json::Value;

fn load_model(model: &str) -> Box<dyn Seq2Seq> {
    let dir = fixture_dir(model);
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    models::from_config(&config, weights(&dir)).unwrap()
}

fn early_stopping(value: &Value) -> EarlyStopping {
    match value {
        Value::Bool(true) => EarlyStopping::Always,
        Value::Bool(false) => EarlyStopping::Heuristic,
        Value::String(s) if s == "never" => EarlyStopping::Never,
        other => panic!("unexpected early_stopping {other}"),
    }
}

/// Apply transformers-style generation keys from `source` (generation_config.json, then the
/// call's kwargs) onto `config`.
fn apply(config: &mut GenerationConfig, source: &serde_json::Map<String, Value>) {
    for (key, value) in source {
        let int = || value.as_u64().unwrap() as usize;
        match key.as_str() {
            "max_length" => config.max_length = int(),
            "max_new_tokens" => config.max_new_tokens = Some(int()),
            "min_length" => config.min_length = int(),
            "min_new_tokens" => config.min_new_tokens = Some(int()),
            "num_beams" => config.num_beams = int(),
            "length_penalty" => config.length_penalty = value.as_f64().unwrap(),
            "early_stopping" => config.early_stopping = early_stopping(value),
            "no_repeat_ngram_size" => config.no_repeat_ngram_size = int(),
            "repetition_penalty" => config.repetition_penalty = value.as_f64().unwrap() as f32,
            "forced_bos_token_id" => config.forced_bos_token_id = value.as_u64().map(|v| v as u32),
            "forced_eos_token_id" => config.forced_eos_token_id = value.as_u64().map(|v| v as u32),
            "do_sample" => assert_eq!(value, &Value::Bool(false), "golden cases are deterministic"),
            _ => {}
        }
    }
}

/// The model's own generation config overlaid with the case's generate() kwargs.
fn case_config(model: &str, params: &Value) -> GenerationConfig {
    let mut config = GenerationConfig::default();
    let path = fixture_dir(model).join("generation_config.json");
    if let Ok(text) = std::fs::read_to_string(path) {
        let model_defaults: Value = serde_json::from_str(&text).unwrap();
        apply(&mut config, model_defaults.as_object().unwrap());
    }
    apply(&mut config, params.as_object().unwrap());
    config
}

/// transformers pads finished rows (with pad, or EOS where pad is 0); ours stop at EOS.
fn assert_same_sequence(
    case: &str,
    row: usize,
    ours: &[u32],
    golden: &[u32],
    spec: &models::DecoderSpec,
) {
    let fill = |t: &u32| *t == spec.pad_token_id || *t == spec.eos_token_id;
    let ends_with_eos = ours.len() > 1 && ours.last() == Some(&spec.eos_token_id);
    assert!(
        ours.len() <= golden.len()
            && ours == &golden[..ours.len()]
            && (ends_with_eos || ours.len() == golden.len())
            && golden[ours.len()..].iter().all(fill),
        "{case} row {row}: token ids differ from transformers\n ours:   {ours:?}\n golden: {golden:?}"
    );
}

fn generation_matches(model: &str) {
    let golden = golden(model);
    let net = load_model(model);
    let cases = golden["generate"].as_array().unwrap();
    assert!(cases.len() >= 10, "expected many golden generate cases");
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let ids = id_tensor(&id_rows(&case["input_ids"]));
        let mask = id_tensor(&id_rows(&case["attention_mask"]));
        let config = case_config(model, &case["params"]);
        let ours = generate(net.as_ref(), &ids, &mask, &config).unwrap();
        let want = id_rows(&case["output_ids"]);
        assert_eq!(ours.len(), want.len(), "{name}: row count");
        for (row, (ours, want)) in ours.iter().zip(&want).enumerate() {
            assert_same_sequence(name, row, ours, want, net.spec());
        }
    }
}

/// Every row of a padded batch gives what it gives alone (our own check, beyond the goldens).
fn batch_equals_one_by_one(model: &str) {
    let golden = golden(model);
    let net = load_model(model);
    let batched = golden["generate"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["input_ids"].as_array().unwrap().len() > 1);
    let mut checked = 0;
    for case in batched {
        let rows = id_rows(&case["input_ids"]);
        let masks = id_rows(&case["attention_mask"]);
        let config = case_config(model, &case["params"]);
        let together =
            generate(net.as_ref(), &id_tensor(&rows), &id_tensor(&masks), &config).unwrap();
        for (i, (row, mask)) in rows.iter().zip(&masks).enumerate() {
            let len = mask.iter().filter(|&&m| m == 1).count();
            let single = Tensor::new(&row[..len], &Device::Cpu)
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let ones = Tensor::ones((1, len), DType::U32, &Device::Cpu).unwrap();
            let alone = generate(net.as_ref(), &single, &ones, &config).unwrap();
            assert_eq!(
                together[i], alone[0],
                "{} row {i}: batched differs from alone",
                case["case"]
            );
            checked += 1;
        }
    }
    assert!(
        checked >= 3,
        "expected padded batch cases in the golden file"
    );
}

#[test]
fn t5_v1_generation_matches_transformers() {
    generation_matches("t5-tiny");
}

#[test]
fn flan_t5_generation_matches_transformers() {
    generation_matches("flan-t5-tiny");
}

#[test]
fn t5_v1_batches_equal_one_by_one() {
    batch_equals_one_by_one("t5-tiny");
}

#[test]
fn flan_t5_batches_equal_one_by_one() {
    batch_equals_one_by_one("flan-t5-tiny");
}
