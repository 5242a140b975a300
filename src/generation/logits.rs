//! One decoder step, with its logits brought to the host once as plain rows.
//!
//! Search and sampling work on `Vec<f32>` rows rather than tensors: the per-step work is a few
//! passes over `rows × vocab` values, cheaper on the CPU than many small device kernels.

use candle_core::{Shape, Tensor};

use crate::Result;
use crate::models::{DecoderState, Seq2Seq};

/// Next-token scores for every decoder row, row-major.
#[derive(Debug, Clone)]
pub struct HostLogits {
    values: Vec<f32>,
    vocab: usize,
}

impl HostLogits {
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    pub fn rows(&self) -> std::slice::ChunksExact<'_, f32> {
        self.values.chunks_exact(self.vocab)
    }

    pub fn rows_mut(&mut self) -> std::slice::ChunksExactMut<'_, f32> {
        self.values.chunks_exact_mut(self.vocab)
    }

    /// Every row's scores, row-major.
    pub fn values_mut(&mut self) -> &mut [f32] {
        &mut self.values
    }

    /// Consecutive groups of `rows` rows (one group per input in beam search).
    pub fn groups(&self, rows: usize) -> std::slice::ChunksExact<'_, f32> {
        self.values.chunks_exact(rows * self.vocab)
    }
}

/// Feed `last_tokens` (one per decoder row) to the model and return its logits on the host.
pub fn decode_step(
    model: &dyn Seq2Seq,
    state: &mut DecoderState,
    last_tokens: &[u32],
) -> Result<HostLogits> {
    let device = state.encoder_bias.device().clone();
    let rows = last_tokens.len();
    let input = Tensor::from_slice(last_tokens, (rows, 1), &device)?;
    let logits = model.decode_step(&input, state)?;
    let (got_rows, vocab) = logits.dims2()?;
    if got_rows != rows || vocab == 0 {
        return Err(candle_core::Error::UnexpectedShape {
            msg: "decoder logits must hold one non-empty row per decoder row".into(),
            expected: Shape::from((rows, vocab.max(1))),
            got: logits.shape().clone(),
        }
        .into());
    }
    let values = logits.flatten_all()?.to_vec1::<f32>()?;
    Ok(HostLogits { values, vocab })
}
