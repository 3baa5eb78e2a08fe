//! The node's error type, with one variant per kind of failure a caller can act on.

use std::path::PathBuf;

use seedbank_protocol::api::{ApiError, ErrorCode};
use seedbank_protocol::{LabelError, ManifestError};

/// Anything that can go wrong in a node operation.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request itself is invalid (bad name, bad glob, bad option).
    #[error("{0}")]
    BadRequest(String),
    /// A control-API request body over the size limit.
    #[error("request body is larger than the {limit} bytes the API accepts")]
    RequestTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// No provider could be reached or supplied the data.
    #[error("{0}")]
    Unreachable(String),
    /// Providers were found but nothing arrived in time.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// Peers sent data that failed verification, and no honest one was found.
    #[error("{0}")]
    PeerMisbehaved(String),
    /// The operation was cancelled.
    #[error("cancelled: {0}")]
    Cancelled(String),
    /// No artifact by that id or name.
    #[error("no artifact {0:?} in this node (see `seedbank ls`)")]
    UnknownArtifact(String),
    /// A name matches more than one artifact.
    #[error("{name:?} matches {count} artifacts; use the content id instead (see `seedbank ls`)")]
    AmbiguousName {
        /// The name given.
        name: String,
        /// How many artifacts match.
        count: usize,
    },
    /// No file of the artifact matches the patterns given.
    #[error("no file in the artifact matches {0}")]
    NothingMatches(String),
    /// A path the user named does not exist.
    #[error("path not found: {0}")]
    PathNotFound(PathBuf),
    /// The daemon may not read or write a path.
    #[error("permission denied: {0}")]
    PermissionDenied(PathBuf),
    /// A symbolic link was met and following them was not asked for.
    #[error("{0} is a symbolic link; pass --follow-symlinks to import what it points to")]
    SymlinkRefused(PathBuf),
    /// A path is neither a regular file nor a directory.
    #[error("{0} is not a regular file or directory")]
    NotAFile(PathBuf),
    /// A symbolic link lies where an export would write (a folder or file name below the
    /// export directory); following it could write outside the directory.
    #[error("refusing to write through symlink {0}")]
    SymlinkInExport(PathBuf),
    /// An export target exists and `force` was not given.
    #[error("{0} already exists; pass --force to overwrite")]
    AlreadyExists(PathBuf),
    /// The disk filled up, or would have.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// New bytes would not fit under `max_storage` even after evicting every unpinned
    /// artifact that may go.
    #[error("{0}")]
    OverQuota(String),
    /// Stored bytes did not hash to what they should, or a referenced file changed.
    #[error("{0}")]
    Corrupt(String),
    /// A manifest failed validation.
    #[error("invalid manifest: {0}")]
    Manifest(#[from] ManifestError),
    /// A published name, alias or key that nobody knows, or an artifact nobody has.
    #[error("{0}")]
    NotFound(String),
    /// The node's policy refuses it (a licence outside the seed allowlist).
    #[error("{0}")]
    Denied(String),
    /// A signed record that fails its checks (signature, signer, size, key).
    #[error("{0}")]
    BadRecord(String),
    /// A name, revision, tag or licence breaks its rules.
    #[error("{0}")]
    Label(#[from] LabelError),
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The blob store failed.
    #[error("blob store: {0}")]
    Store(String),
    /// A failure inside this node that no retry mends: a record or setting that would
    /// not encode, no randomness from the system, a task that died.
    #[error("internal error: {0}")]
    Internal(String),
    /// The network task has stopped (the node is shutting down).
    #[error("the network task has stopped")]
    NetworkStopped,
    /// The metadata database failed.
    #[error("metadata database: {0}")]
    Meta(#[from] sled::Error),
    /// Something this daemon needs is held by another process: the data directory, or a
    /// port to listen on.
    #[error("{0}")]
    InUse(String),
    /// An error that crossed a task boundary as its API form, kind kept.
    #[error("{}", .0.message)]
    Reported(ApiError),
}

impl NodeError {
    /// An I/O error on `path`, classified into not found, permission denied, disk full or other.
    pub fn io(context: impl Into<String>, path: &std::path::Path, source: std::io::Error) -> Self {
        match source.kind() {
            std::io::ErrorKind::NotFound => NodeError::PathNotFound(path.to_owned()),
            std::io::ErrorKind::PermissionDenied => NodeError::PermissionDenied(path.to_owned()),
            std::io::ErrorKind::StorageFull => {
                NodeError::DiskFull(format!("no space left while writing {}", path.display()))
            }
            _ => NodeError::Io {
                context: format!("{}: {}", context.into(), path.display()),
                source,
            },
        }
    }

    /// A blob-store error. A full disk anywhere in its causes is reported as
    /// [`NodeError::DiskFull`].
    pub fn store(
        context: &str,
        error: &(dyn std::error::Error + 'static),
        data_path: &std::path::Path,
    ) -> Self {
        if is_storage_full(error) {
            return Self::disk_full_in(data_path);
        }
        NodeError::Store(format!("{context}: {error}"))
    }

    /// The disk under `data_path` is full.
    pub fn disk_full_in(data_path: &std::path::Path) -> Self {
        NodeError::DiskFull(format!(
            "no space left in the blob store at {}",
            data_path.display()
        ))
    }

    /// The API error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            NodeError::BadRequest(_)
            | NodeError::Manifest(_)
            | NodeError::Label(_)
            | NodeError::SymlinkRefused(_) => ErrorCode::BadRequest,
            NodeError::NotAFile(_)
            | NodeError::AmbiguousName { .. }
            | NodeError::SymlinkInExport(_) => ErrorCode::BadRequest,
            NodeError::UnknownArtifact(_)
            | NodeError::PathNotFound(_)
            | NodeError::NothingMatches(_)
            | NodeError::NotFound(_) => ErrorCode::NotFound,
            NodeError::Denied(_) => ErrorCode::PermissionDenied,
            NodeError::BadRecord(_) => ErrorCode::Corrupt,
            NodeError::Unreachable(_) => ErrorCode::Unreachable,
            NodeError::TimedOut(_) => ErrorCode::TimedOut,
            NodeError::PeerMisbehaved(_) => ErrorCode::PeerMisbehaved,
            NodeError::Cancelled(_) => ErrorCode::Cancelled,
            NodeError::PermissionDenied(_) => ErrorCode::PermissionDenied,
            NodeError::AlreadyExists(_) => ErrorCode::AlreadyExists,
            NodeError::DiskFull(_) | NodeError::OverQuota(_) => ErrorCode::DiskFull,
            NodeError::RequestTooLarge { .. } => ErrorCode::TooLarge,
            NodeError::Corrupt(_) => ErrorCode::Corrupt,
            NodeError::InUse(_) => ErrorCode::Busy,
            NodeError::Io { .. }
            | NodeError::Store(_)
            | NodeError::Meta(_)
            | NodeError::Internal(_) => ErrorCode::Internal,
            NodeError::NetworkStopped => ErrorCode::Cancelled,
            NodeError::Reported(e) => e.code,
        }
    }

    /// An error reported in its API form (by another task), with its kind kept.
    pub fn from_api(error: ApiError) -> Self {
        NodeError::Reported(error)
    }

    /// This error as the API reports it.
    pub fn to_api(&self) -> ApiError {
        ApiError {
            code: self.code(),
            message: self.to_string(),
        }
    }
}

/// Whether a full disk is among the causes of `error`: an I/O error of kind
/// `StorageFull` (ENOSPC), however deep, including inside another I/O error.
pub fn is_storage_full(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(current) = cause {
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::StorageFull || io.raw_os_error() == Some(ENOSPC) {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                if is_storage_full(inner) {
                    return true;
                }
            }
        }
        cause = current.source();
    }
    false
}

