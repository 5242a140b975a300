//! `precis summarize --format json`: each chunk's `chars` range points into the input as the
//! user gave it (plain text, Markdown), not into the cleaned text the model read; for HTML the
//! record says the ranges count the cleaned text and carries that text.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// Sentences that each start with "Item N" and end with a full stop, so that a range that
/// points at the wrong place cannot look right.
fn sentence(i: usize) -> String {
    format!("Item {i} says the ferry leaves the harbour at seven and comes back at nine.")
}

/// The JSON record of `precis summarize` on `path`, in chunks of at most 40 tokens.
fn summarize_json(path: &Path) -> Value {
    let output = Command::new(env!("CARGO_BIN_EXE_precis"))
        .env("HF_HUB_OFFLINE", "1")
        .args([
            "summarize",
            "--quiet",
            "--format",
            "json",
            "--chunk-tokens",
            "40",
        ])
        .args([
            "--max-new-tokens",
            "4",
            "--min-length",
            "2",
            "--num-beams",
            "1",
        ])
        .arg("--model")
        .arg(fixture_dir("t5-tiny"))
        .arg(path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    serde_json::from_slice(&output.stdout).unwrap()
}

/// The chunk ranges of a record, in characters.
fn ranges(record: &Value) -> Vec<(usize, usize)> {
    let chunks = record["chunks"].as_array().unwrap();
    assert!(
        chunks.len() >= 3,
        "expected several chunks, got {}",
        chunks.len()
    );
    chunks
        .iter()
        .map(|c| {
            let at = |i: usize| c["chars"][i].as_u64().unwrap() as usize;
            (at(0), at(1))
        })
        .collect()
}

/// Every range is whole sentences of `text` (starting at an "Item" and ending with a full
/// stop), the first starts at the first word, the last ends the text, and only whitespace and
/// markup without words fall between two.
fn assert_ranges_are_whole_sentences(text: &str, ranges: &[(usize, usize)]) {
    let chars: Vec<char> = text.chars().collect();
    let slice = |a: usize, b: usize| chars[a..b].iter().collect::<String>();
    let first = chars.iter().position(|c| c.is_alphanumeric()).unwrap();
    let last = chars.iter().rposition(|&c| c == '.').unwrap();
    assert_eq!(ranges[0].0, first, "first chunk starts at the first word");
    assert_eq!(
        ranges.last().unwrap().1,
        last + 1,
        "last chunk ends the text"
    );
    for &(start, end) in ranges {
        let chunk = slice(start, end);
        assert!(
            chunk.starts_with("Item ") && chunk.ends_with('.'),
            "range {start}..{end} is not whole sentences: {chunk:?}"
        );
    }
    for pair in ranges.windows(2) {
        if pair[1].0 > pair[0].1 {
            let gap = slice(pair[0].1, pair[1].0);
            assert!(
                !gap.chars().any(char::is_alphanumeric),
                "words lost: {gap:?}"
            );
        }
    }
}

#[test]
fn plain_text_ranges_count_the_characters_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Indented lines, runs of spaces, CRLF and blank lines with spaces: cleaning removes
    // dozens of characters before the later chunks, which cleaned-text ranges would miss.
    let text: String = (0..24)
        .map(|i| {
            let indent = " ".repeat(i % 5 * 3);
            let gap = if i % 4 == 3 { "\r\n  \r\n" } else { "   " };
            format!("{indent}{}{gap}", sentence(i).replace(" the ", "  the "))
        })
        .collect();
    let path = dir.path().join("article.txt");
    std::fs::write(&path, &text).unwrap();
    let record = summarize_json(&path);
    assert_eq!(record["chunk_chars_of"], "input");
    assert!(record.get("cleaned_text").is_none());
    assert_ranges_are_whole_sentences(&text, &ranges(&record));
}

#[test]
fn markdown_ranges_count_the_characters_of_the_markdown() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = (0..24)
        .map(|i| match i % 3 {
            0 => format!(
                "## Part {i}\n\n{}\n\n",
                sentence(i).replace("ferry", "*ferry*")
            ),
            1 => format!(
                "- {}\n",
                sentence(i).replace("harbour", "[harbour](https://e.x/)")
            ),
            _ => format!("\n> {}\n\n", sentence(i)),
        })
        .collect();
    let path = dir.path().join("article.md");
    std::fs::write(&path, &text).unwrap();
    let record = summarize_json(&path);
    assert_eq!(record["chunk_chars_of"], "input");
    let ranges = ranges(&record);
    // The headings are prose too ("Part 0" before "Item 0"): skip to the sentences.
    let chars: Vec<char> = text.chars().collect();
    let starts: Vec<String> = ranges
        .iter()
        .map(|&(a, _)| chars[a..a + 4].iter().collect())
        .collect();
    assert!(
        starts.iter().all(|s| s == "Item" || s == "Part"),
        "ranges start mid-sentence: {starts:?}"
    );
    assert_eq!(ranges[0].0, 3, "after the heading's ##");
    let last = chars.iter().rposition(|&c| c == '.').unwrap();
    assert_eq!(ranges.last().unwrap().1, last + 1);
}

#[test]
fn html_ranges_count_the_cleaned_text_which_the_record_carries() {
    let dir = tempfile::tempdir().unwrap();
    let body: String = (0..24)
        .map(|i| format!("<p>  {}</p>\n", sentence(i)))
        .collect();
    let path = dir.path().join("page.html");
    std::fs::write(
        &path,
        format!("<html><body><nav>Home</nav>{body}</body></html>"),
    )
    .unwrap();
    let record = summarize_json(&path);
    assert_eq!(record["chunk_chars_of"], "cleaned_text");
    let cleaned = record["cleaned_text"].as_str().unwrap();
    assert!(cleaned.starts_with("Item 0 says") && !cleaned.contains("Home"));
    assert_ranges_are_whole_sentences(cleaned, &ranges(&record));
}
