//! The tokenizer precis loads for each fixture model gives transformers' token ids for the golden
//! edge-case strings (whitespace runs, NFKC-folded characters, accents, CJK, emoji, special tokens
//! written in the text).

#[macro_use]
mod common;

use common::*;
use precis::loading;

fn tokenization_matches(model: &str) {
    let tokenizer = loading::load_tokenizer(&model_files(model)).unwrap();
    let golden = golden(model);
    let cases = golden["tokenization"].as_array().unwrap();
    assert!(cases.len() >= 10, "expected many tokenization cases");
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let encoding = tokenizer.encode(text, true).unwrap();
        assert_eq!(
            encoding.get_ids(),
            ids(&case["ids"]).as_slice(),
            "{model}: token ids of {text:?}"
        );
    }
}

fixture_model_tests!(tokenization_matches_transformers => tokenization_matches);
