//! Long articles end to end on the tiny fixture models: chunking, batched chunk summaries,
//! reduce and concat merging, HTML, CJK and one endless line, with T5's SentencePiece and BART's
//! byte-level BPE tokenizers.
//!
//! Chunk boundaries, chunk summaries and merged abstracts are compared with committed snapshots
//! (`tests/fixtures/snapshots/long-<model>.json`), so that any change to chunking or merging
//! shows up in review; after an intended change, `PRECIS_BLESS=1 cargo test --test long_input`
//! rewrites them.

#[macro_use]
mod common;

use std::process::Command;

use common::*;
use precis::generation::GenerationOverrides;
use precis::merge::MergeStrategy;
use precis::{Summarizer, SummaryOptions};
use serde_json::json;

const SENTENCES: [&str; 12] = [
    "The ferry company added an evening crossing to the island after a busy spring.",
    "Residents had asked for later boats so that nurses could finish their shifts in town.",
    "A new timetable starts in June and the first trip leaves the harbour at seven.",
    "Tickets stay at the old price for people who live on the island all year.",
    "The council will review the service in the autumn once it has numbers on passengers.",
    "Shop owners hope the change brings visitors who stay for dinner instead of leaving early.",
    "Some fishermen worry the extra traffic will crowd the small quay on summer nights.",
    "The harbour master said boats would use the north berth to keep the quay clear.",
    "Engineers checked the old pier last month and found it sound enough for the load.",
    "A café near the landing plans to open late on the nights the evening boat runs.",
    "Schoolchildren will get a discount during the holidays, the company said.",
    "The mayor called the decision a small step that matters to a lot of families.",
];

