//! The node's artifacts and what can be done with them: add, list, show, export, pin,
//! unpin, remove, collect garbage, verify, report status. Owns the blob store and the metadata
//! database; the control API and tests call it. Keeps the store under `max_storage`
//! ([`quota`]) and remembers when each artifact was last used ([`last_used`]).

pub mod chunk_ranges;
mod eviction_plan;
pub mod export;
mod exporting;
pub mod folder;
pub mod import;
pub mod last_used;
pub mod meta;
mod pins;
pub mod quota;
pub mod reference;
mod removal;
pub mod resolve;
pub mod root;
pub mod store;
mod verifying;

use std::sync::Arc;
use std::time::Instant;

use seedbank_protocol::api::{
    ArtifactDetail, ArtifactOrigin, ArtifactSummary, Completeness, PinReport, StatusResponse,
};
use seedbank_protocol::limits::MAX_MANIFEST_BYTES;
use seedbank_protocol::{BlobHash, ContentId, FileEntry, Manifest};

use crate::clock::Clock;
use crate::data_dir::DataDir;
use crate::error::{NodeError, NodeResult};
use crate::library::import::{add_artifact, commit_artifact, AddOptions};
use crate::library::meta::{ArtifactRecord, FetchJobRecord, Labels, Meta, PinRecord};
use crate::library::reference::check_unchanged;
use crate::library::resolve::resolve_local;
use crate::library::root::{read_root, RootAndManifest};
use crate::library::store::BlobStore;
use crate::peers::{PeerBook, SavedPeer};
use crate::progress::ProgressReporter;
use last_used::LastUsed;
use quota::Quota;

/// Most bytes of a card `show` prints.
pub const MAX_CARD_TEXT_BYTES: usize = 64 * 1024;

/// Where the peer book is saved in the node's state.
const PEER_BOOK_KEY: &str = "peer_book";

/// Longest wait for the store to record complete a blob whose ranges all verified.
pub const COMPLETE_SETTLE_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// How often that wait looks again.
const COMPLETE_SETTLE_POLL: std::time::Duration = std::time::Duration::from_millis(10);

/// The node's artifacts, store and metadata.
#[derive(Debug, Clone)]
pub struct Library {
    store: BlobStore,
    meta: Meta,
    data_dir: DataDir,
    node_id: String,
    started: Instant,
    last_used: LastUsed,
    quota: Arc<Quota>,
    clock: Clock,
}

impl Library {
    /// Opens the store and database in `data_dir` (which must exist), with no storage
    /// limit (see [`Library::with_max_storage`]); every time it stamps comes from `clock`.
    pub async fn open(data_dir: DataDir, node_id: String, clock: Clock) -> NodeResult<Self> {
        let meta = Meta::open(&data_dir.meta()).map_err(|e| match e {
            NodeError::Meta(sled::Error::Io(io)) if io.kind() == std::io::ErrorKind::WouldBlock => {
                NodeError::InUse(format!(
                    "data directory {} is in use by another seedbank daemon",
                    data_dir.root().display()
                ))
            }
            other => other,
        })?;
        let store = BlobStore::open(&data_dir.blobs()).await?;
        Ok(Self {
            store,
            last_used: LastUsed::open(&meta)?,
            meta,
            data_dir,
            node_id,
            started: Instant::now(),
            quota: Arc::new(Quota::new(None)),
            clock,
        })
    }

    /// The node's clock, which stamps what the library records.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The metadata database, for a service that keeps its own book in it (names,
    /// denylists, preservation): each book opens its own trees through this handle.
    pub fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Where publisher keys are kept.
    pub fn keys_dir(&self) -> std::path::PathBuf {
        self.data_dir.root().join("keys")
    }

    /// The node's data directory.
    pub fn data_root(&self) -> &std::path::Path {
        self.data_dir.root()
    }

