//! precis's Punkt port against NLTK 3.10.4's `PunktSentenceTokenizer` with the same English
//! parameters: the golden file is written by `scripts/punkt_goldens.py`. Every case (hand-written
//! hard cases and seeded random ones) must split into exactly NLTK's sentences, and
//! `split_sentences` must give exactly the lines transformers' summarization example scores.

use precis::eval::{self, punkt};
use serde_json::Value;

fn golden() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/golden/punkt.json"
    );
    let text = std::fs::read_to_string(path).expect("golden file");
    serde_json::from_str(&text).expect("golden JSON")
}

fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .expect("a list")
        .iter()
        .map(|s| s.as_str().expect("a string"))
        .collect()
}

#[test]
fn every_case_splits_into_nltks_sentences() {
    let golden = golden();
    assert_eq!(golden["versions"]["nltk"], "3.10.4");
    let cases = golden["cases"].as_array().expect("cases");
    let mut wrong = Vec::new();
    for case in cases {
        let text = case["text"].as_str().expect("text");
        let want = strings(&case["sentences"]);
        let got = punkt::sentences(text);
        if got != want {
            wrong.push(format!(
                "{}: {text:?}\n  got  {got:?}\n  NLTK {want:?}",
                case["id"]
            ));
        }
    }
    assert!(cases.len() > 400, "{}", cases.len());
    assert!(
        wrong.is_empty(),
        "{} of {}:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

#[test]
fn split_sentences_gives_the_lines_of_the_summarization_example() {
    let golden = golden();
    for case in golden["cases"].as_array().expect("cases") {
        let text = case["text"].as_str().expect("text");
        let want = strings(&case["lines"]).join("\n");
        assert_eq!(eval::split_sentences(text), want, "{}", case["id"]);
    }
}
