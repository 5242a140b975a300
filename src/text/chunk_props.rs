//! Property tests of the chunker: random texts (words, punctuation, paragraph breaks, multibyte
//! characters, long runs without spaces) under fake tokenisers that mimic SentencePiece and
//! byte-level BPE offsets, checked against the chunker's promises.

use std::collections::BTreeSet;
use std::ops::Range;

use proptest::prelude::*;

use super::chunk::{Chunk, chunk};
use super::sentences::sentence_ranges;

fn text_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z]{1,8} ",
        2 => prop_oneof![Just(". "), Just("? "), Just("! "), Just(", "), Just(".")]
            .prop_map(String::from),
        1 => prop_oneof![Just("\n"), Just("\n\n"), Just("\n \n"), Just("\t")].prop_map(String::from),
        2 => prop_oneof![Just("é"), Just("日本語"), Just("。"), Just("😀 "), Just("Ünï ")]
            .prop_map(String::from),
        1 => "[a-z日ü/:.]{20,60}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(text_piece(), 0..40).prop_map(|pieces| pieces.concat())
}

/// How a fake tokeniser cuts: up to `chars_per_token` non-space chars per token, the space before
/// a word glued to it (SentencePiece, byte-level BPE) or not, and multibyte chars as two tokens
/// with the same offsets (byte-level BPE splitting one character).
#[derive(Debug, Clone, Copy)]
struct FakeTokenizer {
    chars_per_token: usize,
    glue_space: bool,
    split_multibyte: bool,
}

fn fake_tokenizer() -> impl Strategy<Value = FakeTokenizer> {
    (1usize..4, any::<bool>(), any::<bool>()).prop_map(
        |(chars_per_token, glue_space, split_multibyte)| FakeTokenizer {
            chars_per_token,
            glue_space,
            split_multibyte,
        },
    )
}

impl FakeTokenizer {
    fn offsets(self, text: &str) -> Vec<(usize, usize)> {
        let mut tokens = Vec::new();
        let mut space_start = None;
        let mut current: Option<(usize, usize, usize)> = None; // (start, end, chars)
        for (i, c) in text.char_indices() {
            let end = i + c.len_utf8();
            if c.is_whitespace() {
                tokens.extend(current.take().map(|(s, e, _)| (s, e)));
                space_start.get_or_insert(i);
                continue;
            }
            let start = match space_start.take() {
                Some(space) if self.glue_space => space,
                _ => i,
            };
            if self.split_multibyte && c.len_utf8() > 1 {
                tokens.extend(current.take().map(|(s, e, _)| (s, e)));
                tokens.extend([(start, end), (start, end)]);
                continue;
            }
            current = match current {
                Some((s, _, n)) if n < self.chars_per_token && start == i => Some((s, end, n + 1)),
                previous => {
                    tokens.extend(previous.map(|(s, e, _)| (s, e)));
                    Some((start, end, 1))
                }
            };
        }
        tokens.extend(current.map(|(s, e, _)| (s, e)));
        tokens
    }
}

/// Oracle for sentence ownership, written independently of the chunker: a token belongs to the
/// sentence whose text proper (trailing whitespace excluded) ends after the token's start, or
/// the last one.
fn sentence_of_each_token(text: &str, offsets: &[(usize, usize)]) -> Vec<usize> {
    let sentences = sentence_ranges(text);
    let ends: Vec<usize> = sentences
        .iter()
        .map(|r| r.start + text[r.clone()].trim_end().len())
        .collect();
    offsets
        .iter()
        .map(|&(start, _)| {
            let owner = ends.iter().position(|&end| start < end);
            owner.unwrap_or(sentences.len().saturating_sub(1))
        })
        .collect()
}

fn check(text: &str, offsets: &[(usize, usize)], chunks: &[Chunk], max: usize, overlap: usize) {
    let owner = sentence_of_each_token(text, offsets);
    let sentence_size = |s: usize| owner.iter().filter(|&&o| o == s).count();
    let mut reassembled = Vec::new();
    let mut previous: Option<&Chunk> = None;
    for c in chunks {
        assert!(
            !c.tokens.is_empty() && c.tokens.len() <= max,
            "size of {c:?}"
        );
        assert_byte_span(text, offsets, c);
        // A chunk starts on a sentence start unless that sentence alone exceeds the window.
        let first = c.tokens.start;
        let opens_sentence = first == 0 || owner[first - 1] != owner[first];
        assert!(
            opens_sentence || sentence_size(owner[first]) > max,
            "mid-sentence {c:?}"
        );
        let new_from = match previous {
            Some(p) => {
                assert!(
                    c.tokens.start > p.tokens.start,
                    "no progress: {p:?} then {c:?}"
                );
                assert!(c.tokens.start <= p.tokens.end, "gap: {p:?} then {c:?}");
                let repeated = c.tokens.start..p.tokens.end;
                assert!(
                    sentences_in(&owner, repeated) <= overlap,
                    "overlap {p:?} {c:?}"
                );
                p.tokens.end
            }
            None => 0,
        };
        reassembled.extend(new_from.max(c.tokens.start)..c.tokens.end);
        previous = Some(c);
    }
    assert_eq!(reassembled, (0..offsets.len()).collect::<Vec<_>>());
}

fn sentences_in(owner: &[usize], tokens: Range<usize>) -> usize {
    owner[tokens].iter().collect::<BTreeSet<_>>().len()
}

fn assert_byte_span(text: &str, offsets: &[(usize, usize)], c: &Chunk) {
    assert!(text.is_char_boundary(c.bytes.start) && text.is_char_boundary(c.bytes.end));
    assert_eq!(c.bytes.start, offsets[c.tokens.start].0, "{c:?}");
    let furthest = offsets[c.tokens.clone()].iter().map(|&(_, end)| end).max();
    assert_eq!(Some(c.bytes.end), furthest, "{c:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn chunks_keep_every_promise(
        text in text(),
        tokenizer in fake_tokenizer(),
        max in 1usize..24,
        overlap in 0usize..4,
    ) {
        let offsets = tokenizer.offsets(&text);
        let chunks = chunk(&text, &offsets, max, overlap).expect("fake offsets are valid");
        check(&text, &offsets, &chunks, max, overlap);
    }

    #[test]
    fn a_text_that_fits_is_one_chunk(text in text(), tokenizer in fake_tokenizer()) {
        let offsets = tokenizer.offsets(&text);
        let chunks = chunk(&text, &offsets, offsets.len().max(1), 2).expect("valid");
        let expected: Vec<_> = (!offsets.is_empty()).then_some(0..offsets.len()).into_iter().collect();
        prop_assert_eq!(chunks.into_iter().map(|c| c.tokens).collect::<Vec<_>>(), expected);
    }
}
