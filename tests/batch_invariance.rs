//! Batch invariance on the CPU: one sequence's encoder output and every decoder step's logits
//! are bit-identical whatever else is in the batch — how many rows it has (beams included),
//! how wide its inputs are padded, and the step at which the sequence joined a running decoder
//! batch, including a longer input joining after it (which widens its encoder side) and others
//! leaving (which trims it). That is what makes `precis serve`, `precis batch` and
//! `precis summarize` give the same tokens on any model, not only on confident ones.
//!
//! The fixture models are tiny and very confident, so their tokens rarely move when a logit
//! changes in the last bit: these tests compare the bits of the float32 values themselves, on
//! every architecture, in float32, `--quantize q8` and `--dtype bf16` (bfloat16 products, on
//! the AMX tiles where the CPU has them), and on every kernel path the CPU has.

#[macro_use]
mod common;

use candle_core::{Device, IndexOp, Tensor};
use precis::Quantization;
use precis::generation::pad_batch;
use precis::models::{self, DecoderState, Seq2Seq};

fixture_model_tests!(
    float32_decoder_logits_do_not_depend_on_the_batch => float32_decoder,
    q8_decoder_logits_do_not_depend_on_the_batch => q8_decoder,
    float32_encoder_outputs_do_not_depend_on_the_batch => float32_encoder,
    q8_encoder_outputs_do_not_depend_on_the_batch => q8_encoder,
    bf16_decoder_logits_do_not_depend_on_the_batch => bf16_decoder,
    bf16_encoder_outputs_do_not_depend_on_the_batch => bf16_encoder,
);
on_every_kernel_path!();

/// Decoder steps the sequence under test runs in every scenario.
const STEPS: usize = 7;

fn float32_decoder(name: &str) {
    check_decoder(common::load_model(name).as_ref(), name);
}

fn q8_decoder(name: &str) {
    check_decoder(
        quantized(name, Quantization::Q8).as_ref(),
        &format!("{name} q8"),
    );
}

fn bf16_decoder(name: &str) {
    check_decoder(
        quantized(name, Quantization::Bf16).as_ref(),
        &format!("{name} bf16"),
    );
}

fn bf16_encoder(name: &str) {
    check_encoder(
        quantized(name, Quantization::Bf16).as_ref(),
        &format!("{name} bf16"),
    );
}

fn float32_encoder(name: &str) {
    check_encoder(common::load_model(name).as_ref(), name);
}

fn q8_encoder(name: &str) {
    check_encoder(
        quantized(name, Quantization::Q8).as_ref(),
        &format!("{name} q8"),
    );
}

/// The fixture with its projections in `quantization`, as loading with `--quantize q8` or
/// `--dtype bf16` on the CPU builds it.
fn quantized(name: &str, quantization: Quantization) -> Box<dyn Seq2Seq> {
    let (cfg, vb) = (
        common::config(name),
        common::weights(&common::fixture_dir(name)),
    );
    models::from_config_with(&cfg, vb, Some(quantization)).unwrap()
}

/// A deterministic input of `len` tokens ending with EOS, different for each `seed`.
fn input(model: &dyn Seq2Seq, len: usize, seed: u64) -> Vec<u32> {
    let spec = model.spec();
    let vocab = spec.vocab_size as u64;
    let mut row: Vec<u32> = (0..len as u64 - 1)
        .map(|p| (4 + (seed * 131 + p * 977 + p * p * 7) % (vocab - 4)) as u32)
        .collect();
    row.push(spec.eos_token_id);
    row
}

/// The token a row feeds after decoding `decoded` tokens: the start token, then a fixed
/// pseudo-random sequence per `seed` (forced, so every scenario feeds the same ones).
fn token(model: &dyn Seq2Seq, seed: u64, decoded: usize) -> u32 {
    let spec = model.spec();
    if decoded == 0 {
        return spec.decoder_start_token_id;
    }
    (3 + (seed * 389 + decoded as u64 * 613) % (spec.vocab_size as u64 - 3)) as u32
}

