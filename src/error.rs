//! The library's one error type. Every variant says what went wrong and with what, and keeps
//! the underlying error as its source instead of flattening it into a string. [`Error::fault`]
//! says whose the error is, which a front end turns into an exit status or an HTTP status.
//!
//! Messages name settings as the library calls them (`max_input_tokens`); a front end that
//! calls a setting something else (the CLI's `--max-input-tokens`) shows
//! [`Error::message_naming`] instead of the plain message.

use std::path::PathBuf;

mod input_problem;

pub use input_problem::InputProblem;

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

    #[error("unsupported model architecture '{0}'")]
    UnsupportedArchitecture(String),

    /// A setting given a value out of its bounds. `option` is the setting's library name.
    #[error("{}", invalid_value(option, value, expected))]
    InvalidOption {
        option: &'static str,
        value: String,
        expected: String,
    },

    /// A decoding setting of the model's own (its generation_config.json, config.json, task
    /// parameters or catalogue entry) that generation cannot use, and that no option replaced.
    #[error("{}", model_setting(option, value, expected, option))]
    ModelSetting {
        option: &'static str,
        value: String,
        expected: String,
    },

    #[error("device '{0}' is not available: {1}")]
    Device(String, String),

    /// One input article could not be used. `problem` says why in words and lets the CLI tell
    /// usage errors (a path that names no file) from failures of a real file.
    #[error("{source_name}: {problem}")]
    Input {
        source_name: String,
        problem: InputProblem,
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

    #[error("device '{device}' could not be opened")]
    DeviceInit {
        device: String,
        #[source]
        source: candle_core::Error,
    },

    #[error(
        "'{given}' is not a model preset, an existing folder or a Hugging Face repo id \
         (owner/name); presets: {presets}"
    )]
    UnknownModel { given: String, presets: String },

    #[error(
        "model folder {} does not exist or is not a folder; pass a folder containing \
         config.json, tokenizer.json and model.safetensors",
        path.display()
    )]
    NotAModelFolder { path: PathBuf },

    #[error(
        "model '{model}' is not fully in the Hugging Face cache ({}): {file} is missing, and \
         downloads are off (offline mode / HF_HUB_OFFLINE); download it once while online (e.g. \
         `hf download {repo}`), or use --model /path/to/folder containing config.json, \
         tokenizer.json and model.safetensors",
        cache_dir.display()
    )]
    ModelNotCached {
        model: String,
        repo: String,
        cache_dir: PathBuf,
        file: String,
    },

    #[error(
        "cannot reach the Hugging Face Hub at {endpoint} to download model '{model}', and it is \
         not in the local cache; check the network (or HF_ENDPOINT), pre-download it (e.g. \
         `hf download {repo}`), or use --model /path/to/folder containing config.json, \
         tokenizer.json and model.safetensors"
    )]
    HubUnreachable {
        model: String,
        repo: String,
        endpoint: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    #[error(
        "the Hugging Face Hub at {endpoint} refused model '{model}' (HTTP {status}): check the \
         repo id, and for a private or gated model set HF_TOKEN"
    )]
    HubRefused {
        model: String,
        endpoint: String,
        status: u16,
    },

    #[error("cannot download {file} of model '{model}' from the Hugging Face Hub")]
    HubDownload {
        model: String,
        file: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },

    #[error("cannot parse {}", path.display())]
    JsonFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot load tokenizer from {}", path.display())]
    TokenizerFile {
        path: PathBuf,
        #[source]
        source: tokenizers::Error,
    },

    #[error("cannot load weights from {} (corrupt, truncated or not a weights file?)", path.display())]
    WeightsFile {
        path: PathBuf,
        #[source]
        source: candle_core::Error,
    },

    #[error("built-in model catalogue entry {file} is invalid")]
    Catalogue {
        file: &'static str,
        #[source]
        source: toml::de::Error,
    },

    #[error("config.json does not describe a model precis can build")]
    ModelConfig {
        #[source]
        source: serde_json::Error,
    },

    #[error("the weights of model '{model}' do not fit its config (missing or misshapen tensor)")]
    ModelWeights {
        model: String,
        #[source]
        source: candle_core::Error,
    },

    /// The input folder of `precis batch` cannot be walked at all.
    #[error("input folder {}: {problem}", path.display())]
    InputDir {
        path: PathBuf,
        problem: &'static str,
        #[source]
        source: Option<std::io::Error>,
    },

    /// The input and output folders of `precis batch` overlap in a way that could mix outputs
    /// with inputs.
    #[error(
        "output folder {} {problem} input folder {}; choose an output folder outside the inputs",
        out_dir.display(),
        in_dir.display()
    )]
    OverlappingDirs {
        in_dir: PathBuf,
        out_dir: PathBuf,
        problem: &'static str,
    },

    #[error("{}", invalid_value(GLOB_SETTING, &format!("'{pattern}'"), GLOB_EXPECTED))]
    Glob {
        pattern: String,
        #[source]
        source: globset::Error,
    },

    /// A symbolic link that points back to a folder above it; followed, it would never end.
    #[error(
        "{}: symbolic link to its ancestor folder {}; skipped so the walk does not go round in \
         circles",
        path.display(),
        ancestor.display()
    )]
    SymlinkLoop { path: PathBuf, ancestor: PathBuf },

    /// An entry of the input folder named like an article that is no file: reading a named pipe
    /// would wait for a writer forever, a device is not text.
    #[error("{}: is a {kind}, not a regular file; skipped", path.display())]
    NotAFile { path: PathBuf, kind: &'static str },

    /// An entry of the input folder that could not be looked at (unreadable folder, broken link).
    #[error(
        "{}: cannot read while walking the input folder; check that it exists and may be read",
        path.display()
    )]
    Walk {
        path: PathBuf,
        #[source]
        source: walkdir::Error,
    },

    #[error("{}: the file name is not valid UTF-8; rename it to be summarised", path.display())]
    NonUtf8Path { path: PathBuf },

    #[error(
        "cannot write {}; check that the disk has space and that you may write there",
        path.display()
    )]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A write to a stream (standard output) failed; a closed pipe is one case.
    #[error("cannot write to {name}")]
    WriteStream {
        name: String,
        #[source]
        source: std::io::Error,
    },

    /// One line of a `--input-jsonl` file is not a `{"id": ..., "text": ...}` object.
    #[error(
        "{source_name}:{line}: not a JSON object with \"id\" and \"text\"; fix or remove the line"
    )]
    JsonlRecord {
        source_name: String,
        line: usize,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot serialise the summary options to hash them")]
    OptionsHash(#[source] serde_json::Error),

    #[error("cannot write {what} as JSON")]
    ToJson {
        what: String,
        #[source]
        source: serde_json::Error,
    },

    /// The summariser broke its contract of one result per text.
    #[error("the summariser returned {got} results for {expected} texts")]
    SummaryCount { expected: usize, got: usize },

    /// Model code panicked while decoding a batch: the batch was dropped, the process went on.
    #[error("the model failed unexpectedly: {message}")]
    ModelPanic { message: String },

    #[error("cannot install a handler for {signal}")]
    SignalHandler {
        signal: &'static str,
        #[source]
        source: std::io::Error,
    },
}

/// The setting a bad glob pattern was given for.
const GLOB_SETTING: &str = "globs";
const GLOB_EXPECTED: &str = "a glob such as *.md or 2024/**/*.txt";

fn invalid_value(setting: &str, value: &str, expected: &str) -> String {
    format!("invalid value for {setting}: {value} ({expected})")
}

fn model_setting(setting: &str, value: &str, expected: &str, replaced_by: &str) -> String {
    format!(
        "the model's own {setting} is {value}, which cannot be used ({expected}); \
         {replaced_by} replaces it"
    )
}

/// Whose an error is: what a front end needs to pick an exit status or an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// How precis was asked: a setting out of its bounds, a model, path or folder that names
    /// nothing usable. The CLI exits 2; a server answers 4xx.
    Usage,
    /// The text given cannot be summarised (empty, binary, not UTF-8, too large). The CLI
    /// reports the input and exits 1 after the others; a server answers 4xx.
    Input,
    /// Anything else: a model that will not load, a device, a disk, a bug. The CLI exits 1; a
    /// server answers 5xx.
    Internal,
}

