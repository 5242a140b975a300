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

    #[error("invalid value for --glob: '{pattern}'")]
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

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Error::Tokenizer(e)
    }
}
