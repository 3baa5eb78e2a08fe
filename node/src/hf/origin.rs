//! The client side of an HF-compatible origin: a revision's commit id, the commit's file
//! listing, and the requests for file bodies.
//!
//! The origin is not trusted: every JSON body is capped while it is read, the listing is
//! bounded in pages, files, paths and sizes, and the next-page links must stay on the
//! origin. A redirect may leave the origin (the hub sends LFS files to a CDN) only for
//! a host that is not this machine or a private network ([`redirect_allowed`]), so an
//! origin cannot point the node at its own services. The bytes of files are checked by
//! the caller ([`super::download`]).

use std::net::IpAddr;
use std::time::Duration;

use reqwest::header::{HeaderMap, RANGE};
use reqwest::{Client, Response, StatusCode, Url};
use seedbank_protocol::hf::is_commit_id;
use seedbank_protocol::limits::MAX_FILES_PER_ARTIFACT;
use seedbank_protocol::HfRepo;
use serde::Deserialize;

use super::listing::{check_entry, next_page, ListedFile, TreeEntry};
use crate::error::{NodeError, NodeResult};

/// Largest JSON body read from the origin (revision info, one page of a listing). The
/// hub's pages of 1,000 entries are well under 1 MiB; more is an origin misbehaving.
pub const MAX_ORIGIN_JSON_BYTES: usize = 16 << 20;

/// Most pages of a tree listing followed. With the hub's 1,000 entries per page this
/// covers [`MAX_FILES_PER_ARTIFACT`]; an origin linking pages forever is cut off.
pub const MAX_TREE_PAGES: usize = 1_000;

/// How long connecting to the origin may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Longest silence while reading a response before the transfer counts as dropped
/// (and is resumed).
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Whether the HTTP client can reach `https` origins. The workspace builds reqwest
/// without TLS (enabling its rustls backend would add a second crypto provider to the
/// rustls that iroh uses); until it has TLS, an `https` origin is refused up front with a
/// clear message rather than failing on its first request.
pub const HTTPS_ORIGINS: bool = false;

/// Most redirects followed (the hub sends LFS downloads to a CDN with one).
const MAX_REDIRECTS: usize = 5;

/// Follows at most [`MAX_REDIRECTS`] redirects, each allowed by [`redirect_allowed`].
fn redirect_policy(base: Url) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= MAX_REDIRECTS {
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        if redirect_allowed(&base, attempt.url()) {
            attempt.follow()
        } else {
            let to = attempt.url().to_string();
            attempt.error(format!(
                "the origin redirected off itself to {to}, which is on this machine or a \
                 private network; not followed"
            ))
        }
    })
}

/// Whether a redirect from the origin at `base` to `to` may be followed: to the origin
/// itself, or over http(s) to a host that is neither a name for this machine nor an
/// address of a loopback, private, link-local or unspecified network.
pub fn redirect_allowed(base: &Url, to: &Url) -> bool {
    if to.origin() == base.origin() {
        return true;
    }
    if !matches!(to.scheme(), "http" | "https") {
        return false;
    }
    let Some(host) = to.host_str() else {
        return false;
    };
    match host.trim_matches(['[', ']']).parse::<IpAddr>() {
        Ok(ip) => is_public(ip),
        Err(_) => {
            let name = host.trim_end_matches('.').to_ascii_lowercase();
            name != "localhost" && !name.ends_with(".localhost")
        }
    }
}

/// Whether `ip` is outside loopback, private, shared, link-local and unspecified space.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || a == 0
                || (a == 100 && (b & 0xc0) == 64))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// `GET /api/{models|datasets}/{id}/revision/{rev}`, the part used.
#[derive(Debug, Deserialize)]
struct RevisionInfo {
    sha: String,
}

/// A repo on an origin.
#[derive(Debug, Clone)]
pub struct Origin {
    client: Client,
    base: Url,
    repo: HfRepo,
}

