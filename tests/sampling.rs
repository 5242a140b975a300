//! Sampling at the distribution level on the T5 fixture: which first tokens can be drawn, over
//! many seeds, against the model's own first-step logits. transformers' RNG cannot be matched,
//! but its rules can: `--do-sample` alone keeps the 50 most likely tokens (transformers'
//! default `top_k`), and a model's own `do_sample`, `temperature`, `top_k` and `top_p` apply when
//! the caller gives none.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use candle_core::{DType, Device, IndexOp, Tensor};
use common::*;
use precis::generation::{GenerationOverrides, SamplingOverrides};
use precis::{Summarizer, SummaryOptions};
use serde_json::{Value, json};

const MODEL: &str = "t5-tiny";
const SEEDS: u64 = 200;

/// The golden pipeline case whose first-step logits the draws are checked against.
fn case() -> Value {
    golden(MODEL)["pipeline"]["cases"][0].clone()
}

/// The model's logits for the first generated token of `case` (the input as the pipeline
/// tokenised it, prefix included).
fn first_step_logits(case: &Value) -> Vec<f32> {
    let net = load_model(MODEL);
    let input = id_tensor(&[ids(&case["input_ids"])]);
    let mask = Tensor::ones(input.dims(), DType::U32, &Device::Cpu).unwrap();
    let hidden = net.encode(&input, &mask).unwrap();
    let mut state = net.start_decoding(&hidden, &mask).unwrap();
    let start = net.spec().decoder_start_token_id;
    let step = Tensor::new(&[[start]], &Device::Cpu).unwrap();
    let logits = net.decode_step(&step, &mut state).unwrap();
    logits.i(0).unwrap().to_vec1().unwrap()
}

/// The tokens transformers' top-k keeps: every score at least the k-th best.
fn top_k(logits: &[f32], k: usize) -> BTreeSet<u32> {
    let mut sorted = logits.to_vec();
    sorted.sort_by(|a, b| b.total_cmp(a));
    let kth = sorted[k - 1];
    (0..logits.len() as u32)
        .filter(|&t| logits[t as usize] >= kth)
        .collect()
}

