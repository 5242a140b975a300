//! Seq2seq architectures behind one trait, so generation never knows which model it drives.
//!
//! Every model is pure tensor math: no files, no hub, no printing. The decoder cache is an
//! explicit value ([`DecoderState`]) that generation owns and can reorder for beam search.

pub mod cache;
pub mod t5;

use candle_core::{Result, Tensor};

pub use cache::{DecoderState, LayerCache};

/// Token ids a decoder needs to start and stop, read from the model's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderSpec {
    pub vocab_size: usize,
    pub decoder_start_token_id: u32,
    pub eos_token_id: u32,
    pub pad_token_id: u32,
}

/// An encoder-decoder model that generation can drive one decoder step at a time.
pub trait Seq2Seq: Send + Sync {
    fn spec(&self) -> &DecoderSpec;

    /// Encode a padded batch. `input_ids` and `attention_mask` are `(batch, seq)` u32, the mask
    /// holding 1 for real tokens and 0 for padding. Returns hidden states `(batch, seq, d_model)`.
    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor>;

    /// Prepare decoding over an encoded batch: computes every layer's cross-attention keys and
    /// values once, so each decoder step only projects the new token.
    fn start_decoding(
        &self,
        encoder_hidden: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<DecoderState>;

    /// Run one decoder step for `last_tokens` `(batch, 1)` u32, appending to the self-attention
    /// cache. Returns next-token logits `(batch, vocab)` in f32.
    fn decode_step(&self, last_tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor>;
}

/// Build the architecture named by `config.json`'s `model_type` from its weights.
pub fn from_config(
    config: &serde_json::Value,
    vb: candle_nn::VarBuilder,
) -> crate::Result<Box<dyn Seq2Seq>> {
    let invalid = |source| crate::Error::ModelConfig { source };
    match config.get("model_type").and_then(|v| v.as_str()) {
        Some("t5") => {
            let config: t5::Config = serde_json::from_value(config.clone()).map_err(invalid)?;
            Ok(Box::new(t5::T5::new(&config, vb)?))
        }
        other => Err(crate::Error::UnsupportedArchitecture(
            other.unwrap_or("<missing model_type>").to_string(),
        )),
    }
}
