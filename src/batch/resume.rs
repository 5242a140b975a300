//! Resuming a batch: which files are already done and can be skipped.
//!
//! A file is up to date when its summary exists and is newer than the input, and the manifest's
//! latest row for it is ok, made by the same model with the same options, pointing at that
//! summary. Anything else (a failed or skipped file, new options, an edited input, a deleted or
//! older summary) is done again; `force` redoes everything. The manifest row is what tells a
//! finished summary from a stale one whose options changed, so a summary without its row is
//! redone too.

use std::fs;
use std::path::Path;
use std::time::SystemTime;

use serde::Serialize;
use serde_json::{Map, Value};

use super::manifest::{ManifestRow, Status};
use super::shard::fnv1a64;
use crate::{Error, Result};

/// Which model and which output-affecting options made a summary; stored in every manifest row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunIdentity {
    pub model: String,
    pub options_hash: String,
}

impl RunIdentity {
    pub fn new(model: &str, options: &impl Serialize) -> Result<RunIdentity> {
        Ok(RunIdentity {
            model: model.to_string(),
            options_hash: options_hash(model, options)?,
        })
    }
}

/// A stable hash (16 hex digits) of the model name and every option that changes the output.
///
/// `options` should hold exactly those options (decoding, chunking, merge strategy), not ones
/// that only change speed. It is serialised to JSON with object keys sorted, so neither field
/// order nor serde_json's `preserve_order` feature changes the hash, and hashed with FNV-1a 64.
pub fn options_hash(model: &str, options: &impl Serialize) -> Result<String> {
    let options = serde_json::to_value(options).map_err(Error::OptionsHash)?;
    let mut canonical = Map::new();
    canonical.insert("model".into(), Value::String(model.into()));
    canonical.insert("options".into(), sorted(options));
    let text = Value::Object(canonical).to_string();
    Ok(format!("{:016x}", fnv1a64(text.as_bytes())))
}