/// The first generated token for each seed, with `sampling` over the model's settings; one
/// new token, no minimum length (so nothing but sampling touches the first step's scores).
fn first_tokens(summarizer: &Summarizer, sampling: SamplingOverrides) -> Vec<u32> {
    let text = case()["text"].as_str().unwrap().to_string();
    (0..SEEDS)
        .map(|seed| {
            let options = SummaryOptions {
                generation: GenerationOverrides {
                    max_new_tokens: Some(1),
                    min_length: Some(0),
                    sampling: Some(SamplingOverrides {
                        seed: Some(seed),
                        ..sampling.clone()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            };
            let summary = summarizer.summarize(&text, &options).unwrap();
            summary.output_ids.expect("one pass")[1]
        })
        .collect()
}

fn distinct(tokens: &[u32]) -> BTreeSet<u32> {
    tokens.iter().copied().collect()
}

/// `--do-sample` with a high temperature spreads the draws over many tokens, but never past the
/// 50 most likely: transformers' default top_k. With `--top-k 0` they go beyond.
#[test]
fn do_sample_alone_keeps_the_50_most_likely_tokens() {
    let logits = first_step_logits(&case());
    let top_50 = top_k(&logits, 50);
    let summarizer = summarizer(MODEL);
    let hot = SamplingOverrides {
        do_sample: Some(true),
        temperature: Some(50.0),
        ..Default::default()
    };
    let drawn = distinct(&first_tokens(&summarizer, hot.clone()));
    assert!(
        drawn.is_subset(&top_50),
        "drawn outside the top 50: {:?}",
        drawn.difference(&top_50)
    );
    assert!(
        drawn.len() >= 25,
        "the temperature spreads the draws: {drawn:?}"
    );

    let unlimited = SamplingOverrides {
        top_k: Some(0),
        ..hot
    };
    let drawn = distinct(&first_tokens(&summarizer, unlimited));
    assert!(
        !drawn.is_subset(&top_50),
        "top_k 0 keeps every token: {drawn:?}"
    );
}

/// A copy of the fixture whose `file` (config.json or generation_config.json) also holds
/// `keys`; without generation_config.json when the keys go into config.json, since transformers
/// reads config.json's generation keys only then.
fn fixture_with(dir: &Path, file: &str, keys: &Value) -> Summarizer {
    let source = fixture_dir(MODEL);
    for entry in std::fs::read_dir(&source).unwrap() {
        let name = entry.unwrap().file_name();
        if file == "config.json" && name == "generation_config.json" {
            continue;
        }
        std::fs::copy(source.join(&name), dir.join(&name)).unwrap();
    }
    let path = dir.join(file);
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (key, value) in keys.as_object().unwrap() {
        json[key] = value.clone();
    }
    std::fs::write(&path, json.to_string()).unwrap();
    let mut hub = precis::loading::HubSettings::from_vars(|_| None);
    hub.offline = true;
    let files = precis::loading::resolve(dir.to_str().unwrap(), &hub).unwrap();
    Summarizer::from_files(&files, &Device::Cpu, DType::F32).unwrap()
}

/// With no sampling options but a seed, the model's own settings decide: it samples (the
/// pipeline's 4 beams give way to one) with its temperature, top_k and top_p: hot over its top
/// 3, all of them drawn; cold, only the best; hot but with top_p 0, only the best again. The
/// same keys in config.json count when there is no generation_config.json.
#[test]
fn the_models_own_sampling_settings_apply_when_none_are_given() {
    let logits = first_step_logits(&case());
    let (top_1, top_3) = (top_k(&logits, 1), top_k(&logits, 3));
    let settings = [
        (
            json!({"do_sample": true, "temperature": 100.0, "top_k": 3}),
            &top_3,
        ),
        (
            json!({"do_sample": true, "temperature": 0.001, "top_k": 3}),
            &top_1,
        ),
        (
            json!({"do_sample": true, "temperature": 100.0, "top_k": 0, "top_p": 0.0}),
            &top_1,
        ),
    ];
    for file in ["generation_config.json", "config.json"] {
        for (keys, expected) in &settings {
            let dir = tempfile::tempdir().unwrap();
            let summarizer = fixture_with(dir.path(), file, keys);
            assert_eq!(summarizer.defaults().generation.num_beams, 4, "{file}");
            let drawn = distinct(&first_tokens(&summarizer, SamplingOverrides::default()));
            assert_eq!(&drawn, *expected, "{file} {keys}");
        }
        // The caller's settings still win: searching, or a top_k of 1 over the hot top 3.
        let dir = tempfile::tempdir().unwrap();
        let summarizer = fixture_with(dir.path(), file, &settings[0].0);
        let searched = SamplingOverrides {
            do_sample: Some(false),
            ..Default::default()
        };
        assert_eq!(distinct(&first_tokens(&summarizer, searched)), top_1);
        let narrow = SamplingOverrides {
            top_k: Some(1),
            ..Default::default()
        };
        assert_eq!(distinct(&first_tokens(&summarizer, narrow)), top_1);
    }
}

/// A sampling setting of the model's own that cannot be used is an error saying so (not naming
/// an option the caller never gave), and an option that replaces it, or turns sampling off,
/// makes the model usable.
#[test]
fn an_unusable_sampling_setting_of_the_model_is_blamed_on_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let keys = json!({"do_sample": true, "temperature": 0.0});
    let summarizer = fixture_with(dir.path(), "generation_config.json", &keys);
    let text = case()["text"].as_str().unwrap().to_string();
    let with = |sampling: SamplingOverrides| SummaryOptions {
        generation: GenerationOverrides {
            max_new_tokens: Some(2),
            sampling: Some(sampling),
            ..Default::default()
        },
        ..Default::default()
    };
    let err = summarizer
        .summarize(&text, &with(SamplingOverrides::default()))
        .unwrap_err();
    assert!(
        matches!(
            err,
            precis::Error::ModelSetting {
                option: "temperature",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.is_usage());
    assert!(
        err.to_string().contains("model's own temperature is 0"),
        "{err}"
    );
    for fix in [
        SamplingOverrides {
            temperature: Some(0.7),
            ..Default::default()
        },
        SamplingOverrides {
            do_sample: Some(false),
            ..Default::default()
        },
    ] {
        assert!(
            summarizer.summarize(&text, &with(fix.clone())).is_ok(),
            "{fix:?}"
        );
    }
}
