//! A file's bytes between the store and the disk, checked by BLAKE3 both ways: written
//! from the store and verified as they go, or compared on disk with what the manifest says.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;
use seedbank_protocol::FileEntry;

use crate::error::{NodeError, NodeResult};
use crate::library::store::BlobStore;
use crate::progress::ProgressReporter;

/// Streams `file`'s bytes from the store into `output` (the partial file at `partial`),
/// syncs it, and fails if what was written does not hash to the file's hash.
pub(super) async fn write_verified(
    store: &BlobStore,
    file: &FileEntry,
    output: std::fs::File,
    partial: &Path,
    done_before: u64,
    progress: &mut ProgressReporter,
) -> NodeResult<()> {
    let (written, actual, output) = store
        .copy_out_and_hash(file.hash, file.size, output, |bytes| {
            progress.report(done_before + bytes, &file.path)
        })
        .await
        .map_err(|e| match e {
            NodeError::Io { source, .. } => NodeError::io("writing", partial, source),
            other => other,
        })?;
    let synced = tokio::task::spawn_blocking(move || output.sync_all())
        .await
        .map_err(|e| NodeError::Internal(format!("syncing an export: {e}")))?;
    synced.map_err(|e| NodeError::io("writing", partial, e))?;
    if written != file.size || actual != file.hash {
        return Err(NodeError::Corrupt(format!(
            "stored bytes of {} do not match its hash {}; run `seedbank verify`",
            file.path, file.hash
        )));
    }
    Ok(())
}

/// Whether the open file `fd` is a regular file of `file`'s size whose bytes hash to
/// its hash (`shown` names it in errors).
pub(super) async fn same_bytes(fd: OwnedFd, file: &FileEntry, shown: PathBuf) -> NodeResult<bool> {
    let stat = rustix::fs::fstat(&fd).map_err(|e| NodeError::io("reading", &shown, e.into()))?;
    if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile
        || u64::try_from(stat.st_size).ok() != Some(file.size)
    {
        return Ok(false);
    }
    let expected = file.hash;
    let mut reader = std::fs::File::from(fd);
    tokio::task::spawn_blocking(move || {
        let mut hasher = blake3::Hasher::new();
        hasher
            .update_reader(&mut reader)
            .map(|hasher| *hasher.finalize().as_bytes() == expected.0)
            .map_err(|e| NodeError::io("reading", &shown, e))
    })
    .await
    .map_err(|e| NodeError::Internal(format!("hashing a file: {e}")))?
}
