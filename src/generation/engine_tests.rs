//! Continuous batching on the mock model: whatever joins or leaves the running batch, and
//! whatever settings its neighbours use, each sequence gets exactly the tokens `generate` gives
//! it alone; failures and panics stay inside their batch.

use std::collections::HashMap;
use std::sync::Mutex;

use candle_core::{Device, Tensor};

use super::config::{EarlyStopping, GenerationConfig, Sampling};
use super::engine::{Engine, Finished, Padded, Placement, SequenceId};
use super::mock::{MockModel, PAD};
use super::{generate, pad_batch};
use crate::Error;
use crate::models::{DecoderSpec, DecoderState, Quantization, Seq2Seq};

fn configs() -> Vec<GenerationConfig> {
    let sampling = |seed| Sampling {
        temperature: 0.9,
        top_k: 5,
        top_p: 0.9,
        seed,
    };
    let beams = |num_beams, length_penalty, early_stopping| GenerationConfig {
        num_beams,
        length_penalty,
        early_stopping,
        max_length: 10,
        ..Default::default()
    };
    vec![
        GenerationConfig {
            max_length: 12,
            ..Default::default()
        },
        GenerationConfig {
            max_new_tokens: Some(7),
            no_repeat_ngram_size: 2,
            repetition_penalty: 1.4,
            min_length: 4,
            ..Default::default()
        },
        GenerationConfig {
            do_sample: true,
            sampling: sampling(3),
            max_length: 11,
            ..Default::default()
        },
        GenerationConfig {
            do_sample: true,
            sampling: sampling(4),
            forced_bos_token_id: Some(7),
            max_length: 8,
            ..Default::default()
        },
        beams(3, 1.0, EarlyStopping::Heuristic),
        beams(3, 2.0, EarlyStopping::Always),
        GenerationConfig {
            min_length: 5,
            forced_eos_token_id: Some(1),
            ..beams(3, 0.5, EarlyStopping::Never)
        },
        GenerationConfig {
            no_repeat_ngram_size: 3,
            max_new_tokens: Some(6),
            ..beams(2, 1.0, EarlyStopping::Heuristic)
        },
    ]
}

/// What `generate` gives `row` alone.
fn alone(model: &dyn Seq2Seq, row: &[u32], config: &GenerationConfig) -> Vec<u32> {
    let (ids, mask) = pad_batch(&[row], PAD, &Device::Cpu).unwrap();
    generate(model, &ids, &mask, config).unwrap().remove(0)
}

/// A small deterministic generator for schedules.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        ((self.0 >> 33) % n as u64) as usize
    }
}

/// One waiting sequence: its input row and settings.
struct Pending {
    id: SequenceId,
    row: Vec<u32>,
    config: GenerationConfig,
}

/// Admits `pending` (one call per beam width, as a scheduler would), padded in two batches
/// (odd and even arrivals) when there are several.
fn admit(engine: &mut Engine, pending: Vec<Pending>) {
    let mut by_width: HashMap<usize, Vec<Pending>> = HashMap::new();
    for p in pending {
        by_width.entry(p.config.beam_width()).or_default().push(p);
    }
    for (_, group) in by_width {
        let halves = [0, 1].map(|parity| group.iter().skip(parity).step_by(2).collect());
        let batches = halves
            .into_iter()
            .filter(|half: &Vec<&Pending>| !half.is_empty());
        let batches = batches.map(|half| {
            let rows: Vec<&[u32]> = half.iter().map(|p| p.row.as_slice()).collect();
            let (input_ids, attention_mask) = pad_batch(&rows, PAD, &Device::Cpu).unwrap();
            let sequences = half.iter().map(|p| (p.id, p.config.clone())).collect();
            Padded {
                input_ids,
                attention_mask,
                sequences,
            }
        });
        engine
            .admit_all(batches.collect(), Placement::default())
            .unwrap();
    }
}

