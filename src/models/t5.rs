//! T5 and T5 v1.1 / FLAN-T5 encoder-decoder.
//!
//! Mirrors Hugging Face `transformers/models/t5/modeling_t5.py` weight for weight
//! (paper: Raffel et al., "Exploring the Limits of Transfer Learning with a Unified Text-to-Text
//! Transformer", <https://arxiv.org/abs/1910.10683>).
//!
//! Unlike candle-transformers' T5 this implementation takes an encoder padding mask, keeps the
//! decoder cache outside the model so beam search can reorder it, computes cross-attention
//! keys/values once per input, and uses unidirectional relative-position buckets in the decoder.

use candle_core::{D, DType, Device, Module, Result, Tensor};
use candle_nn::{Embedding, VarBuilder};
use serde::Deserialize;

use super::activation::Activation;
use super::attention::{self, cpu_f32};
use super::cache::{DecoderState, padding_bias};
use super::feed_forward::FeedForwardRef;
use super::kernels;
use super::linear::{
    Linear, Projections, linear_no_bias, model_projections, quantize_all, quantized,
};
use super::overflow::{self, HalfClamp};
use super::tied::{TokenEmbedding, TokenMatrices, own_copy_or_shared};
use super::{DecoderSpec, Quantization, Seq2Seq};

fn default_relative_attention_max_distance() -> usize {
    128
}
fn default_layer_norm_epsilon() -> f64 {
    1e-6
}
fn default_feed_forward_proj() -> String {
    "relu".to_string()
}
fn default_true() -> bool {
    true
}
fn default_eos() -> u32 {
    1
}

/// The fields of a T5 `config.json` that the forward pass needs.
#[derive(Debug, Clone, Deserialize)]
pub struct Config {
    pub vocab_size: usize,
    pub d_model: usize,
    pub d_kv: usize,
    pub d_ff: usize,
    pub num_layers: usize,
    #[serde(default)]
    pub num_decoder_layers: Option<usize>,
    pub num_heads: usize,
    pub relative_attention_num_buckets: usize,
    #[serde(default = "default_relative_attention_max_distance")]
    pub relative_attention_max_distance: usize,
    #[serde(default = "default_layer_norm_epsilon")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_feed_forward_proj")]
    pub feed_forward_proj: String,
    /// Derived from `feed_forward_proj` by transformers, but a value saved in config.json
    /// replaces the derived one when transformers loads it (4.x and 5.x alike), so it wins here too.
    #[serde(default)]
    pub dense_act_fn: Option<String>,
    /// Same story as `dense_act_fn`: the saved value wins over `feed_forward_proj`'s prefix.
    #[serde(default)]
    pub is_gated_act: Option<bool>,
    /// Before transformers 5, T5 v1.0 configs said `true` here and v1.1 ones `false`, and the
    /// flag also decided the d_model^-0.5 rescaling of the decoder output.
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    /// Written by transformers 5 (which always ties the head in its config): whether to
    /// rescale the decoder output. Absent in older configs, where `tie_word_embeddings` decides.
    #[serde(default)]
    pub scale_decoder_outputs: Option<bool>,
    #[serde(default)]
    pub pad_token_id: u32,
    #[serde(default = "default_eos")]
    pub eos_token_id: u32,
    #[serde(default)]
    pub decoder_start_token_id: Option<u32>,
    /// Not in config.json: set by [`super::from_config_with`] to quantize while loading.
    #[serde(skip)]
    pub quantize: Option<Quantization>,
}

impl Config {
    /// `(gated, activation)` from `feed_forward_proj` ("relu", "gated-gelu", ...), unless
    /// config.json also saved `is_gated_act` / `dense_act_fn`, which then take precedence.
    fn feed_forward(&self) -> Result<(bool, Activation)> {
        let proj = self.feed_forward_proj.as_str();
        let (gated, name) = match proj.split_once('-') {
            Some(("gated", name)) => (true, name),
            Some(_) => candle_core::bail!("unsupported T5 feed_forward_proj '{proj}'"),
            None => (false, proj),
        };
        let gated = self.is_gated_act.unwrap_or(gated);
        // transformers maps "gated-gelu" to the tanh approximation for backwards compatibility.
        let derived = if proj == "gated-gelu" {
            "gelu_new"
        } else {
            name
        };
        let name = self.dense_act_fn.as_deref().unwrap_or(derived);
        let activation = Activation::parse(name).map_err(|_| {
            candle_core::Error::Msg(format!(
                "unsupported T5 activation '{name}' (feed_forward_proj '{proj}')"
            ))
        })?;
        Ok((gated, activation))
    }

