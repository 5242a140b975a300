//! Cleaning a [`Document`] into the plain prose the model reads: markup removed, Unicode in NFC,
//! control characters dropped, whitespace normalised, and paragraph breaks kept as blank lines
//! because they are sentence boundaries for chunking.
//!
//! - HTML goes through `html2text` (html5ever's parser): `script`/`style` are dropped by it, and
//!   `nav`, `header`, `footer` and `aside` by a `display: none` rule, because site chrome is not
//!   article text. Links keep their text and lose their URL; list bullets, heading markers and
//!   table borders are not drawn; every block (even a `<br>` line) is a paragraph of its own.
//! - Markdown is rendered to text with `pulldown-cmark`: heading `#`s, emphasis markers, link URLs,
//!   images, raw HTML and YAML front matter are dropped; every block (paragraph, heading, list
//!   item, table row, code block) ends in a paragraph break. Code is kept as text.
//! - Plain text is only normalised (see `normalize`).
//!
//! For plain text and Markdown, [`source_ranges`] maps positions in the cleaned text back to the
//! input as given.

use std::collections::HashMap;
use std::ops::Range;

use html2text::render::TrivialDecorator;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};

use super::input::{Document, Format};
use super::normalize::{Normalizer, PARAGRAPH_BREAK, Sink, normalize};
use crate::{Error, Result};

/// Elements whose content is site furniture rather than the article.
const HIDDEN_HTML: &str = "nav, header, footer, aside { display: none; }";

/// html2text wraps lines at a width; one this wide never wraps real prose, so a hard-wrapped
/// line cannot split a sentence. (Its buffers do not grow with the width.)
const HTML_LINE_WIDTH: usize = 1 << 20;

/// The cleaned text of a document; may be empty when the markup held no text.
pub fn clean(document: &Document) -> Result<String> {
    match document.format {
        Format::Html => Ok(normalize(&html_to_text(&document.name, &document.text)?)),
        Format::Plain | Format::Markdown => Ok(clean_traced(document, String::new())),
    }
}

/// Where character ranges of the cleaned text (`clean(document)`) lie in the document's own
/// text, in characters: each range widened to whole input characters (a composed "é" from
/// "e" + U+0301 maps to both), with the whitespace, markup and control characters that
/// cleaning removed inside it. `None` for HTML, whose text html2text renders without telling
/// where each character came from.
pub fn source_ranges(
    document: &Document,
    ranges: &[(usize, usize)],
) -> Option<Vec<(usize, usize)>> {
    if document.format == Format::Html {
        return None;
    }
    let mut wanted = HashMap::new();
    for &(start, end) in ranges {
        wanted.insert(start, 0..0);
        wanted.insert(end.saturating_sub(1), 0..0);
    }
    let found = clean_traced(document, Tracer { at: 0, wanted }).wanted;
    let source = |index: usize| found.get(&index).cloned().unwrap_or(0..0);
    let mapped = ranges
        .iter()
        .map(|&(start, end)| {
            let last = source(end.saturating_sub(1));
            (source(start).start, last.end.max(source(start).start))
        })
        .collect();
    Some(mapped)
}

/// Records the sources of the output characters at the wanted indices.
struct Tracer {
    at: usize,
    wanted: HashMap<usize, Range<usize>>,
}

impl Sink for Tracer {
    const WANTS_SOURCES: bool = true;
    fn push(&mut self, _: char, source: Range<usize>) {
        if let Some(slot) = self.wanted.get_mut(&self.at) {
            *slot = source;
        }
        self.at += 1;
    }
}

/// Plain text or Markdown cleaned into `sink`, each character with its source characters.
fn clean_traced<S: Sink>(document: &Document, sink: S) -> S {
    let mut normalizer = Normalizer::new(sink);
    match document.format {
        Format::Markdown => markdown_to_text(&document.text, &mut normalizer),
        _ if S::WANTS_SOURCES => {
            for (i, c) in document.text.chars().enumerate() {
                normalizer.push(c, i..i + 1);
            }
        }
        _ => normalizer.push_str(&document.text, 0..0),
    }
    normalizer.finish()
}

