//! The blob store: an iroh-blobs `FsStore` under `<data>/blobs`, and the few operations
//! the node needs from it.
//!
//! Invariants:
//! - Every artifact the node holds has a tag `seedbank/artifact/<root hex>` on its root
//!   HashSeq, so iroh-blobs keeps the root and every blob it lists. A pinned artifact also
//!   has `seedbank/pin/<root hex>`; an artifact being fetched has
//!   `seedbank/fetch/<root hex>` from the moment its root is stored until the fetch ends.
//! - Garbage collection never runs on its own. iroh-blobs only offers a periodic GC
//!   loop, so the store installs one whose protect callback aborts every run unless a
//!   collection was asked for through [`BlobStore::collect_garbage`]; the run after the
//!   one it allowed tells the waiting caller that the sweep has finished.
//! - `<blobs>/temp` holds only files of imports under way. iroh-blobs 0.104 writes an
//!   imported file's copy and its outboard there under random names, and renames both
//!   into `data/` before its database records the blob; partial downloads are written in
//!   `data/` directly. So nothing the database knows lives in temp, and what is there
//!   when the store opens was left by an import that died with its process (a
//!   `kill -9` during `add`): [`BlobStore::open`] deletes it, once the store's database
//!   (which admits one process at a time) is open and before any import can start.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use iroh_blobs::api::blobs::{AddBytesOptions, AddPathOptions, ImportMode};
use iroh_blobs::api::proto::{AddProgressItem, BlobStatus, ExportRangesItem};
use iroh_blobs::api::TempTag;
use iroh_blobs::store::fs::options::{Options, PathOptions};
use iroh_blobs::store::fs::FsStore;
use iroh_blobs::store::{GcConfig, ProtectOutcome};
use iroh_blobs::{BlobFormat, Hash, HashAndFormat};
use seedbank_protocol::{BlobHash, ContentId};
use tokio::sync::Notify;

mod copying;
mod moving;

pub use moving::FileSpot;

use crate::error::{NodeError, NodeResult};
use crate::library::chunk_ranges::range_bytes;
use crate::library::folder::{empty_folder, folder_bytes};

/// How often the store's GC loop asks whether a collection is wanted. Each poll is
/// one uncontended mutex lock; a collection finishes within about two polls.
const GC_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Free space an import leaves on the store's disk beyond what it needs. The store's
/// metadata database cannot commit on a full disk, and iroh-blobs stops the whole store
/// when a commit fails, so imports must never fill the disk to the last byte.
const DISK_HEADROOM_BYTES: u64 = 64 * 1024 * 1024;

/// How long garbage collection may run before it is reported as stuck.
const GC_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// Tag prefix that keeps an artifact's blobs in the store.
const ARTIFACT_TAG_PREFIX: &str = "seedbank/artifact/";
/// Tag prefix that marks an artifact pinned.
const PIN_TAG_PREFIX: &str = "seedbank/pin/";
/// Tag prefix that keeps the blobs of a fetch in progress: without it a `gc` during the
/// fetch would delete what has arrived so far (iroh-blobs deletes untagged partial blobs).
const FETCH_TAG_PREFIX: &str = "seedbank/fetch/";

/// Converts a protocol hash into an iroh-blobs hash.
pub fn to_iroh(hash: BlobHash) -> Hash {
    Hash::from_bytes(hash.0)
}

/// Converts an iroh-blobs hash into a protocol hash.
pub fn from_iroh(hash: Hash) -> BlobHash {
    BlobHash(*hash.as_bytes())
}

/// Handle to the node's blob store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    inner: FsStore,
    root: PathBuf,
    /// iroh-blobs' temp folder (see the module invariants).
    temp: PathBuf,
    /// Where iroh-blobs keeps blob files, to copy a complete one out directly.
    paths: PathOptions,
    gc: Arc<GcTrigger>,
}

/// Counts collections asked for, started and finished.
#[derive(Debug, Default)]
struct GcTrigger {
    state: Mutex<GcState>,
    finished: Notify,
}

#[derive(Debug, Default, Clone, Copy)]
struct GcState {
    requested: u64,
    started: u64,
    finished: u64,
}

