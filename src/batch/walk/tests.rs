//! Tests of the input-folder walk, each over its own temporary tree.

use super::*;
use std::os::unix::fs::symlink;

fn touch(root: &Path, relative: &str) {
    let path = root.join(relative);
    fs::create_dir_all(path.parent().expect("has a parent")).expect("mkdir");
    fs::write(&path, b"Some text.").expect("write");
}

fn listed(walk: &Walk) -> Vec<&str> {
    walk.entries.iter().map(WalkEntry::relative).collect()
}

fn files(walk: &Walk) -> Vec<&str> {
    let files = walk.entries.iter().filter_map(|e| match e {
        WalkEntry::File(file) => Some(file.relative.as_str()),
        _ => None,
    });
    files.collect()
}

fn tree(paths: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for path in paths {
        touch(dir.path(), path);
    }
    dir
}

#[test]
fn walks_nested_folders_in_sorted_order_with_absolute_paths() {
    let dir = tree(&[
        "b.txt",
        "a/z.md",
        "a/b/c.html",
        "a.htm",
        "notes.pdf",
        "README",
    ]);
    let walk = walk(&WalkOptions::new(dir.path()), None).expect("walkable");
    assert_eq!(files(&walk), ["a.htm", "a/b/c.html", "a/z.md", "b.txt"]);
    let canonical = fs::canonicalize(dir.path()).expect("canonical");
    assert_eq!(walk.in_dir, canonical);
    for entry in &walk.entries {
        let WalkEntry::File(file) = entry else {
            panic!("{entry:?}")
        };
        assert_eq!(file.absolute, canonical.join(&file.relative));
    }
}

#[test]
fn skips_hidden_files_and_folders_unless_asked() {
    let dir = tree(&["a.txt", ".secret.txt", ".git/notes.md", "x/.cache/c.txt"]);
    let mut options = WalkOptions::new(dir.path());
    assert_eq!(files(&walk(&options, None).expect("walk")), ["a.txt"]);
    options.hidden = true;
    let all = walk(&options, None).expect("walk");
    assert_eq!(
        files(&all),
        [".git/notes.md", ".secret.txt", "a.txt", "x/.cache/c.txt"]
    );
}

#[test]
fn hidden_input_folder_itself_is_walked() {
    let dir = tree(&[".articles/a.txt"]);
    let options = WalkOptions::new(dir.path().join(".articles"));
    assert_eq!(files(&walk(&options, None).expect("walk")), ["a.txt"]);
}

#[test]
fn selects_by_extension_ignoring_case_and_dots() {
    let dir = tree(&["a.TXT", "b.md", "c.rst", "d.html"]);
    let mut options = WalkOptions::new(dir.path());
    options.extensions = vec![".rst".into(), "TXT".into()];
    assert_eq!(
        files(&walk(&options, None).expect("walk")),
        ["a.TXT", "c.rst"]
    );
    options.extensions = vec![];
    let err = walk(&options, None).expect_err("no extension");
    assert!(
        err.to_string().starts_with("invalid value for extensions"),
        "{err}"
    );
}

#[test]
fn glob_without_slash_matches_names_with_slash_matches_paths() {
    let dir = tree(&[
        "news-1.txt",
        "2024/news-2.txt",
        "2024/x/other.txt",
        "2023/news-3.md",
    ]);
    let mut options = WalkOptions::new(dir.path());
    options.globs = vec!["news-*".into()];
    let by_name = walk(&options, None).expect("walk");
    assert_eq!(
        files(&by_name),
        ["2023/news-3.md", "2024/news-2.txt", "news-1.txt"]
    );
    options.globs = vec!["2024/**".into()];
    let by_path = walk(&options, None).expect("walk");
    assert_eq!(files(&by_path), ["2024/news-2.txt", "2024/x/other.txt"]);
    options.globs = vec!["2024/*.txt".into(), "*.md".into()];
    let either = walk(&options, None).expect("walk");
    assert_eq!(files(&either), ["2023/news-3.md", "2024/news-2.txt"]);
}