    pub fn spec(&self) -> DecoderSpec {
        DecoderSpec {
            vocab_size: self.vocab_size,
            decoder_start_token_id: self.decoder_start_token_id.unwrap_or(self.pad_token_id),
            eos_token_id: self.eos_token_id,
            pad_token_id: self.pad_token_id,
        }
    }
}

/// T5's RMS norm: no mean subtraction and no bias.
#[derive(Debug, Clone)]
struct LayerNorm {
    weight: Tensor,
    eps: f32,
}

impl LayerNorm {
    fn new(size: usize, eps: f64, vb: VarBuilder) -> Result<Self> {
        let weight = vb.get(size, "weight")?;
        Ok(Self {
            weight,
            eps: eps as f32,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        if let Some(normed) = rms_norm_cpu_f32(xs, &self.weight, self.eps)? {
            return Ok(normed);
        }
        // Statistics in f32 even for half-precision weights, as transformers does.
        let dtype = xs.dtype();
        let xs32 = xs.to_dtype(DType::F32)?;
        let variance = xs32.sqr()?.mean_keepdim(D::Minus1)?;
        let inv_rms = (variance + f64::from(self.eps))?.sqrt()?.recip()?;
        let normed = xs32.broadcast_mul(&inv_rms)?;
        normed.to_dtype(dtype)?.broadcast_mul(&self.weight)
    }
}

/// The fused CPU kernel for float32 inputs; `None` elsewhere (GPU, half precision).
fn rms_norm_cpu_f32(xs: &Tensor, weight: &Tensor, eps: f32) -> Result<Option<Tensor>> {
    if !xs.device().is_cpu() || xs.dtype() != DType::F32 || weight.dtype() != DType::F32 {
        return Ok(None);
    }
    let xs = xs.contiguous()?;
    let (x_storage, x_layout) = xs.storage_and_layout();
    let (w_storage, w_layout) = weight.storage_and_layout();
    let (Some(x), Some(w)) = (cpu_f32(&x_storage, x_layout), cpu_f32(&w_storage, w_layout)) else {
        return Ok(None);
    };
    let normed = kernels::norm::rms_norm(x, w, eps);
    Ok(Some(Tensor::from_vec(normed, xs.dims(), xs.device())?))
}

#[derive(Debug, Clone)]
struct FeedForward {
    wi: Linear,
    /// Second input projection of the gated variants (v1.1 / FLAN), multiplied elementwise.
    wi_gate: Option<Linear>,
    wo: Linear,
    activation: Activation,
}

impl FeedForward {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let (gated, activation) = cfg.feed_forward()?;
        let (wi, wi_gate) = if gated {
            (
                linear_no_bias(cfg.d_model, cfg.d_ff, vb.pp("wi_0"))?,
                Some(linear_no_bias(cfg.d_model, cfg.d_ff, vb.pp("wi_1"))?),
            )
        } else {
            (linear_no_bias(cfg.d_model, cfg.d_ff, vb.pp("wi"))?, None)
        };
        let wo = linear_no_bias(cfg.d_ff, cfg.d_model, vb.pp("wo"))?;
        Ok(Self {
            wi,
            wi_gate,
            wo,
            activation,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        FeedForwardRef {
            up: &self.wi,
            gate: self.wi_gate.as_ref(),
            down: &self.wo,
            activation: self.activation,
        }
        .forward(xs)
    }
}

/// Relative position bucketing (T5 paper, section 2.1): exact buckets for small distances,
/// logarithmic ones up to `max_distance`. The encoder looks both ways, the decoder only back.
#[derive(Debug, Clone)]
struct RelativePositions {
    embedding: Embedding,
    num_buckets: usize,
    max_distance: usize,
    bidirectional: bool,
}

impl RelativePositions {
    fn bucket(&self, relative_position: i64) -> u32 {
        let mut num_buckets = self.num_buckets as i64;
        let mut bucket = 0i64;
        let distance = if self.bidirectional {
            num_buckets /= 2;
            if relative_position > 0 {
                bucket += num_buckets;
            }
            relative_position.abs()
        } else {
            (-relative_position).max(0)
        };
        let max_exact = num_buckets / 2;
        if distance < max_exact {
            bucket += distance;
        } else {
            // Same f32 operation order as transformers so boundary distances land in the same bucket.
            // (the log of the constant ratio is taken in f64, as Python's math.log does).
            let scale = (self.max_distance as f64 / max_exact as f64).ln() as f32;
            let ratio = (distance as f32 / max_exact as f32).ln() / scale;
            let large = max_exact + (ratio * (num_buckets - max_exact) as f32) as i64;
            bucket += large.min(num_buckets - 1);
        }
        bucket as u32
    }

    /// Bias `(1, heads, queries, keys)` for query positions `queries` against keys `0..keys`.
    ///
    /// The bias depends only on `key - query`: each distance's bucket and embedding is looked
    /// up once (2 × 512 distances for a 512-token input, not 512²), and one gather lays the
    /// values out head-major, with no transpose after: the bias comes out contiguous, laid out
    /// once for the attention kernels of every layer.
    fn bias(
        &self,
        queries: std::ops::Range<usize>,
        keys: usize,
        device: &Device,
    ) -> Result<Tensor> {
        let q_len = queries.len();
        // Distances from `keys - 1 - first query` down to `0 - last query`, as signed offsets
        // from the lowest: distance `d` is entry `d + lowest`.
        let lowest = queries.end.saturating_sub(1) as i64;
        let highest = keys as i64 - 1 - queries.start as i64;
        let distances: Vec<u32> = (-lowest..=highest.max(-lowest))
            .map(|distance| self.bucket(distance))
            .collect();
        let table = self
            .embedding
            .forward(&Tensor::new(distances.as_slice(), device)?)?
            .t()?
            .contiguous()?; // (heads, distances)
        let entries: Vec<u32> = queries
            .flat_map(|q| (0..keys).map(move |k| (k as i64 - q as i64 + lowest) as u32))
            .collect();
        let entries = Tensor::from_vec(entries, q_len * keys, device)?;
        let heads = table.dim(0)?;
        table
            .index_select(&entries, 1)?
            .reshape((1, heads, q_len, keys))
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    num_heads: usize,
    d_kv: usize,
}

impl Attention {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let inner = cfg.num_heads * cfg.d_kv;
        Ok(Self {
            q: linear_no_bias(cfg.d_model, inner, vb.pp("q"))?,
            k: linear_no_bias(cfg.d_model, inner, vb.pp("k"))?,
            v: linear_no_bias(cfg.d_model, inner, vb.pp("v"))?,
            o: linear_no_bias(inner, cfg.d_model, vb.pp("o"))?,
            num_heads: cfg.num_heads,
            d_kv: cfg.d_kv,
        })
    }

    /// `(batch, seq, d_model)` -> `(batch, heads, seq, d_kv)`.
    fn split_heads(&self, xs: &Tensor) -> Result<Tensor> {
        attention::split_heads(xs, self.num_heads, self.d_kv)
    }

    fn project_kv(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split_heads(&self.k.forward(xs)?)?,
            self.split_heads(&self.v.forward(xs)?)?,
        ))
    }

    /// Scale-free dot-product attention (T5 folds the scale into its initialisation) with
    /// additive `biases` broadcastable to `(batch, heads, queries, keys)`.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, biases: &[&Tensor]) -> Result<Tensor> {
        let products = attention::products_of(&self.o);
        self.o
            .forward(&attention::attend(q, k, v, biases, products)?)
    }
}