#[test]
fn sequences_joining_and_leaving_at_any_step_get_what_they_get_alone() {
    let configs = configs();
    for seed in 0..12u64 {
        let model = MockModel::hashed(seed, 14, 0.2);
        let mut rng = Lcg(seed);
        let mut engine = Engine::new(&model);
        let mut expected = HashMap::new();
        let mut got: HashMap<SequenceId, Finished> = HashMap::new();
        let mut cancelled = Vec::new();
        let mut next_id = 0;
        for step in 0..40 {
            if step < 25 {
                let arrivals = (0..rng.below(4))
                    .map(|_| {
                        let len = 1 + rng.below(6);
                        let row: Vec<u32> = (0..len).map(|_| 2 + rng.below(12) as u32).collect();
                        let config = configs[rng.below(configs.len())].clone();
                        next_id += 1;
                        expected.insert(next_id, alone(&model, &row, &config));
                        Pending {
                            id: next_id,
                            row,
                            config,
                        }
                    })
                    .collect();
                admit(&mut engine, arrivals);
            }
            if rng.below(8) == 0 && !engine.is_empty() {
                let victim = engine.ids().nth(rng.below(engine.sequences())).unwrap();
                let (stopped, report) = engine.cancel(|id| id == victim);
                assert_eq!((stopped, report.failed.len()), (1, 0));
                cancelled.push(victim);
            }
            let report = engine.step();
            assert!(report.failed.is_empty(), "{:?}", report.failed);
            got.extend(report.finished.into_iter().map(|f| (f.id, f)));
        }
        while !engine.is_empty() {
            got.extend(engine.step().finished.into_iter().map(|f| (f.id, f)));
        }
        assert!(
            next_id > 20 && !cancelled.is_empty(),
            "seed {seed}: too easy"
        );
        for (id, tokens) in &expected {
            match got.get(id) {
                Some(finished) => assert_eq!(&finished.tokens, tokens, "seed {seed}, id {id}"),
                None => assert!(cancelled.contains(id), "seed {seed}: id {id} lost"),
            }
        }
        assert!(cancelled.iter().all(|id| !got.contains_key(id)));
    }
}

#[test]
fn rows_and_budgets_follow_joins_and_leaves() {
    let model = MockModel::hashed(2, 14, -5.0);
    let mut engine = Engine::new(&model);
    let beams = GenerationConfig {
        num_beams: 3,
        max_length: 6,
        ..Default::default()
    };
    let rows: [&[u32]; 2] = [&[3, 4, 5], &[6]];
    let (ids, mask) = pad_batch(&rows, PAD, &Device::Cpu).unwrap();
    engine
        .admit(
            &ids,
            &mask,
            vec![(1, beams.clone()), (2, beams)],
            Placement::default(),
        )
        .unwrap();
    let (ids, mask) = pad_batch(&[&[7, 8, 9, 10]], PAD, &Device::Cpu).unwrap();
    engine
        .admit(
            &ids,
            &mask,
            vec![(3, GenerationConfig::default())],
            Placement::default(),
        )
        .unwrap();
    assert_eq!((engine.sequences(), engine.rows()), (3, 7));
    assert_eq!(engine.padded_tokens(), 2 * 3 + 4);
    let (stopped, _) = engine.cancel(|id| id == 1);
    // The longest input of the beam group left, so its padding went with it.
    assert_eq!(
        (stopped, engine.rows(), engine.padded_tokens()),
        (1, 4, 1 + 4)
    );
    // EOS is strongly discouraged: everything runs to its maximum length.
    let mut finished = Vec::new();
    while !engine.is_empty() {
        finished.extend(
            engine
                .step()
                .finished
                .into_iter()
                .map(|f| (f.id, f.tokens.len())),
        );
    }
    finished.sort();
    assert_eq!(finished, vec![(2, 6), (3, 20)]);
}

/// Runs three sequences, ids 0 and 2 in lane 0 and id 1 in lane 1, where lane 1 waits for the
/// first `hold` steps; the step at which each finished, and its tokens.
fn finish_steps(model: &MockModel, hold: usize) -> HashMap<usize, (usize, Vec<u32>)> {
    let mut engine = Engine::new(model);
    for (id, row) in lane_rows().iter().enumerate() {
        let (ids, mask) = pad_batch(&[*row], PAD, &Device::Cpu).unwrap();
        let placement = Placement {
            lane: id % 2,
            isolated: false,
        };
        engine
            .admit(
                &ids,
                &mask,
                vec![(id as SequenceId, lane_config(id))],
                placement,
            )
            .unwrap();
    }
    assert_eq!((engine.sequences_in(0), engine.sequences_in(1)), (2, 1));
    assert_eq!(engine.rows_in(1), 3);
    let mut got = HashMap::new();
    for step in 0.. {
        if engine.is_empty() {
            break;
        }
        let report = engine.step_lanes(|lane| lane == 0 || step >= hold);
        assert!(report.failed.is_empty());
        got.extend(
            report
                .finished
                .into_iter()
                .map(|f| (f.id as usize, (step, f.tokens))),
        );
    }
    got
}

