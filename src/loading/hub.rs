//! The Hugging Face Hub and its local cache as sources of model files.
//!
//! hf-hub 0.4's sync API sets no timeouts (ureq waits up to 30 s to connect and forever to
//! read), so the first request — listing the repo's files, which we need anyway to choose the
//! weights format — runs on a helper thread that we stop waiting for after
//! [`HubSettings::timeout`]. Once the Hub has answered, downloads run without a deadline
//! because large weights legitimately take minutes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use hf_hub::api::RepoInfo;
use hf_hub::api::sync::{Api, ApiBuilder, ApiError};
use hf_hub::{Cache, Repo};

use super::files::{FileSource, ModelFiles, pick_files};
use crate::error::{Error, Result};

const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// Same default as huggingface_hub's `HF_HUB_ETAG_TIMEOUT` for its metadata requests.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to reach the Hub. Built from the environment once ([`HubSettings::from_env`]);
/// tests and embedders build it directly instead of mutating process environment.
#[derive(Clone)]
pub struct HubSettings {
    /// Base URL of the Hub or a mirror (`HF_ENDPOINT`), without a trailing slash.
    pub endpoint: String,
    /// The hub cache folder, shared with Python's huggingface_hub.
    pub cache_dir: PathBuf,
    /// Access token for private or gated repos.
    pub token: Option<String>,
    /// Use only the cache; never touch the network (`HF_HUB_OFFLINE=1` or `--offline`).
    pub offline: bool,
    /// How long to wait for the Hub's first answer before reporting it unreachable.
    pub timeout: Duration,
    /// Draw download progress bars on stderr.
    pub progress: bool,
}

impl std::fmt::Debug for HubSettings {
    // Hand-written so that logging the settings never prints the token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubSettings")
            .field("endpoint", &self.endpoint)
            .field("cache_dir", &self.cache_dir)
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .field("offline", &self.offline)
            .field("timeout", &self.timeout)
            .field("progress", &self.progress)
            .finish()
    }
}

impl HubSettings {
    /// Reads the variables Python's huggingface_hub reads: `HF_ENDPOINT`, `HF_HUB_CACHE`,
    /// `HF_HOME`, `XDG_CACHE_HOME`, `HF_TOKEN` (else the `token` file under `HF_HOME`),
    /// `HF_HUB_OFFLINE`, `HF_HUB_ETAG_TIMEOUT` and `HF_HUB_DISABLE_PROGRESS_BARS`.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// [`HubSettings::from_env`] over any variable lookup, so tests need not touch the
    /// process environment.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let hf_home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(|| {
                home_dir(&var)
                    .unwrap_or_else(|| PathBuf::from("."))
                    .join(".cache")
            });
            cache.join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .or_else(|| var("HUGGINGFACE_HUB_CACHE"))
            .map(PathBuf::from)
            .unwrap_or_else(|| hf_home.join("hub"));
        let token = var("HF_TOKEN")
            .or_else(|| var("HUGGING_FACE_HUB_TOKEN"))
            .or_else(|| {
                read_token_file(&var("HF_TOKEN_PATH").map_or(hf_home.join("token"), PathBuf::from))
            });
        let timeout = var("HF_HUB_ETAG_TIMEOUT")
            .and_then(|secs| secs.trim().parse::<f64>().ok())
            .filter(|secs| secs.is_finite() && *secs > 0.0)
            .map_or(DEFAULT_TIMEOUT, Duration::from_secs_f64);
        HubSettings {
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string())
                .trim_end_matches('/')
                .to_string(),
            cache_dir,
            token,
            offline: var("HF_HUB_OFFLINE").is_some_and(|v| is_true(&v)),
            timeout,
            progress: !var("HF_HUB_DISABLE_PROGRESS_BARS").is_some_and(|v| is_true(&v)),
        }
    }
}

/// huggingface_hub's notion of a true environment flag.
fn is_true(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_uppercase().as_str(),
        "1" | "ON" | "YES" | "TRUE"
    )
}

fn home_dir(var: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    var("HOME")
        .or_else(|| var("USERPROFILE"))
        .map(PathBuf::from)
}

