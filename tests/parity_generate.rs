//! Token-for-token parity of generation with transformers' `generate()` on the tiny random
//! fixtures of every architecture: greedy and beam search under many settings, forced BOS/EOS,
//! single inputs and padded batches.

#[macro_use]
mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use precis::generation::{EarlyStopping, GenerationConfig, generate};
use precis::models;
use serde_json::Value;

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

/// The model's generation config as transformers 5.24 loads it: generation_config.json, or for
/// a checkpoint without one (distilbart-tiny) the keys of config.json, where 5.24's
/// `GenerationConfig` still turns the old `force_bos_token_to_be_generated: true` into
/// `forced_bos_token_id = bos_token_id` (but, unlike 4.57, adds no class-default forced EOS).
fn model_generation_config(model: &str) -> serde_json::Map<String, Value> {
    let dir = fixture_dir(model);
    if let Ok(text) = std::fs::read_to_string(dir.join("generation_config.json")) {
        return serde_json::from_str(&text).unwrap();
    }
    let mut settings = config(model).as_object().unwrap().clone();
    if settings.get("force_bos_token_to_be_generated") == Some(&Value::Bool(true)) {
        let bos = settings.get("bos_token_id").cloned().unwrap_or(Value::Null);
        settings.insert("forced_bos_token_id".into(), bos);
    }
    settings
}

/// The model's own generation config overlaid with the case's generate() kwargs.
fn case_config(model: &str, params: &Value) -> GenerationConfig {
    let mut config = GenerationConfig::default();
    apply(&mut config, &model_generation_config(model));
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

/// Each recorded variant (one setting changed from a base case) gives tokens unlike its base's
/// and its siblings', so that matching it proves precis applies that setting; and every setting
/// the generator varies has such a case.
fn variants_tell_their_settings_apart(model: &str) {
    let golden = golden(model);
    let cases = golden["generate"].as_array().unwrap();
    let output = |name: &Value| {
        let found = cases.iter().find(|c| &c["case"] == name);
        found.unwrap_or_else(|| panic!("{model}: no golden case {name}"))["output_ids"].clone()
    };
    let mut varied = std::collections::BTreeSet::new();
    let mut never_vs_heuristic = false;
    let mut negative_penalty = false;
    for case in cases.iter().filter(|c| c.get("base").is_some()) {
        let name = &case["case"];
        let others = case["distinct_from"].as_array().unwrap();
        assert!(
            others.contains(&case["base"]),
            "{name}: not compared with its base"
        );
        for other in others {
            assert_ne!(case["output_ids"], output(other), "{name} equals {other}");
        }
        let base_params = cases.iter().find(|c| c["case"] == case["base"]).unwrap()["params"]
            .as_object()
            .unwrap();
        let params = case["params"].as_object().unwrap();
        // "never" differs from False only in the stopping heuristic (the best reachable score
        // at max_length, not at the current length): the one value no other setting shows.
        let early_stopping = |p: &serde_json::Map<String, Value>| p.get("early_stopping").cloned();
        never_vs_heuristic |= early_stopping(params) == Some("never".into())
            && early_stopping(base_params) == Some(false.into());
        // A negative length penalty favours short hypotheses: its own ranking of the pool.
        let penalty = |p: &serde_json::Map<String, Value>| p.get("length_penalty")?.as_f64();
        negative_penalty |= penalty(params).is_some_and(|lp| lp < 0.0)
            && penalty(base_params).is_some_and(|lp| lp > 0.0);
        let keys = base_params.keys().chain(params.keys());
        varied.extend(
            keys.filter(|k| base_params.get(*k) != params.get(*k))
                .cloned(),
        );
    }
    assert!(
        never_vs_heuristic,
        "{model}: no variant with early_stopping \"never\" on a base with early_stopping false"
    );
    assert!(
        negative_penalty,
        "{model}: no variant with a negative length_penalty on a base with a positive one"
    );
    let settings = [
        "early_stopping",
        "length_penalty",
        "num_beams",
        "no_repeat_ngram_size",
        "max_length",
        "max_new_tokens",
        "min_length",
        "repetition_penalty",
    ];
    for setting in settings {
        assert!(
            varied.contains(setting),
            "{model}: no variant of {setting}: {varied:?}"
        );
    }
}

fixture_model_tests!(
    generation_matches_transformers => generation_matches,
    batches_equal_one_by_one => batch_equals_one_by_one,
    variants_tell_their_settings_apart => variants_tell_their_settings_apart,
);

// Each test above, again on every other CPU kernel path (AVX-512, AVX2, portable, ...).
on_every_kernel_path!();
