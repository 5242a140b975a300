//! Numeric parity of our T5 with transformers on the tiny random fixtures: encoder hidden
//! states and teacher-forced decoder logits (tolerance 1e-4).

mod common;

use candle_core::{DType, Device, IndexOp, Tensor};
use common::*;
use precis::models::Seq2Seq;
use precis::models::t5::{Config, T5};

fn load(model: &str) -> T5 {
    let dir = fixture_dir(model);
    let config: Config =
        serde_json::from_str(&std::fs::read_to_string(dir.join("config.json")).unwrap()).unwrap();
    T5::new(&config, weights(&dir)).unwrap()
}

fn encoder_matches(model: &str) {
    let t5 = load(model);
    let golden = golden(model);
    let cases = golden["encoder"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let ids = ids(&case["input_ids"]);
        let input = id_tensor(std::slice::from_ref(&ids));
        let mask = Tensor::ones(input.dims(), DType::U32, &Device::Cpu).unwrap();
        let hidden = t5.encode(&input, &mask).unwrap().flatten_all().unwrap();
        let values: Vec<f32> = hidden.to_vec1().unwrap();
        let name = case["case"].as_str().unwrap();
        let sum: f64 = values.iter().map(|&v| f64::from(v)).sum();
        let abs_sum: f64 = values.iter().map(|&v| f64::from(v).abs()).sum();
        assert_close(
            &format!("{name} encoder sum"),
            sum,
            case["sum"].as_f64().unwrap(),
            1e-4,
        );
        assert_close(
            &format!("{name} encoder abs sum"),
            abs_sum,
            case["abs_sum"].as_f64().unwrap(),
            1e-4,
        );
        for (i, want) in floats(&case["head"]).into_iter().enumerate() {
            assert_close(
                &format!("{name} encoder value {i}"),
                f64::from(values[i]),
                want,
                1e-4,
            );
        }
    }
}

fn logits_match(model: &str) {
    let t5 = load(model);
    let golden = golden(model);
    let cases = golden["logits"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let name = case["case"].as_str().unwrap();
        let input = id_tensor(&[ids(&case["input_ids"])]);
        let mask = Tensor::ones(input.dims(), DType::U32, &Device::Cpu).unwrap();
        let hidden = t5.encode(&input, &mask).unwrap();
        let mut state = t5.start_decoding(&hidden, &mask).unwrap();
        let decoder_ids = ids(&case["decoder_input_ids"]);
        let mut per_position = Vec::new();
        for &token in &decoder_ids {
            let step = Tensor::new(&[[token]], &Device::Cpu).unwrap();
            let logits: Vec<f32> = t5
                .decode_step(&step, &mut state)
                .unwrap()
                .i(0)
                .unwrap()
                .to_vec1()
                .unwrap();
            per_position.push(logits);
        }
        let positions = case["positions"].as_array().unwrap();
        for (k, pos) in positions.iter().enumerate() {
            let pos = pos.as_u64().unwrap() as usize;
            let logits = &per_position[pos];
            let sum: f64 = logits.iter().map(|&v| f64::from(v)).sum();
            let abs_sum: f64 = logits.iter().map(|&v| f64::from(v).abs()).sum();
            assert_close(
                &format!("{name} logits sum @{pos}"),
                sum,
                case["sum"][k].as_f64().unwrap(),
                1e-4,
            );
            assert_close(
                &format!("{name} logits abs sum @{pos}"),
                abs_sum,
                case["abs_sum"][k].as_f64().unwrap(),
                1e-4,
            );
            for (i, want) in floats(&case["head"][k]).into_iter().enumerate() {
                assert_close(
                    &format!("{name} logit {i} @{pos}"),
                    f64::from(logits[i]),
                    want,
                    1e-4,
                );
            }
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

#[test]
fn t5_v1_encoder_matches_transformers() {
    encoder_matches("t5-tiny");
}

#[test]
fn flan_t5_encoder_matches_transformers() {
    encoder_matches("flan-t5-tiny");
}

#[test]
fn t5_v1_logits_match_transformers() {
    logits_match("t5-tiny");
}

#[test]
fn flan_t5_logits_match_transformers() {
    logits_match("flan-t5-tiny");
}