    /// Blobs that belong only to artifacts `seeds` says no to (a licence the node does
    /// not seed, a denylisted root): their roots, manifests and files, less any blob an
    /// artifact it seeds also holds.
    pub async fn unseeded_blobs(
        &self,
        seeds: impl Fn(&ArtifactRecord) -> bool,
    ) -> NodeResult<std::collections::HashSet<BlobHash>> {
        let mut blocked = std::collections::HashSet::new();
        let mut allowed = std::collections::HashSet::new();
        for record in self.meta.artifacts()? {
            let set = if seeds(&record) {
                &mut allowed
            } else {
                &mut blocked
            };
            set.insert(record.root.hash());
            set.insert(record.manifest);
            if let Ok(stored) = self.stored_root(record.root).await {
                set.extend(stored.manifest.files.iter().map(|f| f.hash));
            }
        }
        Ok(blocked.difference(&allowed).copied().collect())
    }

    /// The record of `root`, if the node holds it.
    pub fn artifact(&self, root: ContentId) -> NodeResult<Option<ArtifactRecord>> {
        self.meta.artifact(root)
    }

    /// Gives an artifact the labels it was published under.
    pub async fn set_labels(&self, root: ContentId, labels: Labels) -> NodeResult<()> {
        let Some(mut record) = self.meta.artifact(root)? else {
            return Err(NodeError::UnknownArtifact(root.to_string()));
        };
        record.name = labels.name;
        record.kind = labels.kind.unwrap_or(record.kind);
        record.revision = labels.revision;
        record.licence = labels.licence;
        record.card = labels.card;
        self.meta.put_artifact(&record)?;
        self.meta.flush().await
    }

    /// Makes every metadata write so far durable.
    pub async fn flush(&self) -> NodeResult<()> {
        self.meta.flush().await
    }

    /// The store handle that transfers move verified bytes through: the blob provider
    /// reads from it, fetches write into it. Everything else goes through `Library`.
    pub fn transfer_store(&self) -> BlobStore {
        self.store.clone()
    }

    /// True while the blob store runs (it stops for good when its database cannot
    /// commit, as on a full disk).
    pub async fn store_is_alive(&self) -> bool {
        self.store.is_alive().await
    }

    /// Fails with [`NodeError::DiskFull`], naming the numbers, unless fetching
    /// `bytes` more leaves the disk its headroom.
    pub fn ensure_space_to_fetch(&self, bytes: u64) -> NodeResult<()> {
        self.store.ensure_space_for(bytes, false, "fetching")
    }

    /// The root and manifest of `root`, if stored.
    pub async fn stored_root(&self, root: ContentId) -> NodeResult<RootAndManifest> {
        read_root(&self.store, root).await
    }

    /// Whether every blob of `files` is complete in the store. A blob whose ranges all
    /// verified is given up to [`COMPLETE_SETTLE_TIME`] to be recorded complete: the
    /// store records it a moment after its last range verifies, and a transfer ends on
    /// the ranges.
    pub async fn files_complete(&self, files: &[&FileEntry]) -> NodeResult<bool> {
        for file in files {
            if file.size == 0 || self.store.size(file.hash).await?.is_some() {
                continue;
            }
            let present = self.store.verified_ranges(file.hash).await?;
            if chunk_ranges::missing_bytes(file.size, &present) > 0 {
                return Ok(false);
            }
            let settle_by = tokio::time::Instant::now() + COMPLETE_SETTLE_TIME;
            while self.store.size(file.hash).await?.is_none() {
                if tokio::time::Instant::now() >= settle_by {
                    tracing::warn!(hash = %file.hash, "every range verified, yet the store does not record the blob complete");
                    return Ok(false);
                }
                tokio::time::sleep(COMPLETE_SETTLE_POLL).await;
            }
        }
        Ok(true)
    }

    /// Bytes of `files` the store does not hold yet (verified ranges count as held).
    pub async fn missing_bytes(&self, files: &[&FileEntry]) -> NodeResult<u64> {
        let mut missing = 0u64;
        for file in files {
            let present = self.store.verified_ranges(file.hash).await?;
            missing = missing.saturating_add(chunk_ranges::missing_bytes(file.size, &present));
        }
        Ok(missing)
    }

