//! Listing the articles of an input folder: recursive, following symbolic links without ever
//! going round in circles, skipping hidden entries, selecting by extension and glob, in sorted
//! order so that every run (and every shard) sees the same list.
//!
//! The walk itself is `walkdir`'s, which detects a link back to an ancestor folder and reports
//! it; such a link is listed as a skipped entry (its files are already reached through the real
//! path), never followed.
//!
//! An output folder inside the input folder is excluded from the walk automatically, and the
//! returned [`Walk`] says so for the CLI to print. Refusing would be the other choice, but
//! `precis batch articles -o articles/summaries` is a natural command, and excluding the output
//! folder is exactly what makes it safe: summaries end in `.txt`, so without the exclusion a
//! second run would summarise the summaries. The output folder is compared by canonical path,
//! so a symbolic link to it inside the inputs is excluded too.

use std::ffi::OsStr;
use std::fs;
use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::{DirEntry, WalkDir};

use crate::{Error, Result};

/// The extensions selected when none are given: plain text, Markdown and HTML.
pub const DEFAULT_EXTENSIONS: &[&str] = &["txt", "md", "html", "htm"];

/// What to list under an input folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkOptions {
    pub in_dir: PathBuf,
    /// File extensions to select, without the dot, compared ignoring ASCII case.
    pub extensions: Vec<String>,
    /// When not empty, a file must also match one of these globs. A glob without `/` is
    /// matched against the file name (`*.md` selects Markdown at any depth), one with `/`
    /// against the whole relative path (`2024/**/*.md`), as in `.gitignore`.
    pub globs: Vec<String>,
    /// Also walk entries whose name starts with `.`.
    pub hidden: bool,
}

impl WalkOptions {
    /// The default selection under `in_dir`: [`DEFAULT_EXTENSIONS`], no glob, no hidden entries.
    pub fn new(in_dir: impl Into<PathBuf>) -> WalkOptions {
        WalkOptions {
            in_dir: in_dir.into(),
            extensions: DEFAULT_EXTENSIONS.iter().map(|e| e.to_string()).collect(),
            globs: Vec::new(),
            hidden: false,
        }
    }

    /// Checks the extensions and globs (the walk checks them too), so that a caller can refuse
    /// bad ones before any slow work.
    pub fn validate(&self) -> Result<()> {
        Selector::new(self).map(drop)
    }
}

/// One selected file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkedFile {
    /// The path relative to the input folder, `/`-separated: the file's id in the manifest,
    /// the shard hash and the output path.
    pub relative: String,
    /// The path to open (under the canonical input folder).
    pub absolute: PathBuf,
}

/// One entry of the listing.
#[derive(Debug)]
pub enum WalkEntry {
    File(WalkedFile),
    /// Left out on purpose, with the reason (a symbolic link loop).
    Skipped {
        relative: String,
        error: Error,
    },
    /// Could not be looked at (unreadable folder, broken link, file name not UTF-8).
    Failed {
        relative: String,
        error: Error,
    },
}

impl WalkEntry {
    pub fn relative(&self) -> &str {
        match self {
            WalkEntry::File(file) => &file.relative,
            WalkEntry::Skipped { relative, .. } | WalkEntry::Failed { relative, .. } => relative,
        }
    }
}

/// The listing of an input folder.
#[derive(Debug)]
pub struct Walk {
    /// The canonical input folder.
    pub in_dir: PathBuf,
    /// Sorted by relative path (byte order).
    pub entries: Vec<WalkEntry>,
    /// The output folder, when it lay inside the input folder and was left out of the walk.
    pub excluded_out_dir: Option<PathBuf>,
}

