//! Checkpoints saved by different transformers versions describe the same T5 differently;
//! each spelling must give the same model.

mod common;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::*;
use precis::models;
use serde_json::Value;

fn logits(config: &Value, model: &str) -> Vec<f32> {
    logits_with(config, weights(&fixture_dir(model)))
}

fn logits_with(config: &Value, weights: VarBuilder) -> Vec<f32> {
    let net = models::from_config(config, weights).unwrap();
    let ids = Tensor::new(&[[5u32, 17, 42, 8, 1]], &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 5), DType::U32, &Device::Cpu).unwrap();
    let hidden = net.encode(&ids, &mask).unwrap();
    let mut state = net.start_decoding(&hidden, &mask).unwrap();
    let start = Tensor::new(&[[net.spec().decoder_start_token_id]], &Device::Cpu).unwrap();
    net.decode_step(&start, &mut state)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap()
}

#[test]
fn v1_1_config_saved_by_transformers_5_matches_the_original_spelling() {
    // transformers 5 writes `tie_word_embeddings: true` for every T5 and records the old
    // meaning of `false` (no output rescaling) in `scale_decoder_outputs`.
    let original = config("flan-t5-tiny");
    assert_eq!(original["tie_word_embeddings"], Value::Bool(false));
    let mut saved_by_v5 = original.clone();
    saved_by_v5["tie_word_embeddings"] = Value::Bool(true);
    saved_by_v5["scale_decoder_outputs"] = Value::Bool(false);
    assert!(logits(&original, "flan-t5-tiny") == logits(&saved_by_v5, "flan-t5-tiny"));
}

#[test]
fn v1_0_config_saved_by_transformers_5_matches_the_original_spelling() {
    let original = config("t5-tiny");
    let mut saved_by_v5 = original.clone();
    saved_by_v5["tie_word_embeddings"] = Value::Bool(true);
    saved_by_v5["scale_decoder_outputs"] = Value::Bool(true);
    assert!(logits(&original, "t5-tiny") == logits(&saved_by_v5, "t5-tiny"));
}

#[test]
fn rescaling_changes_the_logits() {
    // Guards the two tests above against a flag that is silently ignored.
    let original = config("flan-t5-tiny");
    let mut scaled = original.clone();
    scaled["scale_decoder_outputs"] = Value::Bool(true);
    assert!(logits(&original, "flan-t5-tiny") != logits(&scaled, "flan-t5-tiny"));
}

/// The fixture's tensors plus `extra`, as a checkpoint that saved more copies of its matrices.
fn weights_plus(model: &str, extra: &[(&str, Tensor)]) -> VarBuilder<'static> {
    let path = fixture_dir(model).join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
    for (name, tensor) in extra {
        tensors.insert(name.to_string(), tensor.clone());
    }
    VarBuilder::from_tensors(tensors, DType::F32, &Device::Cpu)
}

#[test]
fn stack_copies_of_the_token_matrix_are_used_when_they_differ_as_transformers_5_does() {
    for (model, shared_name, stacks) in [
        (
            "t5-tiny",
            "shared.weight",
            ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"],
        ),
        (
            "bart-tiny",
            "model.shared.weight",
            [
                "model.encoder.embed_tokens.weight",
                "model.decoder.embed_tokens.weight",
            ],
        ),
    ] {
        let cfg = config(model);
        let shared = candle_core::safetensors::load(
            fixture_dir(model).join("model.safetensors"),
            &Device::Cpu,
        )
        .unwrap()[shared_name]
            .clone();
        let original = logits(&cfg, model);
        for stack in stacks {
            let identical = weights_plus(model, &[(stack, shared.copy().unwrap())]);
            assert!(
                logits_with(&cfg, identical) == original,
                "{model}: {stack} identical"
            );
            let different = weights_plus(model, &[(stack, (&shared * 1.5).unwrap())]);
            assert!(
                logits_with(&cfg, different) != original,
                "{model}: {stack} ignored"
            );
        }
    }
}

#[test]
fn mt5_configs_build_the_t5_architecture() {
    let mut mt5 = config("flan-t5-tiny");
    mt5["model_type"] = Value::from("mt5");
    assert!(logits(&mt5, "flan-t5-tiny") == logits(&config("flan-t5-tiny"), "flan-t5-tiny"));
}
