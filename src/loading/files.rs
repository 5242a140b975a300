//! Which files make a model, and how to pick them from any place that holds files: a local
//! folder, the Hugging Face cache, or a Hub repo. The choice rules live here once; the places
//! only answer "do you have this file?" and "give me its path". The checkpoint's JSON
//! configuration is read here, once, and travels parsed with the other files.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};

pub(crate) const CONFIG: &str = "config.json";
pub(crate) const GENERATION_CONFIG: &str = "generation_config.json";
pub(crate) const TOKENIZER_JSON: &str = "tokenizer.json";
pub(crate) const VOCAB_JSON: &str = "vocab.json";
pub(crate) const MERGES_TXT: &str = "merges.txt";
pub(crate) const SPIECE_MODEL: &str = "spiece.model";
pub(crate) const TOKENIZER_CONFIG: &str = "tokenizer_config.json";
pub(crate) const SAFETENSORS: &str = "model.safetensors";
pub(crate) const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";
pub(crate) const PYTORCH_BIN: &str = "pytorch_model.bin";

/// What the error says is missing when a model has no usable tokenizer.
const TOKENIZER_WANTED: &str = "tokenizer.json (or vocab.json + merges.txt, or spiece.model)";
/// What the error says is missing when a model has no usable weights.
const WEIGHTS_WANTED: &str =
    "model.safetensors (or model.safetensors.index.json with its shards, or pytorch_model.bin)";

/// The local files of one model, ready to load.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFiles {
    /// How the user named the model (preset, repo id or folder), for messages.
    pub name: String,
    /// `config.json`, parsed: the architecture, its shape and the model's generation keys.
    pub config: JsonFile,
    pub tokenizer: TokenizerFiles,
    pub weights: Weights,
    /// `generation_config.json`, parsed, when the checkpoint has one.
    pub generation_config: Option<JsonFile>,
    /// The catalogue entry, when the model is a preset or a preset's repo.
    pub preset: Option<super::catalogue::Preset>,
}

/// A JSON file of a checkpoint, parsed, with its path for the messages that blame it.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonFile {
    pub path: PathBuf,
    pub json: Value,
}

impl JsonFile {
    /// Reads and parses `path`; errors name it.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let json = serde_json::from_str(&text).map_err(|source| Error::JsonFile {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            path: path.to_path_buf(),
            json,
        })
    }

    /// The JSON as a `T`, or an error naming this file.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        T::deserialize(&self.json).map_err(|source| Error::JsonFile {
            path: self.path.clone(),
            source,
        })
    }
}

/// A tokenizer as a checkpoint ships it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// A `tokenizers` JSON file, complete with pre/post-processing.
    Json(PathBuf),
    /// GPT-2 style byte-level BPE (BART, RoBERTa): vocabulary and merge rules only.
    VocabMerges { vocab: PathBuf, merges: PathBuf },
    /// A SentencePiece model (older T5 and Pegasus repos), with the `tokenizer_config.json`
    /// that may change its sentinel count (`extra_ids`) or Pegasus' `offset`.
    SentencePiece {
        model: PathBuf,
        tokenizer_config: Option<PathBuf>,
    },
}

/// Model weights, in the formats candle can read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Weights {
    /// One file, or the shards named by `model.safetensors.index.json` (sorted, deduplicated).
    Safetensors(Vec<PathBuf>),
    /// A PyTorch pickle, for older checkpoints without safetensors.
    PytorchBin(PathBuf),
}

/// A place that holds a model's files.
pub(crate) trait FileSource {
    /// Whether the place has `file`, without fetching it.
    fn has(&self, file: &str) -> bool;
    /// A local path to `file`, downloading it first if the place is remote.
    fn fetch(&self, file: &str) -> Result<PathBuf>;
    /// The error for a needed file the place does not have; `file` may describe alternatives.
    fn missing(&self, file: &str) -> Error;
}

