//! End-to-end tests of `generate` on the mock model: batching, lengths, EOS, the search modes,
//! and beam search checked against exhaustive search where beam search is provably exhaustive.

use std::time::Duration;

use candle_core::{Device, Tensor};

use super::config::{EarlyStopping, GenerationConfig, Sampling};
use super::engine::{Engine, Placement};
use super::hypotheses::length_penalised;
use super::mock::{EOS, MockModel, PAD};
use super::scores::log_softmax_in_place;
use super::sequence::Sequence;
use super::{generate, generate_with_stats, pad_batch, run_to_completion};
use crate::Error;
use crate::models::Seq2Seq;

/// A padded `(ids, mask)` batch.
fn batch(rows: &[Vec<u32>]) -> (Tensor, Tensor) {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut ids = Vec::new();
    let mut mask = Vec::new();
    for row in rows {
        ids.extend(
            row.iter()
                .copied()
                .chain(std::iter::repeat_n(PAD, width - row.len())),
        );
        mask.extend((0..width).map(|i| u32::from(i < row.len())));
    }
    let shape = (rows.len(), width);
    (
        Tensor::from_vec(ids, shape, &Device::Cpu).expect("ids tensor"),
        Tensor::from_vec(mask, shape, &Device::Cpu).expect("mask tensor"),
    )
}

fn run(model: &MockModel, rows: &[Vec<u32>], config: &GenerationConfig) -> Vec<Vec<u32>> {
    let (ids, mask) = batch(rows);
    generate(model, &ids, &mask, config).expect("generation succeeds")
}

fn inputs() -> Vec<Vec<u32>> {
    vec![vec![5, 7, 9], vec![3, 4], vec![11, 2, 6, 8], vec![9]]
}

fn beams(num_beams: usize, length_penalty: f64, early_stopping: EarlyStopping) -> GenerationConfig {
    GenerationConfig {
        num_beams,
        length_penalty,
        early_stopping,
        max_length: 9,
        ..Default::default()
    }
}

/// Summed log-probabilities of `tokens` (start token first) for `row`, in the f32 order beam
/// search accumulates them, then length-penalised.
fn sequence_score(model: &MockModel, row: &[u32], tokens: &[u32], length_penalty: f64) -> f32 {
    let mut score = 0.0f32;
    for end in 1..tokens.len() {
        let mut lp = model.logits_for(row, &tokens[..end]);
        log_softmax_in_place(&mut lp);
        score += lp[tokens[end] as usize];
    }
    length_penalised(score, tokens.len() - 1, length_penalty)
}

/// The best complete sequence by exhaustive search: every sequence that ends in EOS or reaches
/// `max_length`, scored as beam search scores finished hypotheses.
fn brute_force(
    model: &MockModel,
    row: &[u32],
    max_length: usize,
    length_penalty: f64,
) -> (Vec<u32>, f32) {
    let mut best = (Vec::new(), f32::NEG_INFINITY);
    let mut stack = vec![(vec![super::mock::START], 0.0f32)];
    while let Some((prefix, score)) = stack.pop() {
        let mut lp = model.logits_for(row, &prefix);
        log_softmax_in_place(&mut lp);
        for (token, &p) in lp.iter().enumerate() {
            let mut seq = prefix.clone();
            seq.push(token as u32);
            let total = p + score;
            if token as u32 == EOS || seq.len() == max_length {
                let penalised = length_penalised(total, seq.len() - 1, length_penalty);
                if penalised > best.1 {
                    best = (seq, penalised);
                }
            } else {
                stack.push((seq, total));
            }
        }
    }
    best
}

#[test]
fn batch_equals_one_by_one() {
    let model = MockModel::hashed(1, 12, 0.25);
    let configs = [
        GenerationConfig {
            max_length: 9,
            ..Default::default()
        },
        beams(3, 1.0, EarlyStopping::Heuristic),
        beams(4, 2.0, EarlyStopping::Always),
        GenerationConfig {
            no_repeat_ngram_size: 2,
            repetition_penalty: 1.3,
            ..beams(2, 0.5, EarlyStopping::Never)
        },
    ];
    for config in &configs {
        let together = run(&model, &inputs(), config);
        let alone: Vec<Vec<u32>> = inputs()
            .into_iter()
            .flat_map(|r| run(&model, &[r], config))
            .collect();
        assert_eq!(together, alone, "{config:?}");
    }
}

