//! A tiny local HTTP server that answers like the Hugging Face Hub (file listing, range
//! downloads), or refuses, or never answers — so hub code is tested without a network.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub(crate) enum Behaviour {
    /// Serve these files of the repo.
    Serve(BTreeMap<String, Vec<u8>>),
    /// Answer every request with this HTTP status and no body.
    Status(u16),
    /// Accept connections (the OS does) but never answer.
    Silent,
}

pub(crate) struct FakeHub {
    pub(crate) endpoint: String,
    /// Kept so the port stays open (and, when silent, unanswered) for the test's lifetime.
    _listener: Option<TcpListener>,
    /// Requests read so far (not counted when silent).
    requests: Arc<AtomicUsize>,
}

impl FakeHub {
    pub(crate) fn start(repo: &str, behaviour: Behaviour) -> FakeHub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
        let requests = Arc::new(AtomicUsize::new(0));
        if let Behaviour::Silent = behaviour {
            return FakeHub {
                endpoint,
                _listener: Some(listener),
                requests,
            };
        }
        let repo = repo.to_string();
        let counter = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                counter.fetch_add(1, Ordering::SeqCst);
                answer(stream, &repo, &behaviour);
            }
        });
        FakeHub {
            endpoint,
            _listener: None,
            requests,
        }
    }

    /// Connections the hub has taken so far. Connections are counted as they are accepted, so
    /// after a client call returns, every connection it made is counted.
    pub(crate) fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn answer(mut stream: TcpStream, repo: &str, behaviour: &Behaviour) {
    let Some((path, range)) = read_request(&stream) else {
        return;
    };
    let (status, headers, body) = match behaviour {
        Behaviour::Status(code) => (*code, vec![], vec![]),
        Behaviour::Serve(files) => route(files, repo, &path, range),
        Behaviour::Silent => return,
    };
    let mut head = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
}

/// The request path and the start and end of its `Range: bytes=S-[E]` header, if any.
/// `bytes=start-[end]` of a Range header.
type ByteRange = (usize, Option<usize>);

fn read_request(stream: &TcpStream) -> Option<(String, Option<ByteRange>)> {
    let mut reader = BufReader::new(stream);
    let mut first = String::new();
    reader.read_line(&mut first).ok()?;
    let path = first.split_whitespace().nth(1)?.to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 || line == "\r\n" {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("range")
        {
            let spec = value.trim().strip_prefix("bytes=")?;
            let (start, end) = spec.split_once('-')?;
            range = Some((start.parse().ok()?, end.parse().ok()));
        }
    }
    Some((path, range))
}

type Response = (u16, Vec<(String, String)>, Vec<u8>);

fn route(
    files: &BTreeMap<String, Vec<u8>>,
    repo: &str,
    path: &str,
    range: Option<ByteRange>,
) -> Response {
    if path == format!("/api/models/{repo}/revision/main") {
        let siblings: Vec<_> = files
            .keys()
            .map(|f| serde_json::json!({"rfilename": f}))
            .collect();
        let body = serde_json::json!({"siblings": siblings, "sha": COMMIT}).to_string();
        return (200, vec![], body.into_bytes());
    }
    let prefix = format!("/{repo}/resolve/main/");
    let Some((index, (_, contents))) = path.strip_prefix(&prefix).and_then(|file| {
        files
            .iter()
            .enumerate()
            .find(|(_, (name, _))| *name == file)
    }) else {
        return (404, vec![], vec![]);
    };
    let (start, end) = range.unwrap_or((0, None));
    let end = end.unwrap_or(contents.len() - 1).min(contents.len() - 1);
    let headers = vec![
        ("ETag".to_string(), format!("\"blob{index}\"")),
        ("X-Repo-Commit".to_string(), COMMIT.to_string()),
        (
            "Content-Range".to_string(),
            format!("bytes {start}-{end}/{}", contents.len()),
        ),
    ];
    (206, headers, contents[start..=end].to_vec())
}
