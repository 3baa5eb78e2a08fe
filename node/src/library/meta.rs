//! Node metadata in sled under `<data>/meta`: the artifacts the node holds (and whether
//! each was added or fetched), its pins, the files it references in place, fetch jobs,
//! announcement times, and the blobs `verify` found damaged.
//!
//! Invariants: records are postcard-encoded; keys of `artifacts` and `pins` are the 32
//! root-hash bytes; keys of `references` are the 32 blob-hash bytes followed by the
//! referenced path, so one blob may be referenced from several paths. Callers flush
//! with [`Meta::flush`] before reporting success to a user.

use std::path::Path;

use seedbank_protocol::api::ArtifactOrigin;
use seedbank_protocol::{ArtifactKind, BlobHash, ContentId};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{NodeError, NodeResult};

/// An artifact the node holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    /// Content id (root HashSeq hash).
    pub root: ContentId,
    /// Hash of the manifest blob, the first entry of the root HashSeq.
    pub manifest: BlobHash,
    /// Name given on `add`, or by the release it was fetched by; empty when it has none.
    /// Local: the content id does not depend on it.
    pub name: String,
    /// Model or dataset, as given on `add` or by its release.
    pub kind: ArtifactKind,
    /// Revision label, as given on `add` or by its release.
    pub revision: String,
    /// SPDX licence, as given on `add` or by its release.
    pub licence: Option<String>,
    /// The model or dataset card among its files.
    pub card: Option<String>,
    /// Total size of the files.
    pub size: u64,
    /// Number of files.
    pub files: u64,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: u64,
    /// Whether its files were referenced in place.
    pub referenced: bool,
}

/// What a node calls an artifact: given on `add`, or taken from the release it was
/// fetched by. None of it is part of the content id.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Labels {
    /// Name; empty for an artifact fetched by id alone.
    pub name: String,
    /// Model or dataset.
    pub kind: Option<ArtifactKind>,
    /// Revision label.
    pub revision: String,
    /// SPDX licence.
    pub licence: Option<String>,
    /// Card path among the files.
    pub card: Option<String>,
}

/// Why and when an artifact is pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRecord {
    /// When it was pinned, seconds since the Unix epoch.
    pub pinned_at: u64,
    /// A note from the user, if any.
    pub reason: Option<String>,
    /// How many copies on the network the user wants (used by preservation).
    pub replica_target: Option<u32>,
}

/// A file referenced in place, and what it looked like when it was imported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferenceRecord {
    /// The file's absolute path.
    pub path: String,
    /// Its size at import.
    pub size: u64,
    /// Its modification time at import, nanoseconds since the Unix epoch.
    pub modified_ns: i128,
    /// Which file it was and when its inode last changed; `None` in records written
    /// before these were kept, which are checked by size and modification time only.
    pub identity: Option<FileIdentity>,
}

/// What tells one file from another, and a rewritten file from an untouched one, beyond
/// size and modification time (both of which any program writing the file can restore).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileIdentity {
    /// Device of the filesystem holding it.
    pub device: u64,
    /// Its inode number on that device: a file replaced under the same name differs.
    pub inode: u64,
    /// Its status-change time (ctime), nanoseconds since the Unix epoch. The kernel sets
    /// it on every write and metadata change, and no unprivileged program can set it back.
    pub changed_ns: i128,
}

/// [`ReferenceRecord`] as written before it had `identity`.
#[derive(Deserialize)]
struct ReferenceRecordWithoutIdentity {
    path: String,
    size: u64,
    modified_ns: i128,
}

/// Decodes a reference record in its current form or the one before it.
fn decode_reference(bytes: &[u8]) -> NodeResult<ReferenceRecord> {
    decode(bytes).or_else(|error| {
        let old: ReferenceRecordWithoutIdentity = decode(bytes).map_err(|_| error)?;
        Ok(ReferenceRecord {
            path: old.path,
            size: old.size,
            modified_ns: old.modified_ns,
            identity: None,
        })
    })
}

/// A fetch that has not finished; it resumes when the daemon starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchJobRecord {
    /// The artifact.
    pub root: ContentId,
    /// Only files matching these globs (all when empty).
    pub include: Vec<String>,
    /// When it started, seconds since the Unix epoch.
    pub started_at: u64,
    /// Why its last try failed, if it did.
    pub last_error: Option<String>,
    /// Pin the artifact when the fetch succeeds.
    pub pin: bool,
    /// The labels the release it was fetched by gives it (none when fetched by id):
    /// recorded with the artifact when the fetch commits, even after a restart.
    pub labels: Option<Labels>,
}

/// [`FetchJobRecord`] as written before it had `labels`.
#[derive(Deserialize)]
struct FetchJobRecordWithoutLabels {
    root: ContentId,
    include: Vec<String>,
    started_at: u64,
    last_error: Option<String>,
    pin: bool,
}

