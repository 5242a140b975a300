//! A BART checkpoint that ships only `vocab.json` + `merges.txt` (as older BART/DistilBART repos
//! do) tokenises, decodes and summarises exactly like its `tokenizer.json` twin.

mod common;

use common::*;
use precis::SummaryOptions;
use precis::loading::{self, TokenizerFiles};

const TWIN: &str = "bart-tiny-vocab-merges";

#[test]
fn the_twin_is_found_as_vocab_and_merges() {
    let files = model_files(TWIN);
    assert!(
        matches!(files.tokenizer, TokenizerFiles::VocabMerges { .. }),
        "{:?}",
        files.tokenizer
    );
    assert!(matches!(
        model_files("bart-tiny").tokenizer,
        TokenizerFiles::Json(_)
    ));
}

#[test]
fn vocab_and_merges_tokenise_and_decode_like_tokenizer_json() {
    let built = loading::load_tokenizer(&model_files(TWIN)).unwrap();
    let json = loading::load_tokenizer(&model_files("bart-tiny")).unwrap();
    let golden = golden("bart-tiny");
    let cases = golden["tokenization"].as_array().unwrap();
    assert!(cases.len() > 10);
    for case in cases {
        let text = case["text"].as_str().unwrap();
        let want = ids(&case["ids"]);
        let from_json = json.encode(text, true).unwrap();
        let from_files = built.encode(text, true).unwrap();
        assert_eq!(
            from_json.get_ids(),
            want.as_slice(),
            "tokenizer.json: {text:?}"
        );
        assert_eq!(
            from_files.get_ids(),
            want.as_slice(),
            "vocab+merges: {text:?}"
        );
        assert_eq!(
            from_files.get_offsets(),
            from_json.get_offsets(),
            "offsets (chunking relies on them): {text:?}"
        );
        assert_eq!(
            built.decode(&want, true).unwrap(),
            json.decode(&want, true).unwrap(),
            "decode of {text:?}"
        );
    }
}

#[test]
fn the_twin_summarises_like_the_tokenizer_json_model() {
    let (twin, original) = (summarizer(TWIN), summarizer("bart-tiny"));
    assert_eq!(twin.defaults(), original.defaults());
    let golden = golden("bart-tiny");
    let options = SummaryOptions::default();
    for text in pipeline_texts(&golden, 3) {
        let text = text.as_str();
        let a = twin.summarize(text, &options).unwrap();
        let b = original.summarize(text, &options).unwrap();
        assert_eq!(a.text, b.text, "{text}");
        assert_eq!(
            (a.input_tokens, a.output_tokens),
            (b.input_tokens, b.output_tokens)
        );
    }
}
