//! Numeric parity of every fixture architecture (T5, FLAN-T5, BART, DistilBART, Pegasus) with
//! transformers on the tiny random fixtures, position by position: whole rows of the encoder's
//! last hidden state at several positions, and teacher-forced decoder logits (values spread over
//! the vocabulary, the top ones, the argmax and sums) at several decoder positions, each value
//! within 1e-4 of its row's magnitude.
//!
//! Sums over a whole tensor say little here: BART-family encoder outputs are LayerNorm'd, so
//! their rows sum to ~0 whatever the values; hence the element-wise rows.

#[macro_use]
mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use common::*;

/// The relative tolerance of every comparison (see `assert_close`).
const TOL: f64 = 1e-4;

fn max_abs(values: &[f32]) -> f64 {
    values.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()))
}

fn encoder_matches(model: &str) {
    let net = load_model(model);
    let golden = golden(model);
    let cases = golden["encoder"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = format!("{} encoder", case["case"].as_str().unwrap());
        let input = id_tensor(&[ids(&case["input_ids"])]);
        let mask = Tensor::ones(input.dims(), DType::U32, &Device::Cpu).unwrap();
        let hidden = net.encode(&input, &mask).unwrap().i(0).unwrap();
        let rows: Vec<Vec<f32>> = hidden.to_vec2().unwrap();
        let positions = case["positions"].as_array().unwrap();
        assert!(positions.len() >= 3, "{name}: golden has too few positions");
        for (k, pos) in positions.iter().enumerate() {
            let pos = pos.as_u64().unwrap() as usize;
            let (got, want) = (&rows[pos], floats(&case["rows"][k]));
            assert_eq!(got.len(), want.len(), "{name} @{pos}: hidden width");
            let scale = max_abs(got);
            for (unit, (&g, &w)) in got.iter().zip(&want).enumerate() {
                assert_close(
                    &format!("{name} @{pos} unit {unit}"),
                    g.into(),
                    w,
                    scale,
                    TOL,
                );
            }
        }
        let abs_sum: f64 = rows.iter().flatten().map(|&v| f64::from(v).abs()).sum();
        let want = case["abs_sum"].as_f64().unwrap();
        assert_close(&format!("{name} abs sum"), abs_sum, want, want, TOL);
    }
}

fn argmax(values: &[f32]) -> usize {
    let first_best = |best: (usize, f32), (i, &v): (usize, &f32)| {
        if v > best.1 { (i, v) } else { best }
    };
    values
        .iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), first_best)
        .0
}

fn logits_match(model: &str) {
    let net = load_model(model);
    let golden = golden(model);
    let cases = golden["logits"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let input = id_tensor(&[ids(&case["input_ids"])]);
        let mask = Tensor::ones(input.dims(), DType::U32, &Device::Cpu).unwrap();
        let hidden = net.encode(&input, &mask).unwrap();
        let mut state = net.start_decoding(&hidden, &mask).unwrap();
        let mut per_position = Vec::new();
        for token in ids(&case["decoder_input_ids"]) {
            let step = Tensor::new(&[[token]], &Device::Cpu).unwrap();
            let logits = net.decode_step(&step, &mut state).unwrap();
            per_position.push(logits.i(0).unwrap().to_vec1::<f32>().unwrap());
        }
        let positions = case["positions"].as_array().unwrap();
        assert!(positions.len() >= 3, "{name}: golden has too few positions");
        for want in positions {
            let pos = want["position"].as_u64().unwrap() as usize;
            let (logits, what) = (&per_position[pos], format!("{name} logits @{pos}"));
            let scale = max_abs(logits);
            for (id, w) in ids(&want["ids"]).into_iter().zip(floats(&want["values"])) {
                let got = f64::from(logits[id as usize]);
                assert_close(&format!("{what} id {id}"), got, w, scale, TOL);
            }
            let sum: f64 = logits.iter().map(|&v| f64::from(v)).sum();
            let abs_sum: f64 = logits.iter().map(|&v| f64::from(v).abs()).sum();
            let want_abs_sum = want["abs_sum"].as_f64().unwrap();
            let want_sum = want["sum"].as_f64().unwrap();
            assert_close(&format!("{what} sum"), sum, want_sum, want_abs_sum, TOL);
            assert_close(
                &format!("{what} abs sum"),
                abs_sum,
                want_abs_sum,
                want_abs_sum,
                TOL,
            );
            assert_eq!(
                argmax(logits) as u64,
                want["argmax"].as_u64().unwrap(),
                "{what} argmax"
            );
        }
    }
}

fixture_model_tests!(
    encoder_matches_transformers => encoder_matches,
    logits_match_transformers => logits_match,
);

// Each test above, again on every other CPU kernel path (AVX-512, AVX2, portable, ...).
on_every_kernel_path!();