    /// Records a fetched artifact whose selected files are all complete (pinned again
    /// if it was pinned before a repair).
    pub async fn commit_fetched(
        &self,
        fetched: &RootAndManifest,
        id: ContentId,
        labels: Option<Labels>,
    ) -> NodeResult<ArtifactRecord> {
        if self.meta.pin_record(id)?.is_some() {
            self.store.set_pinned(id, true).await?;
        }
        self.last_used.touch(id, self.clock.now_millis())?;
        commit_artifact(
            &self.store,
            &self.meta,
            &self.clock,
            id,
            fetched.root.manifest,
            &fetched.manifest,
            labels,
            false,
            ArtifactOrigin::Fetched,
        )
        .await
    }

    /// Saves a fetch job, so it resumes if the daemon stops before it ends.
    pub async fn save_fetch_job(&self, job: &FetchJobRecord) -> NodeResult<()> {
        self.meta.put_fetch_job(job)?;
        self.meta.flush().await
    }

    /// Keeps what a fetch of `root` has stored through garbage collection; call once
    /// its root is stored.
    pub async fn hold_fetch(&self, root: ContentId) -> NodeResult<()> {
        self.store.hold_fetch(root).await
    }

    /// Ends a fetch job: forgets it, and lets garbage collection have what it stored
    /// unless an artifact record keeps it.
    pub async fn end_fetch(&self, root: ContentId) -> NodeResult<()> {
        self.meta.remove_fetch_job(root)?;
        self.store.release_fetch(root).await?;
        self.meta.flush().await
    }

