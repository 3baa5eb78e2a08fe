//! Request and response types of the daemon's HTTP/JSON control API.
//!
//! Long operations (add, export) answer with newline-delimited JSON: zero or more
//! [`Progress`] lines, then one final line that is either the result or an [`ApiError`].

use serde::{Deserialize, Serialize};

use crate::{ArtifactKind, ContentId, Manifest};

/// The header the CLI sends its bearer token in.
pub const AUTHORIZATION_HEADER: &str = "authorization";

/// Content type of streamed responses.
pub const NDJSON_CONTENT_TYPE: &str = "application/x-ndjson";

/// What kind of failure an [`ApiError`] reports, so clients can act on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request was malformed or named something invalid.
    BadRequest,
    /// No bearer token, or the wrong one.
    Unauthorized,
    /// A browser origin, or an operation not allowed.
    Forbidden,
    /// No artifact, file or path by that name.
    NotFound,
    /// The target exists and `force` was not given.
    AlreadyExists,
    /// The daemon may not read or write a path.
    PermissionDenied,
    /// The request body is larger than the API accepts.
    TooLarge,
    /// The disk is full.
    DiskFull,
    /// Stored data failed verification or a referenced file changed.
    Corrupt,
    /// No peer could be reached, or none that was reached holds what was asked for.
    Unreachable,
    /// Peers were found but nothing arrived in time.
    TimedOut,
    /// Peers sent data that failed verification, and no honest peer could be found.
    PeerMisbehaved,
    /// The operation was cancelled (by the user, or because the daemon is stopping).
    Cancelled,
    /// The daemon is serving as many requests as it allows; try again shortly.
    Busy,
    /// Anything else inside the daemon.
    Internal,
}

/// An error as the API reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    /// What kind of failure.
    pub code: ErrorCode,
    /// One line a person can act on.
    pub message: String,
}

/// One line of a streamed response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum StreamLine<T> {
    /// How far the operation has got.
    Progress(Progress),
    /// The operation finished; the last line.
    Done {
        /// The result.
        result: T,
    },
    /// The operation failed; the last line.
    Error {
        /// Why.
        error: ApiError,
    },
}

/// How a fetch's progress message starts while nothing has arrived for a few seconds
/// (`stalled: waiting for peers (…)`), so a client can show it as stalled rather than
/// as a falling rate.
pub const STALLED: &str = "stalled";

/// Progress of a long operation, in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Bytes done so far.
    pub done_bytes: u64,
    /// Bytes in all.
    pub total_bytes: u64,
    /// The file being worked on.
    pub current: Option<String>,
    /// Files under way and how far each has got, for per-file bars (empty from daemons
    /// that predate it, and for operations that do not work file by file).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileProgress>,
}

/// How far one file of a long operation has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileProgress {
    /// The file's path in the artifact.
    pub path: String,
    /// Its bytes done so far.
    pub done_bytes: u64,
    /// Its bytes in all (for a fetch: those that were missing).
    pub total_bytes: u64,
}

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// The node's id.
    pub node_id: String,
    /// The daemon's version.
    pub version: String,
    /// The data directory.
    pub data_dir: String,
    /// Bytes of the blobs in the store: complete ones, and the verified part of partial
    /// ones (what a cancelled fetch left until `gc`).
    pub store_bytes: u64,
    /// Bytes in the store's temp folder: files being imported right now. The folder is
    /// emptied when the daemon starts, so what an interrupted import left there is freed.
    #[serde(default)]
    pub temp_bytes: u64,
    /// Artifacts the node holds.
    pub artifacts: u64,
    /// Pinned artifacts.
    pub pins: u64,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// The network, when the node runs one.
    pub network: Option<NetworkStatus>,
    /// Fetches running or waiting to resume.
    #[serde(default)]
    pub fetches: Vec<FetchJobSummary>,
    /// Bytes counted against `max_storage`: complete blobs, less files referenced in
    /// place (absent from daemons before quotas).
    #[serde(default)]
    pub storage_used: Option<u64>,
    /// The node's `max_storage` in bytes; `None`: no limit.
    #[serde(default)]
    pub max_storage: Option<u64>,
}

/// `POST /v1/artifacts`: import a file or directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddRequest {
    /// Absolute path of the file or directory.
    pub path: String,
    /// Model or dataset.
    pub kind: ArtifactKind,
    /// Name; defaults to the file or directory name.
    pub name: Option<String>,
    /// Revision label; defaults to `main`.
    pub revision: Option<String>,
    /// SPDX licence.
    pub licence: Option<String>,
    /// Pin the artifact once added.
    pub pin: bool,
    /// Reference the files in place instead of copying them into the store.
    pub reference: bool,
    /// Follow symbolic links instead of refusing them.
    pub follow_symlinks: bool,
}