#[test]
fn outputs_respect_max_length_and_end_at_eos() {
    for seed in 0..6 {
        for eos_bias in [-1.0, 0.25, 1.0] {
            let model = MockModel::hashed(seed, 12, eos_bias);
            for num_beams in [1, 3] {
                let config = GenerationConfig {
                    max_new_tokens: Some(6),
                    ..beams(num_beams, 1.0, EarlyStopping::Heuristic)
                };
                for seq in run(&model, &inputs(), &config) {
                    assert!(seq.len() <= 7 && seq[0] == super::mock::START, "{seq:?}");
                    let eos_at = seq[1..].iter().position(|&t| t == EOS).map(|i| i + 1);
                    match eos_at {
                        Some(i) => assert_eq!(i, seq.len() - 1, "EOS only at the end: {seq:?}"),
                        None => assert_eq!(seq.len(), 7, "no EOS means max length: {seq:?}"),
                    }
                }
            }
        }
    }
}

#[test]
fn one_beam_search_equals_greedy() {
    for seed in 0..8 {
        let model = MockModel::hashed(seed, 12, 0.25);
        let rows = inputs();
        let (ids, mask) = batch(&rows);
        let config = beams(1, 1.0, EarlyStopping::Heuristic);
        let greedy = generate(&model, &ids, &mask, &config).expect("greedy");
        let sequences = (0..rows.len() as u64)
            .map(|id| (id, Sequence::beam_search(&config, model.spec())))
            .collect();
        let mut engine = Engine::new(&model);
        engine
            .admit_sequences(&ids, &mask, sequences, Placement::default())
            .expect("admit");
        let (beamed, _) = run_to_completion(&mut engine, rows.len()).expect("beam search");
        assert_eq!(beamed, greedy, "seed {seed}");
    }
}

/// With `(V-1)^(max_length-2) × V` beams every candidate of every step ranks within `num_beams`,
/// and `early_stopping="never"` only stops when nothing can win, so beam search is exhaustive.
fn exhaustive_config(vocab: usize, max_length: usize, length_penalty: f64) -> GenerationConfig {
    let num_beams = (vocab - 1).pow(max_length as u32 - 2) * vocab;
    GenerationConfig {
        num_beams,
        length_penalty,
        early_stopping: EarlyStopping::Never,
        max_length,
        ..Default::default()
    }
}

#[test]
fn exhaustive_beam_search_finds_the_brute_force_optimum() {
    for (vocab, max_length) in [(3, 5), (4, 4)] {
        for seed in 0..6 {
            let model = MockModel::hashed(seed, vocab, 0.3);
            for length_penalty in [-1.0, 0.0, 0.7, 2.0] {
                let config = exhaustive_config(vocab, max_length, length_penalty);
                let got = run(&model, &inputs(), &config);
                for (row, seq) in inputs().iter().zip(got) {
                    let (best, _) = brute_force(&model, row, max_length, length_penalty);
                    assert_eq!(seq, best, "seed {seed}, vocab {vocab}, lp {length_penalty}");
                }
            }
        }
    }
}

#[test]
fn length_penalty_changes_the_winner() {
    let (vocab, max_length) = (3, 5);
    let mut changed = 0;
    for seed in 0..10 {
        let model = MockModel::hashed(seed, vocab, 0.3);
        let row = [5, 7];
        let short = run(
            &model,
            &[row.to_vec()],
            &exhaustive_config(vocab, max_length, -1.0),
        );
        let long = run(
            &model,
            &[row.to_vec()],
            &exhaustive_config(vocab, max_length, 2.0),
        );
        assert_eq!(short[0], brute_force(&model, &row, max_length, -1.0).0);
        assert_eq!(long[0], brute_force(&model, &row, max_length, 2.0).0);
        // A penalty favouring length can never pick a shorter winner.
        assert!(long[0].len() >= short[0].len(), "seed {seed}");
        changed += usize::from(short != long);
    }
    assert!(changed > 0, "no seed where the length penalty mattered");
}

