//! The merge of a checkpoint's settings, against hand-written configs and the fixtures'
//! golden pipeline parameters.

use super::*;
use crate::generation::SamplingOverrides;
use serde_json::json;

/// t5-small's config.json and generation_config.json, trimmed to the keys that matter.
fn t5_config() -> Value {
    json!({
        "model_type": "t5", "n_positions": 512, "decoder_start_token_id": 0,
        "eos_token_id": 1, "pad_token_id": 0,
        "task_specific_params": {
            "summarization": {
                "early_stopping": true, "length_penalty": 2.0, "max_length": 200,
                "min_length": 30, "no_repeat_ngram_size": 3, "num_beams": 4,
                "prefix": "summarize: "
            },
            "translation_en_to_de": {"prefix": "translate English to German: "}
        }
    })
}

fn t5_generation() -> Value {
    json!({"decoder_start_token_id": 0, "eos_token_id": 1, "pad_token_id": 0})
}

/// bart-large-cnn style: generation settings at the top level of config.json.
fn bart_config() -> Value {
    json!({
        "model_type": "bart", "max_position_embeddings": 1024, "bos_token_id": 0,
        "eos_token_id": 2, "pad_token_id": 1, "decoder_start_token_id": 2,
        "forced_bos_token_id": 0, "forced_eos_token_id": 2, "num_beams": 4,
        "length_penalty": 2.0, "max_length": 142, "min_length": 56,
        "no_repeat_ngram_size": 3, "early_stopping": true
    })
}

fn merge(
    config: &Value,
    generation: Option<&Value>,
    preset: Option<&Preset>,
) -> SummarizationDefaults {
    let levels = Levels::parse(config, generation).unwrap_or_else(|_| panic!("parse failed"));
    levels.merge(preset)
}

fn preset(window: usize, prefix: &str, generation: GenerationOverrides) -> Preset {
    Preset {
        name: "p".into(),
        repo: "o/p".into(),
        window,
        parameters_millions: 1,
        download_mb: 1,
        description: "d".into(),
        prefix: Some(prefix.into()),
        generation,
    }
}

#[test]
fn t5_gets_its_task_params_and_the_pipeline_token_cap() {
    let d = merge(&t5_config(), Some(&t5_generation()), None);
    let expected = SummarizationDefaults {
        prefix: "summarize: ".into(),
        generation: GenerationConfig {
            num_beams: 4,
            length_penalty: 2.0,
            early_stopping: EarlyStopping::Always,
            min_length: 30,
            min_new_tokens: None,
            max_length: 200,
            max_new_tokens: Some(256),
            no_repeat_ngram_size: 3,
            repetition_penalty: 1.0,
            forced_bos_token_id: None,
            forced_eos_token_id: None,
            do_sample: false,
            sampling: Sampling::default(),
        },
        decoder_start_token_id: Some(0),
        bos_token_id: None,
        eos_token_ids: vec![1],
        pad_token_id: Some(0),
        window: 512,
    };
    assert_eq!(d, expected);
}

#[test]
fn bart_reads_top_level_config_when_it_has_no_generation_config() {
    let d = merge(&bart_config(), None, None);
    assert_eq!(
        (
            d.generation.num_beams,
            d.generation.min_length,
            d.generation.max_length
        ),
        (4, 56, 142)
    );
    assert_eq!(
        d.generation.max_new_tokens, None,
        "the model's own max_length drops the 256 cap"
    );
    assert_eq!(
        (
            d.generation.length_penalty,
            d.generation.no_repeat_ngram_size
        ),
        (2.0, 3)
    );
    assert_eq!(
        (
            d.generation.forced_bos_token_id,
            d.generation.forced_eos_token_id
        ),
        (Some(0), Some(2))
    );
    assert_eq!(
        (d.decoder_start_token_id, d.bos_token_id),
        (Some(2), Some(0))
    );
    assert_eq!((d.prefix.as_str(), d.window), ("", 1024));
}

/// sshleifer/distilbart-cnn-12-6 style: the old CNN flag instead of forced token ids.
fn distilbart_config() -> Value {
    json!({
        "model_type": "bart", "max_position_embeddings": 1024, "bos_token_id": 0,
        "eos_token_id": 2, "pad_token_id": 1, "decoder_start_token_id": 2,
        "force_bos_token_to_be_generated": true, "num_beams": 4, "max_length": 142,
        "min_length": 56, "prefix": " ",
        "task_specific_params": {"summarization": {"num_beams": 4, "max_length": 142}}
    })
}