#[derive(Debug, Clone)]
struct EncoderBlock {
    attention: Attention,
    attention_norm: LayerNorm,
    feed_forward: FeedForward,
    feed_forward_norm: LayerNorm,
}

impl EncoderBlock {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let eps = cfg.layer_norm_epsilon;
        Ok(Self {
            attention: Attention::new(cfg, vb.pp("layer.0.SelfAttention"))?,
            attention_norm: LayerNorm::new(cfg.d_model, eps, vb.pp("layer.0.layer_norm"))?,
            feed_forward: FeedForward::new(cfg, vb.pp("layer.1.DenseReluDense"))?,
            feed_forward_norm: LayerNorm::new(cfg.d_model, eps, vb.pp("layer.1.layer_norm"))?,
        })
    }

    /// `biases`: the relative positions and the padding, summed inside the attention.
    fn forward(&self, xs: &Tensor, biases: &[&Tensor]) -> Result<Tensor> {
        let normed = self.attention_norm.forward(xs)?;
        let q = self
            .attention
            .split_heads(&self.attention.q.forward(&normed)?)?;
        let (k, v) = self.attention.project_kv(&normed)?;
        let xs = clamp_half(&(xs + self.attention.attend(&q, &k, &v, biases)?)?)?;
        let ff = self
            .feed_forward
            .forward(&self.feed_forward_norm.forward(&xs)?)?;
        clamp_half(&(xs + ff)?)
    }
}