/// `error` followed by each cause under it that adds something, as one line
/// ("…: …"); causes whose text is empty or already said are left out.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let more = inner.to_string();
        if !more.is_empty() && !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = inner.source();
    }
    text
}

/// The Linux errno of a full disk.
const ENOSPC: i32 = 28;

/// Result with [`NodeError`].
pub type NodeResult<T> = Result<T, NodeError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("storing failed")]
    struct Wrapper(#[source] std::io::Error);

    #[test]
    fn a_full_disk_is_recognised_by_its_kind_however_deep() {
        let enospc = std::io::Error::from_raw_os_error(ENOSPC);
        assert!(is_storage_full(&enospc));
        let kind = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert!(is_storage_full(&Wrapper(kind)));
        let nested = std::io::Error::other(Wrapper(std::io::Error::from_raw_os_error(ENOSPC)));
        assert!(is_storage_full(&nested));
        // The words alone are not a full disk.
        let words = std::io::Error::other("No space left on device");
        assert!(!is_storage_full(&words));
        let path = std::path::Path::new("/data");
        assert!(matches!(
            NodeError::store("x", &nested, path),
            NodeError::DiskFull(_)
        ));
        assert!(matches!(
            NodeError::store("x", &words, path),
            NodeError::Store(_)
        ));
    }
}