#[test]
fn old_bart_configs_get_transformers_4_class_defaults_and_forced_bos() {
    let d = merge(&distilbart_config(), None, None);
    assert_eq!(
        (
            d.generation.forced_bos_token_id,
            d.generation.forced_eos_token_id
        ),
        (Some(0), Some(2)),
        "4.57 BartConfig: force_bos_token_to_be_generated and forced_eos_token_id=2"
    );
    assert_eq!(d.prefix, " ");
    let mut explicit_null = distilbart_config();
    explicit_null["forced_eos_token_id"] = Value::Null;
    explicit_null["force_bos_token_to_be_generated"] = json!(false);
    let d = merge(&explicit_null, None, None);
    assert_eq!(
        (
            d.generation.forced_bos_token_id,
            d.generation.forced_eos_token_id
        ),
        (None, None)
    );
    let pegasus = json!({"model_type": "pegasus", "max_position_embeddings": 512});
    assert_eq!(
        merge(&pegasus, None, None).generation.forced_eos_token_id,
        Some(1)
    );
    assert_eq!(
        merge(&t5_config(), None, None)
            .generation
            .forced_eos_token_id,
        None
    );
}

#[test]
fn a_generation_config_file_has_no_class_defaults() {
    let generation = json!({"decoder_start_token_id": 2, "eos_token_id": 2});
    let d = merge(&distilbart_config(), Some(&generation), None);
    assert_eq!(
        (
            d.generation.forced_bos_token_id,
            d.generation.forced_eos_token_id
        ),
        (None, None)
    );
}

#[test]
fn a_generation_config_replaces_the_top_level_config_keys() {
    let generation = json!({"length_penalty": 0.5, "eos_token_id": 2, "decoder_start_token_id": 2});
    let d = merge(&bart_config(), Some(&generation), None);
    assert_eq!(
        (d.generation.length_penalty, d.generation.max_new_tokens),
        (0.5, Some(256))
    );
    // Not in generation_config.json, so transformers does not use config.json's.
    assert_eq!(
        (
            d.generation.max_length,
            d.generation.min_length,
            d.generation.forced_bos_token_id
        ),
        (20, 0, None)
    );
    // Token ids still fall back to config.json.
    assert_eq!((d.bos_token_id, d.pad_token_id), (Some(0), Some(1)));
}

#[test]
fn task_params_beat_the_generation_config() {
    let generation = json!({"num_beams": 8, "max_length": 64, "length_penalty": 0.6});
    let d = merge(&t5_config(), Some(&generation), None);
    assert_eq!(
        (
            d.generation.num_beams,
            d.generation.max_length,
            d.generation.length_penalty
        ),
        (4, 200, 2.0)
    );
    assert_eq!(
        d.generation.max_new_tokens, None,
        "the model's max_length 64 dropped the cap"
    );
}

#[test]
fn only_the_plain_summarization_task_counts() {
    let config = json!({
        "max_position_embeddings": 512, "num_beams": 8, "max_length": 64,
        "length_penalty": 0.6,
        "task_specific_params": {"summarization_cnn_dailymail": {"num_beams": 2}}
    });
    let d = merge(&config, None, None);
    assert_eq!(
        (
            d.generation.max_length,
            d.generation.length_penalty,
            d.window
        ),
        (64, 0.6, 512)
    );
    // The legacy pipeline's 4 beams beat the model's 8 (checked against transformers 4.57).
    assert_eq!(d.generation.num_beams, 4);
}

#[test]
fn nothing_said_means_pipeline_then_global_defaults() {
    let d = merge(&json!({}), None, None);
    assert_eq!(
        (d.generation.num_beams, d.generation.max_new_tokens),
        (4, Some(256))
    );
    assert_eq!((d.generation.min_length, d.generation.max_length), (0, 20));
    assert_eq!(
        (d.generation.length_penalty, d.generation.repetition_penalty),
        (1.0, 1.0)
    );
    assert_eq!(
        (
            d.generation.early_stopping,
            d.generation.no_repeat_ngram_size
        ),
        (EarlyStopping::Heuristic, 0)
    );
    assert_eq!((d.decoder_start_token_id, d.pad_token_id), (None, None));
    assert!(d.eos_token_ids.is_empty());
    assert_eq!(d.window, FALLBACK_WINDOW);
}

/// `(do_sample, temperature, top_k, top_p)` of the merged defaults.
fn sampling(d: &SummarizationDefaults) -> (bool, f64, usize, f64) {
    let s = &d.generation.sampling;
    (d.generation.do_sample, s.temperature, s.top_k, s.top_p)
}

