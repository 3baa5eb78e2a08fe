//! A Hugging Face-compatible origin for tests: serves repos held in memory with the
//! routes `mirror-hf` uses (revision, tree, resolve; HEAD and `Range` too), with the
//! hub's ETags computed from the content, knobs to misbehave, and counters of what it
//! served. Listens on 127.0.0.1 on a port of its own.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures_util::StreamExt;
use seedbank_protocol::hf::HubHasher;

/// Files at least this big are listed as LFS files, as the hub stores weights.
pub const LFS_THRESHOLD: usize = 1 << 20;

/// One file of a repo.
#[derive(Debug, Clone)]
pub struct OriginFile {
    /// Its path in the repo.
    pub path: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl OriginFile {
    /// Whether it is listed as an LFS file.
    pub fn lfs(&self) -> bool {
        self.bytes.len() >= LFS_THRESHOLD
    }

    /// Its hub ETag: the sha256 for an LFS file, else the git blob sha1.
    pub fn etag(&self) -> String {
        let (git_sha1, sha256) = hashes(&self.bytes);
        if self.lfs() {
            sha256
        } else {
            git_sha1
        }
    }
}

fn hashes(bytes: &[u8]) -> (String, String) {
    let mut hasher = HubHasher::new(bytes.len() as u64);
    hasher.update(bytes);
    hasher.finish()
}

/// A repo the origin serves, at one commit that the branch `main` points at.
#[derive(Debug, Clone)]
pub struct OriginRepo {
    /// `models` or `datasets`.
    pub plural: &'static str,
    /// `org/name`.
    pub id: String,
    /// The commit id.
    pub commit: String,
    /// Its files.
    pub files: Vec<OriginFile>,
}

/// What the origin served.
#[derive(Debug, Clone, Default)]
pub struct Served {
    /// GET requests for file bodies, by repo path.
    pub gets: HashMap<String, u64>,
    /// Of those, the ones with a `Range` header.
    pub range_gets: HashMap<String, u64>,
    /// Body bytes sent, by repo path.
    pub bytes: HashMap<String, u64>,
}

impl Served {
    /// Body bytes sent in all.
    pub fn total_bytes(&self) -> u64 {
        self.bytes.values().sum()
    }
}

#[derive(Default)]
struct Knobs {
    /// Paths served with one byte flipped (the listing keeps the true hashes).
    corrupt: Vec<String>,
    /// Path whose first GET is cut off after this many bytes.
    drop_after: Option<(String, usize)>,
    /// Tree entries per page (`Link: rel="next"` for the rest).
    page_size: Option<usize>,
    /// Paths answered with a redirect to a URL instead of their bytes.
    redirects: Vec<(String, String)>,
    /// Paths whose GETs send one byte every 200 ms.
    trickle: Vec<String>,
}

struct Shared {
    repos: Vec<OriginRepo>,
    knobs: Mutex<Knobs>,
    served: Mutex<Served>,
}

/// The running origin; stops when dropped.
pub struct HfOrigin {
    address: SocketAddr,
    shared: Arc<Shared>,
    _runtime: tokio::runtime::Runtime,
}

impl HfOrigin {
    /// Serves `repos`.
    pub fn start(repos: Vec<OriginRepo>) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the origin");
        let shared = Arc::new(Shared {
            repos,
            knobs: Mutex::default(),
            served: Mutex::default(),
        });
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("binding the origin");
        let address = listener.local_addr().expect("the origin's address");
        let app = Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&shared));
        runtime.spawn(async move { axum::serve(listener, app).await });
        Self {
            address,
            shared,
            _runtime: runtime,
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Serves `path` with one byte flipped, while the listing keeps its true hash.
    pub fn corrupt(&self, path: &str) {
        lock(&self.shared.knobs).corrupt.push(path.to_owned());
    }

    /// Cuts the first GET of `path` off after `bytes` bytes.
    pub fn drop_first_get_after(&self, path: &str, bytes: usize) {
        lock(&self.shared.knobs).drop_after = Some((path.to_owned(), bytes));
    }

    /// Answers GETs of `path` with `302 Found` to `to`.
    pub fn redirect(&self, path: &str, to: &str) {
        lock(&self.shared.knobs)
            .redirects
            .push((path.to_owned(), to.to_owned()));
    }

    /// Sends `path` one byte every 200 ms (on every GET until [`Self::stop_trickle`]).
    pub fn trickle(&self, path: &str) {
        lock(&self.shared.knobs).trickle.push(path.to_owned());
    }

    /// Serves every path at full speed again.
    pub fn stop_trickle(&self) {
        lock(&self.shared.knobs).trickle.clear();
    }

    /// Lists trees `entries` at a time.
    pub fn page_size(&self, entries: usize) {
        lock(&self.shared.knobs).page_size = Some(entries);
    }

    /// What was served so far.
    pub fn served(&self) -> Served {
        lock(&self.shared.served).clone()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn not_found(code: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        [("x-error-code", code.to_owned())],
        "",
    )
        .into_response()
}

/// Decodes `%XX` escapes.
fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&segment[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let segments: Vec<String> = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let query = request.uri().query().unwrap_or("").to_owned();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    match parts.as_slice() {
        ["api", plural, org, name, "revision", rev] => {
            let Some(repo) = find(&shared, plural, org, name) else {
                return not_found("RepoNotFound");
            };
            if *rev != "main" && *rev != repo.commit {
                return not_found("RevisionNotFound");
            }
            let siblings: Vec<_> = repo
                .files
                .iter()
                .map(|f| serde_json::json!({"rfilename": f.path}))
                .collect();
            axum::Json(serde_json::json!({
                "id": repo.id, "sha": repo.commit, "siblings": siblings
            }))
            .into_response()
        }
        ["api", plural, org, name, "tree", rev] => {
            let Some(repo) = find(&shared, plural, org, name) else {
                return not_found("RepoNotFound");
            };
            if *rev != repo.commit {
                return not_found("RevisionNotFound");
            }
            tree(&shared, repo, request.uri().path(), &query)
        }
        ["datasets", org, name, "resolve", rev, path @ ..] => resolve(
            &shared,
            "datasets",
            org,
            name,
            rev,
            &path.join("/"),
            &request,
        ),
        [org, name, "resolve", rev, path @ ..] => {
            resolve(&shared, "models", org, name, rev, &path.join("/"), &request)
        }
        _ => not_found("RepoNotFound"),
    }
}

fn find<'a>(shared: &'a Shared, plural: &str, org: &str, name: &str) -> Option<&'a OriginRepo> {
    let id = format!("{org}/{name}");
    shared
        .repos
        .iter()
        .find(|r| r.plural == plural && r.id == id)
}