/// [`FetchJobRecord`] as written before it had `pin`.
#[derive(Deserialize)]
struct FetchJobRecordWithoutPin {
    root: ContentId,
    include: Vec<String>,
    started_at: u64,
    last_error: Option<String>,
}

/// Decodes a fetch job record in its current form or one of the two before it.
fn decode_fetch_job(bytes: &[u8]) -> NodeResult<FetchJobRecord> {
    decode(bytes).or_else(|error| {
        if let Ok(old) = decode::<FetchJobRecordWithoutLabels>(bytes) {
            return Ok(FetchJobRecord {
                root: old.root,
                include: old.include,
                started_at: old.started_at,
                last_error: old.last_error,
                pin: old.pin,
                labels: None,
            });
        }
        let old: FetchJobRecordWithoutPin = decode(bytes).map_err(|_| error)?;
        Ok(FetchJobRecord {
            root: old.root,
            include: old.include,
            started_at: old.started_at,
            last_error: old.last_error,
            pin: false,
            labels: None,
        })
    })
}

/// The metadata database.
#[derive(Debug, Clone)]
pub struct Meta {
    db: sled::Db,
    artifacts: sled::Tree,
    pins: sled::Tree,
    references: sled::Tree,
    fetch_jobs: sled::Tree,
    announces: sled::Tree,
    damaged: sled::Tree,
    node_state: sled::Tree,
    origins: sled::Tree,
}

/// The postcard bytes of a record, for sled.
pub(crate) fn encode<T: Serialize>(value: &T) -> NodeResult<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| NodeError::Internal(format!("encoding record: {e}")))
}

/// A record read back from sled.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> NodeResult<T> {
    postcard::from_bytes(bytes)
        .map_err(|e| NodeError::Corrupt(format!("metadata record is unreadable: {e}")))
}

impl Meta {
    /// Opens (or creates) the database in `dir`.
    pub fn open(dir: &Path) -> NodeResult<Self> {
        let db = sled::open(dir)?;
        Ok(Self {
            artifacts: db.open_tree("artifacts")?,
            pins: db.open_tree("pins")?,
            references: db.open_tree("references")?,
            fetch_jobs: db.open_tree("fetch_jobs")?,
            announces: db.open_tree("announces")?,
            damaged: db.open_tree("damaged")?,
            node_state: db.open_tree("node_state")?,
            origins: db.open_tree("origins")?,
            db,
        })
    }

    /// The tree `name` of this database, for a module that keeps its own records in it
    /// (as the library's last-used times, or a service's book).
    pub fn tree(&self, name: &str) -> NodeResult<sled::Tree> {
        Ok(self.db.open_tree(name)?)
    }

