//! Sentence splitting exactly as `nltk.sent_tokenize` does in English: a port of the tokenize
//! path of NLTK 3.10's `PunktSentenceTokenizer` (nltk/tokenize/punkt.py; no training) with NLTK's
//! pre-trained English parameters. Kiss & Strunk (2006), "Unsupervised Multilingual Sentence
//! Boundary Detection", Computational Linguistics 32: 485-525.
//!
//! ```
//! use precis::eval::punkt;
//! assert_eq!(
//!     punkt::sentences("Mr. Smith went to Washington. He arrived (late.) Then?"),
//!     ["Mr. Smith went to Washington.", "He arrived (late.)", "Then?"]
//! );
//! ```
//!
//! Candidate breaks are found in the text, each is decided on the words around it, and closing
//! quotes or brackets after a break are moved onto the sentence they close. Offsets are bytes
//! where NLTK's are code points; every slice starts and ends on the same characters.

mod annotate;
mod params;
mod words;

use std::ops::Range;

use words::{is_non_word, tokenize_words};

/// Python's `str.isspace`, which `strip` and `rstrip` use: White_Space plus the four
/// information separators U+001C..U+001F.
pub(crate) fn python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// A possible sentence end (NLTK's `period_context_re` match): `.`, `?` or `!` followed by
/// punctuation that cannot be in a word, or by white space and a token.
struct EndCandidate {
    /// Byte offset of the `.`, `?` or `!`.
    at: usize,
    /// What the lookahead saw after it: the punctuation, or the white space and next token.
    after: Range<usize>,
    /// Where that next token starts, when it was white space and a token.
    next_token: Option<usize>,
}

fn end_candidates(text: &str) -> Vec<EndCandidate> {
    let mut found = Vec::new();
    for (at, c) in text.char_indices() {
        if !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let start = at + 1;
        let rest = &text[start..];
        let Some(first) = rest.chars().next() else {
            continue;
        };
        if is_non_word(first) {
            let after = start..start + first.len_utf8();
            found.push(EndCandidate {
                at,
                after,
                next_token: None,
            });
            continue;
        }
        let token_start = start + (rest.len() - rest.trim_start_matches(char::is_whitespace).len());
        let token_end = text[token_start..]
            .find(char::is_whitespace)
            .map_or(text.len(), |i| token_start + i);
        if token_start > start && token_end > token_start {
            let after = start..token_end;
            found.push(EndCandidate {
                at,
                after,
                next_token: Some(token_start),
            });
        }
    }
    found
}

/// Index of the last ASCII white space (Python's `string.whitespace`) in `text`, or 0 when there
/// is none: NLTK's `_get_last_whitespace_index`, whose 0 also stands for "at index 0".
fn last_whitespace_index(text: &str) -> usize {
    text.bytes()
        .rposition(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c'))
        .unwrap_or(0)
}

/// The candidates with the text NLTK decides them on: the word before the mark, the mark and
/// what follows it (`_match_potential_end_contexts`; its concatenation is one slice of the
/// text). A candidate whose word overlaps the next candidate's ("acting!!!") gives way to it,
/// so only the last of a run of marks is decided.
fn end_contexts(text: &str) -> Vec<(EndCandidate, &str)> {
    let mut contexts = Vec::new();
    let mut previous: Option<EndCandidate> = None;
    let mut previous_word = 0..0;
    for candidate in end_candidates(text) {
        let index = last_whitespace_index(&text[previous_word.end..candidate.at]);
        let word_start = if index != 0 {
            previous_word.end + index + 1
        } else {
            previous_word.start
        };
        if let Some(earlier) = previous.take()
            && previous_word.end <= word_start
        {
            let context = &text[previous_word.start..earlier.after.end];
            contexts.push((earlier, context));
        }
        previous_word = word_start..candidate.at;
        previous = Some(candidate);
    }
    if let Some(last) = previous {
        let context = &text[previous_word.start..last.after.end];
        contexts.push((last, context));
    }
    contexts
}

/// Whether the annotated tokens of `context` hold a sentence break before the last token.
fn contains_sentence_break(context: &str) -> bool {
    let mut tokens = tokenize_words(context);
    annotate::annotate(&mut tokens);
    let last = tokens.len().saturating_sub(1);
    tokens[..last].iter().any(|token| token.sentbreak)
}

/// Sentence spans before realignment (NLTK's `_slices_from_text`).
fn raw_spans(text: &str) -> Vec<Range<usize>> {
    let mut spans = Vec::new();
    let mut last_break = 0;
    for (candidate, context) in end_contexts(text) {
        if contains_sentence_break(context) {
            spans.push(last_break..candidate.at + 1);
            // The next sentence starts at the next token, or at the punctuation after the mark.
            last_break = candidate.next_token.unwrap_or(candidate.at + 1);
        }
    }
    spans.push(last_break..text.trim_end_matches(python_space).len());
    spans
}

/// Length of the closing quotes and brackets that open `text` and are followed by white space,
/// `--`, a line end or the end (NLTK's `re_boundary_realignment`), and the length of all that
/// the match covers, white space included.
fn closing_punctuation(text: &str) -> Option<(usize, usize)> {
    let closing = |c: char| "\"')]}\u{2018}\u{2019}\u{201c}\u{201d}\u{ab}\u{bb}".contains(c);
    let mut end = 0;
    for c in text.chars() {
        if !closing(c) {
            return None;
        }
        end += c.len_utf8();
        let rest = &text[end..];
        let space = rest.len() - rest.trim_start_matches(char::is_whitespace).len();
        if space > 0 {
            return Some((end, end + space));
        }
        if rest.is_empty() || rest.starts_with("--") {
            return Some((end, end));
        }
    }
    None
}

/// Moves closing punctuation that starts a sentence onto the sentence before it (NLTK's
/// `_realign_boundaries`), and drops the sentences left empty.
fn realign(text: &str, spans: Vec<Range<usize>>) -> Vec<Range<usize>> {
    let mut realigned = Vec::new();
    let mut shift = 0;
    let mut spans = spans.into_iter().peekable();
    while let Some(span) = spans.next() {
        let current = (span.start + shift)..span.end;
        let next_text = spans.peek().and_then(|next| text.get(next.clone()));
        match next_text.and_then(closing_punctuation) {
            Some((punctuation, matched)) => {
                let next_start = spans.peek().map_or(0, |next| next.start);
                realigned.push(current.start..next_start + punctuation);
                shift = matched;
            }
            None => {
                shift = 0;
                if current.start < current.end {
                    realigned.push(current);
                }
            }
        }
    }
    realigned
}

/// The sentences of `text`, as `nltk.sent_tokenize(text)` (English) returns them: slices of the
/// text, white space inside a sentence (line breaks too) kept, the last one without trailing
/// white space.
pub fn sentences(text: &str) -> Vec<&str> {
    // Every span lies inside the text and in order; `get` keeps that a property, not a panic.
    realign(text, raw_spans(text))
        .into_iter()
        .filter_map(|span| text.get(span))
        .collect()
}
