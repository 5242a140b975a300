//! Writing summaries: where each goes (`OUT_DIR/<relative path>.summary.txt` or `.json`), the
//! record a summary is written as, and the atomic write that never leaves half a file behind.
//!
//! Every summary is written to a temporary file in its final folder and renamed into place, so
//! a reader (or a resumed run) sees either the old file or the complete new one, even if precis
//! is killed mid-write or the disk fills up. Only paths under the output folder are ever opened
//! for writing; inputs are only read.
//!
//! A run killed mid-write (SIGKILL, a power cut) leaves its temporary file behind. Each run
//! names its temporary files after the manifest it owns (`.precis-XXXXXX.tmp` for a whole run,
//! `.precis-shard-I-of-N-XXXXXX.tmp` for a shard) and removes its own leftovers when it starts,
//! so shards sharing an output folder never delete each other's files in flight.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::manifest::Status;
use super::shard::Shard;
use crate::{Error, Result};

/// How summaries are written in an output folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// The summary text and a newline.
    #[default]
    Text,
    /// A [`DocRecord`] as pretty JSON.
    Json,
}

impl OutputFormat {
    /// What is appended to the input's relative path to name its summary.
    pub fn suffix(self) -> &'static str {
        match self {
            OutputFormat::Text => ".summary.txt",
            OutputFormat::Json => ".summary.json",
        }
    }

    /// The summary's path relative to the output folder, `/`-separated as in the manifest.
    pub fn output_relative(self, input_relative: &str) -> String {
        format!("{input_relative}{}", self.suffix())
    }

    /// The summary's path for an input at `input_relative` (a `/`-separated path from the walk).
    pub fn output_path(self, out_dir: &Path, input_relative: &str) -> PathBuf {
        let mut path = out_dir.to_path_buf();
        path.extend(self.output_relative(input_relative).split('/'));
        path
    }
}

/// One document's result as JSON: a `.summary.json` file, or a line of the JSONL stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DocRecord<'a> {
    /// The `id` of a `--input-jsonl` record, echoed as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a serde_json::Value>,
    /// The line of a `--input-jsonl` record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The input's path relative to the input folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<&'a str>,
    pub status: Status,
    pub summary: Option<&'a str>,
    /// The summary's token ids (see [`crate::Summary::output_ids`]).
    pub output_ids: Option<&'a [u32]>,
    pub error: Option<&'a str>,
    pub chunks: usize,
    pub input_tokens: usize,
    pub output_tokens: usize,
    pub seconds: f64,
}

/// The temporary files of one run (a whole run or one shard) in an output folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TempFiles {
    /// `.precis-` or `.precis-shard-I-of-N-`: a dot, so a walk that skips hidden files never
    /// lists one.
    prefix: String,
}

const TEMP_PREFIX: &str = ".precis-";
const TEMP_SUFFIX: &str = ".tmp";

impl TempFiles {
    pub fn for_run(shard: Option<Shard>) -> TempFiles {
        let prefix = match shard {
            None => TEMP_PREFIX.to_string(),
            Some(shard) => format!("{TEMP_PREFIX}shard-{}-of-{}-", shard.index(), shard.count()),
        };
        TempFiles { prefix }
    }

    /// Whether a file called `name` is one of this run's temporary files.
    pub fn owns(&self, name: &str) -> bool {
        let Some(middle) = name
            .strip_prefix(&self.prefix)
            .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        else {
            return false;
        };
        // A whole run's prefix is also the start of every shard's.
        self.prefix != TEMP_PREFIX || !middle.starts_with("shard-")
    }