fn lane_rows() -> [&'static [u32]; 3] {
    [&[3, 4, 5], &[6, 7], &[8, 9, 10, 11]]
}

fn lane_config(id: usize) -> GenerationConfig {
    configs()[4 + id % 2].clone()
}

#[test]
fn lanes_keep_separate_groups_and_only_the_lanes_told_step() {
    let model = MockModel::hashed(5, 14, 0.25);
    let together = finish_steps(&model, 0);
    let held = finish_steps(&model, 4);
    for (id, row) in lane_rows().iter().enumerate() {
        let expected = alone(&model, row, &lane_config(id));
        assert_eq!(together[&id].1, expected, "sequence {id}");
        assert_eq!(held[&id].1, expected, "sequence {id}");
        // Lane 1 finished 4 steps later; lane 0 did not wait.
        let waited = if id == 1 { 4 } else { 0 };
        assert_eq!(held[&id].0, together[&id].0 + waited, "sequence {id}");
    }
}

#[test]
fn invalid_settings_and_shapes_are_refused_before_anything_runs() {
    let model = MockModel::hashed(0, 14, 0.0);
    let mut engine = Engine::new(&model);
    let (ids, mask) = pad_batch(&[&[3], &[4]], PAD, &Device::Cpu).unwrap();
    let bad = GenerationConfig {
        num_beams: 0,
        ..Default::default()
    };
    let mixed = vec![
        (1, GenerationConfig::default()),
        (
            2,
            GenerationConfig {
                num_beams: 2,
                ..Default::default()
            },
        ),
    ];
    assert!(matches!(
        engine.admit(
            &ids,
            &mask,
            vec![(1, bad.clone()), (2, bad)],
            Placement::default()
        ),
        Err(Error::InvalidOption {
            option: "num_beams",
            ..
        })
    ));
    assert!(
        engine
            .admit(&ids, &mask, mixed, Placement::default())
            .is_err()
    );
    let one = vec![(1, GenerationConfig::default())];
    assert!(
        engine
            .admit(&ids, &mask, one, Placement::default())
            .is_err()
    );
    assert!(engine.is_empty());
}

/// The mock model with `before_step` run on the decoder state before each step.
struct Hooked<F> {
    inner: MockModel,
    before_step: F,
}

impl<F: Fn(&DecoderState) -> candle_core::Result<()> + Send + Sync> Seq2Seq for Hooked<F> {
    fn spec(&self) -> &DecoderSpec {
        self.inner.spec()
    }
    fn encode(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        self.inner.encode(ids, mask)
    }
    fn start_decoding(&self, hidden: &Tensor, mask: &Tensor) -> candle_core::Result<DecoderState> {
        self.inner.start_decoding(hidden, mask)
    }
    fn decode_step(&self, last: &Tensor, state: &mut DecoderState) -> candle_core::Result<Tensor> {
        (self.before_step)(state)?;
        self.inner.decode_step(last, state)
    }
    fn quantize(&mut self, _: Quantization) -> candle_core::Result<(usize, usize)> {
        Ok((0, 0))
    }
}

const TRIGGER: u32 = 13;

/// The mock model, failing (or panicking) whenever a batch holds an input with `TRIGGER`.
fn faulty(
    inner: MockModel,
    panics: bool,
) -> Hooked<impl Fn(&DecoderState) -> candle_core::Result<()>> {
    let before_step = move |state: &DecoderState| {
        // After a few steps, so that the failure hits a running batch.
        if state.position < 2 {
            return Ok(());
        }
        let values = state.layers[0].cross_kv.0.flatten_all()?;
        if values
            .to_dtype(candle_core::DType::F32)?
            .to_vec1::<f32>()?
            .contains(&(TRIGGER as f32))
        {
            if panics {
                panic!("poisoned input");
            }
            candle_core::bail!("poisoned input");
        }
        Ok(())
    };
    Hooked { inner, before_step }
}

