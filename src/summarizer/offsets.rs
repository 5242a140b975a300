//! Token offsets of a whole article, for chunking, with memory bounded by the block size.
//!
//! The tokenizers crate keeps several words of bookkeeping per input byte while it encodes
//! (alignments, token strings, word ids), so one `encode` of a 10 MB article peaks at several
//! hundred MB. Encoding blocks of at most `BLOCK_BYTES` and keeping only the byte offsets
//! bounds that. Blocks are cut just before whitespace, so every word keeps the leading space
//! that SentencePiece and byte-level BPE attach to it and the tokens match a whole-text encode
//! except, rarely, right at a cut.

use super::Summarizer;
use crate::Result;

const BLOCK_BYTES: usize = 64 * 1024;

/// Where to end the block that starts at `start`: at most `max` bytes on, just before a
/// whitespace character when there is one, never inside a character.
fn block_end(text: &str, start: usize, max: usize) -> usize {
    if text.len() - start <= max {
        return text.len();
    }
    let mut limit = start + max;
    while !text.is_char_boundary(limit) {
        limit -= 1;
    }
    match text[start..limit].rfind(char::is_whitespace) {
        Some(at) if at > 0 => start + at,
        // One endless word: cut anywhere (on a character boundary).
        _ => limit,
    }
}

impl Summarizer {
    /// Byte offsets in `text` of each of its tokens (no prefix, no special tokens).
    pub(super) fn token_offsets(&self, text: &str) -> Result<Vec<(usize, usize)>> {
        let mut offsets = Vec::new();
        let mut start = 0;
        while start < text.len() {
            let end = block_end(text, start, BLOCK_BYTES);
            let encoding = self.loaded().tokenizer.encode(&text[start..end], false)?;
            offsets.extend(
                encoding
                    .get_offsets()
                    .iter()
                    .map(|&(a, b)| (a + start, b + start)),
            );
            start = end;
        }
        Ok(offsets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_end_before_whitespace_and_on_char_boundaries() {
        let text = "alpha beta gamma";
        assert_eq!(block_end(text, 0, 100), text.len());
        assert_eq!(block_end(text, 0, 12), 10); // before the space ahead of "gamma"
        assert_eq!(&text[10..], " gamma");
        let endless = "ééééé";
        let end = block_end(endless, 0, 5);
        assert!(endless.is_char_boundary(end) && end > 0 && end <= 5);
    }

    #[test]
    fn blocks_cover_the_text_in_order() {
        let text = "word ".repeat(50);
        let mut start = 0;
        let mut pieces = Vec::new();
        while start < text.len() {
            let end = block_end(&text, start, 17);
            assert!(end > start);
            pieces.push(&text[start..end]);
            start = end;
        }
        assert_eq!(pieces.concat(), text);
    }
}