/// Lists the files of `options.in_dir`, leaving out `exclude` (a canonical folder path, the
/// output folder) wherever it appears. Only a missing or unreadable input folder is an error;
/// trouble with single entries is listed as [`WalkEntry::Failed`] and the walk goes on.
pub fn walk(options: &WalkOptions, exclude: Option<&Path>) -> Result<Walk> {
    let in_dir = canonical_input_dir(&options.in_dir)?;
    let selector = Selector::new(options)?;
    let mut excluded = false;
    let mut entries = Vec::new();
    let walker = WalkDir::new(&in_dir).follow_links(true).into_iter();
    let walker = walker.filter_entry(|entry| {
        if entry.depth() == 0 {
            return true;
        }
        if !options.hidden && is_hidden(entry.file_name()) {
            return false;
        }
        let is_excluded = exclude.is_some_and(|out| is_same_dir(entry, out));
        excluded |= is_excluded;
        !is_excluded
    });
    for result in walker {
        let entry = match result {
            Ok(entry) if entry.file_type().is_file() => file_entry(&in_dir, entry.path()),
            Ok(entry) if entry.file_type().is_dir() => None, // walked into
            Ok(entry) => special_entry(&in_dir, &entry, &selector),
            Err(error) => error_entry(&in_dir, error, options.hidden, &selector),
        };
        if let Some(entry) = entry.filter(|e| selector.selects(e)) {
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| a.relative().cmp(b.relative()));
    Ok(Walk {
        in_dir,
        entries,
        excluded_out_dir: exclude.filter(|_| excluded).map(Path::to_path_buf),
    })
}

/// The input folder made canonical, or the error saying why it cannot be walked (missing, not
/// a folder); the CLI checks this before loading a model.
pub fn canonical_input_dir(in_dir: &Path) -> Result<PathBuf> {
    let error = |problem, source| Error::InputDir {
        path: in_dir.to_path_buf(),
        problem,
        source,
    };
    let canonical = fs::canonicalize(in_dir).map_err(|source| {
        error(
            "cannot be opened; check that the folder exists",
            Some(source),
        )
    })?;
    if !canonical.is_dir() {
        return Err(error(
            "is not a folder; give a folder (use `precis summarize` for one file)",
            None,
        ));
    }
    Ok(canonical)
}

fn is_hidden(name: &OsStr) -> bool {
    name.as_encoded_bytes().starts_with(b".")
}

/// Whether a walked folder is `target` (canonical), whether reached directly or through links.
fn is_same_dir(entry: &DirEntry, target: &Path) -> bool {
    entry.file_type().is_dir() && fs::canonicalize(entry.path()).is_ok_and(|p| p == target)
}

fn file_entry(in_dir: &Path, path: &Path) -> Option<WalkEntry> {
    Some(match relative_path(in_dir, path) {
        Ok(relative) => WalkEntry::File(WalkedFile {
            relative,
            absolute: path.to_path_buf(),
        }),
        Err(error) => WalkEntry::Failed {
            relative: lossy_relative(in_dir, path),
            error,
        },
    })
}

/// A named pipe, socket or device: skipped with the reason when it is named like an article
/// (never opened: a pipe would block the run), left out like any other file otherwise.
fn special_entry(in_dir: &Path, entry: &DirEntry, selector: &Selector) -> Option<WalkEntry> {
    let relative = lossy_relative(in_dir, entry.path());
    if !selector.selects_path(&relative) {
        return None;
    }
    let error = Error::NotAFile {
        path: entry.path().to_path_buf(),
        kind: special_kind(&entry.file_type()),
    };
    Some(WalkEntry::Skipped { relative, error })
}

#[cfg(unix)]
fn special_kind(file_type: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if file_type.is_fifo() {
        "named pipe (FIFO)"
    } else if file_type.is_socket() {
        "socket"
    } else if file_type.is_block_device() || file_type.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &fs::FileType) -> &'static str {
    "special file"
}