impl GcTrigger {
    /// Called by iroh-blobs before each GC run: records that the previous allowed run
    /// finished, and allows this one only if a collection is pending.
    fn before_run(&self) -> ProtectOutcome {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.started > state.finished {
            state.finished = state.started;
            self.finished.notify_waiters();
        }
        if state.requested > state.started {
            state.started = state.requested;
            ProtectOutcome::Continue
        } else {
            ProtectOutcome::Abort
        }
    }
}

/// What one file import produced.
#[derive(Debug)]
pub struct ImportedBlob {
    /// Keeps the blob from being collected until it is tagged.
    pub temp_tag: TempTag,
    /// Its size in bytes.
    pub size: u64,
}

impl BlobStore {
    /// Opens (or creates) the store in `dir`.
    pub async fn open(dir: &Path) -> NodeResult<Self> {
        let gc = Arc::new(GcTrigger::default());
        let trigger = gc.clone();
        let mut options = Options::new(dir);
        options.gc = Some(GcConfig {
            interval: GC_POLL_INTERVAL,
            add_protected: Some(Arc::new(move |_live: &mut HashSet<Hash>| {
                let outcome = trigger.before_run();
                Box::pin(async move { outcome })
            })),
        });
        let temp = options.path.temp_path.clone();
        let paths = options.path.clone();
        let inner = FsStore::load_with_opts(dir.join("blobs.db"), options)
            .await
            .map_err(|e| NodeError::store("opening blob store", &e, dir))?;
        let emptied = temp.clone();
        let freed = tokio::task::spawn_blocking(move || empty_folder(&emptied))
            .await
            .map_err(|e| NodeError::Internal(format!("emptying the temp folder: {e}")))??;
        if freed > 0 {
            tracing::info!(
                bytes = freed,
                "freed what interrupted imports left in the store's temp folder"
            );
        }
        Ok(Self {
            inner,
            root: dir.to_owned(),
            temp,
            paths,
            gc,
        })
    }

    /// Bytes in the store's temp folder: the files of imports under way.
    pub fn temp_bytes(&self) -> NodeResult<u64> {
        folder_bytes(&self.temp)
    }

    /// The iroh-blobs store API, for the blob provider.
    pub fn api(&self) -> iroh_blobs::api::Store {
        iroh_blobs::api::Store::clone(&self.inner)
    }

    /// Runs a get request over `pair`, writing verified data into the store.
    pub fn get_from(
        &self,
        pair: impl iroh_blobs::api::remote::GetStreamPair,
        request: iroh_blobs::protocol::GetRequest,
    ) -> iroh_blobs::api::remote::GetProgress {
        self.inner.remote().execute_get(pair, request)
    }

    /// The chunk ranges of `hash` the store holds, verified.
    pub async fn verified_ranges(
        &self,
        hash: BlobHash,
    ) -> NodeResult<iroh_blobs::protocol::ChunkRanges> {
        self.inner
            .blobs()
            .observe(to_iroh(hash))
            .await
            .map(|bitfield| bitfield.ranges)
            .map_err(|e| self.store_error("reading what is stored", e))
    }

    /// Keeps the blobs of a fetch of `root` (whose root HashSeq is stored) through
    /// garbage collection until [`Self::release_fetch`].
    pub async fn hold_fetch(&self, root: ContentId) -> NodeResult<()> {
        self.set_tag(FETCH_TAG_PREFIX, root).await
    }

    /// Keeps each of `hashes` (as a single blob) through garbage collection until the
    /// returned tags are dropped.
    pub async fn protect_blobs(&self, hashes: &[BlobHash]) -> NodeResult<Vec<TempTag>> {
        let mut tags = Vec::with_capacity(hashes.len());
        for hash in hashes {
            let tag = self
                .inner
                .tags()
                .temp_tag(HashAndFormat::raw(to_iroh(*hash)))
                .await
                .map_err(|e| self.store_error("protecting a blob", e))?;
            tags.push(tag);
        }
        Ok(tags)
    }

    /// Ends [`Self::hold_fetch`].
    pub async fn release_fetch(&self, root: ContentId) -> NodeResult<()> {
        self.delete_tag(FETCH_TAG_PREFIX, root).await
    }