fn tree(shared: &Shared, repo: &OriginRepo, path: &str, query: &str) -> Response {
    let entries: Vec<serde_json::Value> = repo
        .files
        .iter()
        .map(|f| {
            let (git_sha1, sha256) = hashes(&f.bytes);
            let mut entry = serde_json::json!({
                "type": "file", "path": f.path, "oid": git_sha1, "size": f.bytes.len()
            });
            if f.lfs() {
                entry["lfs"] = serde_json::json!({
                    "oid": sha256, "size": f.bytes.len(), "pointerSize": 134
                });
            }
            entry
        })
        .collect();
    let page_size = lock(&shared.knobs).page_size.unwrap_or(usize::MAX);
    let start: usize = query
        .split('&')
        .find_map(|p| p.strip_prefix("cursor="))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let end = start.saturating_add(page_size).min(entries.len());
    let page = entries.get(start..end).unwrap_or(&[]).to_vec();
    let mut headers = HeaderMap::new();
    if end < entries.len() {
        let next = format!("<{path}?recursive=true&expand=false&cursor={end}>; rel=\"next\"");
        headers.insert(header::LINK, next.parse().expect("a Link header"));
    }
    (headers, axum::Json(page)).into_response()
}

fn resolve(
    shared: &Arc<Shared>,
    plural: &str,
    org: &str,
    name: &str,
    rev: &str,
    path: &str,
    request: &Request,
) -> Response {
    let Some(repo) = find(shared, plural, org, name) else {
        return not_found("RepoNotFound");
    };
    if rev != "main" && rev != repo.commit {
        return not_found("RevisionNotFound");
    }
    let Some(file) = repo.files.iter().find(|f| f.path == path) else {
        return not_found("EntryNotFound");
    };
    let mut bytes = file.bytes.clone();
    let redirect = lock(&shared.knobs)
        .redirects
        .iter()
        .find(|(p, _)| p == path)
        .map(|(_, to)| to.clone());
    if let Some(to) = redirect {
        return (StatusCode::FOUND, [(header::LOCATION, to)], "").into_response();
    }
    let (drop_at, corrupt, trickle) = {
        let mut knobs = lock(&shared.knobs);
        let corrupt = knobs.corrupt.iter().any(|p| p == path);
        let trickle = knobs.trickle.iter().any(|p| p == path);
        let drop_at = match &knobs.drop_after {
            Some((p, n)) if p == path && request.method() == Method::GET => {
                let n = *n;
                knobs.drop_after = None;
                Some(n)
            }
            _ => None,
        };
        (drop_at, corrupt, trickle)
    };
    if corrupt {
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0xff;
    }
    let total = bytes.len();
    let range_start = request
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|start| *start < total);
    let mut builder = Response::builder()
        .header("x-repo-commit", &repo.commit)
        .header(header::ETAG, format!("\"{}\"", file.etag()))
        .header("x-linked-size", total)
        .header(header::ACCEPT_RANGES, "bytes");
    let body = match range_start {
        Some(start) => {
            builder = builder.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{total}", total - 1),
            );
            bytes.split_off(start)
        }
        None => bytes,
    };
    builder = builder.header(header::CONTENT_LENGTH, body.len());
    if request.method() == Method::HEAD {
        return builder.body(Body::empty()).expect("a response");
    }
    {
        let mut served = lock(&shared.served);
        *served.gets.entry(path.to_owned()).or_default() += 1;
        if range_start.is_some() {
            *served.range_gets.entry(path.to_owned()).or_default() += 1;
        }
        let sent = drop_at.unwrap_or(body.len()).min(body.len());
        *served.bytes.entry(path.to_owned()).or_default() += sent as u64;
    }
    if trickle {
        // One byte per 200 ms: never idle long enough for a read timeout. Ends when
        // the client hangs up (the body is dropped).
        let stream = futures_util::stream::iter(body).then(|byte| async move {
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            Ok::<_, std::io::Error>(bytes::Bytes::from(vec![byte]))
        });
        return builder.body(Body::from_stream(stream)).expect("a response");
    }
    match drop_at {
        None => builder.body(Body::from(body)).expect("a response"),
        Some(cut) => {
            // Send the first `cut` bytes, then fail the body: the connection is closed
            // short of its Content-Length, as a dropped transfer.
            let head = bytes::Bytes::from(body[..cut.min(body.len())].to_vec());
            let stream = futures_util::stream::once(async { Ok(head) }).chain(
                futures_util::stream::once(async {
                    // Let the bytes before the cut reach the client first.
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    Err(std::io::Error::other("dropped by the test origin"))
                }),
            );
            builder.body(Body::from_stream(stream)).expect("a response")
        }
    }
}
