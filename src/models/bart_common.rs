//! The encoder-decoder that BART, DistilBART and Pegasus share.
//!
//! transformers keeps one modeling file per model, but Pegasus' layers are marked "Copied from"
//! BART/mBART: the same attention (biased projections, queries scaled by `head_dim^-0.5`), the
//! same two-layer feed-forward and the same weight names. What differs is data, not code: where
//! the layer norms sit (after each sub-layer in BART, before it in Pegasus), whether the
//! embeddings and stacks get an extra norm, and how positions are embedded. Those choices are a
//! [`Layout`] and a [`PositionTable`] that `bart.rs` and `pegasus.rs` build from their configs.

use super::activation::Activation;
use super::attention;
use super::feed_forward::FeedForwardRef;
use candle_core::{DType, Module, Result, Tensor};
use candle_nn::{LayerNorm, VarBuilder};

use super::linear::{Linear, Projections, linear, model_projections, quantize_all, quantized};
use super::tied::{TokenEmbedding, TokenMatrices, own_copy_or_shared};
use serde::Deserialize;

use super::cache::{DecoderState, padding_bias};
pub(crate) use super::overflow::HalfClamp;
use super::overflow::clamp_half;
use super::residual::residual;
use super::{DecoderSpec, Quantization, Seq2Seq};

/// transformers builds every norm here as `nn.LayerNorm(d_model)`, whose eps is fixed at 1e-5
/// (the configs have no eps field).
const LAYER_NORM_EPS: f64 = 1e-5;

/// The fields of a BART or Pegasus `config.json` that the forward pass needs. Both configs have
/// the same fields and defaults except the special token ids, which each model fills in.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    pub vocab_size: usize,
    pub max_position_embeddings: usize,
    pub d_model: usize,
    pub encoder_layers: usize,
    pub decoder_layers: usize,
    pub encoder_attention_heads: usize,
    pub decoder_attention_heads: usize,
    pub encoder_ffn_dim: usize,
    pub decoder_ffn_dim: usize,
    pub activation_function: String,
    pub scale_embedding: bool,
    pub tie_word_embeddings: bool,
    pub pad_token_id: Option<u32>,
    pub eos_token_id: Option<u32>,
    pub decoder_start_token_id: Option<u32>,
    /// Not in config.json: set by [`super::from_config_with`] to quantize while loading.
    #[serde(skip)]
    pub quantize: Option<Quantization>,
}

/// transformers' `BartConfig` / `PegasusConfig` class defaults (facebook/bart-large's shape).
impl Default for Config {
    fn default() -> Self {
        Self {
            vocab_size: 50265,
            max_position_embeddings: 1024,
            d_model: 1024,
            encoder_layers: 12,
            decoder_layers: 12,
            encoder_attention_heads: 16,
            decoder_attention_heads: 16,
            encoder_ffn_dim: 4096,
            decoder_ffn_dim: 4096,
            activation_function: "gelu".to_string(),
            scale_embedding: false,
            tie_word_embeddings: true,
            pad_token_id: None,
            eos_token_id: None,
            decoder_start_token_id: None,
            quantize: None,
        }
    }
}

/// Special token ids a model uses when its config leaves them out (or sets them to null).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenDefaults {
    pub pad: u32,
    pub eos: u32,
    pub decoder_start: u32,
}

impl Config {
    pub(crate) fn spec_with(&self, defaults: TokenDefaults) -> DecoderSpec {
        DecoderSpec {
            vocab_size: self.vocab_size,
            decoder_start_token_id: self
                .decoder_start_token_id
                .unwrap_or(defaults.decoder_start),
            eos_token_id: self.eos_token_id.unwrap_or(defaults.eos),
            pad_token_id: self.pad_token_id.unwrap_or(defaults.pad),
        }
    }

    /// Reject shapes the attention cannot split, before any weight is read.
    pub(crate) fn validate(&self) -> Result<()> {
        for (name, heads) in [
            ("encoder_attention_heads", self.encoder_attention_heads),
            ("decoder_attention_heads", self.decoder_attention_heads),
        ] {
            if heads == 0 || !self.d_model.is_multiple_of(heads) {
                candle_core::bail!(
                    "d_model {} is not divisible by {name} {heads}",
                    self.d_model
                );
            }
        }
        Activation::parse(&self.activation_function)?;
        Ok(())
    }

    /// `sqrt(d_model)` when `scale_embedding` is set, else 1.
    pub(crate) fn embed_scale(&self) -> f64 {
        if self.scale_embedding {
            (self.d_model as f64).sqrt()
        } else {
            1.0
        }
    }
}

