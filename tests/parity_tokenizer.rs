//! The tokenizer precis loads for each fixture model gives transformers' token ids for the golden
//! edge-case strings (whitespace runs, NFKC-folded characters, accents, CJK, emoji, special tokens
//! written in the text).

#[macro_use]
mod common;

use common::*;
use precis::loading;

/// Every golden case's ids (with special tokens) and, where recorded, its decoded text.
fn assert_cases_match(tokenizer: &tokenizers::Tokenizer, cases: &[serde_json::Value], label: &str) {
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let encoding = tokenizer.encode(text, true).unwrap();
        assert_eq!(
            encoding.get_ids(),
            ids(&case["ids"]).as_slice(),
            "{label}: token ids of {text:?}"
        );
        if let Some(decoded) = case.get("decoded").and_then(|d| d.as_str()) {
            let ours = tokenizer.decode(encoding.get_ids(), true).unwrap();
            assert_eq!(ours, decoded, "{label}: decoding {text:?}");
        }
    }
}

fn tokenization_matches(model: &str) {
    let tokenizer = loading::load_tokenizer(&model_files(model)).unwrap();
    let golden = golden(model);
    let cases = golden["tokenization"].as_array().unwrap();
    assert!(cases.len() >= 10, "expected many tokenization cases");
    assert_cases_match(&tokenizer, cases, model);
}

fixture_model_tests!(tokenization_matches_transformers => tokenization_matches);

/// Folders with only `spiece.model` (older T5 and Pegasus repos): the tokenizer precis builds
/// from it gives the ids and text transformers builds from the same folder.
#[test]
fn sentencepiece_only_folders_tokenize_as_transformers_builds_them() {
    let golden = golden("spiece");
    let folders = golden["folders"].as_object().unwrap();
    assert_eq!(folders.len(), 2, "a T5 and a Pegasus folder");
    for (folder, expected) in folders {
        let dir = fixture_dir(folder);
        let files = loading::ModelFiles {
            name: folder.clone(),
            config: loading::JsonFile::read(&dir.join("config.json")).unwrap(),
            tokenizer: loading::TokenizerFiles::SentencePiece {
                model: dir.join("spiece.model"),
                tokenizer_config: Some(dir.join("tokenizer_config.json")),
            },
            weights: loading::Weights::Safetensors(vec![]),
            generation_config: None,
            preset: None,
        };
        let tokenizer = loading::load_tokenizer(&files).unwrap();
        assert_eq!(
            tokenizer.get_vocab_size(true) as u64,
            expected["vocab_size"].as_u64().unwrap(),
            "{folder}: vocabulary size"
        );
        let unk = expected["unk_id"].as_u64().unwrap() as u32;
        assert_eq!(
            tokenizer.token_to_id("<unk>"),
            Some(unk),
            "{folder}: <unk> id"
        );
        let cases = expected["cases"].as_array().unwrap();
        assert!(cases.len() >= 20, "{folder}: expected many cases");
        assert_cases_match(&tokenizer, cases, folder);
    }
}
