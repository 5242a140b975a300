//! Turning an encoded batch into token ids: greedy search, beam search and sampling, with
//! transformers' logits processors, against the [`Seq2Seq`] trait only.
//!
//! The goal is token-for-token parity with transformers' `generate()` (5.x): same processor
//! order, same beam bookkeeping (see [`beam`] and [`hypotheses`]), same f32 arithmetic where it
//! decides a ranking.

pub mod beam;
pub mod config;
pub mod engine;
pub mod greedy;
pub mod hypotheses;
pub mod logits;
mod overrides;
pub mod processors;
pub mod sampling;
pub mod scores;
pub mod sequence;
pub mod torch_sort;
pub mod warpers;

#[cfg(test)]
mod engine_tests;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod parity;
#[cfg(test)]
mod tests;

use std::time::{Duration, Instant};

use candle_core::{Device, Shape, Tensor};

pub use config::{DEFAULT_SEED, EarlyStopping, GenerationConfig, Sampling};
pub use engine::{Engine, Lane, Placement, SequenceId};
pub use overrides::{GenerationOverrides, SamplingOverrides};
pub use processors::{LogitsProcessor, ProcessorList};

use crate::models::Seq2Seq;
use crate::{Error, Result};

/// Work done by one [`generate_with_stats`] call, and how long each phase took.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenerationStats {
    /// Decoder steps run (each one token for every live row).
    pub steps: usize,
    /// Decoder rows of the first step: batch size × beams.
    pub rows: usize,
    /// Admitting the batch: the encoder, the decoder's cross-attention keys and values, and
    /// their copies for the beams.
    pub encode: Duration,
    /// The decoder steps, with every logits processor and search step.
    pub decode: Duration,
}

/// Generate one sequence per input row. Each starts with the decoder start token and ends with
/// EOS when one was generated (never with padding).
///
/// `input_ids` and `attention_mask` are `(batch, seq)` u32 tensors; `config` is validated here.
pub fn generate(
    model: &dyn Seq2Seq,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<Vec<Vec<u32>>> {
    let (mut engine, batch) = start(model, input_ids, attention_mask, config)?;
    Ok(run_to_completion(&mut engine, batch)?.0)
}

/// [`generate`], also reporting how much decoding it took and how long the encoder and the
/// decoder steps of this one run took. The device is synchronised after each phase, so the
/// durations hold the work an accelerator had queued, not only the time to queue it.
pub fn generate_with_stats(
    model: &dyn Seq2Seq,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<(Vec<Vec<u32>>, GenerationStats)> {
    let device = input_ids.device();
    let started = Instant::now();
    let (mut engine, batch) = start(model, input_ids, attention_mask, config)?;
    device.synchronize()?;
    let encode = started.elapsed();
    let rows = engine.rows();
    let started = Instant::now();
    let (outputs, steps) = run_to_completion(&mut engine, batch)?;
    device.synchronize()?;
    let decode = started.elapsed();
    let stats = GenerationStats {
        steps,
        rows,
        encode,
        decode,
    };
    Ok((outputs, stats))
}

/// An engine with every row of the batch admitted under `config` (the encoder has run), as
/// sequences `0..batch`; and `batch`.
fn start<'a>(
    model: &'a dyn Seq2Seq,
    input_ids: &Tensor,
    attention_mask: &Tensor,
    config: &GenerationConfig,
) -> Result<(Engine<'a>, usize)> {
    let batch = check_inputs(input_ids, attention_mask)?;
    let sequences = (0..batch as SequenceId)
        .map(|id| (id, config.clone()))
        .collect();
    let mut engine = Engine::new(model);
    engine.admit(input_ids, attention_mask, sequences, Placement::default())?;
    Ok((engine, batch))
}

/// Steps `engine` until its sequences, with ids `0..count`, are all done; returns their tokens
/// in id order and the number of steps.
fn run_to_completion(engine: &mut Engine, count: usize) -> Result<(Vec<Vec<u32>>, usize)> {
    let mut outputs = vec![Vec::new(); count];
    let mut steps = 0;
    while !engine.is_empty() {
        let report = engine.step();
        steps += 1;
        if let Some(failure) = report.failed.into_iter().next() {
            return Err(failure.error);
        }
        for finished in report.finished {
            outputs[finished.id as usize] = finished.tokens;
        }
    }
    Ok((outputs, steps))
}

/// Right-pads `rows` with `pad` into `(ids, mask)` u32 tensors of shape `(rows, longest)`.
pub fn pad_batch(rows: &[&[u32]], pad: u32, device: &Device) -> Result<(Tensor, Tensor)> {
    let width = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let mut ids = Vec::with_capacity(rows.len() * width);
    let mut mask = Vec::with_capacity(rows.len() * width);
    for row in rows {
        ids.extend_from_slice(row);
        ids.extend(std::iter::repeat_n(pad, width - row.len()));
        mask.extend(std::iter::repeat_n(1u32, row.len()));
        mask.extend(std::iter::repeat_n(0u32, width - row.len()));
    }
    let ids = Tensor::from_vec(ids, (rows.len(), width), device)?;
    let mask = Tensor::from_vec(mask, (rows.len(), width), device)?;
    Ok((ids, mask))
}

/// Forced tokens must be ones the model can score.
fn check_token_ids(model: &dyn Seq2Seq, config: &GenerationConfig) -> Result<()> {
    let vocab = model.spec().vocab_size;
    let forced = [
        ("forced_bos_token_id", config.forced_bos_token_id),
        ("forced_eos_token_id", config.forced_eos_token_id),
    ];
    for (option, token) in forced {
        if let Some(token) = token.filter(|&t| t as usize >= vocab) {
            return Err(Error::InvalidOption {
                option,
                value: token.to_string(),
                expected: format!("a token id below the vocabulary size ({vocab})"),
            });
        }
    }
    Ok(())
}

/// The batch size, once ids and mask are known to be matching 2-D tensors.
fn check_inputs(input_ids: &Tensor, attention_mask: &Tensor) -> Result<usize> {
    let (batch, seq) = input_ids.dims2()?;
    if attention_mask.dims() != [batch, seq] {
        return Err(candle_core::Error::UnexpectedShape {
            msg: "attention_mask must have the shape of input_ids".into(),
            expected: Shape::from((batch, seq)),
            got: attention_mask.shape().clone(),
        }
        .into());
    }
    Ok(batch)
}