#[test]
fn a_failing_batch_is_dropped_alone_and_its_innocent_members_succeed_when_isolated() {
    for panics in [false, true] {
        let model = faulty(MockModel::hashed(5, 14, -5.0), panics);
        let mut engine = Engine::new(&model);
        let greedy = GenerationConfig {
            max_length: 8,
            ..Default::default()
        };
        let beams = GenerationConfig {
            num_beams: 2,
            ..greedy.clone()
        };
        let rows: [&[u32]; 2] = [&[3, 4], &[TRIGGER, 5]];
        let (ids, mask) = pad_batch(&rows, PAD, &Device::Cpu).unwrap();
        let pair = vec![(1, greedy.clone()), (2, greedy.clone())];
        engine
            .admit(&ids, &mask, pair, Placement::default())
            .unwrap();
        let (ids, mask) = pad_batch(&[&[6, 7]], PAD, &Device::Cpu).unwrap();
        engine
            .admit(&ids, &mask, vec![(3, beams.clone())], Placement::default())
            .unwrap();
        let mut failed = Vec::new();
        let mut finished = Vec::new();
        while !engine.is_empty() {
            let report = engine.step();
            finished.extend(report.finished.into_iter().map(|f| f.id));
            failed.extend(report.failed);
        }
        // The greedy group failed as a whole; the beam group went on.
        assert_eq!(finished, vec![3]);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].ids, vec![1, 2]);
        assert_eq!(
            matches!(failed[0].error, Error::ModelPanic { .. }),
            panics,
            "{:?}",
            failed[0].error
        );
        // Retried one per group, the innocent one finishes as it would alone.
        for (id, row) in [(1, &rows[0]), (2, &rows[1])] {
            let (ids, mask) = pad_batch(&[row], PAD, &Device::Cpu).unwrap();
            engine
                .admit(&ids, &mask, vec![(id, greedy.clone())], Placement::ISOLATED)
                .unwrap();
        }
        let mut outcome = HashMap::new();
        while !engine.is_empty() {
            let report = engine.step();
            outcome.extend(report.finished.into_iter().map(|f| (f.id, Ok(f.tokens))));
            outcome.extend(report.failed.into_iter().map(|f| (f.ids[0], Err(f.ids))));
        }
        assert_eq!(outcome[&1], Ok(alone(&model.inner, rows[0], &greedy)));
        assert_eq!(outcome[&2], Err(vec![2]));
    }
}

#[test]
fn sequences_admitted_where_others_left_take_their_place_without_copying_the_batch() {
    // EOS is strongly discouraged: every sequence runs to its maximum length.
    let model = MockModel::hashed(5, 14, -5.0);
    let mut engine = Engine::new(&model);
    let config = |max_length| GenerationConfig {
        num_beams: 2,
        max_length,
        ..Default::default()
    };
    let rows: [&[u32]; 5] = [&[3, 4, 5], &[6, 7, 8, 9], &[10, 11, 12], &[11], &[12, 13]];
    let lengths = [3, 9, 6, 5, 4];
    let expected: Vec<Vec<u32>> = (0..5)
        .map(|i| alone(&model, rows[i], &config(lengths[i])))
        .collect();
    let admit = |engine: &mut Engine, ids: &[usize]| {
        let padded: Vec<&[u32]> = ids.iter().map(|&i| rows[i]).collect();
        let (input_ids, mask) = pad_batch(&padded, PAD, &Device::Cpu).unwrap();
        let sequences = ids
            .iter()
            .map(|&i| (i as SequenceId, config(lengths[i])))
            .collect();
        engine
            .admit(&input_ids, &mask, sequences, Placement::default())
            .unwrap();
    };
    let mut got = HashMap::new();
    let mut step = |engine: &mut Engine| {
        let finished = engine.step().finished;
        let ids: Vec<SequenceId> = finished.iter().map(|f| f.id).collect();
        got.extend(finished.into_iter().map(|f| (f.id as usize, f.tokens)));
        ids
    };
    admit(&mut engine, &[0, 1]);
    while step(&mut engine).is_empty() {}
    // Sequence 0 left a vacancy. A check for cancellations that stops nothing (a server
    // checks before every admission) leaves it; 2 takes it before the next step: nothing is
    // copied.
    assert_eq!(engine.sequences(), 1);
    assert_eq!(engine.cancel(|_| false).0, 0);
    assert_eq!(engine.state_copies(), 0);
    admit(&mut engine, &[2]);
    assert_eq!((engine.sequences(), engine.state_copies()), (2, 0));
    // Two join where one left: one fills the vacancy, the other joins (one copy).
    while step(&mut engine).is_empty() {}
    admit(&mut engine, &[3, 4]);
    assert_eq!((engine.sequences(), engine.state_copies()), (3, 1));
    // A vacancy nobody takes is filtered out before the next step (a copy).
    while step(&mut engine).is_empty() {}
    let copies = engine.state_copies();
    step(&mut engine);
    assert_eq!(engine.state_copies(), copies + 1);
    while !engine.is_empty() {
        step(&mut engine);
    }
    for (i, tokens) in expected.iter().enumerate() {
        assert_eq!(&got[&i], tokens, "sequence {i}");
    }
}