fn article(paragraphs: usize) -> String {
    (0..paragraphs)
        .map(|p| {
            (0..4)
                .map(|s| SENTENCES[(p * 5 + s * 7) % SENTENCES.len()])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn t5() -> Summarizer {
    summarizer("t5-tiny")
}

/// Short summaries keep these tests quick; what is tested is the plumbing, not the prose.
fn options(chunk_tokens: usize) -> SummaryOptions {
    SummaryOptions {
        chunk_tokens: Some(chunk_tokens),
        generation: GenerationOverrides {
            max_new_tokens: Some(12),
            // A random model may end at once or emit ids that decode to nothing; forcing a few
            // tokens makes every pass do real work.
            min_length: Some(6),
            num_beams: Some(2),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Chunks stay within `limit` tokens and cover the text: the first starts at its first
/// non-space character, the last ends at its end, and between two chunks (which may overlap by
/// the repeated sentences) only whitespace is left out.
fn assert_chunks_cover(summary: &precis::Summary, text: &str, limit: usize) {
    let chars: Vec<char> = text.chars().collect();
    let chunks = &summary.chunks;
    for chunk in chunks {
        assert!(chunk.chars.0 < chunk.chars.1 && chunk.chars.1 <= chars.len());
        assert!(
            chunk.tokens <= limit,
            "chunk of {} tokens exceeds {limit}",
            chunk.tokens
        );
    }
    for pair in chunks.windows(2) {
        let (end, next) = (pair[0].chars.1, pair[1].chars.0);
        assert!(
            pair[0].chars.0 < next,
            "chunks follow each other: {:?}",
            pair[1].chars
        );
        if next > end {
            let gap: String = chars[end..next].iter().collect();
            assert!(gap.trim().is_empty(), "text lost between chunks: {gap:?}");
        }
    }
    let first_word = chars.iter().position(|c| !c.is_whitespace()).unwrap();
    let last_word = chars.iter().rposition(|c| !c.is_whitespace()).unwrap();
    assert_eq!(
        chunks[0].chars.0, first_word,
        "the first chunk starts at the first word"
    );
    assert_eq!(
        chunks.last().unwrap().chars.1,
        last_word + 1,
        "the last chunk ends the text"
    );
}

/// What a snapshot records of a summary: every chunk (its range as "start..end", so that each
/// chunk is a few lines of a review diff) and the merged abstract.
fn snapshot_of(summary: &precis::Summary) -> serde_json::Value {
    json!({
        "chunks": summary.chunks.iter().map(|c| json!({
            "chars": format!("{}..{}", c.chars.0, c.chars.1),
            "tokens": c.tokens,
            "summary": c.summary,
        })).collect::<Vec<_>>(),
        "merge_passes": summary
            .merge_passes
            .iter()
            .map(|p| format!("{} -> {}", p.inputs, p.outputs))
            .collect::<Vec<_>>(),
        "input_tokens": summary.input_tokens,
        "output_tokens": summary.output_tokens,
        "summary": summary.text,
    })
}

/// A ten-paragraph article in 60-token chunks, merged both ways, against the snapshot. Greedy
/// search: the fewest decisions that float rounding on another CPU could flip.
fn chunking_and_merging_match_the_snapshot(model: &str) {
    let summarizer = summarizer(model);
    let text = article(10);
    let mut opts = options(60);
    opts.generation.num_beams = Some(1);
    let reduced = summarizer.summarize(&text, &opts).unwrap();
    opts.merge = MergeStrategy::Concat;
    let concat = summarizer.summarize(&text, &opts).unwrap();
    assert!(
        reduced.chunks.len() > 3,
        "{model}: {} chunks",
        reduced.chunks.len()
    );
    assert_chunks_cover(&reduced, &text, 60);
    assert_eq!(reduced.merge_passes.last().unwrap().outputs, 1);
    assert!(concat.merge_passes.is_empty(), "concat has no reduce pass");
    let summaries = |s: &precis::Summary| {
        s.chunks
            .iter()
            .map(|c| c.summary.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        summaries(&reduced),
        summaries(&concat),
        "the map pass does not depend on the merge"
    );
    let snapshot = json!({
        "article": "tests/long_input.rs article(10)",
        "options": {"chunk_tokens": 60, "max_new_tokens": 12, "min_length": 6, "num_beams": 1},
        "reduce": snapshot_of(&reduced),
        "concat": snapshot_of(&concat),
    });
    assert_snapshot(&format!("long-{model}"), &snapshot);
}

fixture_model_tests!(chunking_and_merging_match_the_snapshot => chunking_and_merging_match_the_snapshot);

#[test]
fn a_long_article_is_chunked_summarised_and_reduced_to_one_abstract() {
    let summarizer = t5();
    let text = article(12);
    let summary = summarizer.summarize(&text, &options(60)).unwrap();
    assert!(
        summary.chunks.len() > 3,
        "expected several chunks, got {}",
        summary.chunks.len()
    );
    assert!(!summary.merge_passes.is_empty());
    assert_eq!(summary.merge_passes.last().unwrap().outputs, 1);
    // Every chunk pass and every reduce pass generated at least min_length - 1 tokens.
    let passes = summary.chunks.len()
        + summary
            .merge_passes
            .iter()
            .map(|p| p.outputs)
            .sum::<usize>();
    assert!(
        summary.output_tokens >= 5 * passes,
        "{} tokens over {passes} passes",
        summary.output_tokens
    );
    assert_chunks_cover(&summary, &text, 60);
}

/// `model` splits a long article into several chunks, reduces their summaries to one abstract,
/// and gives the same result whether chunks are batched together or summarised one by one.
fn assert_chunks_and_reduces_a_long_article(model: &str) {
    let summarizer = summarizer(model);
    let text = article(10);
    let summary = summarizer.summarize(&text, &options(60)).unwrap();
    assert!(
        summary.chunks.len() > 3,
        "{model}: expected several chunks, got {}",
        summary.chunks.len()
    );
    assert_chunks_cover(&summary, &text, 60);
    assert_eq!(summary.merge_passes.last().unwrap().outputs, 1);
    assert!(!summary.text.is_empty());
    // Batching chunks together changes nothing.
    let mut one = options(60);
    one.batch_size = Some(1);
    let alone = summarizer.summarize(&text, &one).unwrap();
    assert_eq!(alone.text, summary.text);
    assert_eq!(alone.output_tokens, summary.output_tokens);
}

#[test]
fn bart_chunks_and_reduces_a_long_article() {
    assert_chunks_and_reduces_a_long_article("bart-tiny");
}

#[test]
fn pegasus_chunks_and_reduces_a_long_article() {
    assert_chunks_and_reduces_a_long_article("pegasus-tiny");
}

#[test]
fn bart_splits_cjk_text_into_byte_level_chunks() {
    let bart = summarizer("bart-tiny");
    // Byte-level BPE spells each CJK character as up to three byte tokens, so this text is far
    // over the limit; the sentences end with "。" and the last run has no punctuation at all.
    let text = format!(
        "{}{}",
        "东京的天气今天很好。我们去公园散步，然后在河边吃午饭。".repeat(6),
        "没有标点的很长的句子".repeat(12)
    );
    let summary = bart.summarize(&text, &options(48)).unwrap();
    assert!(
        summary.input_tokens > 4 * 48,
        "{} tokens",
        summary.input_tokens
    );
    assert!(
        summary.chunks.len() > 4,
        "expected many chunks, got {}",
        summary.chunks.len()
    );
    assert_chunks_cover(&summary, &text, 48);
    assert_eq!(summary.merge_passes.last().unwrap().outputs, 1);
}

#[test]
fn batched_chunk_summaries_equal_one_by_one() {
    let summarizer = t5();
    let text = article(10);
    let mut one = options(50);
    one.batch_size = Some(1);
    let mut many = options(50);
    many.batch_size = Some(8);
    let alone = summarizer.summarize(&text, &one).unwrap();
    let batched = summarizer.summarize(&text, &many).unwrap();
    assert!(alone.chunks.len() >= 4);
    let summaries = |s: &precis::Summary| {
        s.chunks
            .iter()
            .map(|c| c.summary.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(summaries(&alone), summaries(&batched));
    assert_eq!(alone.text, batched.text);
}

#[test]
fn a_text_within_the_window_is_summarised_once() {
    let golden = golden("t5-tiny");
    let case = &golden["pipeline"]["cases"][0];
    let text = case["text"].as_str().unwrap();
    let summary = t5().summarize(text, &SummaryOptions::default()).unwrap();
    assert_eq!(summary.chunks.len(), 1);
    assert!(summary.merge_passes.is_empty());
    let chunk = &summary.chunks[0];
    assert_eq!(
        chunk.chars,
        (0, text.chars().count()),
        "the one chunk is the whole text"
    );
    // What transformers' pipeline gave for this text, token for token.
    assert_eq!(chunk.summary, case["summary"].as_str().unwrap().trim());
    assert_eq!(summary.output_ids, Some(ids(&case["output_ids"])));
    assert_eq!(summary.text, chunk.summary);
}

#[test]
fn several_documents_share_batches_and_match_single_calls() {
    let summarizer = t5();
    let texts = [article(1), article(6), article(2)];
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let together = summarizer.summarize_many(&refs, &options(60)).unwrap();
    for (text, result) in texts.iter().zip(together) {
        let alone = summarizer.summarize(text, &options(60)).unwrap();
        assert_eq!(result.unwrap().text, alone.text);
    }
}

/// Text without a space or punctuation is one pre-token for every tokenizer: the chunker must
/// cut inside it. Byte-level BPE (BART) spells each CJK character as up to three byte tokens, so
/// this text is far over the limit (T5's SentencePiece vocabulary has no CJK pieces: the whole
/// run would be one `<unk>`).
#[test]
fn cjk_text_without_spaces_stays_within_the_limit() {
    let bart = summarizer("bart-tiny");
    let text = "东京的天气今天很好我们去公园散步然后在河边吃午饭".repeat(40);
    let summary = bart.summarize(&text, &options(48)).unwrap();
    assert!(
        summary.input_tokens > 10 * 48,
        "{} tokens",
        summary.input_tokens
    );
    assert!(summary.chunks.len() > 10, "{} chunks", summary.chunks.len());
    assert_chunks_cover(&summary, &text, 48);
    assert_eq!(summary.merge_passes.last().unwrap().outputs, 1);
}

#[test]
fn one_long_line_without_spaces_completes() {
    let summarizer = t5();
    let text = "abcdefghij0123456789".repeat(2_000);
    let summary = summarizer.summarize(&text, &options(400)).unwrap();
    assert!(summary.chunks.len() > 1);
    assert!(summary.chunks.iter().all(|c| c.tokens <= 400));
    assert!(summary.output_tokens > 0);
}

#[test]
fn html_input_is_summarised_as_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let body = article(1);
    let html = format!(
        "<!DOCTYPE html><html><head><title>x</title><style>p {{ color: red }}</style>\
         <script>var tracking = 1;</script></head><body><nav>Home | News | Sport</nav>\
         <p>{body}</p><footer>Copyright</footer></body></html>"
    );
    let html_path = dir.path().join("page.html");
    let text_path = dir.path().join("page.txt");
    std::fs::write(&html_path, html).unwrap();
    std::fs::write(&text_path, &body).unwrap();
    let run = |path: &std::path::Path| {
        let output = Command::new(env!("CARGO_BIN_EXE_precis"))
            .env("HF_HUB_OFFLINE", "1")
            .args([
                "summarize",
                "--model",
                fixture_dir("t5-tiny").to_str().unwrap(),
                "--format",
                "json",
            ])
            .arg(path)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&output.stdout).unwrap()
    };
    let from_html = run(&html_path);
    let from_text = run(&text_path);
    assert_eq!(from_html["summary"], from_text["summary"]);
    assert_eq!(from_html["input_tokens"], from_text["input_tokens"]);
}