/// Whether all of an artifact's bytes are in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Completeness {
    /// Every file is stored and verified.
    Complete,
    /// Some bytes are missing.
    Partial,
    /// A referenced file changed on disk since it was added; it is no longer served.
    Modified,
    /// `verify` found stored bytes that no longer match their hash; `fetch` repairs it.
    Damaged,
}

/// One artifact as `ls` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactSummary {
    /// Content id.
    pub id: ContentId,
    /// Name.
    pub name: String,
    /// Model or dataset.
    pub kind: ArtifactKind,
    /// Revision label.
    pub revision: String,
    /// Total bytes of all files.
    pub size: u64,
    /// Number of files.
    pub files: u64,
    /// Pinned or not.
    pub pinned: bool,
    /// Complete, partial or modified.
    pub state: Completeness,
    /// Files are referenced in place rather than copied.
    pub referenced: bool,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: u64,
    /// Whether this node added it or fetched it; `None` for artifacts recorded before
    /// nodes kept track.
    #[serde(default)]
    pub origin: Option<ArtifactOrigin>,
    /// Whether this node keeps a provider record for it in the DHT now (announced, and
    /// not withdrawn since).
    #[serde(default)]
    pub announced: bool,
    /// The denylists this node follows that name it: it is kept on disk, but never
    /// served or announced (the user decides whether to remove it).
    #[serde(default)]
    pub denied: Vec<crate::denylist_api::Denial>,
}

/// How an artifact came to a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArtifactOrigin {
    /// Added from local files (`seedbank add`).
    Added,
    /// Fetched from peers (`seedbank fetch`).
    Fetched,
}

impl ArtifactOrigin {
    /// The word `ls` shows.
    pub fn as_str(self) -> &'static str {
        match self {
            ArtifactOrigin::Added => "added",
            ArtifactOrigin::Fetched => "fetched",
        }
    }
}

/// `GET /v1/artifacts/{ref}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactDetail {
    /// The summary line.
    pub summary: ArtifactSummary,
    /// SPDX licence: the release's, else the one given on `add`.
    pub licence: Option<String>,
    /// Card path among the files.
    pub card: Option<String>,
    /// The card's text, when the card file is stored (at most 64 KiB of it).
    pub card_text: Option<String>,
    /// The signed releases this node has seen for this root, newest first.
    pub releases: Vec<crate::names_api::ReleaseInfo>,
    /// Whether this node seeds it: false when its licence is not in the node's allowlist.
    pub seeding: bool,
    /// The manifest: the file tree.
    pub manifest: Manifest,
}

/// `POST /v1/artifacts/{ref}/export`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportRequest {
    /// Absolute path of the target directory (created if missing).
    pub dir: String,
    /// Export only files whose path matches one of these globs; all files when empty.
    pub include: Vec<String>,
    /// Overwrite files that already exist.
    pub force: bool,
    /// Move the store's own file of each blob into `dir` and serve it from there from
    /// now on, instead of copying it, where the store and `dir` share a filesystem and
    /// no other artifact, pin or follow needs the store's copy (`fetch --out`).
    #[serde(default)]
    pub hand_over: bool,
}

/// Result of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportReport {
    /// Files written.
    pub files: u64,
    /// Bytes written.
    pub bytes: u64,
    /// The target directory.
    pub dir: String,
    /// Files moved out of the store into `dir` (and served from there) rather than copied.
    #[serde(default)]
    pub moved: u64,
}

/// `PUT` and `DELETE /v1/pins/{ref}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinReport {
    /// The artifact.
    pub id: ContentId,
    /// Whether it is pinned now.
    pub pinned: bool,
    /// Whether this call changed anything.
    pub changed: bool,
    /// Copies on the network wanted, when a target is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_target: Option<u32>,
}

/// Query of `POST /v1/gc`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcRequest {
    /// Report what would be removed, and remove nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// An artifact that `gc` or `rm` removed (or, on a dry run, would remove).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedArtifact {
    /// Content id.
    pub id: ContentId,
    /// Name.
    pub name: String,
    /// Revision label.
    pub revision: String,
    /// Total bytes of its files (shared blobs may free less).
    pub size: u64,
}

/// `POST /v1/gc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Nothing was removed: the report says what a collection would remove now.
    #[serde(default)]
    pub dry_run: bool,
    /// Unpinned artifacts removed.
    pub artifacts_removed: Vec<RemovedArtifact>,
    /// Blobs deleted.
    pub blobs_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// Query of `DELETE /v1/artifacts/{ref}`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveRequest {
    /// Remove it even if it is pinned.
    #[serde(default)]
    pub force: bool,
}