impl Error {
    /// Whose this error is (see [`Fault`]).
    pub fn fault(&self) -> Fault {
        match self {
            Error::Input { problem, .. } if problem.is_usage_error() => Fault::Usage,
            Error::Input { .. } | Error::HtmlToText { .. } => Fault::Input,
            // A folder that is not there or is a file: the argument is wrong.
            Error::InputDir { source, .. }
                if source
                    .as_ref()
                    .is_none_or(|e| e.kind() == std::io::ErrorKind::NotFound) =>
            {
                Fault::Usage
            }
            Error::InvalidOption { .. }
            | Error::ModelSetting { .. }
            | Error::UnknownModel { .. }
            | Error::NotAModelFolder { .. }
            | Error::OverlappingDirs { .. }
            | Error::Glob { .. } => Fault::Usage,
            _ => Fault::Internal,
        }
    }

    /// A mistake in how precis was asked (CLI exit status 2).
    pub fn is_usage(&self) -> bool {
        self.fault() == Fault::Usage
    }

    /// The caller's error, usage or input, as opposed to precis's (HTTP 4xx rather than 5xx).
    pub fn is_callers(&self) -> bool {
        self.fault() != Fault::Internal
    }

    /// The setting this error says was given a bad value, by its library name.
    pub fn setting(&self) -> Option<&'static str> {
        match self {
            Error::InvalidOption { option, .. } | Error::ModelSetting { option, .. } => {
                Some(option)
            }
            Error::Glob { .. } => Some(GLOB_SETTING),
            _ => None,
        }
    }

    /// The message, with [`Error::setting`] called `name` (a command-line flag, a request
    /// field); the plain message for an error about no setting.
    pub fn message_naming(&self, name: &str) -> String {
        match self {
            Error::InvalidOption {
                value, expected, ..
            } => invalid_value(name, value, expected),
            Error::ModelSetting {
                option,
                value,
                expected,
            } => model_setting(option, value, expected, name),
            Error::Glob { pattern, .. } => {
                invalid_value(name, &format!("'{pattern}'"), GLOB_EXPECTED)
            }
            other => other.to_string(),
        }
    }
}

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Error::Tokenizer(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(problem: InputProblem) -> Error {
        Error::Input {
            source_name: "a.txt".into(),
            problem,
            source: None,
        }
    }

    #[test]
    fn faults_split_the_callers_mistakes_from_precis_failures() {
        let invalid = Error::InvalidOption {
            option: "num_beams",
            value: "0".into(),
            expected: "at least 1".into(),
        };
        assert_eq!(invalid.fault(), Fault::Usage);
        assert!(invalid.is_usage() && invalid.is_callers());
        assert_eq!(input(InputProblem::NotFound).fault(), Fault::Usage);
        assert_eq!(input(InputProblem::IsDirectory).fault(), Fault::Usage);
        let empty = input(InputProblem::Empty);
        assert_eq!(empty.fault(), Fault::Input);
        assert!(!empty.is_usage() && empty.is_callers());
        let missing_dir = Error::InputDir {
            path: "in".into(),
            problem: "does not exist",
            source: Some(std::io::ErrorKind::NotFound.into()),
        };
        assert!(missing_dir.is_usage());
        let unreadable_dir = Error::InputDir {
            path: "in".into(),
            problem: "cannot be read",
            source: Some(std::io::ErrorKind::PermissionDenied.into()),
        };
        assert_eq!(unreadable_dir.fault(), Fault::Internal);
        let unknown = Error::UnknownModel {
            given: "t5-smal".into(),
            presets: "t5-small".into(),
        };
        assert!(unknown.is_usage());
        let weights = Error::ModelWeights {
            model: "m".into(),
            source: candle_core::Error::Msg("missing tensor".into()),
        };
        assert_eq!(weights.fault(), Fault::Internal);
        assert!(!weights.is_callers());
    }

    #[test]
    fn messages_name_the_setting_and_front_ends_may_rename_it() {
        let err = Error::InvalidOption {
            option: "max_input_tokens",
            value: "2".into(),
            expected: "must be at least 4".into(),
        };
        assert_eq!(err.setting(), Some("max_input_tokens"));
        assert_eq!(
            err.to_string(),
            "invalid value for max_input_tokens: 2 (must be at least 4)"
        );
        assert_eq!(
            err.message_naming("--max-input-tokens"),
            "invalid value for --max-input-tokens: 2 (must be at least 4)"
        );
        let model = Error::ModelSetting {
            option: "temperature",
            value: "0".into(),
            expected: "a finite number greater than 0".into(),
        };
        assert_eq!(
            (model.setting(), model.fault()),
            (Some("temperature"), Fault::Usage)
        );
        assert_eq!(
            model.message_naming("--temperature"),
            "the model's own temperature is 0, which cannot be used (a finite number greater \
             than 0); --temperature replaces it"
        );
        let glob = globset::Glob::new("a[").unwrap_err();
        let err = Error::Glob {
            pattern: "a[".into(),
            source: glob,
        };
        assert_eq!(err.setting(), Some("globs"));
        assert!(
            err.message_naming("--glob")
                .starts_with("invalid value for --glob: 'a['")
        );
        let other = Error::SummaryCount {
            expected: 2,
            got: 1,
        };
        assert_eq!(
            (other.setting(), other.message_naming("x")),
            (None, other.to_string())
        );
    }
}
