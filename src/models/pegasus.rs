//! Pegasus encoder-decoder (e.g. `google/pegasus-xsum`, `google/pegasus-cnn_dailymail`).
//!
//! Mirrors Hugging Face `transformers/models/pegasus/modeling_pegasus.py`
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/pegasus/modeling_pegasus.py>;
//! paper: Zhang et al., "PEGASUS: Pre-training with Extracted Gap-sentences for Abstractive
//! Summarization", <https://arxiv.org/abs/1912.08777>).
//!
//! Pegasus is BART's layers in pre-norm order, with a final `layer_norm` on each stack, no
//! embedding norm and fixed sinusoidal positions (no offset). The layers live in
//! [`super::bart_common`], shared with BART.

use candle_core::{DType, Device, Result, Tensor};
use candle_nn::VarBuilder;

use super::DecoderSpec;
use super::bart_common::{
    EncoderDecoder, HalfClamp, Layout, NormPlacement, PositionTable, Positions, TokenDefaults,
};

pub use super::bart_common::Config;

const LAYOUT: Layout = Layout {
    norm: NormPlacement::Pre,
    embedding_norm: false,
    final_norm: true,
    half_clamp: HalfClamp::Always,
};

const TOKEN_DEFAULTS: TokenDefaults = TokenDefaults {
    pad: 0,
    eos: 1,
    decoder_start: 0,
};

/// The decoder's start/stop ids and vocabulary of a Pegasus config, with Pegasus' defaults.
pub fn spec(cfg: &Config) -> DecoderSpec {
    cfg.spec_with(TOKEN_DEFAULTS)
}

/// transformers' `PegasusSinusoidalPositionalEmbedding` table, row-major `(positions, dim)`.
///
/// Not interleaved: the first `ceil(dim/2)` columns are `sin(pos / 10000^(2k/dim))`, the rest
/// `cos` of the same angles. Computed in f64 and rounded to f32, as transformers does with numpy.
pub fn sinusoid_table(positions: usize, dim: usize) -> Vec<f32> {
    let sin_columns = dim.div_ceil(2);
    let angle = |pos: usize, k: usize| pos as f64 / 10000f64.powf(2.0 * k as f64 / dim as f64);
    (0..positions)
        .flat_map(|pos| {
            let sines = (0..sin_columns).map(move |k| angle(pos, k).sin() as f32);
            let cosines = (0..dim - sin_columns).map(move |k| angle(pos, k).cos() as f32);
            sines.chain(cosines)
        })
        .collect()
}

fn sinusoid_positions(cfg: &Config, dtype: DType, device: &Device) -> Result<PositionTable> {
    let (rows, dim) = (cfg.max_position_embeddings, cfg.d_model);
    let table =
        Tensor::from_vec(sinusoid_table(rows, dim), (rows, dim), device)?.to_dtype(dtype)?;
    Ok(PositionTable::new(table, 0))
}

/// A stack's position table: transformers loads a saved `embed_positions.weight` as is and
/// only builds the sinusoid table when the checkpoint has none, so we do the same.
fn stack_positions(cfg: &Config, vb: VarBuilder) -> Result<PositionTable> {
    if vb.contains_tensor("weight") {
        let table = vb.get((cfg.max_position_embeddings, cfg.d_model), "weight")?;
        Ok(PositionTable::new(table, 0))
    } else {
        sinusoid_positions(cfg, vb.dtype(), vb.device())
    }
}

/// A Pegasus checkpoint with its language-modelling head. `vb` is the checkpoint's root:
/// `model.shared.weight`, `model.encoder.layers.0...`, `final_logits_bias`, and optionally
/// `model.encoder.embed_positions.weight`.
pub(crate) fn model(cfg: &Config, vb: VarBuilder) -> Result<EncoderDecoder> {
    let positions = Positions {
        encoder: stack_positions(cfg, vb.pp("model.encoder.embed_positions"))?,
        decoder: stack_positions(cfg, vb.pp("model.decoder.embed_positions"))?,
    };
    EncoderDecoder::new(cfg, LAYOUT, positions, spec(cfg), vb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sinusoid_table_puts_sines_first_then_cosines() {
        let dim = 8;
        let table = sinusoid_table(5, dim);
        assert_eq!(table.len(), 5 * dim);
        // Position 0: sin(0) = 0 in the first half, cos(0) = 1 in the second.
        assert_eq!(&table[..dim], &[0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
        let row = &table[3 * dim..4 * dim];
        for k in 0..dim / 2 {
            let angle = 3.0 / 10000f64.powf(2.0 * k as f64 / dim as f64);
            assert_eq!(row[k], angle.sin() as f32, "sin column {k}");
            assert_eq!(row[dim / 2 + k], angle.cos() as f32, "cos column {k}");
        }
        // Column 0 is sin(pos) itself, column dim/2 cos(pos).
        assert_eq!(row[0], 3f64.sin() as f32);
        assert_eq!(row[dim / 2], 3f64.cos() as f32);
    }

    #[test]
    fn sinusoid_table_odd_width_gives_sines_the_extra_column() {
        let table = sinusoid_table(2, 5);
        let row = &table[5..];
        let angle = |k: usize| 1.0 / 10000f64.powf(2.0 * k as f64 / 5.0);
        let want: Vec<f32> = [0, 1, 2]
            .map(|k| angle(k).sin() as f32)
            .into_iter()
            .chain([0, 1].map(|k| angle(k).cos() as f32))
            .collect();
        assert_eq!(row, want.as_slice());
    }

    #[test]
    fn pegasus_positions_have_no_offset() {
        let cfg: Config =
            serde_json::from_value(serde_json::json!({"d_model": 4, "max_position_embeddings": 3}))
                .unwrap();
        let table = sinusoid_positions(&cfg, DType::F32, &Device::Cpu).unwrap();
        let first: Vec<Vec<f32>> = table.rows(0, 1).unwrap().to_vec2().unwrap();
        assert_eq!(first, vec![vec![0.0, 0.0, 1.0, 1.0]]);
        assert!(table.rows(2, 1).is_ok());
        assert!(table.rows(3, 1).is_err());
    }

    #[test]
    fn config_parses_a_pegasus_config() {
        let cfg: Config = serde_json::from_value(serde_json::json!({
            "model_type": "pegasus", "vocab_size": 96103, "d_model": 1024,
            "encoder_layers": 16, "decoder_layers": 16, "encoder_attention_heads": 16,
            "decoder_attention_heads": 16, "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096,
            "activation_function": "relu", "max_position_embeddings": 512,
            "scale_embedding": true, "normalize_before": true, "static_position_embeddings": true,
            "pad_token_id": 0, "eos_token_id": 1, "forced_eos_token_id": 1
        }))
        .unwrap();
        assert!(cfg.validate().is_ok());
        assert_eq!(cfg.embed_scale(), 32.0);
        let spec = spec(&cfg);
        assert_eq!(
            (
                spec.decoder_start_token_id,
                spec.eos_token_id,
                spec.pad_token_id
            ),
            (0, 1, 0)
        );
        assert_eq!(spec.vocab_size, 96103);
    }
}
