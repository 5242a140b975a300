//! Token-bounded chunking: a pure function from the cleaned text and its token offsets to chunks
//! of whole sentences that each fit the model's window.
//!
//! The algorithm, in token-index space:
//! 1. **Sentences to token runs.** The text is split into sentences ([`sentence_ranges`]). A token
//!    belongs to the sentence containing its start offset, where the whitespace *between* two
//!    sentences counts as the start of the next one: SentencePiece (`▁word`) and byte-level BPE
//!    (`Ġword`) both glue a space to the word after it, and that word opens the next sentence.
//!    Sentences that received no token are dropped, so the runs are contiguous and cover every
//!    token.
//! 2. **Over-long sentences are cut.** A run longer than `max_tokens` is cut at token boundaries
//!    into the fewest pieces that fit, of near-equal size (so no tiny tail piece). Text without
//!    spaces or punctuation (CJK, URL lists, one endless line) is one long run and is cut here.
//!    From here on a piece counts as a sentence.
//! 3. **Greedy packing.** Each chunk takes sentences in order while the total stays within
//!    `max_tokens`. Before its first new sentence, a chunk repeats the last `overlap_sentences`
//!    sentences of the previous chunk for context, but fewer when they would not leave room for
//!    that new sentence (the limit always wins), and never all of the previous chunk's sentences
//!    (so every chunk starts later than the one before). Every chunk thus adds at least one
//!    sentence, and there are at most as many chunks as sentences.
//!
//! A chunk's `tokens` index the offsets given, so the caller feeds `ids[chunk.tokens.clone()]` to
//! the model without re-tokenising; its `bytes` run from its first token's start to the furthest
//! end among its tokens, for display and logging.

use std::ops::Range;

use super::sentences::sentence_ranges;
use crate::{Error, Result};

/// One window's worth of the text: a contiguous run of tokens and the bytes they cover.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub bytes: Range<usize>,
    pub tokens: Range<usize>,
}

/// Splits `text` into chunks of at most `max_tokens` tokens along sentence boundaries (see the
/// module docs). `token_offsets` are the byte ranges of the text's tokens in order, special tokens
/// excluded. Errors when `max_tokens` is 0 or the offsets do not fit the text.
pub fn chunk(
    text: &str,
    token_offsets: &[(usize, usize)],
    max_tokens: usize,
    overlap_sentences: usize,
) -> Result<Vec<Chunk>> {
    if max_tokens == 0 {
        return Err(Error::InvalidOption {
            option: "chunk_tokens",
            value: max_tokens.to_string(),
            expected: "at least 1 token per chunk".to_string(),
        });
    }
    check_offsets(text, token_offsets)?;
    let sentences = cut_long_runs(&sentence_token_runs(text, token_offsets), max_tokens);
    let chunks = pack(&sentences, max_tokens, overlap_sentences)
        .into_iter()
        .map(|group| {
            let tokens = sentences[group.start].start..sentences[group.end - 1].end;
            Chunk {
                bytes: byte_span(token_offsets, &tokens),
                tokens,
            }
        })
        .collect();
    Ok(chunks)
}

/// Refuses offsets the chunker cannot trust: past the text, reversed, inside a character, or
/// starting before the previous token (which would break the start-offset ordering it relies on).
fn check_offsets(text: &str, token_offsets: &[(usize, usize)]) -> Result<()> {
    let mut previous_start = 0;
    for (index, &(start, end)) in token_offsets.iter().enumerate() {
        let problem = if end > text.len() || start > end {
            Some("do not lie inside the text")
        } else if !text.is_char_boundary(start) || !text.is_char_boundary(end) {
            Some("do not fall on character boundaries")
        } else if start < previous_start {
            Some("start before the previous token")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(Error::TokenOffsets {
                index,
                start,
                end,
                problem,
            });
        }
        previous_start = start;
    }
    Ok(())
}

