//! Sentence split: UAX #29 sentence boundaries (`unicode-segmentation`), plus a boundary at every
//! paragraph break, returned as byte ranges that cover the text in order.
//!
//! A single newline inside a paragraph is *not* a boundary, although UAX #29 breaks after every
//! line feed: hard-wrapped plain text and e-mail would otherwise be cut at each line end. Only a
//! paragraph break (a newline, optional spaces or tabs, another newline) ends a sentence by
//! itself. Whitespace that UAX #29 returns as a segment of its own joins the sentence before it,
//! so every range holds some text and keeps its trailing whitespace.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

/// Byte ranges of the sentences of `text`, in order, contiguous and covering all of it; empty for
/// empty text, one range for text that is only whitespace. Each range starts and ends on a char
/// boundary.
pub fn sentence_ranges(text: &str) -> Vec<Range<usize>> {
    let unwrapped = join_wrapped_lines(text);
    let mut ranges: Vec<Range<usize>> = Vec::new();
    let mut pending_whitespace: Option<Range<usize>> = None;
    for (start, segment) in unwrapped.split_sentence_bound_indices() {
        let range = start..start + segment.len();
        if segment.trim().is_empty() {
            match ranges.last_mut() {
                Some(last) => last.end = range.end,
                None => {
                    let start = pending_whitespace
                        .as_ref()
                        .map_or(range.start, |ws| ws.start);
                    pending_whitespace = Some(start..range.end);
                }
            }
            continue;
        }
        // Leading whitespace of the text has no sentence before it to join: it opens the first.
        let start = pending_whitespace.take().map_or(range.start, |ws| ws.start);
        ranges.push(start..range.end);
    }
    ranges.extend(pending_whitespace);
    ranges
}

/// `text` with every newline that is not part of a paragraph break turned into a space. Both are
/// one byte, so offsets into the result are offsets into `text`.
fn join_wrapped_lines(text: &str) -> String {
    let bytes = text.as_bytes();
    let is_horizontal_space = |b: &u8| *b == b' ' || *b == b'\t';
    let mut out = String::with_capacity(text.len());
    for (i, c) in text.char_indices() {
        if c != '\n' {
            out.push(c);
            continue;
        }
        let before = bytes[..i].iter().rev().find(|b| !is_horizontal_space(b));
        let after = bytes[i + 1..].iter().find(|b| !is_horizontal_space(b));
        let in_paragraph_break = before == Some(&b'\n') || after == Some(&b'\n');
        out.push(if in_paragraph_break { '\n' } else { ' ' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sentences(text: &str) -> Vec<&str> {
        sentence_ranges(text)
            .into_iter()
            .map(|r| &text[r])
            .collect()
    }

    #[test]
    fn splits_on_uax29_sentence_boundaries() {
        assert_eq!(
            sentences("It rained. Did it? Yes! 3.14 is pi."),
            ["It rained. ", "Did it? ", "Yes! ", "3.14 is pi."]
        );
    }

    #[test]
    fn paragraph_break_is_a_boundary_without_punctuation() {
        assert_eq!(sentences("Title\n\nBody text"), ["Title\n\n", "Body text"]);
        assert_eq!(sentences("Title\n \t\nBody"), ["Title\n \t\n", "Body"]);
    }

    #[test]
    fn single_newline_is_not_a_boundary() {
        assert_eq!(
            sentences("A sentence wrapped\nover two lines. Next."),
            ["A sentence wrapped\nover two lines. ", "Next."]
        );
    }

    #[test]
    fn empty_and_whitespace_only() {
        assert!(sentence_ranges("").is_empty());
        assert_eq!(sentence_ranges("  \n\n "), vec![0..5]);
        assert_eq!(sentences("\n\n  Lead. Two."), ["\n\n  Lead. ", "Two."]);
    }

    #[test]
    fn multibyte_text_splits_on_char_boundaries() {
        let text = "日本語の文です。次の文！Ünïcödé sentence. 😀 Done.";
        let got = sentences(text);
        assert_eq!(
            got,
            [
                "日本語の文です。",
                "次の文！",
                "Ünïcödé sentence. ",
                "😀 Done."
            ]
        );
    }

    #[test]
    fn ranges_cover_the_text_in_order() {
        let text = "a. b\n\n\nc? \n d";
        let ranges = sentence_ranges(text);
        assert_eq!(ranges.first().map(|r| r.start), Some(0));
        assert_eq!(ranges.last().map(|r| r.end), Some(text.len()));
        assert!(ranges.windows(2).all(|w| w[0].end == w[1].start));
    }
}
