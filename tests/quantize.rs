//! `--quantize q8` and `--dtype bf16` on the CPU: every projection runs on int8 (bfloat16)
//! weights and the model still summarises, with first-step logits close to float32's.
//!
//! The int8 format takes any input width (it pads to groups of 4), so every projection of every
//! fixture is quantized, the odd widths included (flan-t5-tiny's attention inner width 48,
//! distilbart-tiny's d_model 48 and feed-forward 96); the counts pin that none is left out.
//!
//! Summary text is not compared with float32: on these random models any perturbation of the
//! weights, even rounding them to 8 bits and back with float32 arithmetic throughout, changes
//! every fixture summary after a few tokens (see the README's quantization notes).

#[macro_use]
mod common;

use candle_core::{DType, Device};
use common::*;
use precis::{Quantization, Summarizer, SummaryOptions, models};

/// When to quantize: after loading the whole model, or layer by layer while loading.
#[derive(Clone, Copy)]
enum When {
    AfterLoading,
    WhileLoading,
}

/// (quantized, dense) projections of each fixture: per layer, attention q/k/v/o (self and
/// cross), feed-forward in (two when gated) and out, plus the output head.
fn expected_counts(model: &str) -> (usize, usize) {
    match model {
        // 2 encoder layers x 6 + 2 decoder layers x 10 + head.
        "t5-tiny" | "bart-tiny" | "pegasus-tiny" => (33, 0),
        // 3 encoder layers x (q k v o wi_0 wi_1 wo) + 2 decoder layers x (q k v o q k v o wi_0
        // wi_1 wo) + head.
        "flan-t5-tiny" => (3 * 7 + 2 * 11 + 1, 0),
        // 4 encoder layers x 6 + 2 decoder layers x 10 + head.
        "distilbart-tiny" => (4 * 6 + 2 * 10 + 1, 0),
        other => panic!("no expected counts for {other}"),
    }
}

/// First decoder step's logits for a fixed input, float32 or quantized.
fn first_step_logits(model: &str, quantization: Option<(Quantization, When)>) -> Vec<f32> {
    let (cfg, vb) = (config(model), weights(&fixture_dir(model)));
    let net = match quantization {
        None => models::from_config(&cfg, vb).unwrap(),
        Some((q, When::AfterLoading)) => {
            let mut net = models::from_config(&cfg, vb).unwrap();
            let counts = models::quantize(net.as_mut(), &Device::Cpu, DType::F32, q).unwrap();
            assert_eq!(
                counts,
                expected_counts(model),
                "{model}: (quantized, dense)"
            );
            net
        }
        Some((q, When::WhileLoading)) => models::from_config_with(&cfg, vb, Some(q)).unwrap(),
    };
    first_step(net.as_ref()).1
}

/// First-step logits of `quantization` against float32's: the largest error over the largest
/// float32 logit.
fn relative_logit_error(model: &str, quantization: Quantization) -> f32 {
    let float32 = first_step_logits(model, None);
    let quantized = first_step_logits(model, Some((quantization, When::AfterLoading)));
    // Quantizing each layer as it loads (less memory) must give exactly the same model.
    let while_loading = first_step_logits(model, Some((quantization, When::WhileLoading)));
    assert!(
        quantized == while_loading,
        "{model}: load-time and post-load {quantization} differ"
    );
    let scale = float32.iter().fold(0f32, |m, x| m.max(x.abs()));
    let error = float32
        .iter()
        .zip(&quantized)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(error > 0.0, "{model}: {quantization} changed nothing");
    error / scale
}

fn q8_logits_stay_close(model: &str) {
    // Quantized (the logits moved) but close: a wrong block layout or scale gives errors of
    // the order of the logits themselves. Measured: 0.4-4% of the largest logit.
    let error = relative_logit_error(model, Quantization::Q8);
    assert!(
        error < 0.1,
        "{model}: q8 logits off by {error} of the largest"
    );
}

fn bf16_logits_stay_close(model: &str) {
    // bfloat16 keeps 8 bits of each weight and input against int8's 7 and a bit, per value
    // rather than per row: closer than q8, and a wrong layout is again of the order of the
    // logits. Measured: 0.4-1.8% of the largest logit on the `amx` path (attention in
    // bfloat16 too), 0.6-1.2% on the others.
    let error = relative_logit_error(model, Quantization::Bf16);
    assert!(
        error < 0.05,
        "{model}: bf16 logits off by {error} of the largest"
    );
}

/// `--dtype bf16` on the CPU: a float32 model with bfloat16 projections, reported as bfloat16
/// and not as a quantization, which summarises every case.
fn bf16_summarizer_summarises(model: &str) {
    let golden = golden(model);
    let summarizer =
        Summarizer::from_files_with(&model_files(model), &Device::Cpu, DType::BF16, None).unwrap();
    assert_eq!(summarizer.dtype(), DType::BF16);
    assert_eq!(summarizer.quantization(), None);
    for text in pipeline_texts(&golden, 3) {
        let summary = summarizer
            .summarize(&text, &SummaryOptions::default())
            .unwrap();
        assert!(summary.output_tokens > 0 && !summary.text.trim().is_empty());
    }
}

fn q8_summarizer_summarises(model: &str) {
    let golden = golden(model);
    assert_eq!(summarizer(model).quantization(), None);
    let files = model_files(model);
    let summarizer =
        Summarizer::from_files_with(&files, &Device::Cpu, DType::F32, Some(Quantization::Q8))
            .unwrap();
    assert_eq!(summarizer.quantization(), Some(Quantization::Q8));
    for text in pipeline_texts(&golden, 3) {
        let text = text.as_str();
        let summary = summarizer
            .summarize(text, &SummaryOptions::default())
            .unwrap();
        assert!(summary.output_tokens > 0 && !summary.text.trim().is_empty());
    }
}

fixture_model_tests!(
    q8_first_step_logits_stay_close_to_float32 => q8_logits_stay_close,
    q8_summarizer_summarises_every_case => q8_summarizer_summarises,
    bf16_first_step_logits_stay_close_to_float32 => bf16_logits_stay_close,
    bf16_summarizer_summarises_every_case => bf16_summarizer_summarises,
);

// Each test above, again on every other CPU kernel path (AVX-512, AVX2, portable, ...).
on_every_kernel_path!();