#[test]
fn early_stopping_modes_trade_search_for_speed() {
    let mut differs = [0; 2];
    for seed in 0..20 {
        let model = MockModel::hashed(seed, 12, 0.25);
        let mut outputs = Vec::new();
        let mut steps = Vec::new();
        for mode in [
            EarlyStopping::Always,
            EarlyStopping::Heuristic,
            EarlyStopping::Never,
        ] {
            let (ids, mask) = batch(&inputs());
            let (seqs, stats) = generate_with_stats(&model, &ids, &mask, &beams(3, 2.0, mode))
                .expect("beam search");
            outputs.push(seqs);
            steps.push(stats.steps);
        }
        // "never" (with a positive penalty) keeps every input going at least as long as the
        // heuristic, and searching longer only ever improves the kept hypotheses. `True` freezes
        // an input once it is full, so it can only do worse than the heuristic.
        assert!(steps[1] <= steps[2], "seed {seed}: {steps:?}");
        for (i, row) in inputs().iter().enumerate() {
            let score = |o: &Vec<Vec<u32>>| sequence_score(&model, row, &o[i], 2.0);
            let (always, heuristic, never) =
                (score(&outputs[0]), score(&outputs[1]), score(&outputs[2]));
            assert!(
                always <= heuristic && heuristic <= never,
                "seed {seed} row {i}"
            );
        }
        differs[0] += usize::from(outputs[0] != outputs[1]);
        differs[1] += usize::from(outputs[1] != outputs[2]);
    }
    assert!(
        differs.iter().all(|&d| d > 0),
        "modes never differed: {differs:?}"
    );
}

#[test]
fn sampling_is_deterministic_per_seed_and_batch_independent() {
    let model = MockModel::hashed(3, 12, 0.25);
    let config = |seed| GenerationConfig {
        max_length: 9,
        do_sample: true,
        sampling: Sampling {
            temperature: 1.0,
            top_k: 6,
            top_p: 0.95,
            seed,
        },
        ..Default::default()
    };
    let first = run(&model, &inputs(), &config(11));
    assert_eq!(first, run(&model, &inputs(), &config(11)));
    let alone: Vec<Vec<u32>> = inputs()
        .into_iter()
        .flat_map(|r| run(&model, &[r], &config(11)))
        .collect();
    assert_eq!(first, alone);
    let others: Vec<_> = (12..16)
        .map(|seed| run(&model, &inputs(), &config(seed)))
        .collect();
    assert!(others.iter().any(|o| *o != first), "seed had no effect");
}

#[test]
fn stats_count_steps_and_rows() {
    let model = MockModel::hashed(4, 12, -1.0);
    let (ids, mask) = batch(&inputs());
    let config = GenerationConfig {
        max_new_tokens: Some(3),
        ..beams(2, 1.0, EarlyStopping::Heuristic)
    };
    let (_, stats) = generate_with_stats(&model, &ids, &mask, &config).expect("beam search");
    assert_eq!(stats.rows, 8);
    assert!(stats.steps >= 1 && stats.steps <= 3);
}

/// [`MockModel`] slowed down: `encode` in the encoder, `step` in every decoder step.
struct Slow {
    inner: MockModel,
    encode: Duration,
    step: Duration,
}

impl Seq2Seq for Slow {
    fn spec(&self) -> &crate::models::DecoderSpec {
        self.inner.spec()
    }

    fn encode(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        std::thread::sleep(self.encode);
        self.inner.encode(ids, mask)
    }

    fn start_decoding(
        &self,
        hidden: &Tensor,
        mask: &Tensor,
    ) -> candle_core::Result<crate::models::DecoderState> {
        self.inner.start_decoding(hidden, mask)
    }

    fn decode_step(
        &self,
        tokens: &Tensor,
        state: &mut crate::models::DecoderState,
    ) -> candle_core::Result<Tensor> {
        std::thread::sleep(self.step);
        self.inner.decode_step(tokens, state)
    }

    fn quantize(&mut self, q: crate::models::Quantization) -> candle_core::Result<(usize, usize)> {
        self.inner.quantize(q)
    }
}

#[test]
fn stats_time_the_encoder_and_the_decoder_steps_apart() {
    let model = Slow {
        inner: MockModel::hashed(4, 12, -1.0),
        encode: Duration::from_millis(300),
        step: Duration::from_millis(2),
    };
    let (ids, mask) = batch(&inputs());
    let config = GenerationConfig {
        max_new_tokens: Some(4),
        min_new_tokens: Some(4),
        ..GenerationConfig::default()
    };
    let (_, stats) = generate_with_stats(&model, &ids, &mask, &config).expect("greedy");
    assert_eq!(stats.steps, 4);
    // Sleeps last at least as long as asked: both phases hold their own sleeps...
    assert!(stats.encode >= model.encode, "{stats:?}");
    assert!(stats.decode >= model.step * 4, "{stats:?}");
    // ...and the decoder steps do not hold the encoder's (the bench's decode rate would be
    // off by the whole encoder).
    assert!(stats.decode < model.encode, "{stats:?}");
}

