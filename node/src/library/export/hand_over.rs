//! `fetch --out`: instead of a second copy, the store's own file of a freshly fetched
//! blob is renamed into the export directory and served from there from now on, as a
//! file added with `--reference` is (its size, times and inode are recorded, and a
//! change stops it being served). One file on disk instead of two, and no second pass
//! over the bytes.
//!
//! The rename goes through iroh-blobs, which takes a path, not a folder descriptor. So
//! the folders are made and checked for links through descriptors first, and after the
//! rename the name in the folder opened that way must be the very file the store held
//! (same device and inode): a link swapped in between fails the export, naming it.
//! A file handed over stays when a later file of the same export fails: the store
//! serves it from there.

use rustix::fs::AtFlags;
use seedbank_protocol::FileEntry;

use super::{split_path, ExportDir};
use crate::error::{NodeError, NodeResult};
use crate::library::meta::ReferenceRecord;
use crate::library::reference;
use crate::library::store::BlobStore;

impl ExportDir {
    /// Moves the store's own file of `file` to `relative` and returns the record to serve
    /// it from there by; `None` (nothing done) when the store keeps no file of its own
    /// for it or the export directory is on another filesystem. An existing file at
    /// `relative` is replaced only when `force`; a symbolic link there or on the way is
    /// refused.
    pub async fn hand_over_file(
        &mut self,
        store: &BlobStore,
        file: &FileEntry,
        relative: &str,
        force: bool,
    ) -> NodeResult<Option<ReferenceRecord>> {
        let Some(source) = store.own_file(file.hash, file.size) else {
            return Ok(None);
        };
        let root = rustix::fs::fstat(&self.root)
            .map_err(|e| NodeError::io("reading", &self.path, e.into()))?;
        if root.st_dev != source.device {
            return Ok(None);
        }
        let (folders, name) = split_path(relative);
        let parent = self.make_folders(&folders)?;
        self.target_exists(&parent, relative, name, force)?;
        let shown = self.shown(relative);
        store.move_out(file.hash, &shown).await?;
        let landed = rustix::fs::statat(&parent, name, AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| NodeError::io("reading", &shown, e.into()))?;
        if landed.st_dev != source.device || landed.st_ino != source.inode {
            return Err(NodeError::SymlinkInExport(shown));
        }
        // Not among `written`: a failed export must not remove what the store now
        // serves from there.
        reference::snapshot(&shown).map(Some)
    }
}
