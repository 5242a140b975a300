//! Parity with transformers' own `generate()` on the hash-defined mock model.
//!
//! `testdata/mock_parity.json` is written by `scripts/mock_generation_parity.py`, which runs transformers'
//! greedy and beam search on a model whose logits are the same function `MockModel::hashed`
//! computes. Equal token ids here pin the search semantics independently of any real model.

use candle_core::{Device, Tensor};
use serde::Deserialize;

use super::config::{EarlyStopping, GenerationConfig};
use super::generate;
use super::mock::{MockModel, PAD};

#[derive(Debug, Deserialize)]
struct Golden {
    transformers: String,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    seed: u64,
    vocab: usize,
    eos_bias: f64,
    inputs: Vec<Vec<u32>>,
    config: HfConfig,
    expected: Vec<Vec<u32>>,
}

/// The transformers `GenerationConfig` fields the cases set.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct HfConfig {
    num_beams: Option<usize>,
    length_penalty: Option<f64>,
    early_stopping: Option<serde_json::Value>,
    max_length: Option<usize>,
    max_new_tokens: Option<usize>,
    min_length: Option<usize>,
    min_new_tokens: Option<usize>,
    no_repeat_ngram_size: Option<usize>,
    repetition_penalty: Option<f32>,
    forced_bos_token_id: Option<u32>,
    forced_eos_token_id: Option<u32>,
}

impl HfConfig {
    fn to_config(&self) -> GenerationConfig {
        let d = GenerationConfig::default();
        let early_stopping = match &self.early_stopping {
            None | Some(serde_json::Value::Bool(false)) => EarlyStopping::Heuristic,
            Some(serde_json::Value::Bool(true)) => EarlyStopping::Always,
            Some(serde_json::Value::String(s)) if s == "never" => EarlyStopping::Never,
            Some(other) => panic!("unknown early_stopping {other}"),
        };
        GenerationConfig {
            num_beams: self.num_beams.unwrap_or(d.num_beams),
            length_penalty: self.length_penalty.unwrap_or(d.length_penalty),
            early_stopping,
            max_length: self.max_length.unwrap_or(d.max_length),
            max_new_tokens: self.max_new_tokens,
            min_length: self.min_length.unwrap_or(d.min_length),
            min_new_tokens: self.min_new_tokens,
            no_repeat_ngram_size: self.no_repeat_ngram_size.unwrap_or(0),
            repetition_penalty: self.repetition_penalty.unwrap_or(1.0),
            forced_bos_token_id: self.forced_bos_token_id,
            forced_eos_token_id: self.forced_eos_token_id,
            do_sample: false,
            sampling: Default::default(),
        }
    }
}

fn padded(rows: &[Vec<u32>]) -> (Tensor, Tensor) {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let ids: Vec<u32> = rows
        .iter()
        .flat_map(|r| {
            r.iter()
                .copied()
                .chain(std::iter::repeat_n(PAD, width - r.len()))
        })
        .collect();
    let mask: Vec<u32> = rows
        .iter()
        .flat_map(|r| (0..width).map(move |i| u32::from(i < r.len())))
        .collect();
    let shape = (rows.len(), width);
    (
        Tensor::from_vec(ids, shape, &Device::Cpu).expect("ids"),
        Tensor::from_vec(mask, shape, &Device::Cpu).expect("mask"),
    )
}

#[test]
fn matches_transformers_on_the_mock_model() {
    let golden: Golden =
        serde_json::from_str(include_str!("testdata/mock_parity.json")).expect("valid golden JSON");
    assert!(
        golden.transformers.starts_with("5."),
        "golden from transformers {}",
        golden.transformers
    );
    assert!(golden.cases.len() > 20);
    let mut failures = Vec::new();
    for case in &golden.cases {
        let model = MockModel::hashed(case.seed, case.vocab, case.eos_bias);
        let (ids, mask) = padded(&case.inputs);
        let config = case.config.to_config();
        let got = generate(&model, &ids, &mask, &config).expect("generation succeeds");
        if got != case.expected {
            failures.push(format!(
                "{} {:?}\n  expected {:?}\n  got      {:?}",
                case.name, case.config, case.expected, got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
