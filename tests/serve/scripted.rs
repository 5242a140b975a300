//! What the text of an answer looks like, on a model whose output is scripted token by token:
//! `clean_up_tokenization_spaces` tidies spaces the tokenizer left before punctuation (random
//! fixture weights almost never generate such a space).

use candle_core::{Device, Tensor};
use precis::models::{DecoderSpec, DecoderState, Quantization, Seq2Seq};
use serde_json::json;

use super::support::{InProcess, eventually, get, post, wrapped};

/// The wrapped model, with each row's `n`th generated token forced to `script[n]` (EOS after).
struct Scripted {
    inner: Box<dyn Seq2Seq>,
    script: Vec<u32>,
}

impl Seq2Seq for Scripted {
    fn spec(&self) -> &DecoderSpec {
        self.inner.spec()
    }
    fn encode(&self, ids: &Tensor, mask: &Tensor) -> candle_core::Result<Tensor> {
        self.inner.encode(ids, mask)
    }
    fn start_decoding(&self, hidden: &Tensor, mask: &Tensor) -> candle_core::Result<DecoderState> {
        self.inner.start_decoding(hidden, mask)
    }
    fn decode_step(&self, last: &Tensor, state: &mut DecoderState) -> candle_core::Result<Tensor> {
        let positions = state.row_positions();
        let (_, vocab) = self.inner.decode_step(last, state)?.dims2()?;
        let eos = self.spec().eos_token_id;
        let mut logits = vec![-1e4f32; positions.len() * vocab];
        for (row, &position) in positions.iter().enumerate() {
            let next = self.script.get(position as usize).copied().unwrap_or(eos);
            logits[row * vocab + next as usize] = 0.0;
        }
        Tensor::from_vec(logits, (positions.len(), vocab), &Device::Cpu)
    }
    fn quantize(&mut self, q: Quantization) -> candle_core::Result<(usize, usize)> {
        self.inner.quantize(q)
    }
}

#[test]
fn clean_up_tokenization_spaces_tidies_the_summary_only_when_asked() {
    let tokenizer = super::common::summarizer("t5-tiny")
        .loaded()
        .tokenizer
        .clone();
    let id = |piece: &str| tokenizer.token_to_id(piece).unwrap();
    // "harbour , town ." as T5's SentencePiece writes it: a lone "▁" before the punctuation.
    let script = vec![
        id("▁harbour"),
        id("▁"),
        id(","),
        id("▁town"),
        id("▁"),
        id("."),
    ];
    let server =
        InProcess::start(move || wrapped("t5-tiny", |inner| Box::new(Scripted { inner, script })));
    eventually("the model is loaded", || {
        get(&server.base, "/health", None).0 == 200
    });
    let ask = |clean_up: bool| {
        let parameters = json!({"num_beams": 1, "min_length": 0,
            "clean_up_tokenization_spaces": clean_up});
        post(
            &server.base,
            "/",
            &json!({"inputs": "Any text.", "parameters": parameters}),
        )
    };
    assert_eq!(
        ask(false),
        (200, json!([{"summary_text": "harbour , town ."}]))
    );
    assert_eq!(
        ask(true),
        (200, json!([{"summary_text": "harbour, town."}]))
    );
    let (status, record) = post(
        &server.base,
        "/summarize",
        &json!({"text": "Any text.", "num_beams": 1, "min_length": 0,
            "clean_up_tokenization_spaces": true}),
    );
    assert_eq!(
        (status, &record["summary"]),
        (200, &json!("harbour, town."))
    );
}