#[test]
fn a_vacancy_left_by_the_widest_input_is_filtered_out_so_its_padding_goes() {
    let model = MockModel::hashed(5, 14, -5.0);
    let mut engine = Engine::new(&model);
    let config = |max_length| GenerationConfig {
        max_length,
        ..Default::default()
    };
    let rows: [&[u32]; 2] = [&[3, 4, 5, 6], &[7]];
    let (ids, mask) = pad_batch(&rows, PAD, &Device::Cpu).unwrap();
    let sequences = vec![(0, config(3)), (1, config(12))];
    engine
        .admit(&ids, &mask, sequences, Placement::default())
        .unwrap();
    while engine.step().finished.is_empty() {}
    let (ids, mask) = pad_batch(&[&[8, 9]], PAD, &Device::Cpu).unwrap();
    engine
        .admit(&ids, &mask, vec![(2, config(12))], Placement::default())
        .unwrap();
    // Filling the 4-token input's place would keep 2 inputs padded to 4: filtered, then joined.
    assert_eq!((engine.padded_tokens(), engine.state_copies()), (2 * 2, 2));
    let mut finished = Vec::new();
    while !engine.is_empty() {
        finished.extend(engine.step().finished);
    }
    let expected = alone(&model, &[8, 9], &config(12));
    assert_eq!(
        finished.iter().find(|f| f.id == 2).unwrap().tokens,
        expected
    );
}

#[test]
fn a_batch_that_never_empties_gets_what_each_sequence_gets_alone() {
    // EOS is strongly discouraged: every sequence runs to its maximum length, so once the
    // batch is full one sequence leaves at every step and the next one takes its place. The
    // batch never empties, so the slots only the departed rows saw are dropped as it runs.
    let model = MockModel::hashed(3, 14, -5.0);
    let mut engine = Engine::new(&model);
    let config = GenerationConfig {
        num_beams: 2,
        max_length: 9,
        ..Default::default()
    };
    let row =
        |i: usize| -> Vec<u32> { (0..1 + i % 5).map(|j| 2 + ((i + j) % 12) as u32).collect() };
    let mut got = HashMap::new();
    for i in 0..150 {
        let pending = Pending {
            id: i as SequenceId,
            row: row(i),
            config: config.clone(),
        };
        admit(&mut engine, vec![pending]);
        got.extend(engine.step().finished.into_iter().map(|f| (f.id, f.tokens)));
    }
    while !engine.is_empty() {
        got.extend(engine.step().finished.into_iter().map(|f| (f.id, f.tokens)));
    }
    for i in 0..150 {
        assert_eq!(
            got[&(i as SequenceId)],
            alone(&model, &row(i), &config),
            "sequence {i}"
        );
    }
}

#[test]
fn the_cache_is_sized_once_for_the_longest_a_sequence_can_run() {
    // How many slots the self-attention buffers hold before each step after the first.
    let capacities = Mutex::new(Vec::new());
    // EOS is strongly discouraged: every sequence runs its 99 steps, past the 64 slots that
    // doubling would start with.
    let model = Hooked {
        inner: MockModel::hashed(5, 14, -5.0),
        before_step: |state: &DecoderState| {
            if let Some(kv) = &state.layers[0].self_kv {
                capacities.lock().unwrap().push(kv.k.dim(1)?);
            }
            Ok(())
        },
    };
    for num_beams in [1, 3] {
        let config = GenerationConfig {
            num_beams,
            max_length: 100,
            ..Default::default()
        };
        let (ids, mask) = pad_batch(&[&[3, 4, 5], &[6, 7]], PAD, &Device::Cpu).unwrap();
        let outputs = generate(&model, &ids, &mask, &config).unwrap();
        assert!(
            outputs.iter().all(|tokens| tokens.len() == 100),
            "{outputs:?}"
        );
        let seen = std::mem::take(&mut *capacities.lock().unwrap());
        assert_eq!(seen.len(), 98);
        assert!(
            seen.iter().all(|&slots| slots == 99),
            "{num_beams} beams: {seen:?}"
        );
    }
}