#[derive(Debug, Clone)]
struct DecoderBlock {
    self_attention: Attention,
    self_attention_norm: LayerNorm,
    cross_attention: Attention,
    cross_attention_norm: LayerNorm,
    feed_forward: FeedForward,
    feed_forward_norm: LayerNorm,
}

impl DecoderBlock {
    fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        let eps = cfg.layer_norm_epsilon;
        Ok(Self {
            self_attention: Attention::new(cfg, vb.pp("layer.0.SelfAttention"))?,
            self_attention_norm: LayerNorm::new(cfg.d_model, eps, vb.pp("layer.0.layer_norm"))?,
            cross_attention: Attention::new(cfg, vb.pp("layer.1.EncDecAttention"))?,
            cross_attention_norm: LayerNorm::new(cfg.d_model, eps, vb.pp("layer.1.layer_norm"))?,
            feed_forward: FeedForward::new(cfg, vb.pp("layer.2.DenseReluDense"))?,
            feed_forward_norm: LayerNorm::new(cfg.d_model, eps, vb.pp("layer.2.layer_norm"))?,
        })
    }

    fn forward(
        &self,
        xs: &Tensor,
        self_bias: &Tensor,
        layer: usize,
        state: &mut DecoderState,
    ) -> Result<Tensor> {
        let attn = &self.self_attention;
        let normed = self.self_attention_norm.forward(xs)?;
        let q = attn.split_heads(&attn.q.forward(&normed)?)?;
        let step_heads = |xs: &Tensor| attention::step_heads(xs, attn.num_heads, attn.d_kv);
        let k_new = step_heads(&attn.k.forward(&normed)?)?;
        let v_new = step_heads(&attn.v.forward(&normed)?)?;
        state.append_self_kv(layer, &k_new, &v_new)?;
        let context = attention::attend_cached(&q, state.self_kv(layer)?, Some(self_bias))?;
        let xs = clamp_half(&(xs + attn.o.forward(&context)?)?)?;

        let cross = &self.cross_attention;
        let normed = self.cross_attention_norm.forward(&xs)?;
        let q = cross.split_heads(&cross.q.forward(&normed)?)?;
        let (k, v) = &state.layers[layer].cross_kv;
        let xs = clamp_half(&(xs + cross.attend(&q, k, v, &[&state.encoder_bias])?)?)?;

        let ff = self
            .feed_forward
            .forward(&self.feed_forward_norm.forward(&xs)?)?;
        clamp_half(&(xs + ff)?)
    }
}

/// T5 overflows float16 in its feed-forward outputs; transformers clamps hidden states after
/// each sub-layer, to 1000 below float16's largest value once any is infinite (else to the
/// largest value, which changes nothing finite), and so do we.
fn clamp_half(xs: &Tensor) -> Result<Tensor> {
    overflow::clamp_half(xs, HalfClamp::WhenInfinite)
}

/// A T5 or T5 v1.1 / FLAN-T5 checkpoint.
#[derive(Debug, Clone)]
pub struct T5 {
    encoder_embedding: TokenEmbedding,
    decoder_embedding: TokenEmbedding,
    encoder_blocks: Vec<EncoderBlock>,
    encoder_positions: RelativePositions,
    encoder_norm: LayerNorm,
    decoder_blocks: Vec<DecoderBlock>,
    decoder_positions: RelativePositions,
    decoder_norm: LayerNorm,
    lm_head: Linear,
    /// Tied checkpoints rescale the decoder output by d_model^-0.5 before the shared head.
    head_scale: Option<f64>,
    spec: DecoderSpec,
    device: Device,
}

fn relative_positions(
    cfg: &Config,
    bidirectional: bool,
    vb: VarBuilder,
) -> Result<RelativePositions> {
    let embedding = candle_nn::embedding(cfg.relative_attention_num_buckets, cfg.num_heads, vb)?;
    Ok(RelativePositions {
        embedding,
        num_buckets: cfg.relative_attention_num_buckets,
        max_distance: cfg.relative_attention_max_distance,
        bidirectional,
    })
}

