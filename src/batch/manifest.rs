//! The batch manifest: `OUT_DIR/precis-manifest.jsonl`, one JSON line per processed file, the
//! record of what was done that makes a batch resumable.
//!
//! It is append-only: a rerun adds rows, and the latest row for a path wins. Rows are written
//! and flushed once per round, so a killed run loses at most the round in flight, whose files
//! are simply done again. A kill can leave half a line at the end; loading ignores it, and the
//! next run that writes the file cuts it off before appending, so every line stays a row.
//!
//! Each shard writes its own file, `precis-manifest.shard-I-of-N.jsonl`, so that workers sharing
//! an output folder (often on a network file system, where appends are not atomic) never write
//! to the same file; loading reads every `precis-manifest*.jsonl` in the folder and keeps the row
//! with the latest `finished_at` for each path.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use super::shard::Shard;
use crate::{Error, Result};

const MANIFEST_STEM: &str = "precis-manifest";
const MANIFEST_EXTENSION: &str = ".jsonl";

/// What happened to one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Failed,
    Skipped,
}

/// One line of the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestRow {
    /// Relative to the input folder, `/`-separated.
    pub path: String,
    pub status: Status,
    /// Why the file failed or was skipped, for people to read.
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub chunks: usize,
    #[serde(default)]
    pub input_tokens: usize,
    #[serde(default)]
    pub output_tokens: usize,
    #[serde(default)]
    pub seconds: f64,
    pub model: String,
    pub options_hash: String,
    /// The summary's path relative to the output folder; `None` unless `status` is ok.
    #[serde(default)]
    pub output: Option<String>,
    /// UTC, RFC 3339 with milliseconds (`2026-05-01T12:00:00.123Z`): fixed width, so it sorts
    /// as text.
    pub finished_at: String,
}

/// The current time in the format of [`ManifestRow::finished_at`].
pub fn timestamp_now() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The manifest file a run writes: per shard when sharded.
pub fn manifest_path(out_dir: &Path, shard: Option<Shard>) -> PathBuf {
    let name = match shard {
        None => format!("{MANIFEST_STEM}{MANIFEST_EXTENSION}"),
        Some(shard) => format!(
            "{MANIFEST_STEM}.shard-{}-of-{}{MANIFEST_EXTENSION}",
            shard.index(),
            shard.count()
        ),
    };
    out_dir.join(name)
}

/// The manifests of an output folder, read: the latest row per path.
#[derive(Debug, Default)]
pub struct Manifest {
    latest: HashMap<String, ManifestRow>,
    /// Lines that were not rows, other than a cut-off last line: `(file, line number)`. Their
    /// files will be redone, which loses nothing; the CLI may warn.
    pub damaged_lines: Vec<(PathBuf, usize)>,
}

impl Manifest {
    /// Reads every manifest in `out_dir`; a folder without one gives an empty manifest.
    pub fn load(out_dir: &Path) -> Result<Manifest> {
        let mut manifest = Manifest::default();
        for path in manifest_files(out_dir)? {
            let bytes = fs::read(&path).map_err(|source| Error::Io {
                path: path.clone(),
                source,
            })?;
            manifest.add_lines(&path, &bytes);
        }
        Ok(manifest)
    }

    /// The latest row for `path`, if it was ever processed.
    pub fn latest(&self, path: &str) -> Option<&ManifestRow> {
        self.latest.get(path)
    }

    pub fn len(&self) -> usize {
        self.latest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.latest.is_empty()
    }

    fn add_lines(&mut self, file: &Path, bytes: &[u8]) {
        let ends_cleanly = bytes.ends_with(b"\n");
        let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
        let last = lines.len().saturating_sub(1);
        for (index, line) in lines.iter().enumerate() {
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match serde_json::from_slice::<ManifestRow>(line) {
                Ok(row) => self.add(row),
                // A kill mid-write leaves a partial last line: expected, not damage.
                Err(_) if index == last && !ends_cleanly => {}
                Err(_) => self.damaged_lines.push((file.to_path_buf(), index + 1)),
            }
        }
    }

