//! BART and DistilBART encoder-decoders (e.g. `facebook/bart-large-cnn`,
//! `sshleifer/distilbart-cnn-12-6`).
//!
//! Mirrors Hugging Face `transformers/models/bart/modeling_bart.py`
//! (<https://github.com/huggingface/transformers/blob/main/src/transformers/models/bart/modeling_bart.py>;
//! paper: Lewis et al., "BART: Denoising Sequence-to-Sequence Pre-training for Natural Language
//! Generation, Translation, and Comprehension", <https://arxiv.org/abs/1910.13461>).
//!
//! BART is post-norm with a `layernorm_embedding` after the embeddings and no final stack norm;
//! positions are learned. The layers themselves live in [`super::bart_common`], shared with
//! Pegasus. Old fairseq-converted configs carry `normalize_before` / `add_final_layer_norm`
//! flags; transformers' BART ignores them (they belong to mBART), and so do we.

use candle_core::Result;
use candle_nn::VarBuilder;

use super::DecoderSpec;
use super::bart_common::{
    EncoderDecoder, HalfClamp, Layout, NormPlacement, PositionTable, Positions, TokenDefaults,
};

pub use super::bart_common::Config;

/// BART's learned position tables have two rows before position 0: fairseq reserved them for
/// positions derived from the padding index, and the checkpoints keep the layout.
pub const POSITION_OFFSET: usize = 2;

const LAYOUT: Layout = Layout {
    norm: NormPlacement::Post,
    embedding_norm: true,
    final_norm: false,
    half_clamp: HalfClamp::WhenInfinite,
};

const TOKEN_DEFAULTS: TokenDefaults = TokenDefaults {
    pad: 1,
    eos: 2,
    decoder_start: 2,
};

/// The decoder's start/stop ids and vocabulary of a BART config, with BART's defaults.
pub fn spec(cfg: &Config) -> DecoderSpec {
    cfg.spec_with(TOKEN_DEFAULTS)
}

fn learned_positions(cfg: &Config, vb: VarBuilder) -> Result<PositionTable> {
    let rows = cfg.max_position_embeddings + POSITION_OFFSET;
    let table = vb.get((rows, cfg.d_model), "weight")?;
    Ok(PositionTable::new(table, POSITION_OFFSET))
}

/// A BART or DistilBART checkpoint with its language-modelling head. `vb` is the checkpoint's
/// root: `model.shared.weight`, `model.encoder.layers.0...`, `lm_head.weight`,
/// `final_logits_bias`.
pub(crate) fn model(cfg: &Config, vb: VarBuilder) -> Result<EncoderDecoder> {
    let positions = Positions {
        encoder: learned_positions(cfg, vb.pp("model.encoder.embed_positions"))?,
        decoder: learned_positions(cfg, vb.pp("model.decoder.embed_positions"))?,
    };
    EncoderDecoder::new(cfg, LAYOUT, positions, spec(cfg), vb)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::Seq2Seq;
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn positions_skip_the_two_reserved_rows() {
        // Row r of the table holds the value r, so each embedding names the row it came from.
        let table = Tensor::arange(0f32, 6.0, &Device::Cpu)
            .unwrap()
            .reshape((6, 1))
            .unwrap();
        let positions = PositionTable::new(table, POSITION_OFFSET);
        let rows: Vec<Vec<f32>> = positions.rows(1, 3).unwrap().to_vec2().unwrap();
        assert_eq!(rows, vec![vec![3.0], vec![4.0], vec![5.0]]);
        // Four usable positions (max_position_embeddings = 4): position 4 is out of range.
        assert!(positions.rows(3, 1).is_ok());
        assert!(positions.rows(4, 1).is_err());
    }

    #[test]
    fn config_parses_a_distilbart_config() {
        let cfg: Config = serde_json::from_value(serde_json::json!({
            "model_type": "bart", "vocab_size": 50264, "d_model": 1024,
            "encoder_layers": 12, "decoder_layers": 6, "encoder_attention_heads": 16,
            "decoder_attention_heads": 16, "encoder_ffn_dim": 4096, "decoder_ffn_dim": 4096,
            "activation_function": "gelu", "max_position_embeddings": 1024,
            "normalize_before": false, "add_final_layer_norm": false, "extra_pos_embeddings": 2,
            "pad_token_id": 1, "eos_token_id": 2, "decoder_start_token_id": 2,
            "forced_bos_token_id": 0
        }))
        .unwrap();
        assert_eq!((cfg.encoder_layers, cfg.decoder_layers), (12, 6));
        assert!(!cfg.scale_embedding && cfg.tie_word_embeddings);
        assert!(cfg.validate().is_ok());
        let spec = spec(&cfg);
        assert_eq!(spec.vocab_size, 50264);
        assert_eq!(
            (
                spec.decoder_start_token_id,
                spec.eos_token_id,
                spec.pad_token_id
            ),
            (2, 2, 1)
        );
        assert_eq!(cfg.embed_scale(), 1.0);
    }

    #[test]
    fn config_defaults_follow_transformers() {
        let cfg: Config =
            serde_json::from_value(serde_json::json!({"pad_token_id": null})).unwrap();
        assert_eq!(
            (cfg.d_model, cfg.encoder_layers, cfg.vocab_size),
            (1024, 12, 50265)
        );
        let spec = spec(&cfg);
        assert_eq!(
            (
                spec.decoder_start_token_id,
                spec.eos_token_id,
                spec.pad_token_id
            ),
            (2, 2, 1)
        );
    }

    #[test]
    fn bad_configs_are_errors() {
        let mut cfg: Config = serde_json::from_value(serde_json::json!({"d_model": 10})).unwrap();
        assert!(cfg.validate().is_err(), "10 is not divisible by 16 heads");
        cfg.d_model = 32;
        cfg.activation_function = "fancy".into();
        assert!(cfg.validate().is_err());
        assert!(serde_json::from_value::<Config>(serde_json::json!({"d_model": "big"})).is_err());
    }

    fn tiny_config() -> Config {
        serde_json::from_value(serde_json::json!({
            "vocab_size": 11, "d_model": 8, "encoder_layers": 2, "decoder_layers": 1,
            "encoder_attention_heads": 2, "decoder_attention_heads": 2,
            "encoder_ffn_dim": 16, "decoder_ffn_dim": 16, "max_position_embeddings": 4
        }))
        .unwrap()
    }

    #[test]
    fn missing_weights_are_an_error() {
        let vb = VarBuilder::from_tensors(Default::default(), DType::F32, &Device::Cpu);
        assert!(model(&tiny_config(), vb).is_err());
    }

    #[test]
    fn shapes_flow_through_encode_and_decode() {
        let dev = Device::Cpu;
        let bart = model(&tiny_config(), VarBuilder::zeros(DType::F32, &dev)).unwrap();
        let ids = Tensor::new(&[[0u32, 5, 2], [0, 2, 1]], &dev).unwrap();
        let mask = Tensor::new(&[[1u32, 1, 1], [1, 1, 0]], &dev).unwrap();
        let hidden = bart.encode(&ids, &mask).unwrap();
        assert_eq!(hidden.dims(), &[2, 3, 8]);
        let mut state = bart.start_decoding(&hidden, &mask).unwrap();
        let start = Tensor::new(&[[2u32], [2]], &dev).unwrap();
        for step in 0..4 {
            let logits = bart.decode_step(&start, &mut state).unwrap();
            assert_eq!(logits.dims(), &[2, 11], "step {step}");
        }
        // Four positions used up: the fifth is past max_position_embeddings.
        assert!(bart.decode_step(&start, &mut state).is_err());
    }
}