#[test]
fn greedy_rows_stop_independently() {
    // Row 0 ends immediately (EOS forced as the only option at the first step via a huge bias);
    // the others go on, and row 0 comes back without padding.
    let model = MockModel::new(
        5,
        Box::new(|row: &[u32], prefix: &[u32]| {
            let mut logits = vec![0.0, -10.0, 1.0, 0.5, 0.2];
            if row == [7] || prefix.len() >= 4 {
                logits[EOS as usize] = 10.0;
            }
            logits
        }),
    );
    let got = run(&model, &[vec![7], vec![8, 8]], &GenerationConfig::default());
    assert_eq!(got, vec![vec![0, 1], vec![0, 2, 2, 2, 1]]);
}

#[test]
fn rejects_bad_options_and_inputs() {
    let model = MockModel::hashed(0, 12, 0.0);
    let (ids, mask) = batch(&inputs());
    let bad = GenerationConfig {
        num_beams: 0,
        ..Default::default()
    };
    assert!(matches!(
        generate(&model, &ids, &mask, &bad),
        Err(Error::InvalidOption {
            option: "num_beams",
            ..
        })
    ));
    let out_of_vocab = GenerationConfig {
        forced_bos_token_id: Some(12),
        ..Default::default()
    };
    assert!(matches!(
        generate(&model, &ids, &mask, &out_of_vocab),
        Err(Error::InvalidOption {
            option: "forced_bos_token_id",
            ..
        })
    ));
    let (_, short_mask) = batch(&[vec![1]]);
    assert!(matches!(
        generate(&model, &ids, &short_mask, &GenerationConfig::default()),
        Err(Error::Candle(_))
    ));
    let empty = Tensor::zeros((0, 3), candle_core::DType::U32, &Device::Cpu).expect("empty tensor");
    assert_eq!(
        generate(&model, &empty, &empty, &GenerationConfig::default()).ok(),
        Some(vec![])
    );
}

#[test]
fn greedy_matches_argmax_replay() {
    // Greedy output is the argmax chain of the model's own logits.
    let model = MockModel::hashed(9, 12, 0.25);
    let config = GenerationConfig {
        max_length: 9,
        ..Default::default()
    };
    for (row, seq) in inputs().iter().zip(run(&model, &inputs(), &config)) {
        let mut expected = vec![super::mock::START];
        while expected.len() < 9 {
            let logits = model.logits_for(row, &expected);
            expected.push(super::scores::argmax(&logits) as u32);
            if expected.last() == Some(&EOS) {
                break;
            }
        }
        assert_eq!(seq, expected);
    }
    // Processors run before the argmax, and before sampling.
    let forced = GenerationConfig {
        forced_bos_token_id: Some(3),
        max_new_tokens: Some(1),
        ..Default::default()
    };
    let sampled = GenerationConfig {
        do_sample: true,
        sampling: Sampling {
            top_k: 0,
            seed: 1,
            ..Sampling::default()
        },
        ..forced.clone()
    };
    for config in [forced, sampled] {
        let mut sequence = Sequence::new(&config, model.spec());
        let mut scores = vec![5.0; 12];
        let advance = sequence.advance(&mut scores, 12).expect("one step");
        assert!(advance.finished);
        assert_eq!(sequence.into_tokens(), vec![0, 3]);
    }
}

#[test]
fn padding_and_mask() {
    let (ids, mask) = pad_batch(&[&[5, 6, 7], &[8]], 0, &Device::Cpu).unwrap();
    assert_eq!(
        ids.to_vec2::<u32>().unwrap(),
        vec![vec![5, 6, 7], vec![8, 0, 0]]
    );
    assert_eq!(
        mask.to_vec2::<u32>().unwrap(),
        vec![vec![1, 1, 1], vec![1, 0, 0]]
    );
}

#[test]
fn the_engine_counts_its_encoder_time_apart_from_its_steps() {
    let model = Slow {
        inner: MockModel::hashed(4, 12, -1.0),
        encode: Duration::from_millis(50),
        step: Duration::from_millis(20),
    };
    let mut engine = Engine::new(&model);
    let rows = inputs();
    let (ids, mask) = batch(&rows);
    let sequences = (0..rows.len() as u64)
        .map(|id| (id, GenerationConfig::default()))
        .collect();
    engine
        .admit(&ids, &mask, sequences, Placement::default())
        .expect("admit");
    let encoding = engine.encoding();
    assert!(encoding >= model.encode, "{encoding:?}");
    // Decoder steps (each slower than nothing) never count as encoding.
    engine.step();
    engine.step();
    assert_eq!(engine.encoding(), encoding);
}
