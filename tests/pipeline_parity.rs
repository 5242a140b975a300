//! With no options, `Summarizer::summarize` gives what transformers' summarization pipeline
//! gave for every fixture model (inputs within the window), text for text: the model's defaults
//! (task parameters, generation config, legacy config keys), prefix, tokenizer and decoding.

#[macro_use]
mod common;

use common::*;
use precis::SummaryOptions;

fn pipeline_matches(model: &str) {
    let golden = golden(model);
    let summarizer = summarizer(model);
    let window = summarizer.defaults().window;
    let mut checked = 0;
    for case in golden["pipeline"]["cases"].as_array().unwrap() {
        let name = case["case"].as_str().unwrap();
        if case["input_ids"].as_array().unwrap().len() > window {
            continue; // precis chunks what the pipeline would feed whole; see tests/long_input.rs
        }
        let summary = summarizer
            .summarize(case["text"].as_str().unwrap(), &SummaryOptions::default())
            .unwrap();
        let want = case["summary"].as_str().unwrap().trim();
        assert_eq!(
            summary.text, want,
            "{model} {name}: summary differs from transformers' pipeline"
        );
        assert_eq!(
            summary.output_ids,
            Some(ids(&case["output_ids"])),
            "{model} {name}: output_ids differ from the pipeline's summary_token_ids"
        );
        let generated = ids(&case["output_ids"]).len() - 1;
        assert_eq!(
            summary.output_tokens, generated,
            "{model} {name}: generated token count"
        );
        assert_eq!(summary.chunks.len(), 1);
        checked += 1;
    }
    assert!(checked >= 3, "expected pipeline cases within the window");
}

fixture_model_tests!(pipeline_matches_transformers => pipeline_matches);

// Each test above, again on every other CPU kernel path (AVX-512, AVX2, portable, ...).
on_every_kernel_path!();