#[test]
fn bad_glob_names_the_option_and_pattern() {
    let dir = tree(&["a.txt"]);
    let mut options = WalkOptions::new(dir.path());
    options.globs = vec!["a[".into()];
    let err = walk(&options, None).expect_err("bad glob");
    assert_eq!(
        err.to_string(),
        "invalid value for globs: 'a[' (a glob such as *.md or 2024/**/*.txt)"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn symlink_loop_is_a_skipped_entry_not_a_hang() {
    let dir = tree(&["a/x.txt"]);
    symlink(dir.path().join("a"), dir.path().join("a/again")).expect("symlink");
    symlink(dir.path(), dir.path().join("a/root")).expect("symlink");
    let walk = walk(&WalkOptions::new(dir.path()), None).expect("walk");
    assert_eq!(files(&walk), ["a/x.txt"]);
    assert_eq!(listed(&walk), ["a/again", "a/root", "a/x.txt"]);
    let WalkEntry::Skipped { error, .. } = &walk.entries[0] else {
        panic!("{:?}", walk.entries[0]);
    };
    assert!(matches!(error, Error::SymlinkLoop { .. }));
    assert!(
        error
            .to_string()
            .contains("symbolic link to its ancestor folder"),
        "{error}"
    );
}

#[test]
fn follows_links_to_files_and_folders_outside() {
    let outside = tree(&["elsewhere/far.md", "single.txt"]);
    let dir = tree(&["a.txt"]);
    symlink(outside.path().join("elsewhere"), dir.path().join("linked")).expect("symlink");
    symlink(outside.path().join("single.txt"), dir.path().join("s.txt")).expect("symlink");
    let walk = walk(&WalkOptions::new(dir.path()), None).expect("walk");
    assert_eq!(files(&walk), ["a.txt", "linked/far.md", "s.txt"]);
}

#[test]
fn broken_links_are_failed_only_when_they_would_be_selected() {
    let dir = tree(&["a.txt"]);
    symlink(dir.path().join("gone.txt"), dir.path().join("b.txt")).expect("symlink");
    symlink(dir.path().join("gone.jpg"), dir.path().join("c.jpg")).expect("symlink");
    let walk = walk(&WalkOptions::new(dir.path()), None).expect("walk");
    assert_eq!(listed(&walk), ["a.txt", "b.txt"]);
    assert!(matches!(walk.entries[1], WalkEntry::Failed { .. }));
    let message = match &walk.entries[1] {
        WalkEntry::Failed { error, .. } => error.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(message.contains("b.txt: cannot read"), "{message}");
}

#[test]
fn out_dir_inside_in_dir_is_excluded_and_reported() {
    let dir = tree(&["a.txt", "out/a.txt.summary.txt", "sub/b.md"]);
    let out = fs::canonicalize(dir.path().join("out")).expect("canonical");
    symlink(&out, dir.path().join("sub/link-to-out")).expect("symlink");
    let walk = walk(&WalkOptions::new(dir.path()), Some(&out)).expect("walk");
    assert_eq!(files(&walk), ["a.txt", "sub/b.md"]);
    assert_eq!(walk.excluded_out_dir, Some(out));
    let elsewhere = tempfile::tempdir().expect("temp dir");
    let walk = walk_again(dir.path(), elsewhere.path());
    assert_eq!(walk.excluded_out_dir, None);
}

fn walk_again(in_dir: &Path, out: &Path) -> Walk {
    let out = fs::canonicalize(out).expect("canonical");
    walk(&WalkOptions::new(in_dir), Some(&out)).expect("walk")
}

#[test]
fn missing_or_non_folder_input_is_an_error_naming_it() {
    let dir = tree(&["a.txt"]);
    let missing = walk(&WalkOptions::new(dir.path().join("nope")), None).expect_err("missing");
    assert!(
        missing.to_string().contains("nope: cannot be opened"),
        "{missing}"
    );
    let file = walk(&WalkOptions::new(dir.path().join("a.txt")), None).expect_err("a file");
    assert!(
        file.to_string().contains("a.txt: is not a folder"),
        "{file}"
    );
}

#[cfg(target_os = "linux")] // Linux file systems take any bytes as a name
#[test]
fn non_utf8_file_names_are_failed_entries() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tree(&["a.txt"]);
    let name = OsStr::from_bytes(b"caf\xe9.txt");
    fs::write(dir.path().join(name), b"text").expect("a non-UTF-8 name");
    let walk = walk(&WalkOptions::new(dir.path()), None).expect("walk");
    assert_eq!(listed(&walk), ["a.txt", "caf\u{FFFD}.txt"]);
    assert!(matches!(
        walk.entries[1],
        WalkEntry::Failed {
            error: Error::NonUtf8Path { .. },
            ..
        }
    ));
}

/// A folder that cannot be read, in a way root cannot get round either: so deep that its
/// path is longer than the system allows (PATH_MAX), so opening it fails. It is built one
/// level at a time through `/proc/self/fd`, whose paths stay short.
#[cfg(target_os = "linux")]
#[test]
fn unreadable_folder_is_a_failed_entry_and_the_walk_goes_on() {
    let dir = tree(&["a.txt", "z.txt"]);
    let name = "d".repeat(250);
    let mut folder = fs::File::open(dir.path()).expect("open the folder");
    for _ in 0..20 {
        let fd = std::os::fd::AsRawFd::as_raw_fd(&folder);
        let next = format!("/proc/self/fd/{fd}/{name}");
        fs::create_dir(&next).expect("mkdir");
        folder = fs::File::open(&next).expect("open the new folder");
    }
    let walk = walk(&WalkOptions::new(dir.path()), None).expect("walk");
    assert_eq!(files(&walk), ["a.txt", "z.txt"]);
    let failed: Vec<&Error> = walk
        .entries
        .iter()
        .filter_map(|entry| match entry {
            WalkEntry::Failed { error, .. } => Some(error),
            _ => None,
        })
        .collect();
    assert_eq!(failed.len(), 1, "{:?}", walk.entries);
    let Error::Walk { source, .. } = failed[0] else {
        panic!("{:?}", failed[0]);
    };
    let kind = source.io_error().map(std::io::Error::kind);
    assert_eq!(kind, Some(std::io::ErrorKind::InvalidFilename), "{source}");
    assert!(failed[0].to_string().contains("cannot read while walking"));
}

#[test]
fn pipes_and_devices_named_like_articles_are_skipped_unopened() {
    let dir = tree(&["a.txt"]);
    let fifo = dir.path().join("pipe.txt");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.expect("mkfifo runs").success());
    std::os::unix::net::UnixListener::bind(dir.path().join("socket.md")).expect("socket");
    symlink("/dev/null", dir.path().join("null.txt")).expect("symlink");
    symlink("/dev/null", dir.path().join("null.pdf")).expect("symlink");
    // Walking opens none of them: a pipe would block until a writer came.
    let walk = walk(&WalkOptions::new(dir.path()), None).expect("walk");
    assert_eq!(files(&walk), ["a.txt"]);
    assert_eq!(
        listed(&walk),
        ["a.txt", "null.txt", "pipe.txt", "socket.md"]
    );
    let reasons: Vec<String> = walk.entries[1..]
        .iter()
        .map(|entry| match entry {
            WalkEntry::Skipped { error, .. } => error.to_string(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(reasons[0].ends_with("null.txt: is a device, not a regular file; skipped"));
    assert!(
        reasons[1].contains("pipe.txt: is a named pipe (FIFO)"),
        "{reasons:?}"
    );
    assert!(reasons[2].contains("socket.md: is a socket"), "{reasons:?}");
}