/// `value` with the keys of every object in sorted order.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// Whether to summarise a file, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    UpToDate,
    Redo(RedoReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedoReason {
    Forced,
    NeverDone,
    LastFailed,
    LastSkipped,
    ModelChanged,
    OptionsChanged,
    OutputFormatChanged,
    OutputMissing,
    InputNewer,
}

/// Decides for one file: `input` is the article, `output` its summary path, `output_relative`
/// that path as the manifest stores it, `row` the manifest's latest row for the file.
pub fn decide(
    input: &Path,
    output: &Path,
    output_relative: &str,
    row: Option<&ManifestRow>,
    identity: &RunIdentity,
    force: bool,
) -> Decision {
    use RedoReason::*;
    let reason = match row {
        _ if force => Forced,
        None => NeverDone,
        Some(row) if row.status == Status::Failed => LastFailed,
        Some(row) if row.status == Status::Skipped => LastSkipped,
        Some(row) if row.model != identity.model => ModelChanged,
        Some(row) if row.options_hash != identity.options_hash => OptionsChanged,
        Some(row) if row.output.as_deref() != Some(output_relative) => OutputFormatChanged,
        Some(_) => match (modified(output), modified(input)) {
            (None, _) => OutputMissing,
            (Some(made), Some(edited)) if made > edited => return Decision::UpToDate,
            // Same timestamp, or the input cannot be looked at: do it again, to be safe.
            (Some(_), _) => InputNewer,
        },
    };
    Decision::Redo(reason)
}

fn modified(path: &Path) -> Option<SystemTime> {
    fs::metadata(path).and_then(|m| m.modified()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::time::Duration;

    #[derive(Serialize)]
    struct Options {
        num_beams: Option<usize>,
        merge: &'static str,
    }

    fn identity() -> RunIdentity {
        let options = Options {
            num_beams: Some(4),
            merge: "reduce",
        };
        RunIdentity::new("t5-small", &options).expect("serialisable")
    }

    fn ok_row(identity: &RunIdentity) -> ManifestRow {
        ManifestRow {
            path: "a.txt".into(),
            status: Status::Ok,
            error: None,
            chunks: 1,
            input_tokens: 10,
            output_tokens: 5,
            seconds: 0.1,
            model: identity.model.clone(),
            options_hash: identity.options_hash.clone(),
            output: Some("a.txt.summary.txt".into()),
            finished_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    /// An input and an output whose modification times are `input_age` and `output_age`
    /// seconds in the past.
    fn files(
        input_age: u64,
        output_age: u64,
    ) -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
        let dir = tempfile::tempdir().expect("temp dir");
        let now = SystemTime::now();
        let input = dir.path().join("a.txt");
        let output = dir.path().join("a.txt.summary.txt");
        for (path, age) in [(&input, input_age), (&output, output_age)] {
            fs::write(path, b"x").expect("write");
            let file = File::options().write(true).open(path).expect("open");
            file.set_modified(now - Duration::from_secs(age))
                .expect("set mtime");
        }
        (dir, input, output)
    }

    fn decide_with(
        row: Option<&ManifestRow>,
        input_age: u64,
        output_age: u64,
        force: bool,
    ) -> Decision {
        let (_dir, input, output) = files(input_age, output_age);
        decide(
            &input,
            &output,
            "a.txt.summary.txt",
            row,
            &identity(),
            force,
        )
    }

    #[test]
    fn skips_when_output_is_newer_and_the_row_matches() {
        let row = ok_row(&identity());
        assert_eq!(decide_with(Some(&row), 100, 10, false), Decision::UpToDate);
    }

    #[test]
    fn redoes_when_the_input_is_newer_or_equally_old() {
        let row = ok_row(&identity());
        assert_eq!(
            decide_with(Some(&row), 10, 100, false),
            Decision::Redo(RedoReason::InputNewer)
        );
        assert_eq!(
            decide_with(Some(&row), 50, 50, false),
            Decision::Redo(RedoReason::InputNewer)
        );
    }

    #[test]
    fn redoes_when_options_or_model_changed() {
        let mut row = ok_row(&identity());
        row.options_hash = "0000000000000000".into();
        assert_eq!(
            decide_with(Some(&row), 100, 10, false),
            Decision::Redo(RedoReason::OptionsChanged)
        );
        let mut row = ok_row(&identity());
        row.model = "bart-large-cnn".into();
        assert_eq!(
            decide_with(Some(&row), 100, 10, false),
            Decision::Redo(RedoReason::ModelChanged)
        );
        let mut row = ok_row(&identity());
        row.output = Some("a.txt.summary.json".into());
        assert_eq!(
            decide_with(Some(&row), 100, 10, false),
            Decision::Redo(RedoReason::OutputFormatChanged)
        );
    }

    #[test]
    fn redoes_what_failed_or_was_skipped_or_never_done() {
        let mut row = ok_row(&identity());
        row.status = Status::Failed;
        assert_eq!(
            decide_with(Some(&row), 100, 10, false),
            Decision::Redo(RedoReason::LastFailed)
        );
        row.status = Status::Skipped;
        assert_eq!(
            decide_with(Some(&row), 100, 10, false),
            Decision::Redo(RedoReason::LastSkipped)
        );
        assert_eq!(
            decide_with(None, 100, 10, false),
            Decision::Redo(RedoReason::NeverDone)
        );
    }

    #[test]
    fn redoes_when_the_output_is_gone_and_always_when_forced() {
        let row = ok_row(&identity());
        let (_dir, input, output) = files(100, 10);
        fs::remove_file(&output).expect("remove");
        let decision = decide(
            &input,
            &output,
            "a.txt.summary.txt",
            Some(&row),
            &identity(),
            false,
        );
        assert_eq!(decision, Decision::Redo(RedoReason::OutputMissing));
        assert_eq!(
            decide_with(Some(&row), 100, 10, true),
            Decision::Redo(RedoReason::Forced)
        );
    }

    #[test]
    fn options_hash_is_stable_and_sensitive() {
        let hash = |model, beams, merge| {
            options_hash(
                model,
                &Options {
                    num_beams: beams,
                    merge,
                },
            )
            .expect("hashable")
        };
        let base = hash("t5-small", Some(4), "reduce");
        // Pinned: the hash is stored in manifests, so changing it redoes every batch.
        assert_eq!(base, "6ba58aac735af4e6");
        assert_eq!(base.len(), 16);
        assert_ne!(base, hash("t5-small", Some(2), "reduce"));
        assert_ne!(base, hash("t5-small", None, "reduce"));
        assert_ne!(base, hash("t5-base", Some(4), "reduce"));
        assert_ne!(base, hash("t5-small", Some(4), "concat"));
    }

    #[test]
    fn options_hash_ignores_key_order() {
        let a: Value = serde_json::json!({"b": 1, "a": {"y": 2, "x": 3}});
        let b: Value = serde_json::from_str(r#"{"a": {"x": 3, "y": 2}, "b": 1}"#).expect("json");
        assert_eq!(
            options_hash("m", &a).expect("a"),
            options_hash("m", &b).expect("b")
        );
    }
}
