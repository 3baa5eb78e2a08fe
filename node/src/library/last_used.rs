//! When each artifact was last used: added, fetched, or read by the user (exported,
//! laid out in a Hugging Face cache, served by the gateway). Eviction takes the least
//! recently used first.
//!
//! Invariants: one sled tree `last_used`, keyed by the 32 root-hash bytes, holding the
//! time in milliseconds since the Unix epoch (postcard). Times only move forward: a
//! clock set back never makes an artifact look older than it was. An artifact with no
//! entry (held since before times were kept) counts as used when it was added. The
//! library writes on every use and removes the entry with the artifact.

use std::time::{SystemTime, UNIX_EPOCH};

use seedbank_protocol::ContentId;

use crate::error::NodeResult;
use crate::library::meta::{decode, encode, Meta};

/// The name of the tree in the metadata database.
const TREE: &str = "last_used";

/// The last-used times of the library's artifacts.
#[derive(Debug, Clone)]
pub struct LastUsed {
    tree: sled::Tree,
}

impl LastUsed {
    /// Opens the tree in `meta`.
    pub fn open(meta: &Meta) -> NodeResult<Self> {
        Ok(Self {
            tree: meta.tree(TREE)?,
        })
    }

    /// Records that `root` is used now. Not flushed on its own: a lost use makes an
    /// artifact look older by one use, and the caller's own flush usually follows.
    pub fn touch(&self, root: ContentId) -> NodeResult<()> {
        let now = unix_millis();
        let key = root.hash();
        let previous = self.millis(root)?.unwrap_or(0);
        self.tree
            .insert(key.as_bytes(), encode(&now.max(previous))?)?;
        Ok(())
    }

    /// When `root` was last used, in milliseconds since the Unix epoch; `added_at`
    /// (seconds) if no use was recorded.
    pub fn get(&self, root: ContentId, added_at: u64) -> NodeResult<u64> {
        Ok(self
            .millis(root)?
            .unwrap_or_else(|| added_at.saturating_mul(1000)))
    }

    /// Forgets `root` (removed from the library).
    pub fn forget(&self, root: ContentId) -> NodeResult<()> {
        self.tree.remove(root.hash().as_bytes())?;
        Ok(())
    }

    fn millis(&self, root: ContentId) -> NodeResult<Option<u64>> {
        self.tree
            .get(root.hash().as_bytes())?
            .map(|bytes| decode::<u64>(&bytes))
            .transpose()
    }
}

/// Milliseconds since the Unix epoch.
fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use seedbank_protocol::BlobHash;

    #[test]
    fn uses_are_kept_and_never_go_back() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::open(dir.path()).unwrap();
        let used = LastUsed::open(&meta).unwrap();
        let root = ContentId::from_hash(BlobHash([1; 32]));
        assert_eq!(used.get(root, 7).unwrap(), 7000);
        used.touch(root).unwrap();
        let first = used.get(root, 7).unwrap();
        assert!(first > 7000);
        // A later use with the clock set back keeps the later time.
        used.tree
            .insert(root.hash().as_bytes(), encode(&u64::MAX).unwrap())
            .unwrap();
        used.touch(root).unwrap();
        assert_eq!(used.get(root, 7).unwrap(), u64::MAX);
        used.forget(root).unwrap();
        assert_eq!(used.get(root, 7).unwrap(), 7000);
    }
}