    /// Saves the peer book (scores and bans) so it outlives a restart; failing to is
    /// logged, never fatal (it is advice).
    pub async fn save_peer_book(&self, peers: &PeerBook) {
        let saved = peers.snapshot(tokio::time::Instant::now(), self.clock.now_secs());
        let stored = match self.meta.put_state(PEER_BOOK_KEY, &saved) {
            Ok(()) => self.meta.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = stored {
            tracing::warn!(error = %e, "cannot save the peer book");
        }
    }

    /// The peer book saved last (empty if none, or if it cannot be read: it is advice,
    /// never worth refusing to start over).
    pub fn saved_peer_book(&self) -> Vec<SavedPeer> {
        match self.meta.state(PEER_BOOK_KEY) {
            Ok(saved) => saved.unwrap_or_default(),
            Err(e) => {
                tracing::warn!(error = %e, "the saved peer book is unreadable; starting afresh");
                Vec::new()
            }
        }
    }

    /// Every saved fetch job.
    pub fn fetch_jobs(&self) -> NodeResult<Vec<FetchJobRecord>> {
        self.meta.fetch_jobs()
    }

    /// Complete artifacts whose announcement is due at `now` (all of them when
    /// `everything`), less those `seeds` turns down (a licence the node does not seed).
    pub async fn due_announcements(
        &self,
        now: u64,
        everything: bool,
        seeds: impl Fn(&ArtifactRecord) -> bool,
    ) -> NodeResult<Vec<ContentId>> {
        let mut due = Vec::new();
        for record in self.meta.artifacts()? {
            if !seeds(&record) {
                continue;
            }
            let is_due = everything || self.meta.next_announce(record.root)? <= now;
            if is_due && self.is_complete(&record).await? {
                due.push(record.root);
            }
        }
        Ok(due)
    }

    /// Schedules the next announcement of `root` (0: now). Not flushed on its own: a
    /// lost schedule costs one early announcement, and every start announces anyway.
    pub async fn schedule_announce(&self, root: ContentId, due: u64) -> NodeResult<()> {
        self.meta.set_next_announce(root, due)
    }

    /// Stops announcing `root`.
    pub async fn forget_announce(&self, root: ContentId) -> NodeResult<()> {
        self.meta.remove_announce(root)?;
        self.meta.flush().await
    }

    /// Finds a local artifact by id, id prefix, name or name@revision.
    pub fn find(&self, reference: &str) -> NodeResult<ArtifactRecord> {
        self.resolve(reference)
    }

    /// Whether every file of the artifact is stored (and no referenced file changed).
    pub async fn is_complete(&self, record: &ArtifactRecord) -> NodeResult<bool> {
        Ok(self.summary(record).await?.state == Completeness::Complete)
    }

    /// Flushes metadata and closes the store.
    pub async fn close(&self) -> NodeResult<()> {
        self.meta.flush().await?;
        self.store.shutdown().await;
        Ok(())
    }

    /// Adds a file or directory.
    pub async fn add(
        &self,
        options: AddOptions,
        progress: &mut ProgressReporter,
    ) -> NodeResult<ArtifactSummary> {
        let what = options.path.display().to_string();
        let record = add_artifact(
            &self.store,
            &self.meta,
            &self.clock,
            options,
            progress,
            |bytes| self.make_room_to_add(bytes, &what),
        )
        .await?;
        self.last_used.touch(record.root, self.clock.now_millis())?;
        self.meta.flush().await?;
        self.summary(&record).await
    }

    /// Every artifact held, newest first.
    pub async fn list(&self) -> NodeResult<Vec<ArtifactSummary>> {
        let mut records = self.meta.artifacts()?;
        records.sort_by(|a, b| b.added_at.cmp(&a.added_at).then(a.name.cmp(&b.name)));
        let mut summaries = Vec::with_capacity(records.len());
        for record in &records {
            summaries.push(self.summary(record).await?);
        }
        Ok(summaries)
    }

    /// One artifact with its manifest.
    pub async fn detail(&self, reference: &str) -> NodeResult<ArtifactDetail> {
        let record = self.resolve(reference)?;
        let manifest = self.manifest(&record).await?;
        let card_text = match record.card.as_deref() {
            Some(card) => self.card_text(&manifest, card).await,
            None => None,
        };
        Ok(ArtifactDetail {
            summary: self.summary_with(&record, &manifest).await?,
            licence: record.licence.clone(),
            card: record.card.clone(),
            card_text,
            releases: Vec::new(),
            seeding: true,
            manifest,
        })
    }

    /// The text of the card at `path` among `manifest`'s files, if it is stored and at
    /// most [`MAX_CARD_TEXT_BYTES`].
    pub async fn card_text(&self, manifest: &Manifest, path: &str) -> Option<String> {
        let file = manifest.file(path)?;
        let bytes = self
            .store
            .read_small(file.hash, MAX_CARD_TEXT_BYTES)
            .await
            .ok()?;
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Pins or unpins an artifact.
    pub async fn set_pinned(&self, reference: &str, pinned: bool) -> NodeResult<PinReport> {
        let record = self.resolve(reference)?;
        let changed = if pinned {
            let pin = PinRecord {
                pinned_at: self.clock.now_secs(),
                reason: None,
                replica_target: None,
            };
            self.meta.pin(record.root, &pin)?
        } else {
            self.meta.unpin(record.root)?
        };
        self.store.set_pinned(record.root, pinned).await?;
        self.meta.flush().await?;
        Ok(PinReport {
            id: record.root,
            pinned,
            changed,
            replica_target: None,
        })
    }

    /// Whether `root` is held and some of its bytes must be fetched again: `verify` found
    /// them damaged, or a file they were served from (moved out by `fetch --out`, or
    /// added with `--reference`) changed or went.
    pub async fn is_damaged(&self, root: ContentId) -> NodeResult<bool> {
        match self.meta.artifact(root)? {
            Some(record) => Ok(matches!(
                self.summary(&record).await?.state,
                Completeness::Damaged | Completeness::Modified
            )),
            None => Ok(false),
        }
    }

    /// Lets go of the damaged blobs of an artifact, and those whose outside file changed,
    /// so that fetching it again replaces them and nothing else: its tags are removed (its
    /// record and pin record stay), the root, manifest and other files are protected
    /// while garbage is collected (which never deletes an outside file), and the fetch
    /// hold taken before that protection ends. Blobs other artifacts also hold stay.
    pub async fn discard_damaged(&self, root: ContentId) -> NodeResult<()> {
        let fetched = read_root(&self.store, root).await?;
        let mut keep = vec![root.hash()];
        let mut discarded = 0;
        for hash in std::iter::once(fetched.root.manifest).chain(fetched.root.files) {
            if self.meta.is_damaged(hash)? {
                self.meta.set_damaged(hash, false)?;
                discarded += 1;
            } else if self.check_references(hash).is_err() {
                self.meta.remove_references(hash)?;
                discarded += 1;
            } else {
                keep.push(hash);
            }
        }
        let protection = self.store.protect_blobs(&keep).await?;
        self.store.release_artifact(root).await?;
        self.store.set_pinned(root, false).await?;
        self.store.release_fetch(root).await?;
        self.meta.flush().await?;
        tracing::info!(%root, discarded, "discarding damaged blobs to fetch them again");
        self.store.collect_garbage().await?;
        self.store.hold_fetch(root).await?;
        drop(protection);
        Ok(())
    }

    /// Records that the user read `root` now (an export, a gateway download), which
    /// keeps it from eviction longer. Failing to is logged, never fatal.
    pub fn note_used(&self, root: ContentId) {
        if let Err(e) = self.last_used.touch(root, self.clock.now_millis()) {
            tracing::warn!(%root, error = %e, "cannot record that an artifact was used");
        }
    }

    /// The node's status.
    pub async fn status(&self) -> NodeResult<StatusResponse> {
        let store_bytes = self.store.stored_bytes().await?.values().sum();
        Ok(StatusResponse {
            node_id: self.node_id.clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            data_dir: self.data_dir.root().display().to_string(),
            store_bytes,
            temp_bytes: self.store.temp_bytes()?,
            artifacts: self.meta.artifacts()?.len() as u64,
            pins: self.meta.pin_count() as u64,
            uptime_secs: self.started.elapsed().as_secs(),
            network: None,
            fetches: Vec::new(),
            storage_used: Some(self.storage_used().await?),
            max_storage: self.max_storage(),
        })
    }

    /// The held artifact `reference` names (id, id prefix, name or name@revision).
    pub fn resolve(&self, reference: &str) -> NodeResult<ArtifactRecord> {
        resolve_local(reference, &self.meta.artifacts()?)
    }

    /// The manifest of a held artifact, read from the store.
    pub async fn manifest(&self, record: &ArtifactRecord) -> NodeResult<Manifest> {
        let bytes = self
            .store
            .read_small(record.manifest, MAX_MANIFEST_BYTES)
            .await?;
        Ok(Manifest::decode(&bytes)?)
    }

    async fn summary(&self, record: &ArtifactRecord) -> NodeResult<ArtifactSummary> {
        match self.manifest(record).await {
            Ok(manifest) => self.summary_with(record, &manifest).await,
            // Its manifest is gone (a damaged copy discarded for repair): partial.
            Err(_) => self.summary_of(record, Completeness::Partial),
        }
    }

    async fn summary_with(
        &self,
        record: &ArtifactRecord,
        manifest: &Manifest,
    ) -> NodeResult<ArtifactSummary> {
        let mut state = Completeness::Complete;
        for file in &manifest.files {
            if record.referenced && self.check_references(file.hash).is_err() {
                state = Completeness::Modified;
                break;
            }
            if self.meta.is_damaged(file.hash)? {
                state = Completeness::Damaged;
            } else if state == Completeness::Complete && self.store.size(file.hash).await?.is_none()
            {
                state = Completeness::Partial;
            }
        }
        self.summary_of(record, state)
    }

    fn summary_of(
        &self,
        record: &ArtifactRecord,
        state: Completeness,
    ) -> NodeResult<ArtifactSummary> {
        Ok(ArtifactSummary {
            id: record.root,
            name: record.name.clone(),
            kind: record.kind,
            revision: record.revision.clone(),
            size: record.size,
            files: record.files,
            pinned: self.meta.pin_record(record.root)?.is_some(),
            state,
            referenced: record.referenced,
            added_at: record.added_at,
            origin: self.meta.origin(record.root)?,
            announced: self.meta.next_announce(record.root)? > 0,
            denied: Vec::new(),
        })
    }

    /// Fails if `hash` is referenced from a file that changed since import.
    fn check_references(&self, hash: BlobHash) -> NodeResult<()> {
        for reference in self.meta.references(hash)? {
            check_unchanged(&reference)?;
        }
        Ok(())
    }
}