/// Where each sub-layer's norm sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NormPlacement {
    /// BART: `norm(x + sublayer(x))`.
    Post,
    /// Pegasus (and mBART): `x + sublayer(norm(x))`.
    Pre,
}

/// The architecture choices that separate BART from Pegasus.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Layout {
    pub norm: NormPlacement,
    /// A norm right after embedding tokens plus positions (BART's `layernorm_embedding`).
    pub embedding_norm: bool,
    /// A norm after the last layer of each stack (Pegasus' `encoder.layer_norm`).
    pub final_norm: bool,
    pub half_clamp: HalfClamp,
}

/// Position embeddings as a table whose row `position + offset` embeds `position`.
#[derive(Debug, Clone)]
pub(crate) struct PositionTable {
    table: Tensor,
    offset: usize,
}

impl PositionTable {
    pub(crate) fn new(table: Tensor, offset: usize) -> Self {
        Self { table, offset }
    }

    /// Embeddings `(len, d_model)` of positions `start..start + len`.
    pub(crate) fn rows(&self, start: usize, len: usize) -> Result<Tensor> {
        let available = self.table.dim(0)?.saturating_sub(self.offset);
        if start + len > available {
            candle_core::bail!(
                "position {} is past max_position_embeddings ({available})",
                start + len - 1
            );
        }
        self.table.narrow(0, start + self.offset, len)
    }

    /// Embeddings `(positions.len(), d_model)` of each of `positions`, for decoder rows that
    /// joined a running batch at different steps and so sit at different positions.
    pub(crate) fn rows_at(&self, positions: &[u32]) -> Result<Tensor> {
        let available = self.table.dim(0)?.saturating_sub(self.offset);
        if let Some(&past) = positions.iter().find(|&&p| p as usize >= available) {
            candle_core::bail!("position {past} is past max_position_embeddings ({available})");
        }
        let index: Vec<u32> = positions.iter().map(|&p| p + self.offset as u32).collect();
        let index = Tensor::from_vec(index, positions.len(), self.table.device())?;
        self.table.index_select(&index, 0)
    }
}

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    num_heads: usize,
    head_dim: usize,
    scaling: f64,
}

impl Attention {
    fn new(d_model: usize, num_heads: usize, vb: VarBuilder) -> Result<Self> {
        let head_dim = d_model / num_heads;
        Ok(Self {
            q_proj: linear(d_model, d_model, vb.pp("q_proj"))?,
            k_proj: linear(d_model, d_model, vb.pp("k_proj"))?,
            v_proj: linear(d_model, d_model, vb.pp("v_proj"))?,
            out_proj: linear(d_model, d_model, vb.pp("out_proj"))?,
            num_heads,
            head_dim,
            scaling: (head_dim as f64).powf(-0.5),
        })
    }

    /// `(batch, seq, d_model)` -> `(batch, heads, seq, head_dim)`.
    fn split_heads(&self, xs: &Tensor) -> Result<Tensor> {
        attention::split_heads(xs, self.num_heads, self.head_dim)
    }

    fn project_q(&self, xs: &Tensor) -> Result<Tensor> {
        self.split_heads(&self.q_proj.forward(xs)?)
    }

    fn project_kv(&self, xs: &Tensor) -> Result<(Tensor, Tensor)> {
        Ok((
            self.split_heads(&self.k_proj.forward(xs)?)?,
            self.split_heads(&self.v_proj.forward(xs)?)?,
        ))
    }

    /// Self-attention of one decoder step: writes the step's keys/values into the layer's cache,
    /// then attends over everything cached that `bias` does not hide.
    fn attend_step(
        &self,
        h: &Tensor,
        layer: usize,
        state: &mut DecoderState,
        bias: Option<&Tensor>,
    ) -> Result<Tensor> {
        let step_heads = |xs: &Tensor| attention::step_heads(xs, self.num_heads, self.head_dim);
        let k = step_heads(&self.k_proj.forward(h)?)?;
        let v = step_heads(&self.v_proj.forward(h)?)?;
        state.append_self_kv(layer, &k, &v)?;
        let q = (self.project_q(h)? * self.scaling)?;
        let context = attention::attend_cached(&q, state.self_kv(layer)?, bias)?;
        self.out_proj.forward(&context)
    }

