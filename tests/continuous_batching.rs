//! Continuous batching on every fixture architecture: sequences that join a running decoder
//! batch at different steps (so their rows sit at different positions, with earlier slots
//! hidden) and leave it as they finish get exactly the tokens `generate` gives them alone.

#[macro_use]
mod common;

use std::collections::HashMap;

use candle_core::Device;
use precis::generation::engine::{Engine, Placement, SequenceId};
use precis::generation::{EarlyStopping, GenerationConfig, Sampling, generate, pad_batch};
use precis::models::Seq2Seq;

fixture_model_tests!(late_joiners_match_generate_alone => late_joiners_match_alone);

/// Deterministic input rows of mixed lengths, ending with EOS as tokenised text does.
fn rows(model: &dyn Seq2Seq) -> Vec<Vec<u32>> {
    let spec = model.spec();
    let vocab = spec.vocab_size as u64;
    (0..7u64)
        .map(|i| {
            let len = 3 + (i * 5) % 17;
            let mut row: Vec<u32> = (0..len)
                .map(|p| (4 + (i * 131 + p * 977) % (vocab - 4)) as u32)
                .collect();
            row.push(spec.eos_token_id);
            row
        })
        .collect()
}

fn configs() -> Vec<GenerationConfig> {
    vec![
        GenerationConfig {
            max_new_tokens: Some(14),
            min_new_tokens: Some(11),
            ..Default::default()
        },
        GenerationConfig {
            num_beams: 3,
            length_penalty: 2.0,
            early_stopping: EarlyStopping::Always,
            no_repeat_ngram_size: 3,
            min_length: 9,
            max_new_tokens: Some(12),
            ..Default::default()
        },
        GenerationConfig {
            do_sample: true,
            sampling: Sampling {
                temperature: 0.8,
                top_k: 20,
                top_p: 1.0,
                seed: 9,
            },
            max_new_tokens: Some(10),
            min_new_tokens: Some(7),
            repetition_penalty: 1.3,
            ..Default::default()
        },
    ]
}

fn late_joiners_match_alone(name: &str) {
    let model = common::load_model(name);
    let model = model.as_ref();
    let pad = model.spec().pad_token_id;
    let configs = configs();
    let rows = rows(model);
    let alone = |row: &[u32], config: &GenerationConfig| {
        let (ids, mask) = pad_batch(&[row], pad, &Device::Cpu).unwrap();
        generate(model, &ids, &mask, config).unwrap().remove(0)
    };
    // Sequence i (row i, settings i % 3) arrives at step i; each runs at least 7 steps.
    let mut engine = Engine::new(model);
    let mut got = HashMap::new();
    let mut expected = HashMap::new();
    let mut step = 0;
    let mut joined_a_running_batch = 0;
    for (i, row) in rows.iter().enumerate() {
        while step < i {
            let report = engine.step();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            got.extend(report.finished.into_iter().map(|f| (f.id, f.tokens)));
            step += 1;
        }
        let config = &configs[i % configs.len()];
        let id = i as SequenceId;
        expected.insert(id, alone(row, config));
        // Whether a sequence of the same beam width is running, i.e. this one joins its batch.
        joined_a_running_batch += usize::from(engine.ids().any(|running| {
            configs[running as usize % configs.len()].beam_width() == config.beam_width()
        }));
        let (ids, mask) = pad_batch(&[row.as_slice()], pad, &Device::Cpu).unwrap();
        engine
            .admit(
                &ids,
                &mask,
                vec![(id, config.clone())],
                Placement::default(),
            )
            .unwrap();
    }
    while !engine.is_empty() {
        let report = engine.step();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        got.extend(report.finished.into_iter().map(|f| (f.id, f.tokens)));
    }
    assert!(
        joined_a_running_batch > 2,
        "{name}: nothing joined a running batch"
    );
    for (id, tokens) in &expected {
        assert_eq!(got.get(id), Some(tokens), "{name}: sequence {id}");
    }
}
