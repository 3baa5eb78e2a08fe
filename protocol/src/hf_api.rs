//! Control API types for Hugging Face interop: importing a local HF cache, mirroring a
//! repo from an HF-compatible origin, and where the HF gateway listens.

use serde::{Deserialize, Serialize};

use crate::hf::HfRepo;
use crate::names_api::ReleaseInfo;

/// `POST /v1/hf/import`: publish the repos of a local Hugging Face cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfImportRequest {
    /// The cache's `hub` directory (absolute), as the client lays it out.
    pub cache_dir: String,
    /// The repos to import; every repo in the cache when empty.
    #[serde(default)]
    pub repos: Vec<HfRepo>,
    /// Alias of the key to sign with; the node key when `None`.
    pub key: Option<String>,
}

/// One revision imported and published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfImported {
    /// The repo.
    pub repo: HfRepo,
    /// The hub commit id of the snapshot.
    pub commit: String,
    /// Branches in the cache's `refs/` that point at this commit.
    pub refs: Vec<String>,
    /// Files and bytes in the snapshot.
    pub files: u64,
    /// Bytes in all.
    pub bytes: u64,
    /// The signed release it was published as.
    pub release: ReleaseInfo,
}

/// A snapshot that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfSkipped {
    /// The repo (as its cache folder name when it is not a valid repo).
    pub repo: String,
    /// The snapshot's commit, if the problem is with one snapshot.
    pub commit: Option<String>,
    /// What was wrong.
    pub reason: String,
}

/// Result of `POST /v1/hf/import` (and the import step of a mirror).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfImportReport {
    /// Revisions published, oldest first within each repo; the branch `main` points at
    /// is published last, so it is the latest.
    pub imported: Vec<HfImported>,
    /// What was left out, with the reason.
    pub skipped: Vec<HfSkipped>,
}

/// `POST /v1/hf/mirror`: download a repo from an HF-compatible origin, check it, import
/// and publish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfMirrorRequest {
    /// The repo.
    pub repo: HfRepo,
    /// Branch, tag or commit; the default branch when `None`.
    pub revision: Option<String>,
    /// The origin's base URL, e.g. `http://127.0.0.1:8080`.
    pub origin: String,
    /// Download rate limit in bytes per second; unlimited when `None`.
    pub rate_limit: Option<u64>,
    /// Alias of the key to sign with; the node key when `None`.
    pub key: Option<String>,
}

/// One file of a mirrored revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfMirroredFile {
    /// Its path in the repo.
    pub path: String,
    /// Its size.
    pub size: u64,
    /// Its hub ETag, which its bytes were checked against: the sha256 of an LFS file,
    /// else the git blob sha1.
    pub etag: String,
    /// Bytes of it downloaded by this run (0 when an earlier run had it complete).
    pub downloaded_bytes: u64,
}

/// Result of `POST /v1/hf/mirror`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfMirrorReport {
    /// The hub commit id the revision pointed at on the origin.
    #[serde(default)]
    pub commit: String,
    /// The files of the commit, each checked, sorted by path.
    #[serde(default)]
    pub files: Vec<HfMirroredFile>,
    /// Bytes downloaded by this run (files already downloaded by an earlier, interrupted
    /// run are not downloaded again).
    pub downloaded_bytes: u64,
    /// Files checked against the origin's listing (sha256 for LFS files, git blob sha1
    /// for the others).
    pub verified_files: u64,
    /// The import and publication.
    pub import: HfImportReport,
}

/// `GET /v1/hf/gateway`: where this node's Hugging Face gateway listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfGatewayInfo {
    /// `http://ADDR:PORT`, the value for `HF_ENDPOINT`; `None` when the gateway is off.
    pub endpoint: Option<String>,
    /// Publishers the gateway resolves repo ids through, in order.
    pub publishers: Vec<String>,
}

/// `POST /v1/artifacts/{ref}/hf-cache`: lay an artifact's files out in a Hugging Face
/// client cache (blobs, relative snapshot links, a ref), as `fetch --hf-cache` does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfCacheRequest {
    /// The cache's `hub` directory (absolute), created if missing.
    pub hub_dir: String,
    /// The repo to cache it as; taken from the artifact's name (`org--name`) and kind
    /// when `None`.
    pub repo: Option<HfRepo>,
    /// Cache only files whose path matches one of these globs; all files when empty.
    #[serde(default)]
    pub include: Vec<String>,
    /// The ref (`refs/<this>`) to point at the commit, e.g. `main`; none when `None`.
    pub ref_name: Option<String>,
}

/// Result of `POST /v1/artifacts/{ref}/hf-cache`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfCacheReport {
    /// The repo it was cached as.
    pub repo: HfRepo,
    /// The commit id of the snapshot (the hub's, for an imported revision).
    pub commit: String,
    /// The ref pointed at the commit, if any.
    pub ref_name: Option<String>,
    /// The repo's folder in the cache.
    pub repo_dir: String,
    /// The snapshot folder: what `snapshot_download` returns.
    pub snapshot_dir: String,
    /// Files linked into the snapshot.
    pub files: u64,
    /// Blobs written by this call.
    pub blobs_written: u64,
    /// Bytes written by this call.
    pub bytes_written: u64,
    /// Blobs already in the cache with the right bytes, left as they were.
    pub blobs_reused: u64,
}