/// Turns a walk error into a listed entry, or drops it when it concerns something the walk
/// would not have selected anyway (a hidden entry, a broken link named `photo.jpg`).
fn error_entry(
    in_dir: &Path,
    error: walkdir::Error,
    hidden: bool,
    selector: &Selector,
) -> Option<WalkEntry> {
    let path = error.path().unwrap_or(in_dir).to_path_buf();
    let relative = lossy_relative(in_dir, &path);
    if !hidden && path.file_name().is_some_and(is_hidden) {
        return None;
    }
    if let Some(ancestor) = error.loop_ancestor() {
        let ancestor = ancestor.to_path_buf();
        let error = Error::SymlinkLoop { path, ancestor };
        return Some(WalkEntry::Skipped { relative, error });
    }
    let is_broken_link = fs::symlink_metadata(&path).is_ok_and(|m| m.is_symlink());
    if is_broken_link && !selector.selects_path(&relative) {
        return None;
    }
    let error = Error::Walk {
        path,
        source: error,
    };
    Some(WalkEntry::Failed { relative, error })
}

/// The `/`-separated UTF-8 path of `path` below `in_dir`.
fn relative_path(in_dir: &Path, path: &Path) -> Result<String> {
    let non_utf8 = || Error::NonUtf8Path {
        path: path.to_path_buf(),
    };
    let below = path.strip_prefix(in_dir).unwrap_or(path);
    let mut parts = Vec::new();
    for component in below.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or_else(non_utf8)?),
            _ => continue,
        }
    }
    Ok(parts.join("/"))
}

fn lossy_relative(in_dir: &Path, path: &Path) -> String {
    let below = path.strip_prefix(in_dir).unwrap_or(path);
    let parts: Vec<_> = below
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

/// Extension and glob selection over relative paths.
struct Selector {
    extensions: Vec<String>,
    name_globs: GlobSet,
    path_globs: GlobSet,
    has_globs: bool,
}

impl Selector {
    fn new(options: &WalkOptions) -> Result<Selector> {
        let extensions = normalised_extensions(&options.extensions)?;
        let mut name_globs = GlobSetBuilder::new();
        let mut path_globs = GlobSetBuilder::new();
        for pattern in &options.globs {
            let glob = GlobBuilder::new(pattern)
                .literal_separator(true)
                .build()
                .map_err(|source| Error::Glob {
                    pattern: pattern.clone(),
                    source,
                })?;
            let set = if pattern.contains('/') {
                &mut path_globs
            } else {
                &mut name_globs
            };
            set.add(glob);
        }
        let build = |set: GlobSetBuilder| {
            set.build().map_err(|source| Error::Glob {
                pattern: options.globs.join(" "),
                source,
            })
        };
        Ok(Selector {
            extensions,
            name_globs: build(name_globs)?,
            path_globs: build(path_globs)?,
            has_globs: !options.globs.is_empty(),
        })
    }

    /// Files are selected by extension and glob. Skipped and failed entries are always kept, so
    /// trouble is never hidden; `error_entry` has already dropped those that do not concern us.
    fn selects(&self, entry: &WalkEntry) -> bool {
        match entry {
            WalkEntry::File(file) => self.selects_path(&file.relative),
            WalkEntry::Skipped { .. } | WalkEntry::Failed { .. } => true,
        }
    }

    fn selects_path(&self, relative: &str) -> bool {
        let name = relative.rsplit('/').next().unwrap_or(relative);
        let extension = name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase());
        let by_extension = extension.is_some_and(|ext| self.extensions.contains(&ext));
        let by_glob =
            !self.has_globs || self.name_globs.is_match(name) || self.path_globs.is_match(relative);
        by_extension && by_glob
    }
}

fn normalised_extensions(extensions: &[String]) -> Result<Vec<String>> {
    let normalised: Vec<String> = extensions
        .iter()
        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
        .collect();
    if normalised.is_empty() || normalised.iter().any(|e| e.is_empty() || e.contains('/')) {
        return Err(Error::InvalidOption {
            option: "extensions",
            value: extensions.join(","),
            expected: "one or more file extensions such as txt,md,html".into(),
        });
    }
    Ok(normalised)
}

#[cfg(test)]
mod tests;