/// `DELETE /v1/artifacts/{ref}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoveReport {
    /// The artifact removed.
    pub artifact: RemovedArtifact,
    /// It was pinned (and `force` was given).
    pub was_pinned: bool,
    /// Blobs deleted: those no other artifact or fetch holds.
    pub blobs_removed: u64,
    /// Bytes freed.
    pub bytes_freed: u64,
}

/// A stored blob that failed verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorruptBlob {
    /// The blob's expected hash.
    pub hash: String,
    /// Artifacts and paths that use it.
    pub used_by: Vec<String>,
    /// What went wrong.
    pub reason: String,
}

/// `POST /v1/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// Blobs checked.
    pub blobs_checked: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Blobs that failed.
    pub corrupt: Vec<CorruptBlob>,
}

/// `POST /v1/fetch`: get an artifact from the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchRequest {
    /// Content id of the artifact, or a published name `PUBLISHER/NAME[@REVISION]`.
    pub id: String,
    /// Accept a local label (a name with no publisher) that no signed release backs.
    #[serde(default)]
    pub allow_unsigned: bool,
    /// Fetch only files whose path matches one of these globs; all files when empty.
    pub include: Vec<String>,
    /// Pin the artifact once the fetch succeeds.
    #[serde(default)]
    pub pin: bool,
}

/// Where a fetch job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FetchJobState {
    /// Transferring.
    Running,
    /// Looking for providers, or waiting to try again after a failure.
    Waiting,
    /// Stopped until the disk has room again.
    PausedDiskFull,
    /// Saved, to run when the daemon next starts (or could not be resumed).
    Saved,
}

/// `GET /v1/jobs`: one fetch job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchJobSummary {
    /// The artifact.
    pub id: ContentId,
    /// The files selected (all when empty).
    pub include: Vec<String>,
    /// Where it stands.
    pub state: FetchJobState,
    /// Bytes fetched so far by this run.
    pub done_bytes: u64,
    /// Bytes this run set out to fetch (0 until known).
    pub total_bytes: u64,
    /// Tries so far.
    pub attempts: u32,
    /// Why the last try failed, if it did.
    pub last_error: Option<String>,
    /// When the job was first started, seconds since the Unix epoch.
    pub started_at: u64,
    /// Pin the artifact when the fetch succeeds.
    #[serde(default)]
    pub pin: bool,
    /// What a running job says it is doing (`from 2 of 3 peers`, or `stalled: …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub activity: Option<String>,
}

/// `DELETE /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelReport {
    /// The artifact whose fetch was cancelled.
    pub id: ContentId,
}

/// What one provider contributed to a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderReport {
    /// The provider's peer id.
    pub peer: String,
    /// Verified payload bytes received from it.
    pub bytes: u64,
    /// Whether it sent data that failed verification and was banned.
    pub banned: bool,
    /// Whether it failed too often (unreachable, stalled, lacking data) and was left out
    /// of the rest of the fetch. Not misbehaviour: honest peers restart.
    #[serde(default)]
    pub dropped: bool,
}

/// Result of a fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchReport {
    /// The artifact.
    pub id: ContentId,
    /// Its name.
    pub name: String,
    /// Its revision.
    pub revision: String,
    /// Files fetched (selected by the include globs).
    pub files: u64,
    /// Bytes of those files.
    pub size: u64,
    /// Bytes that were missing locally when this fetch started.
    pub bytes_missing_at_start: u64,
    /// Payload bytes received during this fetch.
    pub bytes_downloaded: u64,
    /// Per-provider contributions.
    pub providers: Vec<ProviderReport>,
    /// Whether the fetch pinned it (as asked).
    #[serde(default)]
    pub pinned: bool,
    /// What the user should know, such as a licence this node will not seed.
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `GET /v1/peers`: one connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerSummary {
    /// Its id.
    pub peer: String,
    /// Addresses we are connected on.
    pub addresses: Vec<String>,
    /// Bytes sent to it since start.
    pub bytes_up: u64,
    /// Bytes received from it since start.
    pub bytes_down: u64,
}

/// `GET /v1/providers/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvidersResponse {
    /// The artifact.
    pub id: ContentId,
    /// Peers the DHT lists as providers (this node excluded).
    pub providers: Vec<String>,
}

/// Network part of `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// Where this node listens.
    pub listen_addresses: Vec<String>,
    /// Addresses others can reach this node on.
    pub external_addresses: Vec<String>,
    /// Peers in the DHT routing table.
    pub routing_table_size: u64,
    /// Peers connected now.
    pub connected_peers: u64,
    /// Whether other nodes can reach this one, and why (absent from older daemons).
    #[serde(default)]
    pub reachability: crate::reachability_api::ReachabilityStatus,
}
