//! A toy `Seq2Seq` for tests: next-token logits are a pure function of the input row's real tokens
//! and the decoder prefix, so results can be checked by brute force or against transformers.
//!
//! The default function is the hash in `scripts/mock_generation_parity.py`; both sides must stay in sync.
//! The "encoder" just copies token ids, and the decoder cache holds the prefix itself (in the
//! self-attention keys), so a wrong `reorder` by the search shows up as wrong logits.

use candle_core::{DType, Device, Tensor};

use crate::models::{DecoderSpec, DecoderState, Seq2Seq};

pub const PAD: u32 = 0;
pub const EOS: u32 = 1;
pub const START: u32 = 0;

/// `(input row tokens, decoder prefix) -> next-token logits`.
pub type LogitsFn = Box<dyn Fn(&[u32], &[u32]) -> Vec<f32> + Send + Sync>;

pub struct MockModel {
    spec: DecoderSpec,
    logits: LogitsFn,
}

/// splitmix64's finaliser: a cheap, well-spread 64-bit hash step.
fn mix(z: u64) -> u64 {
    let z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    let z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The logits of `mock_logits` in `scripts/mock_generation_parity.py`: uniform in [-4, 4) from a hash of
/// everything so far, with EOS boosted by `eos_bias` per prefix token.
pub fn hashed_logits(
    seed: u64,
    vocab: usize,
    eos_bias: f64,
    row: &[u32],
    prefix: &[u32],
) -> Vec<f32> {
    let mut h = mix(seed);
    for &t in row {
        h = mix(h ^ u64::from(t));
    }
    h = mix(h ^ 0xFFFF_FFFF);
    for &t in prefix {
        h = mix(h ^ u64::from(t));
    }
    (0..vocab as u64)
        .map(|v| {
            let bits = mix(h ^ (v + 0x1_0000_0000)) >> 11;
            let mut x = bits as f64 / (1u64 << 53) as f64 * 8.0 - 4.0;
            if v == u64::from(EOS) {
                x += eos_bias * prefix.len() as f64;
            }
            x as f32
        })
        .collect()
}

impl MockModel {
    pub fn new(vocab: usize, logits: LogitsFn) -> Self {
        let spec = DecoderSpec {
            vocab_size: vocab,
            decoder_start_token_id: START,
            eos_token_id: EOS,
            pad_token_id: PAD,
        };
        Self { spec, logits }
    }

    pub fn hashed(seed: u64, vocab: usize, eos_bias: f64) -> Self {
        Self::new(
            vocab,
            Box::new(move |row, prefix| hashed_logits(seed, vocab, eos_bias, row, prefix)),
        )
    }

    /// The logits the model gives `row` after `prefix` (for brute-force references).
    pub fn logits_for(&self, row: &[u32], prefix: &[u32]) -> Vec<f32> {
        (self.logits)(row, prefix)
    }
}

/// Host rows of a `(rows, 1, len, 1)` f32 tensor as token ids, keeping the positions where the
/// additive `bias` (broadcast to `(rows, 1, 1, len)`) is 0, i.e. not masked.
fn token_rows(t: &Tensor, bias: &Tensor) -> candle_core::Result<Vec<Vec<u32>>> {
    let rows = t.dim(0)?;
    let values = t.reshape((rows, ()))?.to_vec2::<f32>()?;
    let bias = bias
        .broadcast_as(t.reshape((rows, 1, 1, ()))?.shape())?
        .reshape((rows, ()))?
        .to_vec2::<f32>()?;
    Ok(values
        .into_iter()
        .zip(bias)
        .map(|(r, b)| {
            r.into_iter()
                .zip(b)
                .filter(|&(_, b)| b == 0.0)
                .map(|(x, _)| x as u32)
                .collect()
        })
        .collect())
}

impl Seq2Seq for MockModel {
    fn spec(&self) -> &DecoderSpec {
        &self.spec
    }

    /// The mock computes with token ids, not weights: nothing to quantize.
    fn quantize(
        &mut self,
        _quantization: crate::models::Quantization,
    ) -> candle_core::Result<(usize, usize)> {
        Ok((0, 0))
    }

    /// "Hidden states" `(batch, seq, 1)`: the token id where the mask is 1, -1 where it is 0.
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> candle_core::Result<Tensor> {
        let ids = input_ids.to_dtype(DType::F32)?;
        let mask = attention_mask.to_dtype(DType::F32)?;
        let hidden = ((ids * &mask)? + (mask - 1.0)?)?;
        hidden.unsqueeze(2)
    }

    fn start_decoding(
        &self,
        hidden: &Tensor,
        attention_mask: &Tensor,
    ) -> candle_core::Result<DecoderState> {
        let (batch, seq, _) = hidden.dims3()?;
        let row_tokens = hidden.reshape((batch, 1, seq, 1))?;
        DecoderState::new(
            vec![(row_tokens.clone(), row_tokens)],
            attention_mask,
            DType::F32,
        )
    }

    fn decode_step(
        &self,
        last_tokens: &Tensor,
        state: &mut DecoderState,
    ) -> candle_core::Result<Tensor> {
        let rows = last_tokens.dim(0)?;
        let step = last_tokens.to_dtype(DType::F32)?.reshape((rows, 1, 1, 1))?;
        // Slots before a row joined the batch are hidden from it, as the real models hide them.
        let hidden = match state.self_attention_bias()? {
            Some(bias) => bias,
            None => Tensor::zeros((1, 1, 1, state.position + 1), DType::F32, &Device::Cpu)?,
        };
        state.begin_step()?;
        state.append_self_kv(0, &step, &step)?;
        let (prefix, _) = state.self_kv(0)?.gather()?;
        state.end_step();
        let prefixes = token_rows(&prefix, &hidden)?;
        let inputs = token_rows(&state.layers[0].cross_kv.0, &state.encoder_bias)?;
        let vocab = self.spec.vocab_size;
        let mut values = Vec::with_capacity(rows * vocab);
        // Beams share their input's encoder row, as in the real models.
        for (row, prefix) in prefixes.iter().enumerate() {
            values.extend((self.logits)(&inputs[row / state.beams], prefix));
        }
        Tensor::from_vec(values, (rows, vocab), &Device::Cpu)
    }
}
