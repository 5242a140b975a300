//! The library's one error type. Every variant says what went wrong and with what, and keeps
//! the underlying error as its source instead of flattening it into a string.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("tensor computation failed")]
    Candle(#[from] candle_core::Error),

    #[error("tokenizer failed")]
    Tokenizer(#[source] tokenizers::Error),

    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("invalid {path}: {problem}", path = path.display())]
    InvalidFile { path: PathBuf, problem: String },

    #[error("model '{model}' has no {file}; {hint}")]
    MissingModelFile {
        model: String,
        file: String,
        hint: String,
    },

    #[error("cannot download model '{model}' from the Hugging Face Hub: {problem}")]
    Download { model: String, problem: String },

    #[error("unsupported model architecture '{0}'")]
    UnsupportedArchitecture(String),

    #[error("invalid value for {option}: {value} ({expected})")]
    InvalidOption {
        option: &'static str,
        value: String,
        expected: String,
    },

    #[error("{source_name}: {problem}")]
    BadInput {
        source_name: String,
        problem: String,
    },

    #[error("device '{0}' is not available: {1}")]
    Device(String, String),

    /// One input article could not be used. `problem` says why in words and lets the CLI tell
    /// usage errors (a path that names no file) from failures of a real file.
    #[error("{source_name}: {problem}")]
    Input {
        source_name: String,
        problem: crate::text::InputProblem,
        #[source]
        source: Option<std::io::Error>,
    },

    #[error("{source_name}: cannot convert the HTML to text")]
    HtmlToText {
        source_name: String,
        #[source]
        source: html2text::Error,
    },

    #[error(
        "the tokenizer gave token {index} the byte offsets {start}..{end}, which {problem}; \
         the tokenizer's offsets do not belong to the text being chunked"
    )]
    TokenOffsets {
        index: usize,
        start: usize,
        end: usize,
        problem: &'static str,
    },
}

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Error::Tokenizer(e)
    }
}
