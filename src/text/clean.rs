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
//! - Plain text is only normalised.

use std::borrow::Cow;

use html2text::render::TrivialDecorator;
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use unicode_normalization::UnicodeNormalization;

use super::input::{Document, Format};
use crate::{Error, Result};

/// Elements whose content is site furniture rather than the article.
const HIDDEN_HTML: &str = "nav, header, footer, aside { display: none; }";

/// html2text wraps lines at a width; one this wide never wraps real prose, so a hard-wrapped
/// line cannot split a sentence. (Its buffers do not grow with the width.)
const HTML_LINE_WIDTH: usize = 1 << 20;

const PARAGRAPH_BREAK: &str = "\n\n";

/// The cleaned text of a document; may be empty when the markup held no text.
pub fn clean(document: &Document) -> Result<String> {
    let text = match document.format {
        Format::Plain => Cow::Borrowed(document.text.as_str()),
        Format::Markdown => Cow::Owned(markdown_to_text(&document.text)),
        Format::Html => Cow::Owned(html_to_text(&document.name, &document.text)?),
    };
    Ok(normalize(&text))
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

/// Renders CommonMark (with tables, footnotes and front matter recognised) as plain text.
pub fn markdown_to_text(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_YAML_STYLE_METADATA_BLOCKS;
    let mut text = String::with_capacity(markdown.len());
    // Inside an image or front matter, text is not prose: count how deep we are in either.
    let mut skipped_depth = 0usize;
    for event in Parser::new_ext(markdown, options) {
        match event {
            Event::Start(Tag::Image { .. } | Tag::MetadataBlock(_)) => skipped_depth += 1,
            Event::End(TagEnd::Image | TagEnd::MetadataBlock(_)) => {
                skipped_depth = skipped_depth.saturating_sub(1)
            }
            _ if skipped_depth > 0 => {}
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => {
                text.push_str(&t)
            }
            Event::SoftBreak => text.push(' '),
            Event::HardBreak => text.push('\n'),
            Event::Rule => text.push_str(PARAGRAPH_BREAK),
            Event::End(TagEnd::TableCell) => text.push(' '),
            Event::End(end) if ends_block(&end) => text.push_str(PARAGRAPH_BREAK),
            _ => {}
        }
    }
    text
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

/// NFC; CRLF, CR and Unicode line separators to LF; other control characters dropped; runs of
/// horizontal whitespace to one space; lines trimmed; any blank-line run to one blank line;
/// the whole trimmed. The result has only `\n` and `\n\n` as line breaks.
pub fn normalize(text: &str) -> String {
    let unified = unify_line_breaks(text);
    let mut out = String::with_capacity(unified.len());
    let mut blank_lines_pending = false;
    for line in unified.split('\n') {
        let mut words = line.split_whitespace().peekable();
        if words.peek().is_none() {
            blank_lines_pending = true;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_lines_pending {
                PARAGRAPH_BREAK
            } else {
                "\n"
            });
        }
        blank_lines_pending = false;
        for (i, word) in words.enumerate() {
            if i > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    out
}

/// NFC-normalised text whose only line break is `\n` and which has no control characters
/// besides `\n` and `\t`.
fn unify_line_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.nfc().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            // Vertical tab, form feed and NEL end a line in the texts that use them.
            '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' => out.push('\n'),
            '\u{2029}' => out.push_str(PARAGRAPH_BREAK),
            '\n' | '\t' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
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
}