/// The bits of each value, so that a difference in the last place is a difference.
fn bits(t: &Tensor) -> Vec<u32> {
    let values: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
    values.into_iter().map(f32::to_bits).collect()
}

/// The encoder output of `rows` encoded as one padded batch, and the batch's mask.
fn encode_batch(model: &dyn Seq2Seq, rows: &[&[u32]]) -> (Tensor, Tensor) {
    let pad = model.spec().pad_token_id;
    let (ids, mask) = pad_batch(rows, pad, &Device::Cpu).unwrap();
    (model.encode(&ids, &mask).unwrap(), mask)
}

/// A decoder state over `rows`, each encoded alone and padded with zeros to the longest (what
/// a batch encoder gives when it is batch-invariant, which the encoder tests check), so that
/// the decoder tests check the decoder only.
fn start(model: &dyn Seq2Seq, rows: &[&[u32]]) -> DecoderState {
    let pad = model.spec().pad_token_id;
    let width = rows.iter().map(|r| r.len()).max().unwrap();
    let hidden: Vec<Tensor> = rows
        .iter()
        .map(|row| {
            let (hidden, _) = encode_batch(model, &[row]);
            hidden.pad_with_zeros(1, 0, width - row.len()).unwrap()
        })
        .collect();
    let hidden = Tensor::cat(&hidden, 0).unwrap();
    let (_, mask) = pad_batch(rows, pad, &Device::Cpu).unwrap();
    model.start_decoding(&hidden, &mask).unwrap()
}

/// A running decoder batch whose rows are `(seed, decoded so far)`; the rows of the sequence
/// under test have seed 0.
struct Running<'m> {
    model: &'m dyn Seq2Seq,
    state: DecoderState,
    rows: Vec<(u64, usize)>,
}

impl<'m> Running<'m> {
    /// The inputs `rows` with `seeds`, `beams` decoder rows each.
    fn new(model: &'m dyn Seq2Seq, rows: &[&[u32]], seeds: &[u64], beams: usize) -> Self {
        let mut state = start(model, rows);
        state.expand_beams(beams).unwrap();
        let rows = seeds
            .iter()
            .flat_map(|&seed| std::iter::repeat_n((seed, 0), beams))
            .collect();
        Self { model, state, rows }
    }

    /// One decoder step: the logits of every row whose seed is 0.
    fn step(&mut self) -> Vec<Vec<u32>> {
        let tokens: Vec<u32> = self
            .rows
            .iter()
            .map(|&(seed, decoded)| token(self.model, seed, decoded))
            .collect();
        let tokens = Tensor::from_vec(tokens, (self.rows.len(), 1), &Device::Cpu).unwrap();
        let logits = self.model.decode_step(&tokens, &mut self.state).unwrap();
        let mut target = Vec::new();
        for (r, (seed, decoded)) in self.rows.iter_mut().enumerate() {
            if *seed == 0 {
                target.push(bits(&logits.i(r).unwrap()));
            }
            *decoded += 1;
        }
        target
    }

    /// The inputs `rows` with `seeds` join the running batch (one decoder row each).
    fn join(&mut self, rows: &[&[u32]], seeds: &[u64]) {
        let joining = Running::new(self.model, rows, seeds, 1);
        self.state.join(joining.state).unwrap();
        self.rows.extend(joining.rows);
    }
}

/// Inputs of different lengths: the one under test (seed 0) and longer and shorter ones.
fn inputs(model: &dyn Seq2Seq) -> [Vec<u32>; 4] {
    [(21, 0), (4, 1), (37, 2), (70, 3)].map(|(len, seed)| input(model, len, seed))
}

