//! Reading one input article from a file or standard input into a [`Document`], refusing what is
//! not usable text (missing, a directory, binary, not UTF-8, empty, too large) with a one-line
//! reason that names the input.

use std::fs;
use std::io::{self, Read};
use std::path::Path;

use crate::error::InputProblem;
use crate::{Error, Result};

/// The name a [`Document`] read from standard input carries in messages.
pub const STDIN_NAME: &str = "<stdin>";

/// How many leading bytes decide whether content "looks binary" (as git and ripgrep do, a sample
/// is enough and keeps the check cheap on large files).
const SNIFF_BYTES: usize = 8 * 1024;

/// Above this share of non-text bytes in the sample, the input is called binary rather than
/// text in another encoding: Latin-1 prose has a few percent, images and archives far more.
const MAX_NON_TEXT_PERCENT: usize = 30;

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The markup an input is written in, which decides how it is cleaned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Plain,
    Markdown,
    Html,
}

impl Format {
    /// The format a file extension names, or `None` when the extension says nothing.
    pub fn from_extension(path: &Path) -> Option<Format> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "html" | "htm" | "xhtml" => Some(Format::Html),
            "md" | "markdown" => Some(Format::Markdown),
            "txt" | "text" => Some(Format::Plain),
            _ => None,
        }
    }

    /// Html when the text opens with `<!DOCTYPE html` or `<html` (after whitespace), else Plain.
    pub fn sniff(text: &str) -> Format {
        let head: String = text.trim_start().chars().take(16).collect();
        let head = head.to_ascii_lowercase();
        if head.starts_with("<!doctype html") || head.starts_with("<html") {
            Format::Html
        } else {
            Format::Plain
        }
    }
}

/// One input article as read: its name for messages, its text, and its markup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The path as given, or [`STDIN_NAME`].
    pub name: String,
    /// The whole content, valid UTF-8 without a byte-order mark.
    pub text: String,
    pub format: Format,
}

/// Reads the input a command-line argument names: a file path, or `-` for standard input.
/// With `max_bytes`, a larger input is refused before it is read whole.
pub fn read_document(input: &Path, max_bytes: Option<u64>) -> Result<Document> {
    if input == Path::new("-") {
        return read_from(STDIN_NAME, io::stdin().lock(), max_bytes, None);
    }
    let name = input.display().to_string();
    let io_error = |source: io::Error| input_io_error(&name, source);
    let metadata = fs::metadata(input).map_err(io_error)?;
    if metadata.is_dir() {
        return Err(input_error(&name, InputProblem::IsDirectory));
    }
    // Special files (pipes, /dev/stdin) report length 0, so `read_from` checks the limit again.
    if let Some(limit) = max_bytes.filter(|&limit| metadata.len() > limit) {
        let size = Some(metadata.len());
        return Err(input_error(&name, InputProblem::TooLarge { size, limit }));
    }
    let file = fs::File::open(input).map_err(io_error)?;
    read_from(&name, file, max_bytes, Format::from_extension(input))
}

/// Reads a whole stream (standard input, a file, test data) into a [`Document`] named `name`.
/// `format` is what the name's extension says, if anything; without it the content is sniffed.
pub fn read_from(
    name: &str,
    reader: impl Read,
    max_bytes: Option<u64>,
    format: Option<Format>,
) -> Result<Document> {
    let mut bytes = Vec::new();
    let read = match max_bytes {
        // One byte past the limit is enough to know the limit is exceeded.
        Some(limit) => reader.take(limit.saturating_add(1)).read_to_end(&mut bytes),
        None => {
            let mut reader = reader;
            reader.read_to_end(&mut bytes)
        }
    };
    read.map_err(|source| input_io_error(name, source))?;
    if let Some(limit) = max_bytes.filter(|&limit| bytes.len() as u64 > limit) {
        return Err(input_error(
            name,
            InputProblem::TooLarge { size: None, limit },
        ));
    }
    Document::from_bytes(name, bytes, format)
}

impl Document {
    /// Checks raw content and turns it into a document: refuses binary, UTF-16, invalid UTF-8
    /// and blank content, strips a UTF-8 byte-order mark, and sniffs the format if not given.
    pub fn from_bytes(name: &str, bytes: Vec<u8>, format: Option<Format>) -> Result<Document> {
        if let Some(problem) = content_problem(&bytes) {
            return Err(input_error(name, problem));
        }
        let bom = if bytes.starts_with(UTF8_BOM) {
            UTF8_BOM.len()
        } else {
            0
        };
        let mut bytes = bytes;
        bytes.drain(..bom);
        let text = String::from_utf8(bytes).map_err(|error| {
            let offset = error.utf8_error().valid_up_to();
            // The decoder stopped at `offset`, so a byte is there; 0 only keeps this panic-free.
            let byte = error.as_bytes().get(offset).copied().unwrap_or(0);
            input_error(
                name,
                InputProblem::InvalidUtf8 {
                    offset: bom + offset,
                    byte,
                },
            )
        })?;
        if text.trim().is_empty() {
            return Err(input_error(name, InputProblem::Empty));
        }
        let format = format.unwrap_or_else(|| Format::sniff(&text));
        Ok(Document {
            name: name.to_string(),
            text,
            format,
        })
    }
}