    /// Makes every write so far durable. Flushes on a blocking thread: sled 0.34's
    /// `flush_async` can miss its wake-up when several flushes race, and then never
    /// completes (sled issues 1241 and 1308; seen here with many nodes in one process).
    pub async fn flush(&self) -> NodeResult<()> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.flush())
            .await
            .map_err(|e| NodeError::Internal(format!("flushing metadata: {e}")))??;
        Ok(())
    }

    /// Records an artifact (replacing any record of the same root).
    pub fn put_artifact(&self, record: &ArtifactRecord) -> NodeResult<()> {
        self.artifacts
            .insert(record.root.hash().as_bytes(), encode(record)?)?;
        Ok(())
    }

    /// The record of `root`, if held.
    pub fn artifact(&self, root: ContentId) -> NodeResult<Option<ArtifactRecord>> {
        self.artifacts
            .get(root.hash().as_bytes())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every artifact held.
    pub fn artifacts(&self) -> NodeResult<Vec<ArtifactRecord>> {
        self.artifacts
            .iter()
            .map(|entry| decode(&entry?.1))
            .collect()
    }

    /// Forgets an artifact, its pin and its origin.
    pub fn remove_artifact(&self, root: ContentId) -> NodeResult<()> {
        self.artifacts.remove(root.hash().as_bytes())?;
        self.pins.remove(root.hash().as_bytes())?;
        self.origins.remove(root.hash().as_bytes())?;
        Ok(())
    }

    /// Records how `root` came to this node, unless that is already known: an artifact
    /// added and later repaired by a fetch stays added, as it keeps its `added_at`.
    pub fn note_origin(&self, root: ContentId, origin: ArtifactOrigin) -> NodeResult<()> {
        // An `Err` inside means an origin was already recorded: it stays.
        let _already_known = self.origins.compare_and_swap(
            root.hash().as_bytes(),
            None as Option<&[u8]>,
            Some(encode(&origin)?),
        )?;
        Ok(())
    }

    /// How `root` came to this node; `None` if it was recorded before origins were kept.
    pub fn origin(&self, root: ContentId) -> NodeResult<Option<ArtifactOrigin>> {
        self.origins
            .get(root.hash().as_bytes())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Pins `root`; returns false if it was already pinned.
    pub fn pin(&self, root: ContentId, record: &PinRecord) -> NodeResult<bool> {
        let previous = self.pins.compare_and_swap(
            root.hash().as_bytes(),
            None as Option<&[u8]>,
            Some(encode(record)?),
        )?;
        Ok(previous.is_ok())
    }

    /// Unpins `root`; returns false if it was not pinned.
    pub fn unpin(&self, root: ContentId) -> NodeResult<bool> {
        Ok(self.pins.remove(root.hash().as_bytes())?.is_some())
    }

    /// The pin of `root`, if pinned.
    pub fn pin_record(&self, root: ContentId) -> NodeResult<Option<PinRecord>> {
        self.pins
            .get(root.hash().as_bytes())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every pin.
    pub fn pins(&self) -> NodeResult<Vec<(ContentId, PinRecord)>> {
        self.pins
            .iter()
            .map(|item| {
                let (key, value) = item?;
                let hash: [u8; 32] = key
                    .as_ref()
                    .try_into()
                    .map_err(|_| NodeError::Corrupt("a pin's key is not a 32-byte hash".into()))?;
                Ok((ContentId::from_hash(BlobHash(hash)), decode(&value)?))
            })
            .collect()
    }

    /// Replaces the pin record of a pinned `root` (its reason or replica target).
    pub fn update_pin(&self, root: ContentId, record: &PinRecord) -> NodeResult<()> {
        self.pins.insert(root.hash().as_bytes(), encode(record)?)?;
        Ok(())
    }

    /// Number of pins.
    pub fn pin_count(&self) -> usize {
        self.pins.len()
    }

    /// Records a fetch in progress.
    pub fn put_fetch_job(&self, job: &FetchJobRecord) -> NodeResult<()> {
        self.fetch_jobs
            .insert(job.root.hash().as_bytes(), encode(job)?)?;
        Ok(())
    }

    /// Forgets a finished fetch.
    pub fn remove_fetch_job(&self, root: ContentId) -> NodeResult<()> {
        self.fetch_jobs.remove(root.hash().as_bytes())?;
        Ok(())
    }

    /// Every unfinished fetch.
    pub fn fetch_jobs(&self) -> NodeResult<Vec<FetchJobRecord>> {
        self.fetch_jobs
            .iter()
            .map(|entry| decode_fetch_job(&entry?.1))
            .collect()
    }

    /// When `root` is next due to be announced, seconds since the Unix epoch (0: now).
    pub fn next_announce(&self, root: ContentId) -> NodeResult<u64> {
        Ok(self
            .announces
            .get(root.hash().as_bytes())?
            .map(|bytes| decode::<u64>(&bytes))
            .transpose()?
            .unwrap_or(0))
    }

    /// Schedules the next announcement of `root`.
    pub fn set_next_announce(&self, root: ContentId, due: u64) -> NodeResult<()> {
        self.announces
            .insert(root.hash().as_bytes(), encode(&due)?)?;
        Ok(())
    }

    /// Stops scheduling announcements of `root`.
    pub fn remove_announce(&self, root: ContentId) -> NodeResult<()> {
        self.announces.remove(root.hash().as_bytes())?;
        Ok(())
    }

    /// Saves a piece of the node's own state under `key` (replacing what was there).
    pub fn put_state<T: Serialize>(&self, key: &str, value: &T) -> NodeResult<()> {
        self.node_state.insert(key, encode(value)?)?;
        Ok(())
    }

    /// The piece of the node's own state saved under `key`, if any.
    pub fn state<T: DeserializeOwned>(&self, key: &str) -> NodeResult<Option<T>> {
        self.node_state
            .get(key)?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Records whether the stored bytes of `hash` failed verification.
    pub fn set_damaged(&self, hash: BlobHash, damaged: bool) -> NodeResult<()> {
        if damaged {
            self.damaged.insert(hash.as_bytes(), &[])?;
        } else {
            self.damaged.remove(hash.as_bytes())?;
        }
        Ok(())
    }

    /// Whether the stored bytes of `hash` failed verification.
    pub fn is_damaged(&self, hash: BlobHash) -> NodeResult<bool> {
        Ok(self.damaged.contains_key(hash.as_bytes())?)
    }

    /// Records that `hash` is served from a file referenced in place.
    pub fn put_reference(&self, hash: BlobHash, record: &ReferenceRecord) -> NodeResult<()> {
        let mut key = hash.as_bytes().to_vec();
        key.extend_from_slice(record.path.as_bytes());
        self.references.insert(key, encode(record)?)?;
        Ok(())
    }

    /// The files `hash` is referenced from.
    pub fn references(&self, hash: BlobHash) -> NodeResult<Vec<ReferenceRecord>> {
        self.references
            .scan_prefix(hash.as_bytes())
            .map(|entry| decode_reference(&entry?.1))
            .collect()
    }

    /// Forgets every reference of `hash`.
    pub fn remove_references(&self, hash: BlobHash) -> NodeResult<()> {
        for entry in self.references.scan_prefix(hash.as_bytes()) {
            self.references.remove(entry?.0)?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "meta_tests.rs"]
mod tests;