fn check_encoder(model: &dyn Seq2Seq, name: &str) {
    let [target, short, longer, longest] = inputs(model);
    let len = target.len();
    let own = |hidden: &Tensor, row: usize| bits(&hidden.i((row, ..len)).unwrap());
    let alone = own(&encode_batch(model, &[&target]).0, 0);
    let others: Vec<Vec<u32>> = (4..11)
        .map(|seed| input(model, 3 + seed as usize * 7, seed))
        .collect();
    let mut eight: Vec<&[u32]> = others.iter().map(Vec::as_slice).collect();
    eight.insert(5, &target);
    let batches: [(&str, Vec<&[u32]>, usize); 3] = [
        ("a batch of 4", vec![&short, &target, &longer, &longest], 1),
        ("a batch of 2, padded wider", vec![&longer, &target], 1),
        ("a batch of 8", eight, 5),
    ];
    for (batch, rows, row) in batches {
        let (hidden, _) = encode_batch(model, &rows);
        let got = own(&hidden, row);
        let differing = got.iter().zip(&alone).filter(|(a, b)| a != b).count();
        assert!(
            differing == 0,
            "{name}, {batch}: {differing} of {} encoder outputs differ from alone",
            alone.len()
        );
    }
}

fn check_decoder(model: &dyn Seq2Seq, name: &str) {
    let [target, short, longer, longest] = inputs(model);
    let mut alone = Running::new(model, &[&target], &[0], 1);
    let alone: Vec<Vec<u32>> = (0..STEPS).map(|_| alone.step().remove(0)).collect();
    let rows = [&target, &short, &longer, &longest].map(Vec::as_slice);
    let scenarios: [(&str, Vec<Vec<Vec<u32>>>); 3] = [
        ("a batch of 4, padded wider", batch_of_four(model, rows)),
        (
            "8 inputs x 4 beams = 32 rows",
            thirty_two_rows(model, &target),
        ),
        ("joining a running batch late", joining_late(model, rows)),
    ];
    for (scenario, copies) in scenarios {
        for (copy, steps) in copies.iter().enumerate() {
            assert_eq!(steps.len(), STEPS, "{name}, {scenario}");
            for (step, (got, want)) in steps.iter().zip(&alone).enumerate() {
                let differing = got.iter().zip(want).filter(|(a, b)| a != b).count();
                assert!(
                    differing == 0,
                    "{name}, {scenario}: copy {copy}, step {step}: {differing} of {} logits \
                     differ from alone",
                    want.len()
                );
            }
        }
    }
}

/// The target as the second of four inputs of different lengths, two of them longer.
fn batch_of_four(
    model: &dyn Seq2Seq,
    [target, short, longer, longest]: [&[u32]; 4],
) -> Vec<Vec<Vec<u32>>> {
    let mut run = Running::new(model, &[short, target, longer, longest], &[1, 0, 2, 3], 1);
    vec![(0..STEPS).map(|_| run.step().remove(0)).collect()]
}

/// The target as the sixth of eight inputs with four beams each: each of its beams (fed the
/// same tokens) must equal it alone.
fn thirty_two_rows(model: &dyn Seq2Seq, target: &[u32]) -> Vec<Vec<Vec<u32>>> {
    let others: Vec<Vec<u32>> = (1..8)
        .map(|seed| input(model, 3 + seed as usize * 9, seed))
        .collect();
    let mut rows: Vec<&[u32]> = others.iter().map(Vec::as_slice).collect();
    rows.insert(5, target);
    let mut run = Running::new(model, &rows, &[1, 2, 3, 4, 5, 0, 6, 7], 4);
    let mut beams = vec![Vec::new(); 4];
    for _ in 0..STEPS {
        for (beam, logits) in run.step().into_iter().enumerate() {
            beams[beam].push(logits);
        }
    }
    beams
}

/// Two inputs decode 3 steps; the target (with a short one) joins; 2 steps later the longest
/// input joins, widening the encoder side; 2 steps later the first two leave.
fn joining_late(
    model: &dyn Seq2Seq,
    [target, short, longer, longest]: [&[u32]; 4],
) -> Vec<Vec<Vec<u32>>> {
    let mut run = Running::new(model, &[longer, short], &[2, 1], 1);
    for _ in 0..3 {
        run.step();
    }
    run.join(&[short, target], &[4, 0]);
    let mut logits = Vec::new();
    for step in 0..STEPS {
        if step == 2 {
            run.join(&[longest], &[3]);
        }
        if step == 4 {
            run.state.retain_inputs(&[2, 3, 4]).unwrap();
            run.rows.drain(..2);
        }
        logits.extend(run.step());
    }
    vec![logits]
}