    /// Softmax attention with an optional additive `bias` broadcastable to
    /// `(batch, heads, queries, keys)`.
    fn attend(&self, q: &Tensor, k: &Tensor, v: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        // transformers passes `scale=head_dim^-0.5` to the attention kernel; scaling the queries
        // first is the same product up to float rounding (~1e-7).
        let products = attention::products_of(&self.out_proj);
        let context = attention::attend(&(q * self.scaling)?, k, v, bias.as_slice(), products)?;
        self.out_proj.forward(&context)
    }
}

#[derive(Debug, Clone)]
struct FeedForward {
    fc1: Linear,
    fc2: Linear,
    activation: Activation,
}

impl FeedForward {
    fn new(
        d_model: usize,
        ffn_dim: usize,
        activation: Activation,
        vb: &VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            fc1: linear(d_model, ffn_dim, vb.pp("fc1"))?,
            fc2: linear(ffn_dim, d_model, vb.pp("fc2"))?,
            activation,
        })
    }

    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        FeedForwardRef {
            up: &self.fc1,
            gate: None,
            down: &self.fc2,
            activation: self.activation,
        }
        .forward(xs)
    }
}

fn layer_norm(d_model: usize, vb: VarBuilder) -> Result<LayerNorm> {
    candle_nn::layer_norm(d_model, LAYER_NORM_EPS, vb)
}

#[derive(Debug, Clone)]
struct EncoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
    layout: Layout,
}

impl EncoderLayer {
    fn new(cfg: &Config, layout: Layout, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let activation = Activation::parse(&cfg.activation_function)?;
        Ok(Self {
            self_attn: Attention::new(d, cfg.encoder_attention_heads, vb.pp("self_attn"))?,
            self_attn_layer_norm: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            feed_forward: FeedForward::new(d, cfg.encoder_ffn_dim, activation, &vb)?,
            final_layer_norm: layer_norm(d, vb.pp("final_layer_norm"))?,
            layout,
        })
    }

    fn forward(&self, xs: &Tensor, bias: &Tensor) -> Result<Tensor> {
        let attn = &self.self_attn;
        let placement = self.layout.norm;
        let xs = residual(xs, &self.self_attn_layer_norm, placement, |h| {
            let (k, v) = attn.project_kv(h)?;
            attn.attend(&attn.project_q(h)?, &k, &v, Some(bias))
        })?;
        let xs = residual(&xs, &self.final_layer_norm, placement, |h| {
            self.feed_forward.forward(h)
        })?;
        clamp_half(&xs, self.layout.half_clamp)
    }
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    self_attn: Attention,
    self_attn_layer_norm: LayerNorm,
    encoder_attn: Attention,
    encoder_attn_layer_norm: LayerNorm,
    feed_forward: FeedForward,
    final_layer_norm: LayerNorm,
    placement: NormPlacement,
}

impl DecoderLayer {
    fn new(cfg: &Config, placement: NormPlacement, vb: VarBuilder) -> Result<Self> {
        let d = cfg.d_model;
        let heads = cfg.decoder_attention_heads;
        let activation = Activation::parse(&cfg.activation_function)?;
        Ok(Self {
            self_attn: Attention::new(d, heads, vb.pp("self_attn"))?,
            self_attn_layer_norm: layer_norm(d, vb.pp("self_attn_layer_norm"))?,
            encoder_attn: Attention::new(d, heads, vb.pp("encoder_attn"))?,
            encoder_attn_layer_norm: layer_norm(d, vb.pp("encoder_attn_layer_norm"))?,
            feed_forward: FeedForward::new(d, cfg.decoder_ffn_dim, activation, &vb)?,
            final_layer_norm: layer_norm(d, vb.pp("final_layer_norm"))?,
            placement,
        })
    }

    /// One new token per row: it may see every cached token, so no causal mask is needed.
    /// `self_bias` hides cached slots from rows that joined the batch after them.
    fn forward(
        &self,
        xs: &Tensor,
        layer: usize,
        state: &mut DecoderState,
        self_bias: Option<&Tensor>,
    ) -> Result<Tensor> {
        let attn = &self.self_attn;
        let xs = residual(xs, &self.self_attn_layer_norm, self.placement, |h| {
            attn.attend_step(h, layer, state, self_bias)
        })?;
        let cross = &self.encoder_attn;
        let xs = residual(&xs, &self.encoder_attn_layer_norm, self.placement, |h| {
            let (k, v) = &state.layers[layer].cross_kv;
            cross.attend(&cross.project_q(h)?, k, v, Some(&state.encoder_bias))
        })?;
        residual(&xs, &self.final_layer_norm, self.placement, |h| {
            self.feed_forward.forward(h)
        })
    }
}