    /// Keeps `row` if it is at least as recent as the one held; on a tie the later line wins.
    fn add(&mut self, row: ManifestRow) {
        let newer = self
            .latest
            .get(&row.path)
            .is_none_or(|held| row.finished_at >= held.finished_at);
        if newer {
            self.latest.insert(row.path.clone(), row);
        }
    }
}

fn manifest_files(out_dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(out_dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            let path = out_dir.to_path_buf();
            return Err(Error::Io { path, source });
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name.starts_with(MANIFEST_STEM) && name.ends_with(MANIFEST_EXTENSION)
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Appends rows to one manifest file, a round at a time.
#[derive(Debug)]
pub struct ManifestWriter {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
}

impl ManifestWriter {
    /// Opens (creating) the manifest at `path` for appending.
    pub fn open(path: &Path) -> Result<ManifestWriter> {
        let write_error = |source| Error::Write {
            path: path.to_path_buf(),
            source,
        };
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(path)
            .map_err(write_error)?;
        // A cut-off last line (a kill mid-append) goes: only this run writes this file.
        let complete = complete_length(&mut file).map_err(write_error)?;
        file.set_len(complete).map_err(write_error)?;
        Ok(ManifestWriter {
            path: path.to_path_buf(),
            file,
            pending: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues one row; nothing reaches the file before [`ManifestWriter::flush`].
    pub fn push(&mut self, row: &ManifestRow) -> Result<()> {
        serde_json::to_writer(&mut self.pending, row).map_err(|source| Error::ToJson {
            what: format!("the manifest row of {}", row.path),
            source,
        })?;
        self.pending.push(b'\n');
        Ok(())
    }

    /// Writes the queued rows in one append and syncs them to disk.
    pub fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let result = self
            .file
            .write_all(&self.pending)
            .and_then(|()| self.file.sync_data());
        self.pending.clear();
        result.map_err(|source| Error::Write {
            path: self.path.clone(),
            source,
        })
    }
}

/// The length of `file` up to and including its last newline: the part made of whole lines.
/// Read backwards a block at a time, as a manifest can be large and a cut line is short.
fn complete_length(file: &mut File) -> std::io::Result<u64> {
    const BLOCK: u64 = 8192;
    let mut end = file.metadata()?.len();
    let mut block = vec![0u8; BLOCK as usize];
    while end > 0 {
        let start = end.saturating_sub(BLOCK);
        let bytes = &mut block[..(end - start) as usize];
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(bytes)?;
        if let Some(newline) = bytes.iter().rposition(|&b| b == b'\n') {
            return Ok(start + newline as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str, status: Status, finished_at: &str) -> ManifestRow {
        ManifestRow {
            path: path.into(),
            status,
            error: (status != Status::Ok).then(|| "a.txt: is empty".to_string()),
            chunks: 2,
            input_tokens: 900,
            output_tokens: 60,
            seconds: 1.5,
            model: "t5-small".into(),
            options_hash: "0123456789abcdef".into(),
            output: (status == Status::Ok).then(|| format!("{path}.summary.txt")),
            finished_at: finished_at.into(),
        }
    }

    fn write_rows(path: &Path, rows: &[ManifestRow]) {
        let mut writer = ManifestWriter::open(path).expect("open");
        for row in rows {
            writer.push(row).expect("push");
        }
        writer.flush().expect("flush");
    }

    #[test]
    fn round_trips_rows_and_keeps_the_latest_per_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = manifest_path(dir.path(), None);
        let first = row("a.txt", Status::Failed, "2026-01-01T00:00:00.000Z");
        let second = row("a.txt", Status::Ok, "2026-01-02T00:00:00.000Z");
        let other = row("b/c.md", Status::Ok, "2026-01-01T00:00:00.000Z");
        write_rows(&path, &[first, other.clone()]);
        write_rows(&path, std::slice::from_ref(&second));
        let manifest = Manifest::load(dir.path()).expect("load");
        assert_eq!(manifest.len(), 2);
        assert_eq!(manifest.latest("a.txt"), Some(&second));
        assert_eq!(manifest.latest("b/c.md"), Some(&other));
        assert_eq!(manifest.latest("zzz"), None);
        assert!(manifest.damaged_lines.is_empty());
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 3);
        assert!(
            text.lines()
                .next()
                .expect("a line")
                .contains(r#""status":"failed""#)
        );
    }

    #[test]
    fn tolerates_a_truncated_last_line_and_appends_after_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = manifest_path(dir.path(), None);
        let kept = row("a.txt", Status::Ok, "2026-01-01T00:00:00.000Z");
        write_rows(&path, std::slice::from_ref(&kept));
        let mut cut = serde_json::to_vec(&row("b.txt", Status::Ok, "2026-01-01T00:00:00.000Z"))
            .expect("json");
        cut.truncate(cut.len() / 2);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&cut))
            .expect("append half a row");

        let manifest = Manifest::load(dir.path()).expect("load");
        assert_eq!(manifest.len(), 1);
        assert_eq!(manifest.latest("a.txt"), Some(&kept));
        assert!(manifest.damaged_lines.is_empty());

        let after = row("b.txt", Status::Ok, "2026-01-03T00:00:00.000Z");
        write_rows(&path, std::slice::from_ref(&after));
        let manifest = Manifest::load(dir.path()).expect("load");
        assert_eq!(manifest.latest("b.txt"), Some(&after));
        // The cut-off line went before the append: every line is a row again.
        assert!(
            manifest.damaged_lines.is_empty(),
            "{:?}",
            manifest.damaged_lines
        );
        assert_eq!(manifest.len(), 2);
        let text = fs::read_to_string(&path).expect("read");
        assert_eq!(text.lines().count(), 2, "{text}");
    }

    #[test]
    fn a_cut_line_longer_than_a_block_is_cut_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = manifest_path(dir.path(), None);
        let mut first = row("a.txt", Status::Failed, "2026-01-01T00:00:00.000Z");
        first.error = Some("x".repeat(20_000)); // the kept row spans blocks too
        write_rows(&path, std::slice::from_ref(&first));
        let whole = fs::read(&path).expect("read");
        let mut cut = serde_json::to_vec(&first).expect("json");
        cut.truncate(cut.len() - 10);
        OpenOptions::new()
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(&cut))
            .expect("append a cut row");
        let mut file = OpenOptions::new().read(true).open(&path).expect("open");
        assert_eq!(
            complete_length(&mut file).expect("length"),
            whole.len() as u64
        );
        ManifestWriter::open(&path).expect("open for appending");
        assert_eq!(fs::read(&path).expect("read"), whole);

        let only_cut = manifest_path(dir.path(), Some(Shard::new(0, 2).expect("shard")));
        fs::write(&only_cut, &cut).expect("write");
        ManifestWriter::open(&only_cut).expect("open for appending");
        assert!(fs::read(&only_cut).expect("read").is_empty());
    }

    #[test]
    fn missing_folder_or_manifest_loads_empty() {
        let dir = tempfile::tempdir().expect("temp dir");
        assert!(Manifest::load(dir.path()).expect("load").is_empty());
        assert!(
            Manifest::load(&dir.path().join("nope"))
                .expect("load")
                .is_empty()
        );
    }

    #[test]
    fn shards_write_their_own_files_and_loading_merges_them_by_time() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shard = |i| Some(Shard::new(i, 2).expect("valid"));
        let shard_0 = manifest_path(dir.path(), shard(0));
        assert!(shard_0.ends_with("precis-manifest.shard-0-of-2.jsonl"));
        let newer = row("a.txt", Status::Ok, "2026-01-05T00:00:00.000Z");
        write_rows(&shard_0, std::slice::from_ref(&newer));
        let older = row("a.txt", Status::Failed, "2026-01-04T00:00:00.000Z");
        write_rows(&manifest_path(dir.path(), None), &[older]);
        write_rows(
            &manifest_path(dir.path(), shard(1)),
            &[row("b.txt", Status::Ok, "x")],
        );
        let manifest = Manifest::load(dir.path()).expect("load");
        assert_eq!(manifest.latest("a.txt"), Some(&newer));
        assert_eq!(manifest.len(), 2);
    }

    #[test]
    fn timestamps_sort_as_text() {
        let stamp = timestamp_now();
        assert_eq!(stamp.len(), "2026-01-01T00:00:00.000Z".len(), "{stamp}");
        assert!(stamp.ends_with('Z'));
    }
}
