//! `--quantize q8`: every projection runs on 8-bit blocks and the model still summarises, with
//! first-step logits close to float32's.
//!
//! Summary text is not compared with float32: on these random models any perturbation of the
//! weights, even rounding them to 8 bits and back with float32 arithmetic throughout, changes
//! every fixture summary after a few tokens (see the README's quantization notes).

#[macro_use]
mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use precis::{Quantization, SummaryOptions, models};

/// When to quantize: after loading the whole model, or layer by layer while loading.
#[derive(Clone, Copy)]
enum When {
    AfterLoading,
    WhileLoading,
}

/// First decoder step's logits for a fixed input, float32 or quantized.
fn first_step_logits(model: &str, quantization: Option<(Quantization, When)>) -> Vec<f32> {
    let (cfg, vb) = (config(model), weights(&fixture_dir(model)));
    let net = match quantization {
        None => models::from_config(&cfg, vb).unwrap(),
        Some((q, When::AfterLoading)) => {
            let mut net = models::from_config(&cfg, vb).unwrap();
            models::quantize(net.as_mut(), &Device::Cpu, DType::F32, q).unwrap();
            net
        }
        Some((q, When::WhileLoading)) => models::from_config_with(&cfg, vb, Some(q)).unwrap(),
    };
    let ids = Tensor::new(&[[5u32, 17, 42, 8, 1]], &Device::Cpu).unwrap();
    let mask = Tensor::ones((1, 5), DType::U32, &Device::Cpu).unwrap();
    let hidden = net.encode(&ids, &mask).unwrap();
    let mut state = net.start_decoding(&hidden, &mask).unwrap();
    let start = Tensor::new(&[[net.spec().decoder_start_token_id]], &Device::Cpu).unwrap();
    let logits = net.decode_step(&start, &mut state).unwrap();
    logits.flatten_all().unwrap().to_vec1().unwrap()
}

fn q8_logits_stay_close(model: &str) {
    let float32 = first_step_logits(model, None);
    let q8 = first_step_logits(model, Some((Quantization::Q8, When::AfterLoading)));
    // Quantizing each layer as it loads (less memory) must give exactly the same model.
    let q8_while_loading = first_step_logits(model, Some((Quantization::Q8, When::WhileLoading)));
    assert!(
        q8 == q8_while_loading,
        "{model}: load-time and post-load q8 differ"
    );
    let scale = float32.iter().fold(0f32, |m, x| m.max(x.abs()));
    let error = float32
        .iter()
        .zip(&q8)
        .fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    // Quantized (the logits moved) but close: a wrong block layout or scale gives errors of
    // the order of the logits themselves. Measured: 0.4-4% of the largest logit.
    assert!(error > 0.0, "{model}: quantization changed nothing");
    assert!(
        error < 0.1 * scale,
        "{model}: q8 logits off by {error} (largest logit {scale})"
    );
}

fn q8_summarizer_summarises(model: &str) {
    let golden = golden(model);
    let mut summarizer = summarizer(model);
    assert_eq!(summarizer.quantization(), None);
    summarizer.quantize(Quantization::Q8).unwrap();
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
);

// Each test above, again on every other CPU kernel path (AVX-512, AVX2, portable, ...).
on_every_kernel_path!();
