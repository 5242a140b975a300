//! Reading what `precis eval` scores: JSON Lines records (predictions, references, or whole data
//! sets with the article too) and folders of text files, each keyed by an id, and pairing
//! predictions with references by that id.
//!
//! A bad record (not JSON, not an object, a field missing or not a string, an id seen before) is
//! reported as a [`Problem`] naming its file and line, and reading goes on; so is an id found on
//! one side only. Only a file or folder that cannot be read at all is an error.

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{Error, Result};

/// Which JSON fields hold what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub id: String,
    /// The article (summarised, and the source of the compression and novelty statistics).
    pub text: String,
    pub reference: String,
    pub summary: String,
}

impl Default for Fields {
    fn default() -> Self {
        Fields {
            id: "id".into(),
            text: "text".into(),
            reference: "reference".into(),
            summary: "summary".into(),
        }
    }
}

/// A record or file that was left out, and why.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// The JSONL file, or the file of a folder.
    pub file: String,
    /// The line of a JSONL record, from 1; 0 for a file of a folder.
    pub line: usize,
    pub message: String,
}

impl Problem {
    /// A problem with `record`.
    pub fn at(record: &Record, message: String) -> Problem {
        Problem {
            file: record.file.clone(),
            line: record.line,
            message,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            0 => write!(f, "{}: {}", self.file, self.message),
            line => write!(f, "{}:{line}: {}", self.file, self.message),
        }
    }
}

/// One record: its id, where it is, and the fields asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub id: String,
    /// The JSONL file, or the file of a folder.
    pub file: String,
    /// The line of a JSONL record, from 1; 0 for a file of a folder.
    pub line: usize,
    /// The requested fields, in the order asked, `None` for an optional one that is absent.
    pub values: Vec<Option<String>>,
}

/// Records keyed by id, in file order, and the problems met reading them.
#[derive(Debug, Default)]
pub struct Records {
    pub records: Vec<Record>,
    pub problems: Vec<Problem>,
}

/// A field to read from each record.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    pub name: &'a str,
    pub required: bool,
}

