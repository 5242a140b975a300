//! The last step of cleaning, one character at a time: NFC; CRLF, CR and Unicode line separators
//! to LF; other control characters dropped; runs of horizontal whitespace to one space; lines
//! trimmed; any blank-line run to one blank line; the whole trimmed. The result has only `\n`
//! and `\n\n` as line breaks.
//!
//! Each output character is handed on with the range of input characters it came from, so that
//! positions in the cleaned text (chunk ranges) can be mapped back to the input as given. NFC
//! composes characters, so it runs on segments that start at a character nothing before it can
//! compose with (a starter that is NFC-stable): the same result as NFC of the whole text, with
//! each composed character traced to its segment.

use std::ops::Range;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

pub(super) const PARAGRAPH_BREAK: &str = "\n\n";

/// Where cleaned characters go.
pub(super) trait Sink {
    /// Whether `push` uses its `source` argument (when not, callers need not work it out).
    const WANTS_SOURCES: bool;
    /// One output character, made from the input characters `source`.
    fn push(&mut self, c: char, source: Range<usize>);
}

impl Sink for String {
    const WANTS_SOURCES: bool = false;
    fn push(&mut self, c: char, _: Range<usize>) {
        String::push(self, c);
    }
}

/// Normalises text pushed into it character by character, handing the result to a [`Sink`].
pub(super) struct Normalizer<S: Sink> {
    sink: S,
    /// The NFC segment being collected, and the input characters it came from.
    segment: Vec<char>,
    segment_source: Range<usize>,
    /// The last character was a CR, so an LF right after it ends no further line.
    after_cr: bool,
    line_has_words: bool,
    space_pending: bool,
    blank_line_pending: bool,
    wrote_any: bool,
}

impl<S: Sink> Normalizer<S> {
    pub(super) fn new(sink: S) -> Self {
        Self {
            sink,
            segment: Vec::new(),
            segment_source: 0..0,
            after_cr: false,
            line_has_words: false,
            space_pending: false,
            blank_line_pending: false,
            wrote_any: false,
        }
    }

    /// One character of the text, made from the input characters `source`.
    pub(super) fn push(&mut self, c: char, source: Range<usize>) {
        if starts_nfc_segment(c) {
            self.flush_segment();
        }
        if self.segment.is_empty() {
            self.segment_source = source;
        } else {
            self.segment_source.start = self.segment_source.start.min(source.start);
            self.segment_source.end = self.segment_source.end.max(source.end);
        }
        self.segment.push(c);
    }

    /// Every character of `text`, all made from the input characters `source`.
    pub(super) fn push_str(&mut self, text: &str, source: Range<usize>) {
        for c in text.chars() {
            self.push(c, source.clone());
        }
    }

    /// Ends the text and returns the sink.
    pub(super) fn finish(mut self) -> S {
        self.flush_segment();
        self.sink
    }

    fn flush_segment(&mut self) {
        let source = self.segment_source.clone();
        match self.segment[..] {
            [] => return,
            [c] if c.is_ascii() => self.unify_line_breaks(c, source),
            _ => {
                let segment = std::mem::take(&mut self.segment);
                for c in segment.iter().copied().nfc() {
                    self.unify_line_breaks(c, source.clone());
                }
                self.segment = segment; // keep the allocation
            }
        }
        self.segment.clear();
    }

    /// One LF per line break whatever the convention; control characters other than LF and tab
    /// dropped.
    fn unify_line_breaks(&mut self, c: char, source: Range<usize>) {
        let after_cr = std::mem::replace(&mut self.after_cr, c == '\r');
        match c {
            '\n' if after_cr => {} // the CR before it already ended the line
            // Vertical tab, form feed and NEL end a line in the texts that use them.
            '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' => self.lay_out('\n', source),
            '\u{2029}' => {
                self.lay_out('\n', source.clone());
                self.lay_out('\n', source);
            }
            '\n' | '\t' => self.lay_out(c, source),
            c if c.is_control() => {}
            c => self.lay_out(c, source),
        }
    }

    /// Words of a line joined by one space, lines by `\n`, paragraphs (a blank line between)
    /// by `\n\n`; nothing before the first word or after the last.
    fn lay_out(&mut self, c: char, source: Range<usize>) {
        if c == '\n' {
            self.blank_line_pending |= !self.line_has_words;
            self.line_has_words = false;
            self.space_pending = false;
            return;
        }
        if c.is_whitespace() {
            self.space_pending = self.line_has_words;
            return;
        }
        // Separators are placed where the word after them starts.
        let here = source.start..source.start;
        if !self.line_has_words {
            if self.wrote_any {
                let separator = if self.blank_line_pending {
                    PARAGRAPH_BREAK
                } else {
                    "\n"
                };
                for s in separator.chars() {
                    self.sink.push(s, here.clone());
                }
            }
            self.blank_line_pending = false;
        } else if self.space_pending {
            self.sink.push(' ', here);
        }
        self.sink.push(c, source);
        self.line_has_words = true;
        self.space_pending = false;
        self.wrote_any = true;
    }
}