/// The token matrices of the encoder, the decoder and the output head, found under the names
/// transformers may have saved them as.
///
/// Tied checkpoints share one matrix, stored as `model.shared` or only as one of its tied
/// copies; a copy saved for a stack or the head is used when it differs, as transformers 5
/// does. Untied checkpoints must have their own head.
fn token_matrices(cfg: &Config, vb: &VarBuilder) -> Result<[Tensor; 3]> {
    const SHARED: &str = "model.shared.weight";
    const ENCODER: &str = "model.encoder.embed_tokens.weight";
    const DECODER: &str = "model.decoder.embed_tokens.weight";
    const HEAD: &str = "lm_head.weight";
    let shape = (cfg.vocab_size, cfg.d_model);
    let shared_name = [SHARED, ENCODER, DECODER, HEAD]
        .into_iter()
        .find(|name| vb.contains_tensor(name))
        .unwrap_or(SHARED);
    let shared = vb.get(shape, shared_name)?;
    let head = if cfg.tie_word_embeddings {
        own_copy_or_shared(vb, HEAD, &shared)?
    } else {
        vb.get(shape, HEAD)?
    };
    Ok([
        own_copy_or_shared(vb, ENCODER, &shared)?,
        own_copy_or_shared(vb, DECODER, &shared)?,
        head,
    ])
}

/// `final_logits_bias` as `(vocab,)`: a buffer of zeros that some checkpoints do not save, in
/// which case transformers keeps the zeros.
fn logits_bias(cfg: &Config, vb: &VarBuilder) -> Result<Tensor> {
    if vb.contains_tensor("final_logits_bias") {
        vb.get((1, cfg.vocab_size), "final_logits_bias")?
            .reshape(cfg.vocab_size)
    } else {
        Tensor::zeros(cfg.vocab_size, vb.dtype(), vb.device())
    }
}

/// Position tables of both stacks.
pub(crate) struct Positions {
    pub encoder: PositionTable,
    pub decoder: PositionTable,
}

/// Turns token ids into a stack's input: scaled token embeddings plus positions, then the
/// embedding norm if the layout has one.
#[derive(Debug, Clone)]
struct Embedder {
    tokens: TokenEmbedding,
    scale: f64,
    positions: PositionTable,
    norm: Option<LayerNorm>,
}

impl Embedder {
    /// `ids` `(batch, seq)` at positions `start..start + seq`.
    fn forward(&self, ids: &Tensor, start: usize) -> Result<Tensor> {
        let (_, seq) = ids.dims2()?;
        let tokens = (self.tokens.forward(ids)? * self.scale)?;
        apply_norm(
            tokens.broadcast_add(&self.positions.rows(start, seq)?)?,
            self.norm.as_ref(),
        )
    }

    /// One token per row, `ids` `(rows, 1)`, each row at its own position.
    fn forward_at(&self, ids: &Tensor, positions: &[u32]) -> Result<Tensor> {
        let tokens = (self.tokens.forward(ids)? * self.scale)?;
        let positions = self.positions.rows_at(positions)?.unsqueeze(1)?;
        apply_norm((tokens + positions)?, self.norm.as_ref())
    }
}

fn apply_norm(xs: Tensor, norm: Option<&LayerNorm>) -> Result<Tensor> {
    match norm {
        Some(norm) => norm.forward(&xs),
        None => Ok(xs),
    }
}

/// A BART-family encoder-decoder with a language-modelling head.
#[derive(Debug, Clone)]
pub(crate) struct EncoderDecoder {
    encoder_embedder: Embedder,
    encoder_layers: Vec<EncoderLayer>,
    encoder_norm: Option<LayerNorm>,
    decoder_embedder: Embedder,
    decoder_layers: Vec<DecoderLayer>,
    decoder_norm: Option<LayerNorm>,
    lm_head: Linear,
    logits_bias: Tensor,
    spec: DecoderSpec,
}

/// A norm the layout may or may not have.
fn optional_norm(present: bool, d_model: usize, vb: VarBuilder) -> Result<Option<LayerNorm>> {
    present.then(|| layer_norm(d_model, vb)).transpose()
}

