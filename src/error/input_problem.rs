//! Why one input article cannot be used: the detail of [`Error::Input`](super::Error::Input),
//! in words that say what to do about it.

use std::fmt;

/// Why an input cannot be used; the message of an [`Error::Input`](super::Error::Input).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputProblem {
    NotFound,
    IsDirectory,
    PermissionDenied,
    /// Any other I/O failure; the `io::Error` is the error's source.
    ReadFailed,
    /// `size` is `None` when the input is a stream whose length is only known to exceed `limit`.
    TooLarge {
        size: Option<u64>,
        limit: u64,
    },
    /// `nul_at` is the offset of the first NUL byte, `None` when most bytes are simply not text.
    Binary {
        nul_at: Option<usize>,
    },
    Utf16,
    /// `offset` counts bytes from the start of the input, byte-order mark included.
    InvalidUtf8 {
        offset: usize,
        byte: u8,
    },
    Empty,
    /// There was markup but no prose, e.g. an HTML page whose text is all navigation.
    NoTextAfterCleaning,
}

impl InputProblem {
    /// True when the argument itself is wrong (it names no readable file): the CLI reports
    /// these as usage errors. Everything else is a failure of an input that exists.
    pub fn is_usage_error(&self) -> bool {
        matches!(self, InputProblem::NotFound | InputProblem::IsDirectory)
    }
}

impl fmt::Display for InputProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ICONV: &str = "convert it to UTF-8 first, e.g. with `iconv -f LATIN1 -t UTF-8`";
        match self {
            InputProblem::NotFound => write!(f, "no such file; check the path (use - for stdin)"),
            InputProblem::IsDirectory => write!(f, "is a directory; give a file inside it"),
            InputProblem::PermissionDenied => {
                write!(f, "permission denied; check that you may read the file")
            }
            InputProblem::ReadFailed => write!(f, "reading failed"),
            InputProblem::TooLarge {
                size: Some(size),
                limit,
            } => write!(
                f,
                "is {size} bytes, over the input limit of {limit} bytes; \
                 raise the limit or split the file"
            ),
            InputProblem::TooLarge { size: None, limit } => write!(
                f,
                "is over the input limit of {limit} bytes; raise the limit or split the input"
            ),
            InputProblem::Binary {
                nul_at: Some(offset),
            } => write!(
                f,
                "looks like a binary file (NUL byte at offset {offset}); \
                 give plain text, Markdown or HTML"
            ),
            InputProblem::Binary { nul_at: None } => write!(
                f,
                "looks like a binary file (most of its first bytes are not UTF-8 text); \
                 if it is text in another encoding, {ICONV}"
            ),
            InputProblem::Utf16 => write!(
                f,
                "is UTF-16 text; convert it to UTF-8 first, e.g. with `iconv -f UTF-16 -t UTF-8`"
            ),
            InputProblem::InvalidUtf8 { offset, byte } => write!(
                f,
                "is not valid UTF-8 (byte 0x{byte:02X} at offset {offset}); {ICONV}"
            ),
            InputProblem::Empty => write!(f, "is empty or only whitespace; nothing to summarise"),
            InputProblem::NoTextAfterCleaning => write!(
                f,
                "has no text left after removing markup; nothing to summarise"
            ),
        }
    }
}