impl Origin {
    /// The repo `repo` on the origin at `base` (an `http` or `https` URL).
    pub fn new(base: &str, repo: HfRepo) -> NodeResult<Self> {
        let base = Url::parse(base.trim())
            .map_err(|e| NodeError::BadRequest(format!("origin {base:?} is not a URL: {e}")))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(NodeError::BadRequest(format!(
                "origin {base} must be an http or https URL"
            )));
        }
        if base.scheme() == "https" && !HTTPS_ORIGINS {
            return Err(NodeError::BadRequest(format!(
                "origin {base}: this build's HTTP client has no TLS, so only http origins \
                 work (give one with --origin or HF_ENDPOINT)"
            )));
        }
        let client = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .redirect(redirect_policy(base.clone()))
            .user_agent(concat!("seedbank/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NodeError::Unreachable(format!("cannot make an HTTP client: {e}")))?;
        Ok(Self { client, base, repo })
    }

    /// The repo.
    pub fn repo(&self) -> &HfRepo {
        &self.repo
    }

    /// The base URL followed by `segments`, each percent-encoded as one path segment.
    fn url<S: AsRef<str>>(&self, segments: impl IntoIterator<Item = S>) -> Url {
        let mut url = self.base.clone();
        url.set_query(None);
        url.set_fragment(None);
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// `api/{models|datasets}/{org}/{name}` followed by `rest`.
    fn api_url(&self, rest: &[&str]) -> Url {
        let mut segments = vec!["api", self.repo.repo_type.plural()];
        segments.extend(self.repo.id.split('/'));
        segments.extend_from_slice(rest);
        self.url(segments)
    }

    /// The commit id `revision` (a branch, tag or commit) points at.
    pub async fn commit(&self, revision: &str) -> NodeResult<String> {
        let url = self.api_url(&["revision", revision]);
        let (info, _): (RevisionInfo, _) = self.get_json(url).await?;
        if !is_commit_id(&info.sha) {
            return Err(NodeError::PeerMisbehaved(format!(
                "the origin gave {:?} as the commit of {}@{revision}, which is not a commit id",
                info.sha, self.repo
            )));
        }
        Ok(info.sha)
    }

    /// The files of `commit`, sorted by path, each checked: a valid path, a size within
    /// the limits, an ETag of the right form. Directories are left out.
    pub async fn files(&self, commit: &str) -> NodeResult<Vec<ListedFile>> {
        let mut url = self.api_url(&["tree", commit]);
        url.query_pairs_mut()
            .append_pair("recursive", "true")
            .append_pair("expand", "false");
        let mut files = Vec::new();
        for _ in 0..MAX_TREE_PAGES {
            let (entries, headers): (Vec<TreeEntry>, _) = self.get_json(url.clone()).await?;
            for entry in entries {
                if entry.kind != "file" {
                    continue;
                }
                files.push(check_entry(entry).map_err(|what| self.misbehaved(what))?);
                if files.len() > MAX_FILES_PER_ARTIFACT {
                    return Err(
                        self.misbehaved(format!("lists more than {MAX_FILES_PER_ARTIFACT} files"))
                    );
                }
            }
            match next_page(&headers) {
                None => {
                    files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
                    if files.windows(2).any(|w| w[0].path == w[1].path) {
                        return Err(self.misbehaved("lists a path twice".into()));
                    }
                    return Ok(files);
                }
                Some(next) => url = self.same_origin(&next)?,
            }
        }
        Err(self.misbehaved(format!("lists more than {MAX_TREE_PAGES} pages")))
    }

    /// The URL of `path` in `commit`: `{id}/resolve/{commit}/{path}`, with `datasets/`
    /// in front for a dataset.
    pub fn file_url(&self, commit: &str, path: &str) -> Url {
        let prefix = match self.repo.repo_type.plural() {
            "models" => None,
            plural => Some(plural),
        };
        self.url(
            prefix
                .into_iter()
                .chain(self.repo.id.split('/'))
                .chain(["resolve", commit])
                .chain(path.split('/')),
        )
    }

    /// Sends `GET url`, from byte `from` on when it is not 0.
    pub async fn get_file(&self, url: Url, from: u64) -> Result<Response, reqwest::Error> {
        let mut request = self.client.get(url);
        if from > 0 {
            request = request.header(RANGE, format!("bytes={from}-"));
        }
        request.send().await
    }

    fn misbehaved(&self, what: String) -> NodeError {
        NodeError::PeerMisbehaved(format!("the origin's listing of {} {what}", self.repo))
    }

    /// `link` when it points at the same scheme, host and port as the origin.
    fn same_origin(&self, link: &str) -> NodeResult<Url> {
        let url = self
            .base
            .join(link)
            .map_err(|e| self.misbehaved(format!("links a bad next page {link:?}: {e}")))?;
        if url.origin() != self.base.origin() {
            return Err(self.misbehaved(format!("links a next page elsewhere: {url}")));
        }
        Ok(url)
    }

    /// GETs `url` and parses its JSON body, read up to [`MAX_ORIGIN_JSON_BYTES`].
    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
    ) -> NodeResult<(T, HeaderMap)> {
        let unreachable = |e: reqwest::Error| {
            NodeError::Unreachable(format!(
                "origin {}: {e}",
                self.base.origin().ascii_serialization()
            ))
        };
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(unreachable)?;
        check_status(&response, &self.repo, url.path())?;
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if body.len() + chunk.len() > MAX_ORIGIN_JSON_BYTES {
                return Err(NodeError::PeerMisbehaved(format!(
                    "the origin's answer to {} is over {MAX_ORIGIN_JSON_BYTES} bytes",
                    url.path()
                )));
            }
            body.extend_from_slice(&chunk);
        }
        let value = serde_json::from_slice(&body).map_err(|e| {
            NodeError::PeerMisbehaved(format!(
                "the origin's answer to {} is not what the hub sends: {e}",
                url.path()
            ))
        })?;
        Ok((value, headers))
    }
}

