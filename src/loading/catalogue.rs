//! The catalogue of model presets: one small TOML per supported checkpoint under `models/`,
//! embedded in the binary so that `--model t5-small` works without any file beside it. A
//! preset names its repo, its window and, rarely, settings its checkpoint's config lacks.
//!
//! Each entry is parsed when it is looked up; a unit test parses them all so a broken entry
//! fails `cargo test`, not a user's run.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::generation::GenerationOverrides;

/// The embedded entries, `(file name, contents)`. The file stem must equal the entry's `name`
/// (checked by a test), which lets [`Catalogue::names`] answer without parsing anything.
const ENTRIES: &[(&str, &str)] = &[
    ("t5-small.toml", include_str!("../../models/t5-small.toml")),
    ("t5-base.toml", include_str!("../../models/t5-base.toml")),
    (
        "flan-t5-small.toml",
        include_str!("../../models/flan-t5-small.toml"),
    ),
    (
        "flan-t5-base.toml",
        include_str!("../../models/flan-t5-base.toml"),
    ),
    (
        "bart-large-cnn.toml",
        include_str!("../../models/bart-large-cnn.toml"),
    ),
    (
        "distilbart-cnn-12-6.toml",
        include_str!("../../models/distilbart-cnn-12-6.toml"),
    ),
    (
        "distilbart-cnn-6-6.toml",
        include_str!("../../models/distilbart-cnn-6-6.toml"),
    ),
    (
        "distilbart-xsum-12-6.toml",
        include_str!("../../models/distilbart-xsum-12-6.toml"),
    ),
    (
        "pegasus-cnn_dailymail.toml",
        include_str!("../../models/pegasus-cnn_dailymail.toml"),
    ),
    (
        "pegasus-xsum.toml",
        include_str!("../../models/pegasus-xsum.toml"),
    ),
];

/// One supported checkpoint, as described by its `models/<name>.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Short name accepted by `--model`.
    pub name: String,
    /// Hugging Face repo id (`owner/name`) the files come from. (The model code that runs it
    /// is chosen by its config.json `model_type`, as transformers chooses it.)
    pub repo: String,
    /// Most input tokens the model accepts in one pass (longer articles are chunked).
    pub window: usize,
    /// Approximate parameter count, in millions.
    pub parameters_millions: u32,
    /// Approximate download size of the float32 weights, in megabytes (`precis models`).
    pub download_mb: u32,
    /// One line for `--help` and listings.
    pub description: String,
    /// Text put before every input, for a checkpoint whose config names none.
    #[serde(default)]
    pub prefix: Option<String>,
    /// `[generation]`: decoding settings for a checkpoint whose own config lacks them; they
    /// count as its task parameters would. Usually empty.
    #[serde(default)]
    pub generation: GenerationOverrides,
}

/// Lookup over the embedded presets.
pub struct Catalogue;

impl Catalogue {
    /// Every preset, in catalogue order (small T5 models first).
    pub fn all() -> Result<Vec<Preset>> {
        ENTRIES
            .iter()
            .map(|(file, text)| parse_entry(file, text))
            .collect()
    }

    /// The preset called `name`, if there is one.
    pub fn get(name: &str) -> Result<Option<Preset>> {
        ENTRIES
            .iter()
            .find(|(file, _)| stem(file) == name)
            .map(|(file, text)| parse_entry(file, text))
            .transpose()
    }

    /// The preset whose repo id is `repo` (case-insensitive, as the Hub treats repo ids), so a
    /// model named by repo id still gets its catalogue window and overrides.
    pub fn by_repo(repo: &str) -> Result<Option<Preset>> {
        Ok(Self::all()?
            .into_iter()
            .find(|preset| preset.repo.eq_ignore_ascii_case(repo)))
    }

    /// Preset names, for listings and "did you mean" messages.
    pub fn names() -> Vec<&'static str> {
        ENTRIES.iter().map(|(file, _)| stem(file)).collect()
    }
}

fn stem(file: &'static str) -> &'static str {
    file.strip_suffix(".toml").unwrap_or(file)
}

fn parse_entry(file: &'static str, text: &str) -> Result<Preset> {
    toml::from_str(text).map_err(|source| Error::Catalogue { file, source })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_entry_parses_and_is_named_after_its_file() {
        for (file, text) in ENTRIES {
            let preset = parse_entry(file, text).unwrap_or_else(|e| panic!("{file}: {e:?}"));
            assert_eq!(
                preset.name,
                stem(file),
                "{file}: name must match the file name"
            );
            assert!(preset.window >= 128, "{file}: window {}", preset.window);
            assert!(!preset.description.is_empty(), "{file}: empty description");
            assert!(
                !preset.description.contains('\n'),
                "{file}: description must be one line"
            );
            let (owner, model) = preset.repo.split_once('/').expect("repo is owner/name");
            assert!(!owner.is_empty() && !model.is_empty() && !model.contains('/'));
        }
    }

    #[test]
    fn every_toml_in_models_dir_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let on_disk: HashSet<String> = std::fs::read_dir(&dir)
            .expect("models/ exists")
            .map(|entry| entry.expect("readable entry").file_name())
            .map(|name| name.to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".toml"))
            .collect();
        let embedded: HashSet<String> = ENTRIES.iter().map(|(f, _)| f.to_string()).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn names_and_repos_are_unique() {
        let all = Catalogue::all().unwrap();
        let names: HashSet<_> = all.iter().map(|p| p.name.to_lowercase()).collect();
        let repos: HashSet<_> = all.iter().map(|p| p.repo.to_lowercase()).collect();
        assert_eq!(names.len(), all.len());
        assert_eq!(repos.len(), all.len());
    }

    #[test]
    fn lookup_by_name_and_repo() {
        let t5 = Catalogue::get("t5-small").unwrap().unwrap();
        assert_eq!(t5.repo, "google-t5/t5-small");
        assert_eq!(t5.window, 512);
        assert!(Catalogue::get("t5-tiny").unwrap().is_none());
        let bart = Catalogue::by_repo("facebook/BART-large-cnn")
            .unwrap()
            .unwrap();
        assert_eq!((bart.name.as_str(), bart.window), ("bart-large-cnn", 1024));
        assert_eq!(Catalogue::get("pegasus-xsum").unwrap().unwrap().window, 512);
        assert_eq!(Catalogue::names().len(), ENTRIES.len());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let entry = "name = \"x\"\nrepo = \"a/x\"\nwindow = 512\nparameters_millions = 1\n\
                     download_mb = 1\ndescription = \"d\"\n";
        assert!(parse_entry("x.toml", entry).is_ok());
        for extra in ["windw = 3\n", "[generation]\nbeams = 2\n"] {
            let text = format!("{entry}{extra}");
            assert!(
                matches!(
                    parse_entry("x.toml", &text),
                    Err(Error::Catalogue { file: "x.toml", .. })
                ),
                "{extra}"
            );
        }
        let tuned = format!("{entry}prefix = \"tl;dr: \"\n[generation]\nnum_beams = 2\n");
        let preset = parse_entry("x.toml", &tuned).unwrap();
        assert_eq!(preset.prefix.as_deref(), Some("tl;dr: "));
        assert_eq!(preset.generation.num_beams, Some(2));
    }
}