/// Step 1: the token-index run of each sentence that has tokens; contiguous, covering all tokens.
fn sentence_token_runs(text: &str, token_offsets: &[(usize, usize)]) -> Vec<Range<usize>> {
    let sentences = sentence_ranges(text);
    // Where sentence i + 1 begins for token ownership: at the end of sentence i's text proper,
    // so the whitespace after it goes with the next sentence.
    let cuts = sentences
        .iter()
        .take(sentences.len().saturating_sub(1))
        .map(|range| {
            let trimmed = text.get(range.clone()).unwrap_or_default().trim_end();
            range.start + trimmed.len()
        });
    let first_token_at_or_after =
        |cut: usize| token_offsets.partition_point(|&(start, _)| start < cut);
    let mut bounds = vec![0];
    bounds.extend(cuts.map(first_token_at_or_after));
    bounds.push(token_offsets.len());
    bounds
        .windows(2)
        .map(|w| w[0]..w[1])
        .filter(|run| !run.is_empty())
        .collect()
}

/// Step 2: runs longer than `max_tokens` become the fewest near-equal pieces that fit.
fn cut_long_runs(runs: &[Range<usize>], max_tokens: usize) -> Vec<Range<usize>> {
    let mut pieces = Vec::with_capacity(runs.len());
    for run in runs {
        let count = run.len().div_ceil(max_tokens);
        let (base, longer) = (run.len() / count, run.len() % count);
        let mut start = run.start;
        for i in 0..count {
            // The first `longer` pieces take one extra token; none exceeds max_tokens because
            // base < max_tokens whenever there is a remainder.
            let end = start + base + usize::from(i < longer);
            pieces.push(start..end);
            start = end;
        }
    }
    pieces
}

/// Step 3: groups of consecutive sentences (as index ranges into `sentences`), one per chunk.
fn pack(sentences: &[Range<usize>], max_tokens: usize, overlap: usize) -> Vec<Range<usize>> {
    let token_count =
        |group: Range<usize>| sentences[group.end - 1].end - sentences[group.start].start;
    let mut groups: Vec<Range<usize>> = Vec::new();
    let mut next = 0;
    while next < sentences.len() {
        let start = match groups.last() {
            Some(previous) => {
                // Keep at least one sentence of the previous chunk out, so chunks move forward.
                // Greedy packing already implies it (the previous chunk plus sentence `next` did
                // not fit), but progress should not hang on that argument alone.
                let most = overlap.min(previous.len() - 1);
                (next - most..=next)
                    .find(|&start| token_count(start..next + 1) <= max_tokens)
                    .unwrap_or(next)
            }
            None => next,
        };
        // Sentence `next` fits on its own (step 2) and the overlap left room for it.
        let mut end = next + 1;
        while end < sentences.len() && token_count(start..end + 1) <= max_tokens {
            end += 1;
        }
        groups.push(start..end);
        next = end;
    }
    groups
}