    /// Removes this run's temporary files under `out_dir` (left by a run that was killed
    /// mid-write: no run of this owner is writing now) and returns how many there were. Files
    /// that cannot be listed or removed are left, with a warning in the log: they are hidden,
    /// never read and never taken for summaries.
    pub fn remove_stale(&self, out_dir: &Path) -> usize {
        let mut removed = 0;
        for entry in walkdir::WalkDir::new(out_dir).follow_links(false) {
            let entry = match entry {
                Ok(entry) => entry,
                Err(error) => {
                    tracing::warn!("looking for leftover temporary files: {error}");
                    continue;
                }
            };
            let name = entry.file_name().to_string_lossy();
            if !entry.file_type().is_file() || !self.owns(&name) {
                continue;
            }
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(error) => tracing::warn!("cannot remove {}: {error}", entry.path().display()),
            }
        }
        removed
    }

    /// A builder of this run's temporary files, created readable like any other file
    /// (tempfile's default is owner-only, 0600).
    fn builder(&self) -> tempfile::Builder<'_, 'static> {
        let mut builder = tempfile::Builder::new();
        builder.prefix(&self.prefix).suffix(TEMP_SUFFIX);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            builder.permissions(fs::Permissions::from_mode(0o666)); // the umask still applies
        }
        builder
    }
}

/// Writes `path` atomically: `write` fills a temporary file next to it, which is then renamed
/// over `path`. Parent folders are created. If `write` or the rename fails, the temporary file
/// is removed and whatever was at `path` before is untouched.
pub fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    write_atomic_with(path, &TempFiles::for_run(None), write)
}

