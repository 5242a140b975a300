//! Seq2seq architectures behind one trait, so generation never knows which model it drives.
//!
//! Every model is pure tensor math: no files, no hub, no printing. The decoder cache is an
//! explicit value ([`DecoderState`]) that generation owns and can reorder for beam search.

mod activation;
mod attention;
pub mod bart;
mod bart_common;
pub mod cache;
mod feed_forward;
mod kernels;
mod linear;
mod overflow;
pub mod pegasus;
mod residual;
pub mod t5;
mod tied;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::de::DeserializeOwned;

pub use cache::{DecoderState, LayerCache};
pub(crate) use kernels::awake::with_workers_awake;
pub use kernels::path::{KERNELS_ENV, KernelPath, cpu_kernels};

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

    /// Replaces the weights of every projection (attention, feed-forward, output head) by
    /// their `quantization`; embeddings and norms stay as they are. Returns how many
    /// projections were quantized and how many stayed dense (not float32 on the CPU).
    fn quantize(&mut self, quantization: Quantization) -> Result<(usize, usize)>;
}

/// Weight quantization for CPU inference (`--quantize`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// int8 weights with one scale per output feature (CTranslate2's int8): a quarter of
    /// float32's memory traffic. Each input row is quantized the same way inside each product,
    /// which then runs on integer dot products (`models::kernels::int8`).
    Q8,
    /// bfloat16 weights, with each product's inputs rounded to bfloat16 and its sums in
    /// float32 (`--dtype bf16` on the CPU, which is how it is asked for): half float32's
    /// memory traffic, and Intel's AMX tiles where the CPU has them (`models::kernels::bf16`).
    Bf16,
}

impl std::str::FromStr for Quantization {
    type Err = crate::Error;

    fn from_str(name: &str) -> crate::Result<Self> {
        match name.to_ascii_lowercase().as_str() {
            "q8" | "q8_0" | "int8" => Ok(Quantization::Q8),
            _ => Err(crate::Error::InvalidOption {
                option: "quantize",
                value: name.to_string(),
                expected: "q8 (the only quantization `--quantize` takes; for bfloat16 weights \
                           on the CPU, use --dtype bf16)"
                    .into(),
            }),
        }
    }
}

impl Quantization {
    /// The name `--quantize` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Quantization::Q8 => "q8",
            Quantization::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Quantization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Checks that a model loaded in `dtype` on `device` can be quantized: the quantized kernels
/// run on the CPU with float32 activations.
pub fn check_quantizable(
    device: &candle_core::Device,
    dtype: candle_core::DType,
    quantization: Quantization,
) -> crate::Result<()> {
    if !device.is_cpu() || dtype != candle_core::DType::F32 {
        return Err(crate::Error::InvalidOption {
            option: "quantize",
            value: quantization.to_string(),
            expected: format!(
                "a float32 model on the CPU (this one is {} on {}); on a GPU load bf16 \
                 or f16 instead",
                dtype.as_str(),
                crate::device::describe(device)
            ),
        });
    }
    Ok(())
}

/// Quantizes an already loaded `model` (loaded in `dtype` on `device`) after checking that it
/// can be; returns how many projections were quantized and how many stayed dense.
/// [`from_config_with`] does the same while loading, with less memory.
pub fn quantize(
    model: &mut dyn Seq2Seq,
    device: &candle_core::Device,
    dtype: candle_core::DType,
    quantization: Quantization,
) -> crate::Result<(usize, usize)> {
    check_quantizable(device, dtype, quantization)?;
    let (quantized, dense) = model.quantize(quantization)?;
    tracing::info!("{quantization}: {quantized} projections quantized, {dense} left in float32");
    Ok((quantized, dense))
}

/// Build the model a checkpoint's `config.json` describes, by its `model_type`.
pub fn from_config(config: &serde_json::Value, vb: VarBuilder) -> crate::Result<Box<dyn Seq2Seq>> {
    from_config_with(config, vb, None)
}

/// [`from_config`], quantizing each layer's projections as soon as it is loaded, so that peak
/// memory holds one layer in float32, not the model. Refused unless `vb` loads float32 onto
/// the CPU (see [`check_quantizable`]).
pub fn from_config_with(
    config: &serde_json::Value,
    vb: VarBuilder,
    quantization: Option<Quantization>,
) -> crate::Result<Box<dyn Seq2Seq>> {
    if let Some(q) = quantization {
        check_quantizable(vb.device(), vb.dtype(), q)?;
    }
    if vb.device().is_cpu() {
        // A bad PRECIS_CPU_KERNELS is reported here, before any kernel runs.
        cpu_kernels()?;
    }
    let model_type = config.get("model_type").and_then(|t| t.as_str());
    let model: Box<dyn Seq2Seq> = match model_type {
        // mT5 is T5 v1.1 with a multilingual vocabulary: the same layers and config fields.
        Some("t5" | "mt5") => {
            let cfg = t5::Config {
                quantize: quantization,
                ..parse(config)?
            };
            Box::new(t5::T5::new(&cfg, vb)?)
        }
        Some("bart") => {
            let cfg = bart_common::Config {
                quantize: quantization,
                ..parse(config)?
            };
            Box::new(bart::model(&cfg, vb)?)
        }
        Some("pegasus") => {
            let cfg = bart_common::Config {
                quantize: quantization,
                ..parse(config)?
            };
            Box::new(pegasus::model(&cfg, vb)?)
        }
        other => {
            let name = other.unwrap_or("(no model_type)").to_string();
            return Err(crate::Error::UnsupportedArchitecture(name));
        }
    };
    Ok(model)
}

/// The config as one architecture's `Config`.
fn parse<C: DeserializeOwned>(config: &serde_json::Value) -> crate::Result<C> {
    C::deserialize(config).map_err(|source| crate::Error::ModelConfig { source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    fn zeros() -> VarBuilder<'static> {
        VarBuilder::zeros(DType::F32, &Device::Cpu)
    }

    #[test]
    fn from_config_picks_the_architecture_by_model_type() {
        let tiny = serde_json::json!({
            "vocab_size": 11, "d_model": 8, "encoder_layers": 1, "decoder_layers": 1,
            "encoder_attention_heads": 2, "decoder_attention_heads": 2,
            "encoder_ffn_dim": 16, "decoder_ffn_dim": 16, "max_position_embeddings": 4
        });
        let with_type = |model_type: &str| {
            let mut config = tiny.clone();
            config["model_type"] = model_type.into();
            config
        };
        let bart = from_config(&with_type("bart"), zeros()).unwrap();
        assert_eq!(bart.spec().pad_token_id, 1);
        let pegasus = from_config(&with_type("pegasus"), zeros()).unwrap();
        assert_eq!(pegasus.spec().pad_token_id, 0);
        assert!(matches!(
            from_config(&with_type("gpt2"), zeros()),
            Err(crate::Error::UnsupportedArchitecture(name)) if name == "gpt2"
        ));
        assert!(matches!(
            from_config(&tiny, zeros()),
            Err(crate::Error::UnsupportedArchitecture(_))
        ));
        let mut bad = with_type("bart");
        bad["d_model"] = "wide".into();
        assert!(matches!(
            from_config(&bad, zeros()),
            Err(crate::Error::ModelConfig { .. })
        ));
    }
}