/// The bytes a run of tokens covers: first start to the furthest end (byte-level BPE can give
/// several tokens of one character the same offsets, so the last token need not end furthest).
fn byte_span(token_offsets: &[(usize, usize)], tokens: &Range<usize>) -> Range<usize> {
    let held = &token_offsets[tokens.clone()];
    let start = held.first().map_or(0, |&(start, _)| start);
    let end = held.iter().map(|&(_, end)| end).max().unwrap_or(start);
    start..end
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per whitespace-separated word, offsets without the space (like BERT).
    fn word_tokens(text: &str) -> Vec<(usize, usize)> {
        let mut tokens = Vec::new();
        let mut start = None;
        for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
            match (c.is_whitespace(), start) {
                (true, Some(s)) => {
                    tokens.push((s, i));
                    start = None;
                }
                (false, None) => start = Some(i),
                _ => {}
            }
        }
        tokens
    }

    /// One token per character, offsets including a preceding space (like SentencePiece's `▁`).
    fn char_tokens(text: &str) -> Vec<(usize, usize)> {
        let mut tokens: Vec<(usize, usize)> = Vec::new();
        let mut pending_space = None;
        for (i, c) in text.char_indices() {
            if c.is_whitespace() {
                pending_space.get_or_insert(i);
            } else {
                tokens.push((pending_space.take().unwrap_or(i), i + c.len_utf8()));
            }
        }
        tokens
    }

    fn texts<'t>(text: &'t str, chunks: &[Chunk]) -> Vec<&'t str> {
        chunks.iter().map(|c| &text[c.bytes.clone()]).collect()
    }

    #[test]
    fn empty_input_gives_no_chunks() {
        assert_eq!(chunk("", &[], 8, 1).expect("valid"), []);
        assert_eq!(chunk("   ", &[], 8, 0).expect("valid"), []);
    }

    #[test]
    fn text_of_exactly_max_tokens_is_one_chunk() {
        let text = "One two three. Four five six.";
        let chunks = chunk(text, &word_tokens(text), 6, 1).expect("valid");
        assert_eq!(
            chunks,
            [Chunk {
                bytes: 0..text.len(),
                tokens: 0..6
            }]
        );
    }

    #[test]
    fn packs_whole_sentences_greedily() {
        let text = "A b c. D e. F g h i. J.";
        let chunks = chunk(text, &word_tokens(text), 5, 0).expect("valid");
        assert_eq!(texts(text, &chunks), ["A b c. D e.", "F g h i. J."]);
    }

    #[test]
    fn repeats_overlap_sentences_when_they_fit() {
        let text = "A b. C d. E f. G h.";
        let chunks = chunk(text, &word_tokens(text), 4, 1).expect("valid");
        assert_eq!(
            texts(text, &chunks),
            ["A b. C d.", "C d. E f.", "E f. G h."]
        );
    }

    #[test]
    fn overlap_gives_way_to_the_limit() {
        // "C d e." (3 tokens) cannot be repeated before "F g." within 4 tokens.
        let text = "A. C d e. F g. H.";
        let chunks = chunk(text, &word_tokens(text), 4, 1).expect("valid");
        assert_eq!(texts(text, &chunks), ["A. C d e.", "F g. H."]);
    }

    #[test]
    fn overlap_not_smaller_than_chunk_still_progresses() {
        let text = "A b. C d. E f. G h. I j.";
        let chunks = chunk(text, &word_tokens(text), 4, 10).expect("valid");
        assert_eq!(
            texts(text, &chunks),
            ["A b. C d.", "C d. E f.", "E f. G h.", "G h. I j."]
        );
    }

    #[test]
    fn sentence_longer_than_max_is_cut_evenly_at_tokens() {
        let text = "Short. One two three four five six seven. End.";
        let chunks = chunk(text, &word_tokens(text), 4, 0).expect("valid");
        assert_eq!(
            texts(text, &chunks),
            ["Short.", "One two three four", "five six seven. End."]
        );
    }

    #[test]
    fn max_tokens_of_one_gives_one_token_per_chunk() {
        let text = "A b. C.";
        let chunks = chunk(text, &word_tokens(text), 1, 3).expect("valid");
        let tokens: Vec<_> = chunks.iter().map(|c| c.tokens.clone()).collect();
        assert_eq!(tokens, [0..1, 1..2, 2..3]);
    }

    #[test]
    fn text_without_spaces_or_punctuation_is_chunked_within_the_limit() {
        let text = "日本語のテキストには空白がありません".repeat(5);
        let tokens = char_tokens(&text);
        let chunks = chunk(&text, &tokens, 16, 1).expect("valid");
        assert!(chunks.iter().all(|c| c.tokens.len() <= 16));
        assert_eq!(chunks.last().map(|c| c.tokens.end), Some(tokens.len()));
        assert_eq!(texts(&text, &chunks).concat(), text);
    }

    #[test]
    fn space_glued_to_the_next_word_goes_with_the_next_sentence() {
        let text = "Über alles. Ça va.";
        let chunks = chunk(text, &char_tokens(text), 10, 0).expect("valid");
        assert_eq!(texts(text, &chunks), ["Über alles.", " Ça va."]);
    }

    #[test]
    fn zero_max_tokens_is_an_invalid_option() {
        let err = chunk("a", &[(0, 1)], 0, 0).expect_err("zero window");
        assert!(matches!(
            err,
            Error::InvalidOption {
                option: "chunk_tokens",
                ..
            }
        ));
    }

    #[test]
    fn refuses_offsets_that_do_not_fit_the_text() {
        let offsets_problem = |tokens: &[(usize, usize)]| match chunk("aé b", tokens, 4, 0) {
            Err(Error::TokenOffsets { problem, .. }) => problem,
            other => panic!("expected an offsets error, got {other:?}"),
        };
        assert_eq!(offsets_problem(&[(0, 9)]), "do not lie inside the text");
        assert_eq!(offsets_problem(&[(2, 1)]), "do not lie inside the text");
        assert_eq!(
            offsets_problem(&[(0, 2)]),
            "do not fall on character boundaries"
        );
        assert_eq!(
            offsets_problem(&[(4, 5), (0, 1)]),
            "start before the previous token"
        );
    }
}