/// [`write_atomic`] through one of `temps`, the temporary files of a batch run or shard.
pub fn write_atomic_with(
    path: &Path,
    temps: &TempFiles,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<()> {
    let error = |source| Error::Write {
        path: path.to_path_buf(),
        source,
    };
    let parent = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(error)?;
    let mut temp = temps.builder().tempfile_in(parent).map_err(error)?;
    let mut writer = io::BufWriter::new(temp.as_file_mut());
    write(&mut writer).map_err(error)?;
    writer.flush().map_err(error)?;
    drop(writer);
    temp.persist(path).map_err(|e| error(e.error))?;
    Ok(())
}

/// Writes the summary text file: the text and a final newline.
pub fn write_text(writer: &mut dyn Write, summary: &str) -> io::Result<()> {
    writer.write_all(summary.trim_end().as_bytes())?;
    writer.write_all(b"\n")
}

/// Writes a record as pretty JSON and a final newline.
pub fn write_json(writer: &mut dyn Write, record: &DocRecord<'_>) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *writer, record)?;
    writer.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole() -> TempFiles {
        TempFiles::for_run(None)
    }

    #[test]
    fn a_shards_summary_goes_through_a_temporary_file_of_that_shard() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a.txt.summary.txt");
        let shard = TempFiles::for_run(Some(Shard::new(2, 3).expect("shard")));
        let mut temporary = Vec::new();
        write_atomic_with(&path, &shard, |w| {
            temporary = names_in(dir.path());
            write_text(w, "x")
        })
        .expect("written");
        assert_eq!(temporary.len(), 1, "{temporary:?}");
        assert!(shard.owns(&temporary[0]), "{temporary:?}");
        assert!(!whole().owns(&temporary[0]), "{temporary:?}");
        assert_eq!(names_in(dir.path()), ["a.txt.summary.txt"]);
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn output_paths_mirror_the_input_tree() {
        let out = Path::new("/out");
        assert_eq!(
            OutputFormat::Text.output_path(out, "a/b/c.md"),
            Path::new("/out/a/b/c.md.summary.txt")
        );
        assert_eq!(
            OutputFormat::Json.output_relative("x.html"),
            "x.html.summary.json"
        );
    }

    #[test]
    fn writes_atomically_creating_parent_folders() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("a/b/c.txt.summary.txt");
        write_atomic(&path, |w| write_text(w, "A summary.  \n")).expect("written");
        assert_eq!(fs::read_to_string(&path).expect("read"), "A summary.\n");
        write_atomic(&path, |w| write_text(w, "Replaced.")).expect("rewritten");
        assert_eq!(fs::read_to_string(&path).expect("read"), "Replaced.\n");
        assert_eq!(names_in(&dir.path().join("a/b")), ["c.txt.summary.txt"]);
    }

    #[test]
    fn a_writer_failing_midway_leaves_no_partial_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("new.summary.txt");
        let fail_midway = |w: &mut dyn Write| {
            w.write_all(&[b'x'; 100_000])?;
            Err(io::Error::other("disk full"))
        };
        let err = write_atomic(&path, fail_midway).expect_err("fails");
        assert!(err.to_string().starts_with("cannot write"), "{err}");
        assert!(err.to_string().contains("new.summary.txt"), "{err}");
        assert!(
            names_in(dir.path()).is_empty(),
            "{:?}",
            names_in(dir.path())
        );

        // An earlier complete summary survives a failed rewrite.
        write_atomic(&path, |w| write_text(w, "Old.")).expect("written");
        write_atomic(&path, fail_midway).expect_err("fails");
        assert_eq!(fs::read_to_string(&path).expect("read"), "Old.\n");
        assert_eq!(names_in(dir.path()), ["new.summary.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn written_files_get_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let ordinary = dir.path().join("ordinary");
        fs::write(&ordinary, b"x").expect("write");
        let path = dir.path().join("s.summary.txt");
        write_atomic(&path, |w| write_text(w, "x")).expect("written");
        let mode = |p: &Path| fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode(&path), mode(&ordinary));
    }

    #[test]
    fn each_run_owns_only_its_own_temporary_files() {
        let shard = |i, n| TempFiles::for_run(Some(Shard::new(i, n).expect("shard")));
        let names = [
            ".precis-a1B2c3.tmp",
            ".precis-shard-0-of-2-a1B2c3.tmp",
            ".precis-shard-1-of-2-a1B2c3.tmp",
            ".precis-shard-0-of-20-a1B2c3.tmp",
            "a.txt.summary.txt",
            ".precis-a1B2c3.tmp.summary.txt",
            "precis-manifest.jsonl",
        ];
        let owned = |temps: &TempFiles| -> Vec<&str> {
            names.into_iter().filter(|n| temps.owns(n)).collect()
        };
        assert_eq!(owned(&whole()), [".precis-a1B2c3.tmp"]);
        assert_eq!(owned(&shard(0, 2)), [".precis-shard-0-of-2-a1B2c3.tmp"]);
        assert_eq!(owned(&shard(1, 2)), [".precis-shard-1-of-2-a1B2c3.tmp"]);
        assert_eq!(owned(&shard(0, 20)), [".precis-shard-0-of-20-a1B2c3.tmp"]);
    }

    #[test]
    fn a_run_removes_its_leftover_temporary_files_and_nothing_else() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shard = TempFiles::for_run(Some(Shard::new(1, 3).expect("shard")));
        // What killed runs left: a whole run's and a shard's, at two depths.
        let keep = [
            "a/b.txt.summary.txt",
            "a/.precis-shard-0-of-3-x.tmp",
            "c.txt",
        ];
        let stale = [".precis-x.tmp", "a/deep/.precis-y.tmp"];
        for name in keep.iter().chain(&stale) {
            let path = dir.path().join(name);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, b"partial").expect("write");
        }
        fs::create_dir(dir.path().join(".precis-folder.tmp")).expect("a folder named like one");
        let shard_leftover = dir.path().join("a/.precis-shard-1-of-3-z.tmp");
        fs::write(&shard_leftover, b"partial").expect("write");

        assert_eq!(whole().remove_stale(dir.path()), 2);
        assert_eq!(shard.remove_stale(dir.path()), 1);
        for name in stale {
            assert!(!dir.path().join(name).exists(), "{name} removed");
        }
        assert!(!shard_leftover.exists());
        for name in keep {
            assert!(dir.path().join(name).exists(), "{name} kept");
        }
        assert!(dir.path().join(".precis-folder.tmp").is_dir());
        assert_eq!(
            whole().remove_stale(dir.path()),
            0,
            "nothing left to remove"
        );
    }

    #[test]
    fn records_serialise_without_absent_ids() {
        let record = DocRecord {
            id: None,
            line: None,
            path: Some("a.txt"),
            status: Status::Ok,
            summary: Some("Short."),
            output_ids: Some(&[0, 7, 1]),
            error: None,
            chunks: 1,
            input_tokens: 12,
            output_tokens: 3,
            seconds: 0.5,
        };
        let json = serde_json::to_string(&record).expect("json");
        assert_eq!(
            json,
            r#"{"path":"a.txt","status":"ok","summary":"Short.","output_ids":[0,7,1],"error":null,"chunks":1,"input_tokens":12,"output_tokens":3,"seconds":0.5}"#
        );
    }
}
