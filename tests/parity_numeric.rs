//! Numeric parity of every fixture architecture (T5, FLAN-T5, BART, DistilBART, Pegasus) with
//! transformers on the tiny random fixtures: encoder hidden states and teacher-forced decoder
//! logits, within 1e-4 of the tensor's magnitude.

#[macro_use]
mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use common::*;

/// Checks sums against the tensor's total magnitude and single values against its largest
/// element (see `assert_close`).
fn assert_matches_golden(name: &str, values: &[f32], golden: &serde_json::Value, k: Option<usize>) {
    let pick = |field: &str| match k {
        Some(k) => golden[field][k].clone(),
        None => golden[field].clone(),
    };
    let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
    let abs_sum: f64 = values.iter().map(|&v| f64::from(v).abs()).sum();
    let max_abs = values.iter().fold(0f64, |m, &v| m.max(f64::from(v).abs()));
    let want_abs_sum = pick("abs_sum").as_f64().unwrap();
    assert_close(
        &format!("{name} sum"),
        sum,
        pick("sum").as_f64().unwrap(),
        want_abs_sum,
        1e-4,
    );
    assert_close(
        &format!("{name} abs sum"),
        abs_sum,
        want_abs_sum,
        want_abs_sum,
        1e-4,
    );
    for (i, want) in floats(&pick("head")).into_iter().enumerate() {
        assert_close(
            &format!("{name} value {i}"),
            f64::from(values[i]),
            want,
            max_abs,
            1e-4,
        );
    }
}

fn encoder_matches(model: &str) {
    let net = load_model(model);
    let golden = golden(model);
    let cases = golden["encoder"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let ids = ids(&case["input_ids"]);
        let input = id_tensor(std::slice::from_ref(&ids));
        let mask = Tensor::ones(input.dims(), DType::U32, &Device::Cpu).unwrap();
        let hidden = net.encode(&input, &mask).unwrap().flatten_all().unwrap();
        let values: Vec<f32> = hidden.to_vec1().unwrap();
        let name = format!("{} encoder", case["case"].as_str().unwrap());
        assert_matches_golden(&name, &values, case, None);
    }
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
        for (k, pos) in case["positions"].as_array().unwrap().iter().enumerate() {
            let pos = pos.as_u64().unwrap() as usize;
            let logits = &per_position[pos];
            assert_matches_golden(&format!("{name} logits @{pos}"), logits, case, Some(k));
            let argmax = logits
                .iter()
                .enumerate()
                .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
                    if v > best.1 { (i, v) } else { best }
                })
                .0;
            assert_eq!(
                argmax as u64,
                case["argmax"][k].as_u64().unwrap(),
                "{name} argmax @{pos}"
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