    fn store_error(&self, context: &str, error: impl std::error::Error + 'static) -> NodeError {
        NodeError::store(context, &error, &self.root)
    }

    /// Imports a file, copying it or (when `reference` is set) referencing it in place.
    /// `progress` is called with the bytes processed so far.
    pub async fn import_file(
        &self,
        path: &Path,
        reference: bool,
        mut progress: impl FnMut(u64),
    ) -> NodeResult<ImportedBlob> {
        let mode = if reference {
            ImportMode::TryReference
        } else {
            ImportMode::Copy
        };
        let mut stream = self
            .inner
            .blobs()
            .add_path_with_opts(AddPathOptions {
                path: path.to_owned(),
                format: BlobFormat::Raw,
                mode,
            })
            .stream()
            .await;
        let mut size = 0;
        // Copy and hashing each report offsets; count the copy as the first half of the work.
        let mut copied = false;
        while let Some(item) = stream.next().await {
            match item {
                AddProgressItem::Size(s) => size = s,
                AddProgressItem::CopyProgress(offset) => progress(offset / 2),
                AddProgressItem::CopyDone => copied = true,
                AddProgressItem::OutboardProgress(offset) => progress(if copied && !reference {
                    size / 2 + offset / 2
                } else {
                    offset
                }),
                AddProgressItem::Done(temp_tag) => {
                    progress(size);
                    return Ok(ImportedBlob { temp_tag, size });
                }
                AddProgressItem::Error(e) => return Err(NodeError::io("importing", path, e)),
            }
        }
        Err(NodeError::Store(format!(
            "importing: {} ended without a result",
            path.display()
        )))
    }

    /// Fails with [`NodeError::DiskFull`] unless the store's disk has room to import
    /// `bytes` of files (copied, or only their outboards when referenced) plus headroom.
    /// `what` names the operation in the error ("adding", "fetching").
    pub fn ensure_space_for(&self, bytes: u64, reference: bool, what: &str) -> NodeResult<()> {
        let outboards = bytes / 256 + 1;
        let needed = if reference {
            outboards
        } else {
            bytes.saturating_add(outboards)
        }
        .saturating_add(DISK_HEADROOM_BYTES);
        let available = self.available_space()?;
        if available < needed {
            return Err(NodeError::DiskFull(format!(
                "{}: {what} needs {} MiB but only {} MiB are free",
                self.root.display(),
                needed.div_ceil(1 << 20),
                available / (1 << 20)
            )));
        }
        Ok(())
    }

    /// Free bytes on the store's disk.
    pub fn available_space(&self) -> NodeResult<u64> {
        fs2::available_space(&self.root)
            .map_err(|e| NodeError::io("checking free space on", &self.root, e))
    }

    /// Whether the disk has more free space than the headroom the store needs to keep
    /// working; a fetch pauses while it has not.
    pub fn has_headroom(&self) -> bool {
        self.available_space()
            .is_ok_and(|free| free > DISK_HEADROOM_BYTES)
    }

    /// True while the store's actors are running. iroh-blobs stops the store for good
    /// when its database cannot commit (a full disk), after which every call fails.
    pub async fn is_alive(&self) -> bool {
        self.sync().await.is_ok()
    }

    /// Adds bytes held in memory (manifests and HashSeqs, never file contents).
    pub async fn add_bytes(&self, bytes: Vec<u8>, format: BlobFormat) -> NodeResult<TempTag> {
        self.inner
            .blobs()
            .add_bytes_with_opts(AddBytesOptions {
                data: bytes.into(),
                format,
            })
            .temp_tag()
            .await
            .map_err(|e| self.store_error("adding bytes", e))
    }

    /// Reads a whole small blob (a manifest or HashSeq) into memory, refusing one over `limit` bytes.
    pub async fn read_small(&self, hash: BlobHash, limit: usize) -> NodeResult<Vec<u8>> {
        match self.size(hash).await? {
            Some(size) if size as usize > limit => {
                return Err(NodeError::Corrupt(format!(
                    "blob {hash} is {size} bytes, more than the {limit} allowed here"
                )))
            }
            Some(_) => {}
            None => {
                return Err(NodeError::Corrupt(format!(
                    "blob {hash} is missing from the store"
                )))
            }
        }
        self.inner
            .blobs()
            .get_bytes(to_iroh(hash))
            .await
            .map(|b| b.to_vec())
            .map_err(|e| self.store_error("reading blob", e))
    }

