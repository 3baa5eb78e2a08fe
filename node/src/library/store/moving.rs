//! Handing a complete blob's file over to the user: iroh-blobs renames the file it owns
//! to a path outside the store and from then on serves the blob from there, as it does
//! a file added with `--reference`. No byte is copied or hashed again; the bytes were
//! verified when they arrived.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use iroh_blobs::api::blobs::{ExportMode, ExportOptions};

use super::{to_iroh, BlobStore};
use crate::error::{NodeError, NodeResult};

/// Where a file lives: its device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileSpot {
    /// The filesystem's device number.
    pub device: u64,
    /// The file's inode on that device.
    pub inode: u64,
}

impl BlobStore {
    /// Where the store keeps the complete blob `hash` of `size` bytes, if it keeps it in
    /// a file of its own (not in its database, not referenced from outside).
    pub fn own_file(&self, hash: seedbank_protocol::BlobHash, size: u64) -> Option<FileSpot> {
        let path = self.data_file(hash, size)?;
        let meta = std::fs::symlink_metadata(path).ok()?;
        Some(FileSpot {
            device: meta.dev(),
            inode: meta.ino(),
        })
    }

    /// Renames the store's own file of the complete blob `hash` to `target` (on the same
    /// filesystem) and serves the blob from there from now on.
    pub async fn move_out(
        &self,
        hash: seedbank_protocol::BlobHash,
        target: &Path,
    ) -> NodeResult<()> {
        self.inner
            .blobs()
            .export_with_opts(ExportOptions {
                hash: to_iroh(hash),
                mode: ExportMode::TryReference,
                target: target.to_owned(),
            })
            .finish()
            .await
            .map_err(|e| NodeError::store("moving a file out of", &e, &self.root))?;
        Ok(())
    }
}