/// Fails unless `response` is a success: 404 means the repo, revision or file is not
/// there, and the rest means the origin could not serve it.
pub fn check_status(response: &Response, repo: &HfRepo, what: &str) -> NodeResult<()> {
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let code = response
        .headers()
        .get("x-error-code")
        .and_then(|v| v.to_str().ok())
        .map(|c| format!(" ({c})"))
        .unwrap_or_default();
    if status == StatusCode::NOT_FOUND {
        Err(NodeError::NotFound(format!(
            "the origin has no {what} for {repo}{code}"
        )))
    } else if matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN) {
        Err(NodeError::Denied(format!(
            "the origin refused {what} for {repo}: {status}{code} (gated or private repos are not supported)"
        )))
    } else {
        Err(NodeError::Unreachable(format!(
            "the origin answered {what} with {status}{code}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::HfRepoType;

    use super::*;

    #[test]
    fn redirects_leave_the_origin_only_for_public_hosts() {
        let url = |text: &str| Url::parse(text).unwrap();
        let hub = url("http://hub.example/");
        for allowed in [
            "http://hub.example/other/path",
            "https://cdn.example/blob",
            "http://203.0.113.7/x",
            "http://[2001:db8::1]/x",
        ] {
            assert!(redirect_allowed(&hub, &url(allowed)), "{allowed}");
        }
        for refused in [
            "http://127.0.0.1:5151/v1/status",
            "http://localhost/x",
            "http://api.localhost./x",
            "http://10.1.2.3/x",
            "http://192.168.1.1/x",
            "http://169.254.169.254/latest/meta-data",
            "http://100.64.0.1/x",
            "http://0.0.0.0/x",
            "http://[::1]/x",
            "http://[fe80::1]/x",
            "http://[fd00::1]/x",
            "http://[::ffff:127.0.0.1]/x",
            "file:///etc/passwd",
        ] {
            assert!(!redirect_allowed(&hub, &url(refused)), "{refused}");
        }
        // A loopback origin may redirect within itself, not to another local port.
        let local = url("http://127.0.0.1:8080/");
        assert!(redirect_allowed(
            &local,
            &url("http://127.0.0.1:8080/cdn/x")
        ));
        assert!(!redirect_allowed(
            &local,
            &url("http://127.0.0.1:5151/v1/status")
        ));
    }

    #[test]
    fn urls_encode_each_segment() {
        let repo = HfRepo::new(HfRepoType::Dataset, "org/set").unwrap();
        let origin = Origin::new("http://127.0.0.1:9/prefix/", repo).unwrap();
        let commit = "a".repeat(40);
        assert_eq!(
            origin.file_url(&commit, "dir x/f#1.json").as_str(),
            format!(
                "http://127.0.0.1:9/prefix/datasets/org/set/resolve/{commit}/dir%20x/f%231.json"
            )
        );
        assert_eq!(
            origin.api_url(&["revision", "refs/pr/1"]).as_str(),
            "http://127.0.0.1:9/prefix/api/datasets/org/set/revision/refs%2Fpr%2F1"
        );
        let model = HfRepo::new(HfRepoType::Model, "org/m").unwrap();
        let origin = Origin::new("http://h", model).unwrap();
        assert_eq!(
            origin.file_url(&commit, "a/b").as_str(),
            format!("http://h/org/m/resolve/{commit}/a/b")
        );
    }

    #[test]
    fn only_http_origins_and_same_origin_pages() {
        let repo = HfRepo::new(HfRepoType::Model, "org/m").unwrap();
        assert!(Origin::new("file:///etc", repo.clone()).is_err());
        assert!(Origin::new("ftp://h/", repo.clone()).is_err());
        assert_eq!(
            Origin::new("https://h", repo.clone()).is_ok(),
            HTTPS_ORIGINS
        );
        let origin = Origin::new("http://h:8080", repo).unwrap();
        assert!(origin
            .same_origin("/api/models/org/m/tree/x?cursor=2")
            .is_ok());
        assert!(origin.same_origin("http://elsewhere:8080/api").is_err());
        assert!(origin.same_origin("https://h:8080/api").is_err());
    }
}