fn read_token_file(path: &Path) -> Option<String> {
    let token = std::fs::read_to_string(path).ok()?;
    let token = token.trim();
    (!token.is_empty()).then(|| token.to_string())
}

/// The files of Hub repo `repo`, from the cache when complete there, else downloaded
/// (unless offline). `name` is how the user called the model, for messages.
pub(crate) fn fetch_repo(repo: &str, name: &str, hub: &HubSettings) -> Result<ModelFiles> {
    let cached = CachedRepo::new(repo, name, hub);
    let from_cache = pick_files(&cached, name);
    if hub.offline || from_cache.is_ok() {
        return from_cache;
    }
    tracing::debug!(
        "model '{name}' is not complete in {}; asking the Hub",
        hub.cache_dir.display()
    );
    let remote = RemoteRepo::connect(repo, name, hub)?;
    pick_files(&remote, name)
}

/// A repo as far as the local cache holds it; never touches the network.
struct CachedRepo {
    cache: hf_hub::CacheRepo,
    model: String,
    repo: String,
    cache_dir: PathBuf,
}

impl CachedRepo {
    fn new(repo: &str, name: &str, hub: &HubSettings) -> Self {
        CachedRepo {
            cache: Cache::new(hub.cache_dir.clone()).repo(Repo::model(repo.to_string())),
            model: name.to_string(),
            repo: repo.to_string(),
            cache_dir: hub.cache_dir.clone(),
        }
    }
}

impl FileSource for CachedRepo {
    fn has(&self, file: &str) -> bool {
        self.cache.get(file).is_some()
    }

    fn fetch(&self, file: &str) -> Result<PathBuf> {
        self.cache.get(file).ok_or_else(|| self.missing(file))
    }

    fn missing(&self, file: &str) -> Error {
        Error::ModelNotCached {
            model: self.model.clone(),
            repo: self.repo.clone(),
            cache_dir: self.cache_dir.clone(),
            file: file.to_string(),
        }
    }
}

/// A repo on the Hub whose file list we already have; fetching downloads into the cache.
struct RemoteRepo {
    api: Api,
    repo: Repo,
    listed: HashSet<String>,
    model: String,
}

impl RemoteRepo {
    /// Lists the repo's files, giving up after `hub.timeout` so an unreachable Hub fails fast.
    fn connect(repo: &str, name: &str, hub: &HubSettings) -> Result<Self> {
        let unreachable =
            |source: Box<dyn std::error::Error + Send + Sync>| Error::HubUnreachable {
                model: name.to_string(),
                repo: repo.to_string(),
                endpoint: hub.endpoint.clone(),
                source,
            };
        let api = ApiBuilder::from_cache(Cache::new(hub.cache_dir.clone()))
            .with_endpoint(hub.endpoint.clone())
            .with_token(hub.token.clone())
            .with_progress(hub.progress)
            .with_retries(2)
            .with_user_agent("precis", env!("CARGO_PKG_VERSION"))
            .build()
            .map_err(|e| unreachable(Box::new(e)))?;
        let hub_repo = Repo::model(repo.to_string());
        let info = match info_within(&api, &hub_repo, hub.timeout) {
            Ok(Ok(info)) => info,
            Ok(Err(error)) => return Err(classify(error, name, repo, &hub.endpoint)),
            Err(no_answer) => return Err(unreachable(Box::new(no_answer))),
        };
        Ok(RemoteRepo {
            api,
            repo: hub_repo,
            listed: info.siblings.into_iter().map(|s| s.rfilename).collect(),
            model: name.to_string(),
        })
    }
}

impl FileSource for RemoteRepo {
    fn has(&self, file: &str) -> bool {
        self.listed.contains(file)
    }

    fn fetch(&self, file: &str) -> Result<PathBuf> {
        tracing::info!("fetching {file} of '{}'", self.model);
        self.api
            .repo(self.repo.clone())
            .get(file)
            .map_err(|source| Error::HubDownload {
                model: self.model.clone(),
                file: file.to_string(),
                source: Box::new(source),
            })
    }