/// Renders HTML as unwrapped, undecorated text with blank lines between blocks.
///
/// Nothing is wrapped, so every line html2text writes is a block of its own (a paragraph, list
/// item, table cell, `<br>` line), though it separates some with a single newline only: each
/// becomes a paragraph break so that it is a sentence boundary, as in Markdown.
pub fn html_to_text(source_name: &str, html: &str) -> Result<String> {
    let html_error = |source| Error::HtmlToText {
        source_name: source_name.to_string(),
        source,
    };
    html2text::config::with_decorator(TrivialDecorator::new())
        .add_css(HIDDEN_HTML)
        .map_err(html_error)?
        // Raw mode reads tables cell by cell instead of laying out columns.
        .raw_mode(true)
        .allow_width_overflow()
        .string_from_read(html.as_bytes(), HTML_LINE_WIDTH)
        .map(|text| text.replace('\n', PARAGRAPH_BREAK))
        .map_err(html_error)
}

/// Renders CommonMark (with tables, footnotes and front matter recognised) as plain text into
/// `out`, each piece with the Markdown characters it came from.
fn markdown_to_text<S: Sink>(markdown: &str, out: &mut Normalizer<S>) {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut chars = CharIndex::default();
    // Inside an image or front matter, text is not prose: count how deep we are in either.
    let mut skipped_depth = 0usize;
    for (event, bytes) in Parser::new_ext(markdown, options).into_offset_iter() {
        // Separators need no source: the normaliser places each at the next word's start.
        let here = 0..0;
        match event {
            Event::Start(Tag::Image { .. } | Tag::MetadataBlock(_)) => skipped_depth += 1,
            Event::End(TagEnd::Image | TagEnd::MetadataBlock(_)) => {
                skipped_depth = skipped_depth.saturating_sub(1)
            }
            _ if skipped_depth > 0 => {}
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                push_traced(markdown, &t, bytes, &mut chars, out)
            }
            Event::SoftBreak => out.push(' ', here),
            Event::HardBreak => out.push('\n', here),
            Event::Rule => out.push_str(PARAGRAPH_BREAK, here),
            Event::End(TagEnd::TableCell) => out.push(' ', here),
            Event::End(end) if ends_block(&end) => out.push_str(PARAGRAPH_BREAK, here),
            _ => {}
        }
    }
}

/// The text of one Markdown event, from the source bytes `bytes`: character by character where
/// the text appears verbatim there, else every character from the whole span (an entity, an
/// escape).
fn push_traced<S: Sink>(
    markdown: &str,
    text: &str,
    bytes: Range<usize>,
    chars: &mut CharIndex,
    out: &mut Normalizer<S>,
) {
    if !S::WANTS_SOURCES {
        return out.push_str(text, 0..0);
    }
    match markdown[bytes.clone()].find(text) {
        Some(offset) => {
            let first = chars.of(markdown, bytes.start + offset);
            for (i, c) in text.chars().enumerate() {
                out.push(c, first + i..first + i + 1);
            }
        }
        None => {
            let span = chars.of(markdown, bytes.start)..chars.of(markdown, bytes.end);
            out.push_str(text, span);
        }
    }
}

/// Character index of byte offsets, counted from the last offset asked (Markdown events come
/// nearly in source order, so the counting stays about linear in the text).
#[derive(Default)]
struct CharIndex {
    byte: usize,
    char: usize,
}

impl CharIndex {
    fn of(&mut self, text: &str, byte: usize) -> usize {
        if byte >= self.byte {
            self.char += text[self.byte..byte].chars().count();
        } else {
            self.char -= text[byte..self.byte].chars().count();
        }
        self.byte = byte;
        self.char
    }
}