/// Why raw content is not text at all, checked before UTF-8 decoding so that a PNG is called
/// binary rather than "invalid UTF-8 at offset 0".
fn content_problem(bytes: &[u8]) -> Option<InputProblem> {
    if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
        return Some(InputProblem::Utf16);
    }
    if let Some(nul_at) = bytes.iter().position(|&b| b == 0) {
        return Some(InputProblem::Binary {
            nul_at: Some(nul_at),
        });
    }
    let sample = &bytes[..bytes.len().min(SNIFF_BYTES)];
    if non_text_bytes(sample) * 100 > sample.len() * MAX_NON_TEXT_PERCENT {
        return Some(InputProblem::Binary { nul_at: None });
    }
    None
}

/// Bytes that are not UTF-8 or are control characters other than ordinary text layout.
fn non_text_bytes(sample: &[u8]) -> usize {
    let is_layout = |c: char| matches!(c, '\n' | '\r' | '\t' | '\x0C' | '\x1B');
    sample
        .utf8_chunks()
        .map(|chunk| {
            let controls = chunk
                .valid()
                .chars()
                .filter(|&c| c.is_control() && !is_layout(c));
            controls.count() + chunk.invalid().len()
        })
        .sum()
}

fn input_error(name: &str, problem: InputProblem) -> Error {
    Error::Input {
        source_name: name.to_string(),
        problem,
        source: None,
    }
}