    fn missing(&self, file: &str) -> Error {
        Error::MissingModelFile {
            model: self.model.clone(),
            file: file.to_string(),
            hint: "the repository does not contain it; precis needs a transformers-format \
                   checkpoint (config.json, a tokenizer and weights)"
                .to_string(),
        }
    }
}

/// The repo's file listing, or why the Hub gave none within `timeout`.
fn info_within(
    api: &Api,
    repo: &Repo,
    timeout: Duration,
) -> std::result::Result<std::result::Result<RepoInfo, ApiError>, NoAnswer> {
    let (sender, receiver) = mpsc::channel();
    let (api, repo) = (api.clone(), repo.clone());
    // If the Hub never answers this thread stays blocked; it holds nothing but a socket and
    // ends with the process, which is the price of a bounded wait on ureq 2.
    std::thread::spawn(move || {
        let _ = sender.send(api.repo(repo).info());
    });
    receiver.recv_timeout(timeout).map_err(|error| match error {
        mpsc::RecvTimeoutError::Timeout => NoAnswer::Timeout(timeout),
        mpsc::RecvTimeoutError::Disconnected => NoAnswer::Lost,
    })
}

/// Why the Hub gave no answer, where there is no underlying error to keep as the source.
#[derive(Debug, thiserror::Error)]
enum NoAnswer {
    #[error("no answer within {} s (raise HF_HUB_ETAG_TIMEOUT on a slow network)", .0.as_secs_f32())]
    Timeout(Duration),
    #[error("the request thread stopped without an answer")]
    Lost,
}