/// Picks config, tokenizer, weights and generation config from `source`, preferring
/// `tokenizer.json` and safetensors (single file, then sharded) over older formats.
pub(crate) fn pick_files(source: &dyn FileSource, name: &str) -> Result<ModelFiles> {
    let config = JsonFile::read(&require(source, CONFIG)?)?;
    let tokenizer = pick_tokenizer(source)?;
    let weights = pick_weights(source)?;
    let generation_config = if source.has(GENERATION_CONFIG) {
        Some(JsonFile::read(&source.fetch(GENERATION_CONFIG)?)?)
    } else {
        None
    };
    Ok(ModelFiles {
        name: name.to_string(),
        config,
        tokenizer,
        weights,
        generation_config,
        preset: None,
    })
}

fn require(source: &dyn FileSource, file: &str) -> Result<PathBuf> {
    if source.has(file) {
        source.fetch(file)
    } else {
        Err(source.missing(file))
    }
}

fn pick_tokenizer(source: &dyn FileSource) -> Result<TokenizerFiles> {
    if source.has(TOKENIZER_JSON) {
        return Ok(TokenizerFiles::Json(source.fetch(TOKENIZER_JSON)?));
    }
    if source.has(VOCAB_JSON) && source.has(MERGES_TXT) {
        return Ok(TokenizerFiles::VocabMerges {
            vocab: source.fetch(VOCAB_JSON)?,
            merges: source.fetch(MERGES_TXT)?,
        });
    }
    if source.has(SPIECE_MODEL) {
        let tokenizer_config = if source.has(TOKENIZER_CONFIG) {
            Some(source.fetch(TOKENIZER_CONFIG)?)
        } else {
            None
        };
        return Ok(TokenizerFiles::SentencePiece {
            model: source.fetch(SPIECE_MODEL)?,
            tokenizer_config,
        });
    }
    Err(source.missing(TOKENIZER_WANTED))
}

fn pick_weights(source: &dyn FileSource) -> Result<Weights> {
    if source.has(SAFETENSORS) {
        return Ok(Weights::Safetensors(vec![source.fetch(SAFETENSORS)?]));
    }
    if source.has(SAFETENSORS_INDEX) {
        let index = source.fetch(SAFETENSORS_INDEX)?;
        let shards = shard_names(&index)?
            .iter()
            .map(|shard| require(source, shard))
            .collect::<Result<Vec<_>>>()?;
        return Ok(Weights::Safetensors(shards));
    }
    if source.has(PYTORCH_BIN) {
        return Ok(Weights::PytorchBin(source.fetch(PYTORCH_BIN)?));
    }
    Err(source.missing(WEIGHTS_WANTED))
}

#[derive(Deserialize)]
struct ShardIndex {
    weight_map: std::collections::HashMap<String, String>,
}

/// The shard file names listed by a `model.safetensors.index.json`, sorted and deduplicated.
pub(crate) fn shard_names(index: &Path) -> Result<Vec<String>> {
    let parsed: ShardIndex = JsonFile::read(index)?.parse()?;
    let shards: BTreeSet<String> = parsed.weight_map.into_values().collect();
    if shards.is_empty() {
        return Err(invalid(
            index,
            "its weight_map names no shard files".to_string(),
        ));
    }
    // Shard names come from a downloaded file and are joined onto local paths: refuse
    // anything that could leave the model folder.
    if let Some(bad) = shards.iter().find(|name| !is_plain_file_name(name)) {
        return Err(invalid(
            index,
            format!("shard name '{bad}' is not a plain file name"),
        ));
    }
    Ok(shards.into_iter().collect())
}

fn is_plain_file_name(name: &str) -> bool {
    let mut components = Path::new(name).components();
    matches!(
        (components.next(), components.next()),
        (Some(std::path::Component::Normal(_)), None)
    ) && !name.contains('\\')
}

fn invalid(path: &Path, problem: String) -> Error {
    Error::InvalidFile {
        path: path.to_path_buf(),
        problem,
    }
}

/// A model folder on disk.
pub(crate) struct LocalFolder {
    pub(crate) dir: PathBuf,
}

impl FileSource for LocalFolder {
    fn has(&self, file: &str) -> bool {
        self.dir.join(file).is_file()
    }