/// Reads JSON Lines records from `reader` (`name` is what messages call it). An id may be a
/// string or a number (`7` and `"7"` are the same id); a record without one gets its line number
/// as id when `id_required` is false.
pub fn read_jsonl(
    name: &str,
    reader: impl BufRead,
    id_field: &str,
    id_required: bool,
    wanted: &[Wanted<'_>],
) -> Result<Records> {
    let mut out = Records::default();
    let mut first_line: HashMap<String, usize> = HashMap::new();
    for (index, line) in reader.split(b'\n').enumerate() {
        let number = index + 1;
        let bytes = line.map_err(|source| Error::Io {
            path: PathBuf::from(name),
            source,
        })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let problem = |message: String| Problem {
            file: name.to_string(),
            line: number,
            message,
        };
        match parse_record(&bytes, id_field, id_required, wanted, number) {
            Err(message) => out.problems.push(problem(message)),
            Ok((id, values)) => {
                if let Some(first) = first_line.get(&id) {
                    let message = format!("id {id:?} repeats line {first}; this line is left out");
                    out.problems.push(problem(message));
                    continue;
                }
                first_line.insert(id.clone(), number);
                out.records.push(Record {
                    id,
                    file: name.to_string(),
                    line: number,
                    values,
                });
            }
        }
    }
    Ok(out)
}

type Parsed = (String, Vec<Option<String>>);

fn parse_record(
    bytes: &[u8],
    id_field: &str,
    id_required: bool,
    wanted: &[Wanted<'_>],
    line: usize,
) -> std::result::Result<Parsed, String> {
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| format!("not valid JSON ({e}); fix or remove the line"))?;
    let Value::Object(object) = value else {
        return Err("not a JSON object; each line must be one {...} record".into());
    };
    let id = match object.get(id_field) {
        Some(Value::String(id)) => id.clone(),
        Some(Value::Number(id)) => id.to_string(),
        None if !id_required => line.to_string(),
        None => {
            return Err(format!(
                "no {id_field:?} field (the id to match records by)"
            ));
        }
        Some(other) => {
            return Err(format!(
                "the {id_field:?} field is {}, not a string or a number",
                kind(other)
            ));
        }
    };
    let values = wanted
        .iter()
        .map(|field| match object.get(field.name) {
            Some(Value::String(text)) => Ok(Some(text.clone())),
            None | Some(Value::Null) if !field.required => Ok(None),
            None => Err(format!("no {:?} field", field.name)),
            Some(other) => Err(format!(
                "the {:?} field is {}, not a string",
                field.name,
                kind(other)
            )),
        })
        .collect::<std::result::Result<_, _>>()?;
    Ok((id, values))
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The files of `dir` whose relative path ends with one of `suffixes`, each keyed by its
/// relative path without that suffix and without the extension left before it (so the summary
/// `a/x.md.summary.txt` and the reference `a/x.txt` both have id `a/x`). Hidden files (such as
/// a batch's temporary files) are skipped. The one field read is the file's text, or for a
/// `.json` file the `json_field` string in it.
pub fn read_folder(dir: &Path, suffixes: &[&str], json_field: &str) -> Result<Records> {
    let mut out = Records::default();
    let mut first: HashMap<String, String> = HashMap::new();
    for (relative, path) in folder_files(dir)? {
        let Some(stem) = suffixes.iter().find_map(|s| relative.strip_suffix(s)) else {
            continue;
        };
        let id = without_extension(stem).to_string();
        let location = path.display().to_string();
        let problem = |message: String| Problem {
            file: location.clone(),
            line: 0,
            message,
        };
        if let Some(earlier) = first.get(&id) {
            let message = format!("has the same id {id:?} as {earlier}; this file is left out");
            out.problems.push(problem(message));
            continue;
        }
        let bytes = fs::read(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        match file_value(&relative, bytes, json_field) {
            Ok(value) => {
                first.insert(id.clone(), location.clone());
                out.records.push(Record {
                    id,
                    file: location,
                    line: 0,
                    values: vec![Some(value)],
                });
            }
            Err(message) => out.problems.push(problem(message)),
        }
    }
    Ok(out)
}

fn file_value(
    relative: &str,
    bytes: Vec<u8>,
    json_field: &str,
) -> std::result::Result<String, String> {
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    if !relative.ends_with(".json") {
        return Ok(text.trim_end().to_string());
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(object)) => match object.get(json_field) {
            Some(Value::String(summary)) => Ok(summary.clone()),
            _ => Err(format!("no {json_field:?} string in this JSON file")),
        },
        _ => Err("not a JSON object".into()),
    }
}

/// `a/x.md` → `a/x`; a leading dot is not an extension.
fn without_extension(relative: &str) -> &str {
    let name_start = relative.rfind('/').map_or(0, |i| i + 1);
    match relative[name_start..].rfind('.') {
        Some(dot) if dot > 0 => &relative[..name_start + dot],
        _ => relative,
    }
}

/// Every non-hidden file under `dir`, sorted, with its `/`-separated relative path.
fn folder_files(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let walk_error = |source: walkdir::Error| Error::Walk {
        path: source.path().unwrap_or(dir).to_path_buf(),
        source,
    };
    let mut files = Vec::new();
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name();
    let hidden = |entry: &walkdir::DirEntry| {
        entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.')
    };
    for entry in walker.into_iter().filter_entry(|e| !hidden(e)) {
        let entry = entry.map_err(walk_error)?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
        let relative: Vec<String> = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        files.push((relative.join("/"), entry.into_path()));
    }
    Ok(files)
}

/// A prediction and its reference, paired by id.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub id: String,
    pub prediction: String,
    pub reference: String,
    /// The article, when the references carry it.
    pub source: Option<String>,
}

/// Pairs `predictions` (values: `[summary]`) with `references` (values: `[reference, text]`) by
/// id, in the order of the references; each id found on one side only is a problem.
pub fn pair_up(predictions: Records, references: Records) -> (Vec<Pair>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut by_id: HashMap<String, Record> = predictions
        .records
        .into_iter()
        .map(|record| (record.id.clone(), record))
        .collect();
    let mut pairs = Vec::new();
    for reference in references.records {
        let Some(prediction) = by_id.remove(&reference.id) else {
            let message = format!("id {:?} has no prediction", reference.id);
            problems.push(Problem::at(&reference, message));
            continue;
        };
        let mut values = reference.values.into_iter();
        pairs.push(Pair {
            id: reference.id,
            prediction: prediction
                .values
                .into_iter()
                .flatten()
                .next()
                .unwrap_or_default(),
            reference: values.next().flatten().unwrap_or_default(),
            source: values.next().flatten(),
        });
    }
    problems.extend(by_id.into_values().map(|record| {
        let message = format!("id {:?} has no reference", record.id);
        Problem::at(&record, message)
    }));
    problems.sort();
    (pairs, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wanted(name: &str) -> Vec<Wanted<'_>> {
        vec![Wanted {
            name,
            required: true,
        }]
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers_and_reading_goes_on() {
        let input = "{\"id\": \"a\", \"summary\": \"A.\"}\n\nnot json\n[1]\n{\"id\": 7}\n\
                     {\"id\": \"a\", \"summary\": \"again\"}\n{\"summary\": \"x\"}\n\
                     {\"id\": 7, \"summary\": 3}\n{\"id\": 8, \"summary\": \"B.\"}\n";
        let records =
            read_jsonl("p.jsonl", input.as_bytes(), "id", true, &wanted("summary")).expect("read");
        let ids: Vec<&str> = records.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a", "8"]);
        let problems: Vec<String> = records.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(
            problems[0].starts_with("p.jsonl:3: not valid JSON"),
            "{problems:?}"
        );
        assert_eq!(
            problems[1],
            "p.jsonl:4: not a JSON object; each line must be one {...} record"
        );
        assert_eq!(problems[2], "p.jsonl:5: no \"summary\" field");
        assert_eq!(
            problems[3],
            "p.jsonl:6: id \"a\" repeats line 1; this line is left out"
        );
        assert_eq!(
            problems[4],
            "p.jsonl:7: no \"id\" field (the id to match records by)"
        );
        assert_eq!(
            problems[5],
            "p.jsonl:8: the \"summary\" field is a number, not a string"
        );
    }

    #[test]
    fn ids_default_to_line_numbers_when_not_required() {
        let input = "{\"text\": \"x\"}\n{\"id\": \"k\", \"text\": \"y\"}\n";
        let records =
            read_jsonl("d.jsonl", input.as_bytes(), "id", false, &wanted("text")).expect("read");
        let ids: Vec<&str> = records.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["1", "k"]);
    }

    #[test]
    fn pairs_by_id_and_reports_the_unmatched() {
        let record = |id: &str, line: usize, values: Vec<Option<String>>| Record {
            id: id.into(),
            file: "f".into(),
            line,
            values,
        };
        let predictions = Records {
            records: vec![
                record("b", 1, vec![Some("pb".into())]),
                record("z", 2, vec![Some("pz".into())]),
                record("a", 3, vec![Some("pa".into())]),
            ],
            problems: Vec::new(),
        };
        let references = Records {
            records: vec![
                record("a", 1, vec![Some("ra".into()), Some("article".into())]),
                record("c", 2, vec![Some("rc".into()), None]),
                record("b", 3, vec![Some("rb".into()), None]),
            ],
            problems: Vec::new(),
        };
        let (pairs, problems) = pair_up(predictions, references);
        let got: Vec<(&str, &str, &str)> = pairs
            .iter()
            .map(|p| (p.id.as_str(), p.prediction.as_str(), p.reference.as_str()))
            .collect();
        assert_eq!(got, [("a", "pa", "ra"), ("b", "pb", "rb")]);
        assert_eq!(pairs[0].source.as_deref(), Some("article"));
        let problems: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert_eq!(
            problems,
            [
                "f:2: id \"c\" has no prediction",
                "f:2: id \"z\" has no reference"
            ]
        );
    }

    #[test]
    fn folders_key_files_by_path_without_suffix_or_extension() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |relative: &str, text: &str| {
            let path = dir.path().join(relative);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, text).expect("write");
        };
        write("news/a.md.summary.txt", "Summary A.\n");
        write("b.txt.summary.json", "{\"summary\": \"Summary B.\"}");
        write("c.html.summary.json", "{\"error\": \"failed\"}");
        write(".precis-x.tmp", "half");
        write("precis-manifest.jsonl", "{}");
        write("news/a.txt.summary.txt", "Same id as news/a.md.");
        let records =
            read_folder(dir.path(), &[".summary.txt", ".summary.json"], "summary").expect("read");
        let got: Vec<(&str, Option<&str>)> = records
            .records
            .iter()
            .map(|r| (r.id.as_str(), r.values[0].as_deref()))
            .collect();
        assert_eq!(
            got,
            [("b", Some("Summary B.")), ("news/a", Some("Summary A."))]
        );
        let problems: Vec<String> = records.problems.iter().map(|p| p.message.clone()).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[0], "no \"summary\" string in this JSON file");
        assert!(
            problems[1].starts_with("has the same id \"news/a\" as "),
            "{problems:?}"
        );
        assert_eq!(without_extension("a.b/.hidden"), "a.b/.hidden");
    }
}
