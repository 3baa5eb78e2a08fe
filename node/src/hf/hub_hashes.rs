//! The hub hashes (git blob sha1 and sha256) of blobs this node has hashed itself, so an
//! ETag a release's manifest claims is vouched for only by bytes: a publisher can write
//! any ETag into its manifest, and a client trusts a cache blob named by one forever.
//!
//! Invariants: a record is written only from bytes this node read (an import's own read,
//! or a complete, BLAKE3-verified blob in the store), keyed by the blob's BLAKE3 hash, so
//! it never goes stale; one blob is hashed by one task at a time.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use seedbank_protocol::hf::{etag_matches, HubHasher};
use seedbank_protocol::BlobHash;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::error::{NodeError, NodeResult};
use crate::library::meta::{decode, encode, Meta};
use crate::library::store::BlobStore;

/// How often a blob that is still arriving is looked at before it is hashed.
const ARRIVAL_POLL: Duration = Duration::from_millis(250);

/// How long a blob may take to arrive before hashing it is given up (a later request
/// starts again).
const ARRIVAL_LIMIT: Duration = Duration::from_secs(10 * 60);

/// Most blobs waited for or hashed at once: gateway requests for many files cannot
/// start more.
const MAX_HASHING: usize = 64;

/// Both hub hashes of one blob's bytes, lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HubHashes {
    /// The git blob sha1 (the hub's ETag of a small file).
    pub git_sha1: String,
    /// The sha256 (the hub's ETag of an LFS file).
    pub sha256: String,
}

impl HubHashes {
    /// Whether `etag` is one of these hashes.
    pub fn names(&self, etag: &str) -> bool {
        etag_matches(etag, &self.git_sha1, &self.sha256)
    }

    /// The error for a file whose claimed `etag` is not its bytes' hub hash.
    pub fn mismatch(&self, path: &str, etag: &str) -> NodeError {
        NodeError::Corrupt(format!(
            "the release's manifest gives {path:?} the hub ETag {etag}, but its bytes hash to \
             git sha1 {} and sha256 {}; the publisher's manifest is wrong, so the file is not \
             written or served under that ETag",
            self.git_sha1, self.sha256
        ))
    }
}

/// The hub hashes this node knows, in sled. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HubHashBook {
    tree: sled::Tree,
    hashing: Arc<Mutex<HashSet<BlobHash>>>,
    recorded: Arc<Notify>,
}

impl HubHashBook {
    /// The book kept in `meta`.
    pub fn open(meta: &Meta) -> NodeResult<Self> {
        Ok(Self {
            tree: meta.tree("hub_hashes")?,
            hashing: Arc::default(),
            recorded: Arc::default(),
        })
    }

    /// The hub hashes of `hash`, if this node has hashed its bytes.
    pub fn get(&self, hash: BlobHash) -> NodeResult<Option<HubHashes>> {
        self.tree
            .get(hash.as_bytes())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Records the hub hashes of the bytes whose BLAKE3 hash is `hash`.
    pub fn record(&self, hash: BlobHash, hashes: &HubHashes) -> NodeResult<()> {
        self.tree.insert(hash.as_bytes(), encode(hashes)?)?;
        self.recorded.notify_waiters();
        Ok(())
    }

    /// The hub hashes of the complete blob `hash` (`size` bytes), hashing it from the
    /// store when they are not known yet.
    pub async fn of_stored(
        &self,
        store: &BlobStore,
        hash: BlobHash,
        size: u64,
    ) -> NodeResult<HubHashes> {
        if let Some(known) = self.get(hash)? {
            return Ok(known);
        }
        let hashes = hash_stored(store, hash, size).await?;
        self.record(hash, &hashes)?;
        Ok(hashes)
    }

    /// Starts hashing `hash` once the store holds all of it, unless a task already is
    /// (or [`MAX_HASHING`] are running; a later request tries again).
    pub fn hash_when_stored(&self, store: &BlobStore, hash: BlobHash, size: u64) {
        let Ok(mut hashing) = self.hashing.lock() else {
            return;
        };
        if hashing.len() >= MAX_HASHING || !hashing.insert(hash) {
            return;
        }
        drop(hashing);
        let (book, store) = (self.clone(), store.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let result = async {
                while store.size(hash).await?.is_none() && size > 0 {
                    if started.elapsed() > ARRIVAL_LIMIT {
                        return Ok(());
                    }
                    tokio::time::sleep(ARRIVAL_POLL).await;
                }
                book.of_stored(&store, hash, size).await.map(drop)
            }
            .await;
            if let Err(error) = result {
                tracing::info!(%hash, %error, "could not hash a blob for its hub ETag");
            }
            if let Ok(mut hashing) = book.hashing.lock() {
                hashing.remove(&hash);
            }
        });
    }

    /// The hub hashes of `hash` once known, waiting at most `wait` for them.
    pub async fn wait_for(&self, hash: BlobHash, wait: Duration) -> NodeResult<Option<HubHashes>> {
        let deadline = Instant::now() + wait;
        loop {
            let recorded = self.recorded.notified();
            if let Some(known) = self.get(hash)? {
                return Ok(Some(known));
            }
            if tokio::time::timeout_at(deadline, recorded).await.is_err() {
                return self.get(hash);
            }
        }
    }
}

/// Streams a complete blob from the store through both hub hashes.
async fn hash_stored(store: &BlobStore, hash: BlobHash, size: u64) -> NodeResult<HubHashes> {
    let mut hasher = HubHasher::new(size);
    let mut read = 0u64;
    let mut pieces = std::pin::pin!(store.read_range(hash, 0..size));
    while let Some(piece) = pieces.next().await {
        let (offset, data) = piece?;
        if offset != read {
            return Err(NodeError::Corrupt(format!(
                "blob {hash}: store returned offset {offset} where {read} was expected"
            )));
        }
        hasher.update(&data);
        read += data.len() as u64;
    }
    if read != size {
        return Err(NodeError::Corrupt(format!(
            "blob {hash}: the store gave {read} of its {size} bytes"
        )));
    }
    let (git_sha1, sha256) = hasher.finish();
    Ok(HubHashes { git_sha1, sha256 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_recorded_blob_vouches_for_its_own_etags_only() {
        let dir = tempfile::tempdir().unwrap();
        let meta = Meta::open(&dir.path().join("meta")).unwrap();
        let store = BlobStore::open(&dir.path().join("blobs")).await.unwrap();
        let book = HubHashBook::open(&meta).unwrap();
        let bytes = b"hello\n".to_vec();
        let tag = store
            .add_bytes(bytes.clone(), iroh_blobs::BlobFormat::Raw)
            .await
            .unwrap();
        let hash = crate::library::store::from_iroh(tag.hash());
        assert_eq!(book.get(hash).unwrap(), None);
        assert_eq!(
            book.wait_for(hash, Duration::from_millis(10))
                .await
                .unwrap(),
            None
        );
        book.hash_when_stored(&store, hash, bytes.len() as u64);
        let hashes = book
            .wait_for(hash, Duration::from_secs(10))
            .await
            .unwrap()
            .expect("hashed");
        // `git hash-object` of "hello\n".
        assert!(hashes.names("ce013625030ba8dba906f756967f9e9ca394464a"));
        assert!(!hashes.names(&"0".repeat(64)));
        let error = hashes.mismatch("config.json", &"0".repeat(64));
        assert!(error.to_string().contains("config.json"), "{error}");
        drop(book);
        let reopened = HubHashBook::open(&meta).unwrap();
        assert_eq!(reopened.get(hash).unwrap(), Some(hashes));
        store.shutdown().await;
    }
}