    /// Size of a complete blob, or `None` if it is missing or partial.
    pub async fn size(&self, hash: BlobHash) -> NodeResult<Option<u64>> {
        match self.status(hash).await? {
            BlobStatus::Complete { size } => Ok(Some(size)),
            _ => Ok(None),
        }
    }

    async fn status(&self, hash: BlobHash) -> NodeResult<BlobStatus> {
        self.inner
            .blobs()
            .status(to_iroh(hash))
            .await
            .map_err(|e| self.store_error("blob status", e))
    }

    /// Streams the bytes `range` of `hash` (which the caller has seen verified) as
    /// `(offset, bytes)` pieces in order; ends with an error if the store cannot.
    pub fn read_range(
        &self,
        hash: BlobHash,
        range: std::ops::Range<u64>,
    ) -> impl futures::Stream<Item = NodeResult<(u64, bytes::Bytes)>> + Send + 'static {
        self.inner
            .blobs()
            .export_ranges(to_iroh(hash), range)
            .stream()
            .filter_map(move |item| async move {
                match item {
                    ExportRangesItem::Size(_) => None,
                    ExportRangesItem::Data(leaf) => Some(Ok((leaf.offset, leaf.data))),
                    ExportRangesItem::Error(e) => {
                        Some(Err(NodeError::Corrupt(format!("reading blob {hash}: {e}"))))
                    }
                }
            })
    }

    /// Every blob in the store, complete or partial.
    pub async fn hashes(&self) -> NodeResult<Vec<BlobHash>> {
        let hashes = self
            .inner
            .blobs()
            .list()
            .hashes()
            .await
            .map_err(|e| self.store_error("listing blobs", e))?;
        Ok(hashes.into_iter().map(from_iroh).collect())
    }

    /// Bytes of each blob the store holds: a complete blob's size, and the verified
    /// part of a partial one (a fetch cancelled half-way), so that what `status` and
    /// `gc` count is what the data dir holds. A blob with no byte stored is left out.
    pub async fn stored_bytes(&self) -> NodeResult<HashMap<BlobHash, u64>> {
        let hashes = self.hashes().await?;
        let mut sizes = HashMap::with_capacity(hashes.len());
        for hash in hashes {
            let bytes = match self.status(hash).await? {
                BlobStatus::Complete { size } => size,
                BlobStatus::Partial { .. } => {
                    let held = self
                        .inner
                        .blobs()
                        .observe(to_iroh(hash))
                        .await
                        .map_err(|e| self.store_error("reading what is stored", e))?;
                    range_bytes(&held.ranges, held.size())
                }
                BlobStatus::NotFound => 0,
            };
            if bytes > 0 {
                sizes.insert(hash, bytes);
            }
        }
        Ok(sizes)
    }

    /// Sizes of all complete blobs in the store.
    pub async fn blob_sizes(&self) -> NodeResult<HashMap<BlobHash, u64>> {
        let hashes = self.hashes().await?;
        let mut sizes = HashMap::with_capacity(hashes.len());
        for hash in hashes {
            if let Some(size) = self.size(hash).await? {
                sizes.insert(hash, size);
            }
        }
        Ok(sizes)
    }

    /// Tags `root` as a held artifact, so its blobs stay in the store.
    pub async fn keep_artifact(&self, root: ContentId) -> NodeResult<()> {
        self.set_tag(ARTIFACT_TAG_PREFIX, root).await
    }

    /// Removes the artifact tag; the next collection frees what no other tag holds.
    pub async fn release_artifact(&self, root: ContentId) -> NodeResult<()> {
        self.delete_tag(ARTIFACT_TAG_PREFIX, root).await
    }

    /// Sets or clears the pin tag of `root`.
    pub async fn set_pinned(&self, root: ContentId, pinned: bool) -> NodeResult<()> {
        if pinned {
            self.set_tag(PIN_TAG_PREFIX, root).await
        } else {
            self.delete_tag(PIN_TAG_PREFIX, root).await
        }
    }

    async fn set_tag(&self, prefix: &str, root: ContentId) -> NodeResult<()> {
        let name = format!("{prefix}{}", root.hash().to_hex());
        self.inner
            .tags()
            .set(name, HashAndFormat::hash_seq(to_iroh(root.hash())))
            .await
            .map_err(|e| self.store_error("setting tag", e))
    }

    async fn delete_tag(&self, prefix: &str, root: ContentId) -> NodeResult<()> {
        let name = format!("{prefix}{}", root.hash().to_hex());
        self.inner
            .tags()
            .delete(name)
            .await
            .map(|_| ())
            .map_err(|e| self.store_error("deleting tag", e))
    }

    /// Runs one garbage collection: every blob not reachable from a tag (or a temp tag
    /// of an import in progress) is deleted. Returns when the sweep has finished.
    pub async fn collect_garbage(&self) -> NodeResult<()> {
        let wanted = {
            let mut state = self.gc.state.lock().unwrap_or_else(|e| e.into_inner());
            state.requested += 1;
            state.requested
        };
        let deadline = tokio::time::Instant::now() + GC_TIMEOUT;
        loop {
            let finished = self.gc.finished.notified();
            tokio::pin!(finished);
            finished.as_mut().enable();
            if self.gc_finished() >= wanted {
                break;
            }
            // iroh-blobs ends its GC loop on the first failed run; notice rather than wait forever.
            if tokio::time::timeout(Duration::from_secs(1), finished)
                .await
                .is_err()
            {
                if !self.is_alive().await {
                    return Err(NodeError::Store(
                        "the blob store stopped during garbage collection (see the daemon log)"
                            .into(),
                    ));
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(NodeError::Store(format!(
                        "garbage collection did not finish within {GC_TIMEOUT:?}; restart the daemon"
                    )));
                }
            }
        }
        self.sync().await
    }

    fn gc_finished(&self) -> u64 {
        self.gc
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finished
    }

    /// Makes every completed write durable.
    pub async fn sync(&self) -> NodeResult<()> {
        self.inner
            .sync_db()
            .await
            .map_err(|e| self.store_error("syncing store", e))
    }

    /// Flushes and closes the store; the handle is unusable afterwards.
    pub async fn shutdown(&self) {
        if let Err(e) = self.inner.shutdown().await {
            tracing::warn!(error = %e, "blob store did not shut down cleanly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn what_a_killed_import_left_in_temp_is_freed_at_open_and_blobs_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).await.unwrap();
        let tag = store
            .add_bytes(vec![7; 100_000], BlobFormat::Raw)
            .await
            .unwrap();
        let hash = from_iroh(tag.hash());
        store
            .keep_artifact(ContentId::from_hash(hash))
            .await
            .unwrap();
        assert_eq!(store.temp_bytes().unwrap(), 0);
        store.shutdown().await;
        drop(store);

        // As an import killed mid-copy leaves it: a random-named copy and an outboard.
        let temp = dir.path().join("temp");
        std::fs::write(temp.join("0123.temp"), vec![1; 300_000]).unwrap();
        std::fs::write(temp.join("4567.temp"), vec![2; 1_000]).unwrap();
        std::fs::create_dir(temp.join("stray")).unwrap();
        std::fs::write(temp.join("stray/file"), vec![3; 10]).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), b"keep").unwrap();
        std::os::unix::fs::symlink(outside.path(), temp.join("link")).unwrap();
        assert_eq!(folder_bytes(&temp).unwrap(), 301_010);

        let store = BlobStore::open(dir.path()).await.unwrap();
        assert_eq!(std::fs::read_dir(&temp).unwrap().count(), 0);
        assert_eq!(store.temp_bytes().unwrap(), 0);
        assert_eq!(std::fs::read(outside.path().join("keep")).unwrap(), b"keep");
        assert_eq!(store.size(hash).await.unwrap(), Some(100_000));
        assert_eq!(
            store.read_small(hash, 1 << 20).await.unwrap(),
            vec![7; 100_000]
        );
    }
}