fn ends_block(end: &TagEnd) -> bool {
    matches!(
        end,
        TagEnd::Paragraph
            | TagEnd::Heading(_)
            | TagEnd::BlockQuote(_)
            | TagEnd::CodeBlock
            | TagEnd::List(_)
            | TagEnd::Item
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::TableHead
            | TagEnd::TableRow
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(format: Format, text: &str) -> Document {
        Document {
            name: "t".into(),
            text: text.into(),
            format,
        }
    }

    #[test]
    fn normalizes_whitespace_and_paragraphs() {
        let text = "  One \t two\r\nthree.\r\n\r\n\r\n\r\nFour  \n \t \nfive\u{2029}six \n\n";
        assert_eq!(normalize(text), "One two\nthree.\n\nFour\n\nfive\n\nsix");
    }

    #[test]
    fn drops_control_characters_but_keeps_layout() {
        assert_eq!(normalize("a\u{7}b\u{1B}[0mc\u{0C}d\u{9F}e"), "ab[0mc\nde");
    }

    #[test]
    fn composes_to_nfc() {
        assert_eq!(normalize("cafe\u{301}"), "caf\u{e9}");
    }

    #[test]
    fn whitespace_only_cleans_to_empty() {
        assert_eq!(normalize(" \n\t\r\n \u{a0}"), "");
    }

    #[test]
    fn html_drops_chrome_scripts_and_styles_and_keeps_paragraphs() {
        let html = "<!DOCTYPE html><html><head><title>T</title><style>p{color:red}</style>\
            <script>var x = 1;</script></head><body><header>Site name</header>\
            <nav><a href='/'>Home</a></nav><article><h1>Headline</h1>\
            <p>First <a href='https://e.x/'>linked</a> para.</p><p>Second&nbsp;para.</p>\
            <ul><li>item one</li><li>item two</li></ul></article>\
            <aside>Related</aside><footer>Copyright</footer></body></html>";
        let text = clean(&doc(Format::Html, html)).expect("valid html");
        assert_eq!(
            text,
            "Headline\n\nFirst linked para.\n\nSecond para.\n\nitem one\n\nitem two"
        );
    }

    #[test]
    fn html_long_paragraph_is_not_wrapped() {
        let sentence = "word ".repeat(2000);
        let text = clean(&doc(Format::Html, &format!("<p>{sentence}</p>"))).expect("valid");
        assert!(!text.contains('\n'));
    }

    #[test]
    fn markdown_keeps_text_and_drops_markup() {
        let markdown = "---\ntitle: x\n---\n# Heading\n\nSome *emphasis* and a \
            [link](https://e.x/) and `code`\nsoft wrapped. ![alt](i.png)\n\n\
            - one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<div>raw</div>\n";
        let text = clean(&doc(Format::Markdown, markdown)).expect("markdown never fails");
        assert_eq!(
            text,
            "Heading\n\nSome emphasis and a link and code soft wrapped.\n\none\n\ntwo\n\na b\n\n1 2"
        );
    }

    #[test]
    fn plain_text_is_only_normalized() {
        let text = clean(&doc(Format::Plain, "# not a heading\r\n<b>kept</b>")).expect("plain");
        assert_eq!(text, "# not a heading\n<b>kept</b>");
    }

    /// The input text of each cleaned range, as `source_ranges` maps it.
    fn sources(document: &Document, ranges: &[(usize, usize)]) -> Vec<String> {
        let chars: Vec<char> = document.text.chars().collect();
        source_ranges(document, ranges)
            .expect("plain text and Markdown map")
            .into_iter()
            .map(|(start, end)| chars[start..end].iter().collect())
            .collect()
    }

    #[test]
    fn plain_text_ranges_map_back_past_removed_whitespace() {
        let document = doc(
            Format::Plain,
            "\n   First  one.\r\n\r\n\tSecond\u{7} one.  ",
        );
        let cleaned = clean(&document).unwrap();
        assert_eq!(cleaned, "First one.\n\nSecond one.");
        // "First one." is chars 0..10 of the cleaned text, "Second one." 12..23.
        assert_eq!(
            sources(&document, &[(0, 10), (12, 23), (0, 23)]),
            [
                "First  one.",
                "Second\u{7} one.",
                "First  one.\r\n\r\n\tSecond\u{7} one."
            ]
        );
    }

    #[test]
    fn composed_characters_map_to_all_their_input_characters() {
        let document = doc(Format::Plain, "  cafe\u{301} au lait");
        assert_eq!(clean(&document).unwrap(), "caf\u{e9} au lait");
        assert_eq!(
            sources(&document, &[(3, 4), (0, 4)]),
            ["e\u{301}", "cafe\u{301}"]
        );
    }

    #[test]
    fn markdown_ranges_map_back_to_the_markdown_source() {
        let markdown = "# Title here\n\nSome *emphasis*   and &amp; a [link](https://e.x/).\n";
        let document = doc(Format::Markdown, markdown);
        let cleaned = clean(&document).unwrap();
        assert_eq!(cleaned, "Title here\n\nSome emphasis and & a link.");
        let range = |needle: &str| {
            let start = cleaned.find(needle).unwrap();
            let chars = |b: usize| cleaned[..b].chars().count();
            (chars(start), chars(start + needle.len()))
        };
        assert_eq!(
            sources(
                &document,
                &[range("Title here"), range("Some emphasis and & a link.")]
            ),
            [
                "Title here",
                "Some *emphasis*   and &amp; a [link](https://e.x/)."
            ]
        );
    }

    #[test]
    fn html_ranges_are_not_mapped() {
        let document = doc(Format::Html, "<p>One.</p>");
        assert_eq!(source_ranges(&document, &[(0, 4)]), None);
    }
}