/// Whether NFC can never compose `c` with what comes before it, so that normalising the text
/// before `c` and from `c` on separately gives NFC of the whole (ICU's "composition boundary
/// before": a starter whose NFC quick check is Yes).
fn starts_nfc_segment(c: char) -> bool {
    c.is_ascii()
        || (canonical_combining_class(c) == 0
            && is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes)
}

/// [`Normalizer`] over a whole string, without sources.
pub(super) fn normalize(text: &str) -> String {
    let mut normalizer = Normalizer::new(String::with_capacity(text.len()));
    for c in text.chars() {
        normalizer.push(c, 0..0);
    }
    normalizer.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the normaliser must give: NFC of the whole text first, then the layout rules,
    /// written the direct way.
    fn reference(text: &str) -> String {
        let unified: String = {
            let mut out = String::new();
            let mut chars = text.nfc().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '\r' if chars.peek() == Some(&'\n') => {}
                    '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' => out.push('\n'),
                    '\u{2029}' => out.push_str("\n\n"),
                    '\n' | '\t' => out.push(c),
                    c if c.is_control() => {}
                    c => out.push(c),
                }
            }
            out
        };
        let mut paragraphs: Vec<Vec<String>> = vec![Vec::new()];
        for line in unified.split('\n') {
            let words: Vec<&str> = line.split_whitespace().collect();
            if words.is_empty() {
                paragraphs.push(Vec::new());
            } else {
                paragraphs.last_mut().unwrap().push(words.join(" "));
            }
        }
        paragraphs
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| p.join("\n"))
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    fn messy_text() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            4 => "[a-zA-Z]{1,6}",
            3 => prop_oneof![Just(" "), Just("  "), Just("\t"), Just("\u{a0}")].prop_map(String::from),
            2 => prop_oneof![Just("\n"), Just("\r\n"), Just("\r"), Just("\n \n"), Just("\u{2029}"),
                Just("\u{0C}"), Just("\u{85}"), Just("\u{2028}")].prop_map(String::from),
            // Combining marks, Hangul jamo that compose, a singleton decomposition, controls.
            2 => prop_oneof![Just("e\u{301}"), Just("\u{301}"), Just("a\u{328}\u{301}"),
                Just("\u{1100}\u{1161}\u{11A8}"), Just("\u{1161}"), Just("\u{212B}"),
                Just("\u{0F73}"), Just("\u{7}"), Just("\u{1B}"), Just("é"), Just("日本")]
                .prop_map(String::from),
        ];
        prop::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
    }

    proptest! {
        #[test]
        fn matches_whole_text_nfc_and_layout(text in messy_text()) {
            prop_assert_eq!(normalize(&text), reference(&text));
        }
    }

    #[test]
    fn composes_across_segments_only_where_nfc_does() {
        // A combining acute after "e" composes; Hangul L+V+T composes into one syllable.
        assert_eq!(normalize("cafe\u{301}"), "caf\u{e9}");
        assert_eq!(normalize("\u{1100}\u{1161}\u{11A8}"), "\u{AC01}");
    }

    /// Records every output character's source.
    impl Sink for Vec<(char, Range<usize>)> {
        const WANTS_SOURCES: bool = true;
        fn push(&mut self, c: char, source: Range<usize>) {
            Vec::push(self, (c, source));
        }
    }

    #[test]
    fn each_output_character_names_the_input_characters_it_came_from() {
        let mut normalizer = Normalizer::new(Vec::new());
        for (i, c) in "  ab\r\n\r\ne\u{301}x".chars().enumerate() {
            normalizer.push(c, i..i + 1);
        }
        let out = normalizer.finish();
        let text: String = out.iter().map(|(c, _)| c).collect();
        assert_eq!(text, "ab\n\n\u{e9}x");
        let sources: Vec<Range<usize>> = out.into_iter().map(|(_, s)| s).collect();
        // "a" "b", the paragraph break placed where "é" starts, "é" from "e" + U+0301, "x".
        assert_eq!(sources, [2..3, 3..4, 8..8, 8..8, 8..10, 10..11]);
    }
}
