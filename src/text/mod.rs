//! Text preparation: reading an input, cleaning it to prose, splitting it into sentences, and
//! packing the sentences into token-bounded chunks for the model's window.

pub mod chunk;
pub mod clean;
pub mod input;
mod normalize;
pub mod sentences;

#[cfg(test)]
mod chunk_props;

pub use crate::error::InputProblem;
pub use chunk::{Chunk, chunk};
pub use clean::{clean, source_ranges};
pub use input::{Document, Format, STDIN_NAME, read_document, read_from};
pub use sentences::sentence_ranges;

use crate::{Error, Result};

/// The cleaned text of `document`, ready to tokenise; an error when cleaning left nothing (an
/// HTML page that is all navigation, Markdown that is all images).
pub fn prepare(document: &Document) -> Result<String> {
    let text = clean(document)?;
    if text.is_empty() {
        return Err(Error::Input {
            source_name: document.name.clone(),
            problem: InputProblem::NoTextAfterCleaning,
            source: None,
        });
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_refuses_markup_without_text() {
        let document = Document {
            name: "page.html".into(),
            text: "<html><nav>Home</nav><script>x()</script></html>".into(),
            format: Format::Html,
        };
        let err = prepare(&document).expect_err("no prose");
        assert_eq!(
            err.to_string(),
            "page.html: has no text left after removing markup; nothing to summarise"
        );
    }

    #[test]
    fn prepare_returns_cleaned_text() {
        let document = Document {
            name: "a.md".into(),
            text: "# Title\r\n\r\nBody  text.".into(),
            format: Format::Markdown,
        };
        assert_eq!(prepare(&document).expect("has text"), "Title\n\nBody text.");
    }
}