/// The sampling keys follow the precedence of every other setting: task parameters, the
/// catalogue, the model's generation config (generation_config.json, else config.json's top
/// level, never both), then transformers' defaults: off, 1.0, 50, 1.0.
#[test]
fn sampling_keys_follow_the_same_precedence() {
    assert_eq!(
        sampling(&merge(&t5_config(), Some(&t5_generation()), None)),
        (false, 1.0, 50, 1.0)
    );
    let generation = json!({
        "do_sample": true, "temperature": 0.6, "top_k": 7, "top_p": 0.8, "eos_token_id": 1
    });
    let from_file = merge(&t5_config(), Some(&generation), None);
    assert_eq!(sampling(&from_file), (true, 0.6, 7, 0.8));
    // The pipeline's 4 beams stay in the defaults; applying options samples with one.
    assert_eq!(from_file.generation.num_beams, 4);
    let applied = GenerationOverrides::default().apply(from_file.generation.clone());
    assert_eq!((applied.do_sample, applied.num_beams), (true, 1));
    assert!(applied.validate().is_ok());

    let mut bart = bart_config();
    for (key, value) in [
        ("do_sample", json!(true)),
        ("top_k", json!(0)),
        ("temperature", json!(2)),
    ] {
        bart[key] = value;
    }
    assert_eq!(sampling(&merge(&bart, None, None)), (true, 2.0, 0, 1.0));
    let bare_generation = json!({"eos_token_id": 2, "decoder_start_token_id": 2});
    assert_eq!(
        sampling(&merge(&bart, Some(&bare_generation), None)),
        (false, 1.0, 50, 1.0),
        "with a generation_config.json, config.json's keys do not count"
    );

    let mut t5 = t5_config();
    let task = &mut t5["task_specific_params"]["summarization"];
    task["top_p"] = json!(0.5);
    task["do_sample"] = json!(false);
    assert_eq!(
        sampling(&merge(&t5, Some(&generation), None)),
        (false, 0.6, 7, 0.5)
    );
    let catalogue = GenerationOverrides {
        sampling: Some(SamplingOverrides {
            top_k: Some(3),
            ..Default::default()
        }),
        ..Default::default()
    };
    let preset = preset(512, "summarize: ", catalogue);
    assert_eq!(
        sampling(&merge(&t5_config(), Some(&generation), Some(&preset))),
        (true, 0.6, 3, 0.8)
    );
    assert_eq!(
        sampling(&merge(&t5, Some(&generation), Some(&preset))),
        (false, 0.6, 3, 0.5)
    );
}

#[test]
fn special_token_fallbacks_follow_transformers() {
    let d = merge(
        &json!({"bos_token_id": 5, "eos_token_id": [7, 9]}),
        None,
        None,
    );
    assert_eq!(
        d.decoder_start_token_id,
        Some(5),
        "decoder start falls back to bos"
    );
    assert_eq!(d.eos_token_ids, vec![7, 9]);
    assert_eq!(d.pad_token_id, Some(7), "pad falls back to the first eos");
}

#[test]
fn nulls_are_unset_and_never_parses() {
    let config = json!({"max_length": null, "early_stopping": "never", "forced_eos_token_id": [2]});
    let d = merge(&config, None, None);
    assert_eq!(d.generation.max_length, 20);
    assert_eq!(d.generation.early_stopping, EarlyStopping::Never);
    assert_eq!(d.generation.forced_eos_token_id, Some(2));
}

#[test]
fn preset_overrides_act_as_missing_task_params() {
    let overrides = GenerationOverrides {
        num_beams: Some(2),
        max_length: Some(99),
        max_new_tokens: Some(80),
        ..GenerationOverrides::default()
    };
    let p = preset(384, "tl;dr: ", overrides);
    let config = json!({"n_positions": 512, "max_length": 50, "length_penalty": 0.7});
    let d = merge(&config, None, Some(&p));
    assert_eq!(
        (d.window, d.generation.num_beams, d.generation.max_length),
        (384, 2, 99)
    );
    assert_eq!(
        (d.generation.max_new_tokens, d.generation.length_penalty),
        (Some(80), 0.7)
    );
    assert_eq!(d.prefix, "tl;dr: ");
    let d = merge(&t5_config(), None, Some(&p));
    let got = (
        d.prefix.as_str(),
        d.generation.num_beams,
        d.generation.max_length,
    );
    assert_eq!(got, ("summarize: ", 4, 200));
}