/// Client errors (the Hub answered, but no) get their own message; everything else means
/// the Hub could not be reached.
fn classify(error: ApiError, name: &str, repo: &str, endpoint: &str) -> Error {
    if let ApiError::RequestError(request) = &error
        && let ureq::Error::Status(status @ 400..=499, _) = **request
    {
        return Error::HubRefused {
            model: name.to_string(),
            endpoint: endpoint.to_string(),
            status,
        };
    }
    Error::HubUnreachable {
        model: name.to_string(),
        repo: repo.to_string(),
        endpoint: endpoint.to_string(),
        source: Box::new(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::loading::fake_hub::{Behaviour, COMMIT, FakeHub};
    use crate::loading::{TokenizerFiles, Weights, resolve};
    use std::collections::{BTreeMap, HashMap};

    const REPO: &str = "someone/tiny-t5";

    fn settings(endpoint: &str, cache: &Path, offline: bool) -> HubSettings {
        HubSettings {
            endpoint: endpoint.to_string(),
            cache_dir: cache.to_path_buf(),
            token: None,
            offline,
            timeout: Duration::from_secs(5),
            progress: false,
        }
    }

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    /// Files that say which they are; the JSON ones as JSON, since loading parses them.
    fn repo_files(names: &[&str]) -> BTreeMap<String, Vec<u8>> {
        let contents = |name: &str| match name.ends_with(".json") {
            true => serde_json::json!({ "contents of": name }).to_string(),
            false => format!("contents of {name}"),
        };
        names
            .iter()
            .map(|name| (name.to_string(), contents(name).into_bytes()))
            .collect()
    }

    #[test]
    fn settings_follow_huggingface_hub_defaults() {
        let s = HubSettings::from_vars(vars(&[("HOME", "/home/u")]));
        assert_eq!(s.endpoint, "https://huggingface.co");
        assert_eq!(s.cache_dir, PathBuf::from("/home/u/.cache/huggingface/hub"));
        assert_eq!(
            (s.offline, s.progress, s.timeout),
            (false, true, DEFAULT_TIMEOUT)
        );
        assert_eq!(s.token, None);
    }

    #[test]
    fn settings_honour_each_variable() {
        let s = HubSettings::from_vars(vars(&[
            ("HOME", "/home/u"),
            ("XDG_CACHE_HOME", "/xdg"),
            ("HF_ENDPOINT", "http://mirror.local/"),
            ("HF_HUB_OFFLINE", "yes"),
            ("HF_HUB_ETAG_TIMEOUT", "2.5"),
            ("HF_HUB_DISABLE_PROGRESS_BARS", "1"),
            ("HF_TOKEN", "hf_secret"),
        ]));
        assert_eq!(s.endpoint, "http://mirror.local");
        assert_eq!(s.cache_dir, PathBuf::from("/xdg/huggingface/hub"));
        assert!(s.offline && !s.progress);
        assert_eq!(s.timeout, Duration::from_millis(2500));
        assert_eq!(s.token.as_deref(), Some("hf_secret"));
        assert!(
            !format!("{s:?}").contains("hf_secret"),
            "Debug must not print the token"
        );

        let s = HubSettings::from_vars(vars(&[("HF_HOME", "/hf"), ("HF_HUB_OFFLINE", "0")]));
        assert_eq!(s.cache_dir, PathBuf::from("/hf/hub"));
        assert!(!s.offline);
        let s = HubSettings::from_vars(vars(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache")]));
        assert_eq!(s.cache_dir, PathBuf::from("/cache"));
        let s = HubSettings::from_vars(vars(&[("HF_HUB_ETAG_TIMEOUT", "soon")]));
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    }

    #[test]
    fn token_is_read_from_the_hf_home_token_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "hf_from_file\n").unwrap();
        let s = HubSettings::from_vars(vars(&[("HF_HOME", home.path().to_str().unwrap())]));
        assert_eq!(s.token.as_deref(), Some("hf_from_file"));
    }

    /// Offline means no request at all: the fake hub answers anything, and counts.
    #[test]
    fn offline_with_an_empty_cache_asks_nothing_and_explains() {
        let fake = FakeHub::start(REPO, Behaviour::Status(500));
        let home = tempfile::tempdir().unwrap();
        let hub = HubSettings::from_vars(vars(&[
            ("HF_HOME", home.path().to_str().unwrap()),
            ("HF_HUB_OFFLINE", "1"),
            ("HF_ENDPOINT", &fake.endpoint),
        ]));
        let err = resolve("google-t5/t5-small", &hub).unwrap_err();
        assert_eq!(fake.requests(), 0, "offline, yet the hub was asked");
        assert!(matches!(err, Error::ModelNotCached { ref file, .. } if file == "config.json"));
        let message = err.to_string();
        for needle in [
            "google-t5/t5-small",
            "--model /path/to/folder",
            "HF_HUB_OFFLINE",
        ] {
            assert!(message.contains(needle), "{message}");
        }
        assert!(
            message.contains(&home.path().join("hub").display().to_string()),
            "{message}"
        );
    }

    /// A refused connection is reported as refused, not waited on until the timeout (which would
    /// end in "no answer within 30 s" instead).
    #[test]
    fn a_closed_port_is_reported_as_refused_and_explained() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free local port")
            .port(); // closed again when the listener drops
        let cache = tempfile::tempdir().unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let hub = HubSettings {
            timeout: Duration::from_secs(30),
            ..settings(&endpoint, cache.path(), false)
        };
        let err = resolve("t5-small", &hub).unwrap_err();
        assert!(matches!(err, Error::HubUnreachable { .. }), "{err:?}");
        let message = err.to_string();
        let needles = [
            "'t5-small'",
            endpoint.as_str(),
            "hf download google-t5/t5-small",
            "--model /path/to/folder",
        ];
        for needle in needles {
            assert!(message.contains(needle), "{message}");
        }
        let refused = std::iter::successors(std::error::Error::source(&err), |e| e.source())
            .filter_map(|e| e.downcast_ref::<std::io::Error>())
            .any(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);
        assert!(refused, "keeps the transport error: {err:?}");
    }

    /// The hub accepts the connection and never answers: the wait ends at the timeout, and the
    /// error says so (the wait cannot end any other way).
    #[test]
    fn a_hub_that_never_answers_is_given_up_on_after_the_timeout() {
        let fake = FakeHub::start(REPO, Behaviour::Silent);
        let cache = tempfile::tempdir().unwrap();
        let hub = HubSettings {
            timeout: Duration::from_millis(300),
            ..settings(&fake.endpoint, cache.path(), false)
        };
        let err = resolve(REPO, &hub).unwrap_err();
        assert!(matches!(err, Error::HubUnreachable { .. }), "{err:?}");
        let source = std::error::Error::source(&err).map(ToString::to_string);
        assert_eq!(
            source.as_deref(),
            Some("no answer within 0.3 s (raise HF_HUB_ETAG_TIMEOUT on a slow network)"),
            "{err:?}"
        );
    }

    #[test]
    fn refusals_are_reported_with_their_status() {
        for status in [401, 404] {
            let fake = FakeHub::start(REPO, Behaviour::Status(status));
            let cache = tempfile::tempdir().unwrap();
            let err = resolve(REPO, &settings(&fake.endpoint, cache.path(), false)).unwrap_err();
            assert!(
                matches!(err, Error::HubRefused { status: s, .. } if s == status),
                "{err:?}"
            );
            assert!(err.to_string().contains("HF_TOKEN"));
        }
    }

    #[test]
    fn downloads_into_the_cache_then_works_offline() {
        let names = [
            "config.json",
            "generation_config.json",
            "tokenizer.json",
            "model.safetensors",
        ];
        let fake = FakeHub::start(REPO, Behaviour::Serve(repo_files(&names)));
        let cache = tempfile::tempdir().unwrap();
        let online = resolve(REPO, &settings(&fake.endpoint, cache.path(), false)).unwrap();
        let snapshot = cache
            .path()
            .join("models--someone--tiny-t5")
            .join("snapshots")
            .join(COMMIT);
        assert_eq!(online.config.path, snapshot.join("config.json"));
        assert_eq!(
            online.tokenizer,
            TokenizerFiles::Json(snapshot.join("tokenizer.json"))
        );
        assert_eq!(
            online.weights,
            Weights::Safetensors(vec![snapshot.join("model.safetensors")])
        );
        let generation = online.generation_config.as_ref().unwrap();
        assert_eq!(generation.path, snapshot.join("generation_config.json"));
        assert_eq!(generation.json["contents of"], "generation_config.json");
        assert_eq!(online.config.json["contents of"], "config.json");
        let config = std::fs::read_to_string(&online.config.path).unwrap();
        assert_eq!(config, r#"{"contents of":"config.json"}"#);

        let offline = resolve(REPO, &settings(&fake.endpoint, cache.path(), true)).unwrap();
        assert_eq!(offline, online);
        // Complete in the cache: not even an unreachable endpoint is consulted.
        let cached = resolve(REPO, &settings("http://127.0.0.1:9", cache.path(), false)).unwrap();
        assert_eq!(cached, online);
    }

    #[test]
    fn downloads_sharded_weights_and_bpe_tokenizers() {
        let index = r#"{"weight_map": {"a": "model-00001-of-00002.safetensors",
                                       "b": "model-00002-of-00002.safetensors"}}"#;
        let mut files = repo_files(&[
            "config.json",
            "vocab.json",
            "merges.txt",
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "README.md",
        ]);
        files.insert(
            "model.safetensors.index.json".to_string(),
            index.as_bytes().to_vec(),
        );
        let fake = FakeHub::start(REPO, Behaviour::Serve(files));
        let cache = tempfile::tempdir().unwrap();
        let found = resolve(REPO, &settings(&fake.endpoint, cache.path(), false)).unwrap();
        let Weights::Safetensors(shards) = &found.weights else {
            panic!("expected safetensors, got {:?}", found.weights)
        };
        assert_eq!(shards.len(), 2);
        assert!(shards[1].ends_with("model-00002-of-00002.safetensors"));
        assert!(matches!(
            found.tokenizer,
            TokenizerFiles::VocabMerges { .. }
        ));
        assert_eq!(found.generation_config, None);
    }

    #[test]
    fn a_repo_without_weights_names_what_is_missing() {
        let fake = FakeHub::start(
            REPO,
            Behaviour::Serve(repo_files(&["config.json", "tokenizer.json"])),
        );
        let cache = tempfile::tempdir().unwrap();
        let err = resolve(REPO, &settings(&fake.endpoint, cache.path(), false)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains(REPO) && message.contains("model.safetensors"),
            "{message}"
        );
    }
}
