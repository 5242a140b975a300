//! bf16 and f16 on the CPU: every fixture model loads and runs in half precision, with
//! first-step logits within a stated tolerance of float32's and an end-to-end summary; and the
//! float16 overflow guards transformers has (T5 clamps hidden states after every sub-layer,
//! BART clamps an encoder layer's output once it is infinite, Pegasus clamps every encoder
//! layer's output) keep a model whose activations overflow float16 finite.

#[macro_use]
mod common;

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use common::*;
use precis::generation::GenerationOverrides;
use precis::models::{self, Seq2Seq};
use precis::{Summarizer, SummaryOptions};

/// Largest error of the first-step logits relative to the largest float32 logit. Half
/// precision rounds every weight and activation to 8 (bf16) or 11 (f16) significant bits, a
/// relative error of up to 2^-9 = 0.2% or 2^-12 = 0.024% per rounding, and the logits come out of
/// 4-7 layers of such roundings: measured on the five fixtures (AMD EPYC, candle's CPU kernels),
/// bf16 0.9-2.3% and f16 0.1-0.28% of the largest logit. The bounds leave about twice that; a
/// wrong cast, a norm or softmax computed in 16 bits, or a missing scale gives errors of the
/// order of the logits themselves.
const BF16_TOLERANCE: f32 = 0.04;
const F16_TOLERANCE: f32 = 0.006;

/// The fixture's weights as tensors, for the overflow tests to scale.
fn tensors(model: &str) -> HashMap<String, Tensor> {
    let path = fixture_dir(model).join("model.safetensors");
    candle_core::safetensors::load(path, &Device::Cpu).unwrap()
}

fn build(model: &str, tensors: HashMap<String, Tensor>, dtype: DType) -> Box<dyn Seq2Seq> {
    let vb = VarBuilder::from_tensors(tensors, dtype, &Device::Cpu);
    models::from_config(&config(model), vb).unwrap()
}

fn half_logits_stay_close(model: &str) {
    let reference = first_step(build(model, tensors(model), DType::F32).as_ref()).1;
    let scale = reference.iter().fold(0f32, |m, x| m.max(x.abs()));
    for (dtype, tolerance) in [(DType::BF16, BF16_TOLERANCE), (DType::F16, F16_TOLERANCE)] {
        let (hidden, logits) = first_step(build(model, tensors(model), dtype).as_ref());
        assert_eq!(
            hidden.dtype(),
            dtype,
            "{model}: the model really runs in {dtype:?}"
        );
        let error = reference
            .iter()
            .zip(&logits)
            .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        eprintln!(
            "{model} {dtype:?}: max error {:.5} of the largest logit",
            error / scale
        );
        assert!(
            error > 0.0,
            "{model} {dtype:?}: identical to f32, so not half precision"
        );
        assert!(
            error <= tolerance * scale,
            "{model} {dtype:?}: logits off by {error} (largest logit {scale}, tolerance {tolerance})"
        );
    }
}

fn half_precision_summarises(model: &str) {
    let golden = golden(model);
    let text = &pipeline_texts(&golden, 1)[0];
    let options = SummaryOptions {
        generation: GenerationOverrides {
            max_new_tokens: Some(16),
            ..Default::default()
        },
        ..Default::default()
    };
    for dtype in [DType::BF16, DType::F16] {
        let summarizer = Summarizer::from_files(&model_files(model), &Device::Cpu, dtype).unwrap();
        assert_eq!(summarizer.dtype(), dtype);
        let summary = summarizer.summarize(text, &options).unwrap();
        assert!(
            summary.output_tokens > 0 && !summary.text.trim().is_empty(),
            "{model} {dtype:?}: empty summary"
        );
    }
}

fixture_model_tests!(
    bf16_and_f16_first_step_logits_stay_close_to_f32 => half_logits_stay_close,
    bf16_and_f16_summarise => half_precision_summarises,
);

/// Multiplies the named tensors by `factor`.
fn scaled(model: &str, names: &[&str], factor: f64) -> HashMap<String, Tensor> {
    let mut tensors = tensors(model);
    for name in names {
        let tensor = tensors
            .remove(*name)
            .unwrap_or_else(|| panic!("{model}: no {name}"));
        tensors.insert(name.to_string(), (tensor * factor).unwrap());
    }
    tensors
}

fn largest(tensor: &Tensor) -> f32 {
    let values: Vec<f32> = tensor
        .to_dtype(DType::F32)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    values.iter().fold(
        0f32,
        |m, x| if x.is_nan() { f32::NAN } else { m.max(x.abs()) },
    )
}

/// A float16 model whose `names` are scaled so that activations overflow 65504 keeps a finite
/// encoder output and, with `logits_too`, finite first-step logits. (Without the guards these
/// come out infinite or NaN: each test was seen failing with its clamp removed.)
fn assert_guarded(model: &str, names: &[&str], factor: f64, logits_too: bool) {
    let net = build(model, scaled(model, names, factor), DType::F16);
    let (hidden, logits) = first_step(net.as_ref());
    let peak = largest(&hidden);
    assert!(
        peak.is_finite(),
        "{model}: f16 encoder output overflowed ({peak})"
    );
    if logits_too {
        let logits = Tensor::new(logits.as_slice(), &Device::Cpu).unwrap();
        let peak = largest(&logits);
        assert!(peak.is_finite(), "{model}: f16 logits overflowed ({peak})");
    }
}

#[test]
fn t5_clamps_float16_hidden_states_after_each_sub_layer() {
    // The last feed-forward of each stack writes values far beyond 65504 into the residual.
    let names = [
        "encoder.block.1.layer.1.DenseReluDense.wo.weight",
        "decoder.block.1.layer.2.DenseReluDense.wo.weight",
    ];
    assert_guarded("t5-tiny", &names, 1e5, true);
}

#[test]
fn bart_clamps_an_infinite_float16_encoder_layer_output() {
    // BART's post-norm layer output is the norm's: a huge norm weight makes it overflow. (The
    // decoder's cross-attention then overflows on the clamped values, as in transformers, so
    // only the encoder output is checked.)
    let names = ["model.encoder.layers.1.final_layer_norm.weight"];
    assert_guarded("bart-tiny", &names, 1e6, false);
}

#[test]
fn pegasus_clamps_every_float16_encoder_layer_output() {
    let names = ["model.encoder.layers.1.fc2.weight"];
    assert_guarded("pegasus-tiny", &names, 1e5, true);
}