impl EncoderDecoder {
    /// `vb` is the checkpoint's root (holding `model.*`, `lm_head.weight`, `final_logits_bias`).
    pub(crate) fn new(
        cfg: &Config,
        layout: Layout,
        positions: Positions,
        spec: DecoderSpec,
        vb: VarBuilder,
    ) -> Result<Self> {
        cfg.validate()?;
        let d = cfg.d_model;
        let [encoder_tokens, decoder_tokens, head] = token_matrices(cfg, &vb)?;
        let mut tokens = TokenMatrices::default();
        let encoder_tokens = tokens.embedding(encoder_tokens)?;
        let decoder_tokens = tokens.embedding(decoder_tokens)?;
        let lm_head = quantized(tokens.head(head)?, cfg.quantize)?;
        drop(tokens);
        let (enc, dec) = (vb.pp("model.encoder"), vb.pp("model.decoder"));
        let embedder = |tokens: TokenEmbedding, positions: PositionTable, vb: &VarBuilder| {
            Ok::<_, candle_core::Error>(Embedder {
                tokens,
                scale: cfg.embed_scale(),
                positions,
                norm: optional_norm(layout.embedding_norm, d, vb.pp("layernorm_embedding"))?,
            })
        };
        Ok(Self {
            encoder_embedder: embedder(encoder_tokens, positions.encoder, &enc)?,
            encoder_layers: (0..cfg.encoder_layers)
                .map(|i| {
                    let layer = EncoderLayer::new(cfg, layout, enc.pp(format!("layers.{i}")))?;
                    quantized(layer, cfg.quantize)
                })
                .collect::<Result<_>>()?,
            encoder_norm: optional_norm(layout.final_norm, d, enc.pp("layer_norm"))?,
            decoder_embedder: embedder(decoder_tokens, positions.decoder, &dec)?,
            decoder_layers: (0..cfg.decoder_layers)
                .map(|i| {
                    let layer = DecoderLayer::new(cfg, layout.norm, dec.pp(format!("layers.{i}")))?;
                    quantized(layer, cfg.quantize)
                })
                .collect::<Result<_>>()?,
            decoder_norm: optional_norm(layout.final_norm, d, dec.pp("layer_norm"))?,
            lm_head,
            logits_bias: logits_bias(cfg, &vb)?,
            spec,
        })
    }
}

impl Projections for Attention {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        [
            &mut self.q_proj,
            &mut self.k_proj,
            &mut self.v_proj,
            &mut self.out_proj,
        ]
        .into_iter()
    }
}

impl Projections for FeedForward {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        [&mut self.fc1, &mut self.fc2].into_iter()
    }
}

impl Projections for EncoderLayer {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.self_attn
            .projections_mut()
            .chain(self.feed_forward.projections_mut())
    }
}

impl Projections for DecoderLayer {
    fn projections_mut(&mut self) -> impl Iterator<Item = &mut Linear> {
        self.self_attn
            .projections_mut()
            .chain(self.encoder_attn.projections_mut())
            .chain(self.feed_forward.projections_mut())
    }
}

impl Seq2Seq for EncoderDecoder {
    fn spec(&self) -> &DecoderSpec {
        &self.spec
    }

    fn quantize(&mut self, quantization: Quantization) -> Result<(usize, usize)> {
        let projections = model_projections(
            &mut self.encoder_layers,
            &mut self.decoder_layers,
            &mut self.lm_head,
        );
        quantize_all(projections, quantization)
    }

    fn encode(&self, input_ids: &Tensor, attention_mask: &Tensor) -> Result<Tensor> {
        let mut xs = self.encoder_embedder.forward(input_ids, 0)?;
        let bias = padding_bias(attention_mask, xs.dtype())?;
        for layer in &self.encoder_layers {
            xs = layer.forward(&xs, &bias)?;
        }
        apply_norm(xs, self.encoder_norm.as_ref())
    }

    fn start_decoding(
        &self,
        encoder_hidden: &Tensor,
        attention_mask: &Tensor,
    ) -> Result<DecoderState> {
        DecoderState::start(
            &self.decoder_layers,
            encoder_hidden,
            attention_mask,
            |layer, hidden| layer.encoder_attn.project_kv(hidden),
        )
    }

    fn decode_step(&self, last_tokens: &Tensor, state: &mut DecoderState) -> Result<Tensor> {
        let mut xs = if state.rows_aligned() {
            self.decoder_embedder.forward(last_tokens, state.position)?
        } else {
            let positions = state.row_positions();
            self.decoder_embedder.forward_at(last_tokens, &positions)?
        };
        let self_bias = state.self_attention_bias()?;
        state.begin_step()?;
        for (i, layer) in self.decoder_layers.iter().enumerate() {
            xs = layer.forward(&xs, i, state, self_bias.as_ref())?;
        }
        state.end_step();
        let xs = apply_norm(xs, self.decoder_norm.as_ref())?;
        self.lm_head
            .forward(&xs)?
            .squeeze(1)?
            .broadcast_add(&self.logits_bias)?
            .to_dtype(DType::F32)
    }
}
