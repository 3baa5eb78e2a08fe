//! When each artifact was last used: added, fetched, or read by the user (exported,
//! laid out in a Hugging Face cache, served by the gateway). Eviction takes the least
//! recently used first.
//!
//! Invariants: one sled tree `last_used`, keyed by the 32 root-hash bytes, holding the
//! time in milliseconds since the Unix epoch (postcard). Times only move forward: a
//! clock set back never makes an artifact look older than it was. An artifact with no
//! entry (held since before times were kept) counts as used when it was added. The
//! library writes on every use, with the time from the node's clock, and removes the
//! entry with the artifact.

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

    /// Records that `root` is used at `now` (milliseconds since the Unix epoch). Not
    /// flushed on its own: a lost use makes an artifact look older by one use, and the
    /// caller's own flush usually follows.
    pub fn touch(&self, root: ContentId, now: u64) -> NodeResult<()> {
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
        used.touch(root, 9_500).unwrap();
        assert_eq!(used.get(root, 7).unwrap(), 9_500);
        // A later use with the clock set back keeps the later time.
        used.touch(root, 8_000).unwrap();
        assert_eq!(used.get(root, 7).unwrap(), 9_500);
        used.touch(root, 12_000).unwrap();
        assert_eq!(used.get(root, 7).unwrap(), 12_000);
        used.forget(root).unwrap();
        assert_eq!(used.get(root, 7).unwrap(), 7000);
    }
}