impl T5 {
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        // Checkpoints store the shared embedding under "shared" or only as the encoder's copy.
        let shared_name = ["shared", "encoder.embed_tokens", "decoder.embed_tokens"]
            .into_iter()
            .find(|name| vb.contains_tensor(&format!("{name}.weight")))
            .unwrap_or("shared");
        let shared = vb.get(
            (cfg.vocab_size, cfg.d_model),
            &format!("{shared_name}.weight"),
        )?;
        let mut tokens = TokenMatrices::default();
        let mut stack_embedding = |name: &str| -> Result<TokenEmbedding> {
            tokens.embedding(own_copy_or_shared(&vb, name, &shared)?)
        };
        let encoder_embedding = stack_embedding("encoder.embed_tokens.weight")?;
        let decoder_embedding = stack_embedding("decoder.embed_tokens.weight")?;
        // A separate head in the weights wins; without one the head is the shared embedding
        // (transformers 5 ties it whenever the file has no `lm_head.weight`). Built before the
        // layers so that the plain shared matrix is gone (only its packed copy is kept) while
        // they load.
        let head = own_copy_or_shared(&vb, "lm_head.weight", &shared)?;
        drop(shared);
        let lm_head = quantized(tokens.head(head)?, cfg.quantize)?;
        drop(tokens);

        let enc = vb.pp("encoder");
        let encoder_blocks = (0..cfg.num_layers)
            .map(|i| {
                quantized(
                    EncoderBlock::new(cfg, enc.pp(format!("block.{i}")))?,
                    cfg.quantize,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let encoder_positions = relative_positions(
            cfg,
            true,
            enc.pp("block.0.layer.0.SelfAttention.relative_attention_bias"),
        )?;
        let encoder_norm = LayerNorm::new(
            cfg.d_model,
            cfg.layer_norm_epsilon,
            enc.pp("final_layer_norm"),
        )?;

        let dec = vb.pp("decoder");
        let decoder_layers = cfg.num_decoder_layers.unwrap_or(cfg.num_layers);
        let decoder_blocks = (0..decoder_layers)
            .map(|i| {
                quantized(
                    DecoderBlock::new(cfg, dec.pp(format!("block.{i}")))?,
                    cfg.quantize,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let decoder_positions = relative_positions(
            cfg,
            false,
            dec.pp("block.0.layer.0.SelfAttention.relative_attention_bias"),
        )?;
        let decoder_norm = LayerNorm::new(
            cfg.d_model,
            cfg.layer_norm_epsilon,
            dec.pp("final_layer_norm"),
        )?;

        let scale = cfg.scale_decoder_outputs.unwrap_or(cfg.tie_word_embeddings);
        let head_scale = scale.then(|| (cfg.d_model as f64).powf(-0.5));

        Ok(Self {
            encoder_embedding,
            decoder_embedding,
            encoder_blocks,
            encoder_positions,
            encoder_norm,
            decoder_blocks,
            decoder_positions,
            decoder_norm,
            lm_head,
            head_scale,
            spec: cfg.spec(),
            device: vb.device().clone(),
        })
    }
}

impl Projections for Attention {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        [&mut self.q, &mut self.k, &mut self.v, &mut self.o].into_iter()
    }
}

impl Projections for FeedForward {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        [&mut self.wi, &mut self.wo]
            .into_iter()
            .chain(self.wi_gate.as_mut())
    }
}

impl Projections for EncoderBlock {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.attention
            .projections_mut()
            .chain(self.feed_forward.projections_mut())
    }
}

impl Projections for DecoderBlock {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.self_attention
            .projections_mut()
            .chain(self.cross_attention.projections_mut())
            .chain(self.feed_forward.projections_mut())
    }
}

impl Seq2Seq for T5 {
    fn spec(&self) -> &DecoderSpec {
        &self.spec
    }

    fn quantize(&mut self, quantization: Quantization) -> Result<(usize, usize)> {
        let projections = model_projections(
            &mut self.encoder_blocks,
            &mut self.decoder_blocks,
            &mut self.lm_head,
        );
        quantize_all(projections, quantization)
    }

    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let (_, seq) = input_ids.dims2()?;
        let mut xs = self.encoder_embedding.forward(input_ids)?;
        // Kept apart, not summed into a (batch, heads, seq, seq) tensor: the attention adds
        // both as it goes.
        let positions = self
            .encoder_positions
            .bias(0..seq, seq, &self.device)?
            .to_dtype(xs.dtype())?;
        let padding = padding_bias(attention_mask, xs.dtype())?;
        for block in &self.encoder_blocks {
            xs = block.forward(&xs, &[&positions, &padding])?;
        }
        self.encoder_norm.forward(&xs)
    }