#[test]
fn config_prefix_is_used_when_the_task_has_none() {
    let d = merge(&json!({"prefix": "summarise: "}), None, None);
    assert_eq!(d.prefix, "summarise: ");
}

/// One field of `d` under its transformers name, as the golden JSON records it.
fn param(d: &SummarizationDefaults, key: &str) -> Value {
    match key {
        "num_beams" => json!(d.generation.num_beams),
        "length_penalty" => json!(d.generation.length_penalty),
        "early_stopping" => match d.generation.early_stopping {
            EarlyStopping::Always => json!(true),
            EarlyStopping::Heuristic => json!(false),
            EarlyStopping::Never => json!("never"),
        },
        "min_length" => json!(d.generation.min_length),
        "max_length" => json!(d.generation.max_length),
        "max_new_tokens" => json!(d.generation.max_new_tokens),
        "no_repeat_ngram_size" => json!(d.generation.no_repeat_ngram_size),
        // The f32 setting by its shortest decimal, as the golden's Python float prints it.
        "repetition_penalty" => json!(
            d.generation
                .repetition_penalty
                .to_string()
                .parse::<f64>()
                .unwrap()
        ),
        "forced_bos_token_id" => json!(d.generation.forced_bos_token_id),
        "forced_eos_token_id" => json!(d.generation.forced_eos_token_id),
        other => panic!("golden names a parameter this test does not map: {other}"),
    }
}

/// The fixture models' merged defaults must equal the parameters recorded by
/// scripts/make_fixtures.py (`pipeline.effective_params`, the emulated 4.57 pipeline).
#[test]
fn fixture_models_match_their_golden_pipeline_params() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for name in [
        "t5-tiny",
        "flan-t5-tiny",
        "bart-tiny",
        "bart-tiny-vocab-merges",
        "distilbart-tiny",
        "pegasus-tiny",
    ] {
        let golden_name = name.trim_end_matches("-vocab-merges");
        let golden_path = root.join("golden").join(format!("{golden_name}.json"));
        // The goldens are committed: a missing one is a broken checkout, not a reason to skip.
        let golden = JsonFile::read(&golden_path).unwrap().json;
        let model = root.join(name);
        let generation = model.join("generation_config.json");
        let generation = generation.exists().then_some(generation);
        let d = defaults_of(&model.join("config.json"), generation.as_deref()).unwrap();
        let pipeline = &golden["pipeline"];
        assert_eq!(json!(d.prefix), pipeline["prefix"], "{name}: prefix");
        let params = pipeline["effective_params"].as_object().unwrap();
        for (key, expected) in params {
            assert_eq!(&param(&d, key), expected, "{name}: {key}");
        }
    }
}

/// The defaults of the checkpoint files at `config` and `generation`, read as loading
/// reads them.
fn defaults_of(config: &Path, generation: Option<&Path>) -> Result<SummarizationDefaults> {
    let config = JsonFile::read(config)?;
    let generation = generation.map(JsonFile::read).transpose()?;
    SummarizationDefaults::from_json(&config, generation.as_ref(), None)
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn load_reads_both_files() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(&dir, "config.json", &t5_config().to_string());
    let generation = write(&dir, "generation_config.json", &t5_generation().to_string());
    let d = defaults_of(&config, Some(&generation)).unwrap();
    assert_eq!(
        (d.generation.num_beams, d.prefix.as_str()),
        (4, "summarize: ")
    );
}

#[test]
fn load_errors_name_the_file_at_fault() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "config.json", "{}");
    let broken = write(&dir, "broken.json", "{\"num_beams\": ");
    let bad_type = write(&dir, "bad_type.json", "{\"num_beams\": \"four\"}");
    let bad_stop = write(&dir, "bad_stop.json", "{\"early_stopping\": \"sometimes\"}");
    let two_eos = write(&dir, "two_eos.json", "{\"forced_eos_token_id\": [1, 2]}");
    for (config, generation, culprit) in [
        (&broken, None, &broken),
        (&bad_type, None, &bad_type),
        (&good, Some(&bad_stop), &bad_stop),
        (&good, Some(&two_eos), &two_eos),
    ] {
        let err = defaults_of(config, generation.map(|p| p.as_path()));
        match err {
            Err(Error::JsonFile { path, .. }) => assert_eq!(&path, culprit),
            other => panic!(
                "{}: expected a JSON error, got {other:?}",
                culprit.display()
            ),
        }
    }
    let missing = dir.path().join("missing.json");
    let err = defaults_of(&missing, None).unwrap_err();
    assert!(matches!(err, Error::Io { ref path, .. } if *path == missing));
}