    fn fetch(&self, file: &str) -> Result<PathBuf> {
        Ok(self.dir.join(file))
    }

    fn missing(&self, file: &str) -> Error {
        Error::MissingModelFile {
            model: self.dir.display().to_string(),
            file: file.to_string(),
            hint: "add it to the folder (copy it from the model's Hugging Face repo), or pass a \
                   preset name or repo id instead"
                .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn folder(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, contents) in files {
            fs::write(dir.path().join(name), contents).expect("write fixture file");
        }
        dir
    }

    fn pick(dir: &tempfile::TempDir) -> Result<ModelFiles> {
        let source = LocalFolder {
            dir: dir.path().to_path_buf(),
        };
        pick_files(&source, "test-model")
    }

    #[test]
    fn complete_folder_prefers_tokenizer_json_and_single_safetensors() {
        let dir = folder(&[
            (CONFIG, "{}"),
            (TOKENIZER_JSON, "{}"),
            (VOCAB_JSON, "{}"),
            (MERGES_TXT, ""),
            (SAFETENSORS, ""),
            (PYTORCH_BIN, ""),
            (GENERATION_CONFIG, "{}"),
        ]);
        let files = pick(&dir).unwrap();
        assert_eq!(files.name, "test-model");
        assert_eq!(files.config.path, dir.path().join(CONFIG));
        assert_eq!(files.config.json, serde_json::json!({}));
        assert_eq!(
            files.tokenizer,
            TokenizerFiles::Json(dir.path().join(TOKENIZER_JSON))
        );
        assert_eq!(
            files.weights,
            Weights::Safetensors(vec![dir.path().join(SAFETENSORS)])
        );
        let generation = files
            .generation_config
            .expect("generation_config.json is picked");
        assert_eq!(generation.path, dir.path().join(GENERATION_CONFIG));
    }

    #[test]
    fn bart_style_folder_uses_vocab_merges_and_pytorch_bin() {
        let dir = folder(&[
            (CONFIG, "{}"),
            (VOCAB_JSON, "{}"),
            (MERGES_TXT, ""),
            (PYTORCH_BIN, ""),
        ]);
        let files = pick(&dir).unwrap();
        assert_eq!(
            files.tokenizer,
            TokenizerFiles::VocabMerges {
                vocab: dir.path().join(VOCAB_JSON),
                merges: dir.path().join(MERGES_TXT)
            }
        );
        assert_eq!(
            files.weights,
            Weights::PytorchBin(dir.path().join(PYTORCH_BIN))
        );
        assert_eq!(files.generation_config, None);
    }

    #[test]
    fn spiece_only_folder_uses_the_sentencepiece_model_and_its_tokenizer_config() {
        let dir = folder(&[(CONFIG, "{}"), (SPIECE_MODEL, ""), (PYTORCH_BIN, "")]);
        assert_eq!(
            pick(&dir).unwrap().tokenizer,
            TokenizerFiles::SentencePiece {
                model: dir.path().join(SPIECE_MODEL),
                tokenizer_config: None
            }
        );
        fs::write(dir.path().join(TOKENIZER_CONFIG), "{}").unwrap();
        assert_eq!(
            pick(&dir).unwrap().tokenizer,
            TokenizerFiles::SentencePiece {
                model: dir.path().join(SPIECE_MODEL),
                tokenizer_config: Some(dir.path().join(TOKENIZER_CONFIG))
            }
        );
        // tokenizer.json, when there is one, still wins.
        fs::write(dir.path().join(TOKENIZER_JSON), "{}").unwrap();
        assert_eq!(
            pick(&dir).unwrap().tokenizer,
            TokenizerFiles::Json(dir.path().join(TOKENIZER_JSON))
        );
    }

    #[test]
    fn sharded_safetensors_come_from_the_index_sorted_and_deduplicated() {
        let index = r#"{"metadata": {"total_size": 3}, "weight_map": {
            "b": "model-00002-of-00002.safetensors",
            "a": "model-00001-of-00002.safetensors",
            "c": "model-00002-of-00002.safetensors"}}"#;
        let dir = folder(&[
            (CONFIG, "{}"),
            (TOKENIZER_JSON, "{}"),
            (SAFETENSORS_INDEX, index),
            ("model-00001-of-00002.safetensors", ""),
            ("model-00002-of-00002.safetensors", ""),
        ]);
        let files = pick(&dir).unwrap();
        let expected = [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
        ]
        .map(|f| dir.path().join(f));
        assert_eq!(files.weights, Weights::Safetensors(expected.to_vec()));
    }

    #[test]
    fn a_missing_shard_is_named() {
        let index = r#"{"weight_map": {"a": "model-00001-of-00002.safetensors",
                                       "b": "model-00002-of-00002.safetensors"}}"#;
        let dir = folder(&[
            (CONFIG, "{}"),
            (TOKENIZER_JSON, "{}"),
            (SAFETENSORS_INDEX, index),
            ("model-00001-of-00002.safetensors", ""),
        ]);
        match pick(&dir) {
            Err(Error::MissingModelFile { model, file, .. }) => {
                assert_eq!(model, dir.path().display().to_string());
                assert_eq!(file, "model-00002-of-00002.safetensors");
            }
            other => panic!("expected a missing shard, got {other:?}"),
        }
    }

    #[test]
    fn bad_indexes_are_refused_naming_the_index() {
        for (index, expect_json_error) in [
            ("not json", true),
            (r#"{"metadata": {}}"#, true),
            (r#"{"weight_map": {}}"#, false),
            (r#"{"weight_map": {"a": "../outside.safetensors"}}"#, false),
            (
                r#"{"weight_map": {"a": "/abs/outside.safetensors"}}"#,
                false,
            ),
        ] {
            let dir = folder(&[(SAFETENSORS_INDEX, index)]);
            let path = dir.path().join(SAFETENSORS_INDEX);
            match shard_names(&path) {
                Err(Error::JsonFile { path: p, .. }) if expect_json_error => assert_eq!(p, path),
                Err(Error::InvalidFile { path: p, .. }) if !expect_json_error => {
                    assert_eq!(p, path)
                }
                other => panic!("{index}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn config_files_are_parsed_once_and_a_broken_one_is_named() {
        let dir = folder(&[
            (CONFIG, "{\"model_type\": \"t5\"}"),
            (TOKENIZER_JSON, "{}"),
            (SAFETENSORS, ""),
            (GENERATION_CONFIG, "{\"num_beams\": "),
        ]);
        match pick(&dir) {
            Err(Error::JsonFile { path, .. }) => {
                assert_eq!(path, dir.path().join(GENERATION_CONFIG))
            }
            other => panic!("expected a JSON error naming the file, got {other:?}"),
        }
        fs::remove_file(dir.path().join(GENERATION_CONFIG)).unwrap();
        let files = pick(&dir).unwrap();
        assert_eq!(files.config.json["model_type"], "t5");
        let missing = dir.path().join("missing.json");
        let err = JsonFile::read(&missing).unwrap_err();
        assert!(
            matches!(err, Error::Io { ref path, .. } if *path == missing),
            "{err:?}"
        );
    }

    #[test]
    fn missing_files_are_named_with_the_folder() {
        let cases: [(&[(&str, &str)], &str); 3] = [
            (&[(TOKENIZER_JSON, "{}"), (SAFETENSORS, "")], CONFIG),
            (
                &[(CONFIG, "{}"), (VOCAB_JSON, "{}"), (SAFETENSORS, "")],
                TOKENIZER_WANTED,
            ),
            (&[(CONFIG, "{}"), (TOKENIZER_JSON, "{}")], WEIGHTS_WANTED),
        ];
        for (present, wanted) in cases {
            let dir = folder(present);
            let err = pick(&dir).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains(&dir.path().display().to_string()),
                "{message}"
            );
            assert!(matches!(err, Error::MissingModelFile { ref file, .. } if file == wanted));
        }
    }
}