fn input_io_error(name: &str, source: io::Error) -> Error {
    let problem = match source.kind() {
        // A path through a file (`notes.txt/a.txt`) names nothing that can exist.
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory => InputProblem::NotFound,
        io::ErrorKind::IsADirectory => InputProblem::IsDirectory,
        io::ErrorKind::PermissionDenied => InputProblem::PermissionDenied,
        _ => InputProblem::ReadFailed,
    };
    Error::Input {
        source_name: name.to_string(),
        problem,
        source: Some(source),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem_of(result: Result<Document>) -> InputProblem {
        match result {
            Err(Error::Input { problem, .. }) => problem,
            other => panic!("expected an input error, got {other:?}"),
        }
    }

    fn write_temp(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, bytes).expect("write test file");
        path
    }

    #[test]
    fn reads_a_file_and_detects_format_by_extension() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_temp(&dir, "a.MD", b"# Title\n\nBody.");
        let doc = read_document(&path, None).expect("readable");
        assert_eq!(doc.format, Format::Markdown);
        assert_eq!(doc.text, "# Title\n\nBody.");
        assert_eq!(doc.name, path.display().to_string());
        let html = write_temp(&dir, "b.htm", b"<p>x</p>");
        assert_eq!(
            read_document(&html, None).expect("readable").format,
            Format::Html
        );
    }

    #[test]
    fn sniffs_html_for_unknown_extensions_and_stdin() {
        let doc = read_from(STDIN_NAME, &b"\n  <!DOCTYPE HTML><p>x</p>"[..], None, None);
        assert_eq!(doc.expect("valid").format, Format::Html);
        let doc = read_from("a.log", &b"<HTML><body>x"[..], None, None);
        assert_eq!(doc.expect("valid").format, Format::Html);
        let doc = read_from("a.log", &b"plain <html> later"[..], None, None);
        assert_eq!(doc.expect("valid").format, Format::Plain);
    }

    #[test]
    fn strips_a_utf8_bom() {
        let doc = Document::from_bytes("f", b"\xEF\xBB\xBF<html>x".to_vec(), None);
        let doc = doc.expect("valid");
        assert_eq!(doc.text, "<html>x");
        assert_eq!(doc.format, Format::Html);
    }

    #[test]
    fn missing_file_and_directory_are_usage_errors() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = problem_of(read_document(&dir.path().join("nope.txt"), None));
        assert_eq!(missing, InputProblem::NotFound);
        assert!(missing.is_usage_error());
        let directory = problem_of(read_document(dir.path(), None));
        assert_eq!(directory, InputProblem::IsDirectory);
        assert!(directory.is_usage_error());
        assert!(!InputProblem::Empty.is_usage_error());
    }

    #[test]
    fn message_names_the_file_and_the_remedy() {
        let err = read_document(Path::new("/no/such/article.txt"), None).expect_err("missing");
        let message = err.to_string();
        assert!(
            message.starts_with("/no/such/article.txt: no such file"),
            "{message}"
        );
        assert!(!message.contains('\n'));
    }

    /// Paths that name nothing readable, made so that root fails on them too: a dangling
    /// symbolic link, a path through a file, a folder named like an article.
    #[cfg(unix)]
    #[test]
    fn paths_that_name_no_file_are_usage_errors_naming_the_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let dangling = dir.path().join("gone.txt");
        std::os::unix::fs::symlink(dir.path().join("nowhere.txt"), &dangling).expect("symlink");
        let file = write_temp(&dir, "notes.txt", b"text");
        fs::create_dir(dir.path().join("folder.txt")).expect("mkdir");
        let cases = [
            (dangling, InputProblem::NotFound),
            (file.join("a.txt"), InputProblem::NotFound),
            (dir.path().join("folder.txt"), InputProblem::IsDirectory),
        ];
        for (path, want) in cases {
            let error = read_document(&path, None).expect_err("unreadable");
            let name = path.display().to_string();
            assert!(error.to_string().starts_with(&name), "{error}");
            assert_eq!(problem_of(Err(error)), want, "{name}");
            assert!(want.is_usage_error());
        }
    }

    /// A file that exists but cannot be read, for root too: /proc/self/mem is a regular file
    /// whose first page (address 0) is never mapped, so reading it fails with EIO.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_file_that_fails_to_read_says_so_with_the_cause() {
        let error = read_document(Path::new("/proc/self/mem"), None).expect_err("EIO");
        let source = std::error::Error::source(&error).map(ToString::to_string);
        assert!(
            source.is_some_and(|s| s.contains("Input/output error")),
            "{error:?}"
        );
        let problem = problem_of(Err(error));
        assert_eq!(problem, InputProblem::ReadFailed);
        assert!(!problem.is_usage_error());
    }

    /// What a read refused by permissions reports (root is never refused, so the refusal comes
    /// from the reader here: the file system's answer is the same `io::Error` kind).
    #[test]
    fn a_read_refused_by_permissions_is_a_failure_not_a_usage_error() {
        struct Refused;
        impl Read for Refused {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::from(io::ErrorKind::PermissionDenied))
            }
        }
        let error = read_from("secret.txt", Refused, None, None).expect_err("refused");
        assert_eq!(
            error.to_string(),
            "secret.txt: permission denied; check that you may read the file"
        );
        let problem = problem_of(Err(error));
        assert_eq!(problem, InputProblem::PermissionDenied);
        assert!(!problem.is_usage_error());
    }

    #[test]
    fn refuses_binary_content() {
        let problem = problem_of(Document::from_bytes(
            "x.bin",
            b"PK\x03\x04\0\0ab".to_vec(),
            None,
        ));
        assert_eq!(problem, InputProblem::Binary { nul_at: Some(4) });
        let noise: Vec<u8> = (0..400u32).map(|i| (i * 37 % 64 + 0x80) as u8).collect();
        let problem = problem_of(Document::from_bytes("x.bin", noise, None));
        assert_eq!(problem, InputProblem::Binary { nul_at: None });
        assert!(problem.to_string().starts_with("looks like a binary file"));
    }

    #[test]
    fn refuses_utf16_with_a_conversion_hint() {
        let problem = problem_of(Document::from_bytes(
            "u.txt",
            b"\xFF\xFEa\0b\0".to_vec(),
            None,
        ));
        assert_eq!(problem, InputProblem::Utf16);
        assert!(problem.to_string().contains("iconv"));
    }

    #[test]
    fn invalid_utf8_reports_the_offset_in_the_file() {
        // Latin-1 "café" after a BOM: the offset counts the BOM's three bytes.
        let bytes = b"\xEF\xBB\xBFcaf\xE9 au lait".to_vec();
        let problem = problem_of(Document::from_bytes("latin1.txt", bytes, None));
        assert_eq!(
            problem,
            InputProblem::InvalidUtf8 {
                offset: 6,
                byte: 0xE9
            }
        );
        let message = problem.to_string();
        assert!(
            message.contains("offset 6") && message.contains("iconv"),
            "{message}"
        );
    }

    #[test]
    fn refuses_empty_and_whitespace_only_input() {
        for bytes in [&b""[..], b"  \n\t\r\n ", b"\xEF\xBB\xBF \n"] {
            let problem = problem_of(Document::from_bytes("e.txt", bytes.to_vec(), None));
            assert_eq!(problem, InputProblem::Empty);
        }
    }

    #[test]
    fn size_limit_is_checked_before_reading_a_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = write_temp(&dir, "big.txt", &[b'a'; 100]);
        let problem = problem_of(read_document(&path, Some(99)));
        assert_eq!(
            problem,
            InputProblem::TooLarge {
                size: Some(100),
                limit: 99
            }
        );
        assert!(read_document(&path, Some(100)).is_ok());
    }

    #[test]
    fn size_limit_applies_to_streams() {
        let problem = problem_of(read_from(STDIN_NAME, &[b'a'; 10][..], Some(9), None));
        assert_eq!(
            problem,
            InputProblem::TooLarge {
                size: None,
                limit: 9
            }
        );
        assert!(read_from(STDIN_NAME, &[b'a'; 10][..], Some(10), None).is_ok());
    }
}
