//! From `--model` to a loaded model: a preset name, a local folder or a Hugging Face repo id
//! becomes [`ModelFiles`] (parsed config, tokenizer, weights), downloading into the standard HF
//! cache when needed, and [`load`] turns those into a [`LoadedModel`]. This is the only module
//! that knows hf-hub.
//!
//! `--model` is read like transformers' `from_pretrained` reads its argument: an existing
//! folder wins, then a catalogue preset, then a repo id (`owner/name`).

pub mod catalogue;
pub mod defaults;
#[cfg(test)]
mod fake_hub;
mod files;
mod hub;
mod model;
mod safetensors_reader;
mod sentencepiece;
mod tokenizer;
mod weights;

use std::path::{Path, PathBuf};

pub use files::{JsonFile, ModelFiles, TokenizerFiles, Weights};
pub use hub::HubSettings;
pub use model::{LoadOptions, LoadedModel, default_dtype, load, load_files, load_resolved};
pub use tokenizer::load_tokenizer;

use crate::error::{Error, Result};
use catalogue::{Catalogue, Preset};

/// Where a `--model` value points.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelLocation {
    /// A folder on disk holding the model files.
    Folder(PathBuf),
    /// A Hub repo, with its catalogue entry when it is a known preset.
    Hub {
        repo: String,
        preset: Option<Box<Preset>>,
    },
}

/// Reads a `--model` value without touching the network.
pub fn locate(model: &str) -> Result<ModelLocation> {
    let path = Path::new(model);
    if path.is_dir() {
        return Ok(ModelLocation::Folder(path.to_path_buf()));
    }
    if let Some(preset) = Catalogue::get(model)? {
        return Ok(ModelLocation::Hub {
            repo: preset.repo.clone(),
            preset: Some(Box::new(preset)),
        });
    }
    if is_repo_id(model) {
        return Ok(ModelLocation::Hub {
            repo: model.to_string(),
            preset: Catalogue::by_repo(model)?.map(Box::new),
        });
    }
    if looks_like_path(model) {
        return Err(Error::NotAModelFolder {
            path: path.to_path_buf(),
        });
    }
    Err(Error::UnknownModel {
        given: model.to_string(),
        presets: Catalogue::names().join(", "),
    })
}

/// Finds (and if needed downloads) the files of `model`, a preset name, folder or repo id.
/// Offline, or with the Hub unreachable, this fails within `hub.timeout` naming the model and
/// how to use a local copy instead.
pub fn resolve(model: &str, hub: &HubSettings) -> Result<ModelFiles> {
    match locate(model)? {
        ModelLocation::Folder(dir) => {
            tracing::debug!("loading model from folder {}", dir.display());
            files::pick_files(&files::LocalFolder { dir }, model)
        }
        ModelLocation::Hub { repo, preset } => {
            tracing::debug!("loading model '{model}' from Hub repo {repo}");
            let mut found = hub::fetch_repo(&repo, model, hub)?;
            found.preset = preset.map(|preset| *preset);
            Ok(found)
        }
    }
}

/// `owner/name` with the characters the Hub allows (letters, digits, `-`, `_`, `.`).
fn is_repo_id(model: &str) -> bool {
    let valid_part = |part: &str| {
        !part.is_empty()
            && part.len() <= 96
            && !part.starts_with(['.', '-'])
            && !part.contains("..")
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    matches!(model.split_once('/'), Some((owner, name)) if valid_part(owner) && valid_part(name))
}

/// A value the user surely meant as a path, so "not found" beats "unknown preset".
fn looks_like_path(model: &str) -> bool {
    model.contains(['/', '\\']) || model.starts_with(['.', '~'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_resolve_to_their_repo() {
        match locate("flan-t5-small").unwrap() {
            ModelLocation::Hub { repo, preset } => {
                assert_eq!(repo, "google/flan-t5-small");
                assert_eq!(preset.map(|p| p.name), Some("flan-t5-small".to_string()));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn repo_ids_are_hub_models_and_known_repos_keep_their_preset() {
        let ModelLocation::Hub { repo, preset } = locate("google-t5/t5-base").unwrap() else {
            panic!("expected a hub model")
        };
        assert_eq!(repo, "google-t5/t5-base");
        assert_eq!(preset.map(|p| p.name), Some("t5-base".to_string()));
        let ModelLocation::Hub { preset, .. } = locate("someone/my-t5_v2.1").unwrap() else {
            panic!("expected a hub model")
        };
        assert_eq!(preset, None);
    }

    #[test]
    fn existing_folders_win() {
        let dir = tempfile::tempdir().unwrap();
        let given = dir.path().to_str().unwrap();
        assert_eq!(
            locate(given).unwrap(),
            ModelLocation::Folder(dir.path().to_path_buf())
        );
    }

    #[test]
    fn missing_paths_and_unknown_names_say_so() {
        for path in ["/no/such/model-dir", "./models-here", "a/b/c", "~/t5"] {
            assert!(
                matches!(locate(path), Err(Error::NotAModelFolder { .. })),
                "{path}: {:?}",
                locate(path)
            );
        }
        let err = locate("t5-smal").unwrap_err();
        assert!(matches!(err, Error::UnknownModel { .. }));
        let message = err.to_string();
        assert!(
            message.contains("t5-smal") && message.contains("t5-small"),
            "{message}"
        );
    }

    #[test]
    fn a_file_is_not_a_model_folder() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("model.safetensors");
        std::fs::write(&file, b"").unwrap();
        let err = locate(file.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, Error::NotAModelFolder { ref path } if *path == file));
    }

    #[test]
    fn repo_id_shape() {
        for good in ["google-t5/t5-small", "a/b", "Org_1/model.v2"] {
            assert!(is_repo_id(good), "{good}");
        }
        for bad in [
            "t5-small", "/abs", "a/", "/b", "a/b/c", "./x", "a/..", "a/b c", "a/-x",
        ] {
            assert!(!is_repo_id(bad), "{bad}");
        }
    }
}