    fn start_decoding(
        &self,
        encoder_hidden: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<DecoderState> {
        DecoderState::start(
            &self.decoder_blocks,
            encoder_hidden,
            attention_mask,
            |block, hidden| block.cross_attention.project_kv(hidden),
        )
    }

    fn decode_step(&self, last_tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        let position = state.position;
        state.begin_step()?;
        let mut xs = self.decoder_embedding.forward(last_tokens)?;
        let self_bias = self
            .decoder_positions
            .bias(position..position + 1, position + 1, &self.device)?
            .to_dtype(xs.dtype())?;
        // Relative positions need no per-row shift for rows that joined the batch late: their
        // distances to their own keys are the same in any slot. Only the slots before them
        // must be hidden.
        let self_bias = match state.self_attention_bias()? {
            Some(hidden) => self_bias.broadcast_add(&hidden)?.contiguous()?,
            None => self_bias,
        };
        for (layer, block) in self.decoder_blocks.iter().enumerate() {
            xs = block.forward(&xs, &self_bias, layer, state)?;
        }
        state.end_step();
        let mut xs = self.decoder_norm.forward(&xs)?;
        if let Some(scale) = self.head_scale {
            xs = (xs * scale)?;
        }
        self.lm_head.forward(&xs)?.squeeze(1)?.to_dtype(DType::F32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn positions(bidirectional: bool) -> RelativePositions {
        let embedding =
            Embedding::new(Tensor::zeros((32, 1), DType::F32, &Device::Cpu).unwrap(), 1);
        RelativePositions {
            embedding,
            num_buckets: 32,
            max_distance: 128,
            bidirectional,
        }
    }

    #[test]
    fn decoder_buckets_ignore_the_future() {
        let p = positions(false);
        assert_eq!(p.bucket(0), 0);
        assert_eq!(p.bucket(-3), 3);
        // Keys after the query all share bucket 0 in the causal decoder.
        assert_eq!(p.bucket(5), 0);
        // Far distances saturate in the last bucket.
        assert_eq!(p.bucket(-1000), 31);
    }

    #[test]
    fn encoder_buckets_split_directions() {
        let p = positions(true);
        assert_eq!(p.bucket(0), 0);
        assert_eq!(p.bucket(-3), 3);
        assert_eq!(p.bucket(3), 16 + 3);
        assert_eq!(p.bucket(-1000), 15);
        assert_eq!(p.bucket(1000), 31);
    }

    #[test]
    fn feed_forward_variants_parse() {
        let mut cfg: Config = serde_json::from_value(serde_json::json!({
            "vocab_size": 8, "d_model": 4, "d_kv": 2, "d_ff": 8, "num_layers": 1,
            "num_heads": 2, "relative_attention_num_buckets": 8
        }))
        .unwrap();
        assert_eq!(cfg.feed_forward().unwrap(), (false, Activation::Relu));
        cfg.feed_forward_proj = "gated-gelu".into();
        assert_eq!(cfg.feed_forward().unwrap(), (true, Activation::GeluTanh));
        cfg.feed_forward_proj = "gelu".into();
        assert_eq!(cfg.feed_forward().unwrap(), (false, Activation::GeluErf));
        cfg.feed_forward_proj = "fancy-gelu".into();
        assert!(cfg.feed_forward().is_err());
    }

    #[test]
    fn saved_dense_act_fn_and_is_gated_act_override_feed_forward_proj() {
        // What transformers does when config.json carries both (its config class derives the
        // two fields, then sets every saved key on top).
        let cfg: Config = serde_json::from_value(serde_json::json!({
            "vocab_size": 8, "d_model": 4, "d_kv": 2, "d_ff": 8, "num_layers": 1,
            "num_heads": 2, "relative_attention_num_buckets": 8,
            "feed_forward_proj": "gated-silu", "dense_act_fn": "gelu_new"
        }))
        .unwrap();
        assert_eq!(cfg.feed_forward().unwrap(), (true, Activation::GeluTanh));
        let cfg: Config = serde_json::from_value(serde_json::json!({
            "vocab_size": 8, "d_model": 4, "d_kv": 2, "d_ff": 8, "num_layers": 1,
            "num_heads": 2, "relative_attention_num_buckets": 8,
            "feed_forward_proj": "gated-gelu", "is_gated_act": false
        }))
        .unwrap();
        assert_eq!(cfg.feed_forward().unwrap(), (false, Activation::GeluTanh));
    }
}
