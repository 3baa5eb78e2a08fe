//! The storage quota: keeps the bytes the blob store holds under `max_storage` by
//! evicting unpinned artifacts, least recently used first, before a fetch or an add
//! stores new bytes, and refuses with the numbers what cannot fit even then.
//!
//! Owns the room reservations of operations under way. Invariants:
//! - Planning is serialized (one make-room at a time), and an operation's reservation
//!   stands from its plan until it drops the returned [`Room`], so two fetches never
//!   count the same free bytes.
//! - Never evicted: pinned artifacts, those a fetch job (running or saved) or a
//!   reservation is filling, the operation's own target, and blobs another kept artifact
//!   still holds (eviction goes through the library's removal path, which frees only
//!   blobs nothing else holds).
//! - What counts: complete blobs in the store, less those referenced in place (their
//!   bytes live in the user's files), plus what reservations have yet to store.
//! - An evicted artifact stops being announced: its schedule is dropped with it, and its
//!   root is sent to whoever took [`Library::evictions`] (the node, which withdraws it
//!   from the DHT).
//!
//! Called by the node's fetch path (after the root and manifest arrive, before any file
//! byte) and by `add`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use seedbank_protocol::{BlobHash, ContentId, FileEntry};
use tokio::sync::mpsc;

use super::eviction_plan::{plan_eviction, Demand, Holding, Shortfall};
use super::Library;
use crate::error::{NodeError, NodeResult};

/// Evicted roots waiting for the node to withdraw them. Evictions come a few at a time,
/// and the node's task drains them at once; a full queue only makes an eviction wait.
const EVICTION_NOTICES: usize = 256;

/// The quota's state, shared by every clone of the library.
#[derive(Debug, Default)]
pub(super) struct Quota {
    /// `max_storage` in bytes; `None`: no limit.
    max: Option<u64>,
    /// Held while a plan is made and carried out.
    planning: tokio::sync::Mutex<()>,
    reservations: Mutex<HashMap<u64, Reservation>>,
    next_id: AtomicU64,
    evicted: Mutex<Option<mpsc::Sender<ContentId>>>,
}

impl Quota {
    /// A quota of `max` bytes (`None`: no limit).
    pub(super) fn new(max: Option<u64>) -> Self {
        Self {
            max,
            ..Self::default()
        }
    }

    fn reservations(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Reservation>> {
        self.reservations.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Bytes an operation under way will store.
#[derive(Debug, Clone, Default)]
struct Reservation {
    /// The artifact it fills, kept from eviction.
    root: Option<ContentId>,
    /// Blobs it will complete, with their sizes.
    blobs: HashMap<BlobHash, u64>,
    /// Bytes whose blobs are not known yet (an add before its files are hashed).
    bytes: u64,
}

/// Room reserved for an operation; the reservation ends when this is dropped, by which
/// time what it stored is counted as stored.
#[derive(Debug)]
pub struct Room {
    quota: Arc<Quota>,
    id: u64,
}

impl Drop for Room {
    fn drop(&mut self) {
        self.quota.reservations().remove(&self.id);
    }
}

impl Library {
    /// This library with a storage limit of `max` bytes (`None`: none).
    pub fn with_max_storage(mut self, max: Option<u64>) -> Self {
        self.quota = Arc::new(Quota::new(max));
        self
    }

    /// `max_storage` in bytes, if set.
    pub fn max_storage(&self) -> Option<u64> {
        self.quota.max
    }

    /// The roots evicted from now on, for withdrawing them from the network. One taker:
    /// a second call replaces the first.
    pub fn evictions(&self) -> mpsc::Receiver<ContentId> {
        let (sender, receiver) = mpsc::channel(EVICTION_NOTICES);
        *self.quota.evicted.lock().unwrap_or_else(|e| e.into_inner()) = Some(sender);
        receiver
    }

    /// Bytes counted against `max_storage`: complete blobs not referenced in place.
    pub async fn storage_used(&self) -> NodeResult<u64> {
        Ok(self.counted_sizes().await?.values().sum())
    }

    /// Makes room for fetching `files` of `root`, evicting if need be; fails with the
    /// numbers if they cannot fit. Hold the returned room until the fetch is recorded.
    pub async fn make_room_to_fetch(
        &self,
        root: ContentId,
        files: &[&FileEntry],
    ) -> NodeResult<Room> {
        let mut blobs = HashMap::new();
        for file in files {
            if file.size > 0 && self.store.size(file.hash).await?.is_none() {
                blobs.insert(file.hash, file.size);
            }
        }
        let reservation = Reservation {
            root: Some(root),
            blobs,
            bytes: 0,
        };
        self.make_room(reservation, &format!("fetching {root}"))
            .await
    }

    /// Makes room for an add that stores `bytes`.
    pub(super) async fn make_room_to_add(&self, bytes: u64, what: &str) -> NodeResult<Room> {
        let reservation = Reservation {
            bytes,
            ..Reservation::default()
        };
        self.make_room(reservation, &format!("adding {what}")).await
    }

    async fn make_room(&self, mut wanted: Reservation, what: &str) -> NodeResult<Room> {
        let _planning = self.quota.planning.lock().await;
        if let Some(max) = self.quota.max {
            let sizes = self.counted_sizes().await?;
            let others: Vec<Reservation> = self.quota.reservations().values().cloned().collect();
            let mut reserved_blobs = HashMap::new();
            let mut reserved = 0u64;
            for other in &others {
                reserved = reserved.saturating_add(other.bytes);
                for (hash, size) in &other.blobs {
                    if !sizes.contains_key(hash) {
                        reserved_blobs.insert(*hash, *size);
                    }
                }
            }
            reserved = reserved.saturating_add(reserved_blobs.values().sum());
            // A blob another operation is already bringing is counted once, as theirs.
            wanted
                .blobs
                .retain(|hash, _| !reserved_blobs.contains_key(hash));
            let needed = wanted
                .bytes
                .saturating_add(wanted.blobs.values().sum::<u64>());
            if needed > 0 {
                let kept: HashSet<ContentId> = others
                    .iter()
                    .filter_map(|r| r.root)
                    .chain(wanted.root)
                    .collect();
                let demand = Demand {
                    needed,
                    reserved,
                    max,
                };
                self.fit(&kept, demand, &sizes, what).await?;
            }
        }
        let id = self.quota.next_id.fetch_add(1, Ordering::Relaxed);
        self.quota.reservations().insert(id, wanted);
        Ok(Room {
            quota: self.quota.clone(),
            id,
        })
    }

    /// Evicts what must go for `demand` to fit, never one of `kept`, or fails with the
    /// numbers.
    async fn fit(
        &self,
        kept: &HashSet<ContentId>,
        demand: Demand,
        sizes: &HashMap<BlobHash, u64>,
        what: &str,
    ) -> NodeResult<()> {
        let holdings = self.holdings(kept).await?;
        let plan = plan_eviction(&holdings, sizes, demand).map_err(|Shortfall { held }| {
            NodeError::OverQuota(format!(
                "{what} needs {} more but max_storage is {} and {} is held by pins, fetches \
                 under way and what cannot be evicted; raise max_storage or unpin something",
                human(demand.needed),
                human(demand.max),
                human(held)
            ))
        })?;
        for (root, freed) in &plan.evict {
            let last_used_ms = holdings
                .iter()
                .find(|h| h.root == *root)
                .map_or(0, |h| h.last_used);
            tracing::info!(%root, bytes = freed, last_used_ms, for_what = what, "evicting the least recently used artifact to make room");
        }
        let roots: Vec<ContentId> = plan.evict.iter().map(|(root, _)| *root).collect();
        self.evict(&roots).await
    }

    /// Every artifact and fetch job with its blobs; evictable unless pinned, fetched, or
    /// in `kept`.
    async fn holdings(&self, kept: &HashSet<ContentId>) -> NodeResult<Vec<Holding>> {
        let jobs: HashSet<ContentId> = self.meta.fetch_jobs()?.iter().map(|j| j.root).collect();
        let mut holdings = Vec::new();
        let mut seen = HashSet::new();
        for record in self.meta.artifacts()? {
            let pinned = self.meta.pin_record(record.root)?.is_some();
            let mut blobs = self.blobs_of(record.root).await;
            blobs.insert(record.manifest);
            holdings.push(Holding {
                root: record.root,
                blobs,
                last_used: self.last_used.get(record.root, record.added_at)?,
                evictable: !pinned && !jobs.contains(&record.root) && !kept.contains(&record.root),
            });
            seen.insert(record.root);
        }
        // Fetches of artifacts not recorded yet hold what has arrived.
        for root in jobs.iter().chain(kept).filter(|root| !seen.contains(root)) {
            holdings.push(Holding {
                root: *root,
                blobs: self.blobs_of(*root).await,
                last_used: u64::MAX,
                evictable: false,
            });
        }
        Ok(holdings)
    }

    /// Removes `roots` for good and tells the node to withdraw them.
    async fn evict(&self, roots: &[ContentId]) -> NodeResult<()> {
        if roots.is_empty() {
            return Ok(());
        }
        let mut records = Vec::with_capacity(roots.len());
        for root in roots {
            if let Some(record) = self.meta.artifact(*root)? {
                records.push(record);
            }
        }
        self.remove_records(&records).await?;
        let notices = self
            .quota
            .evicted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(notices) = notices {
            for root in roots {
                // Closed: the node is stopping, and withdraws nothing any more.
                let _ = notices.send(*root).await;
            }
        }
        Ok(())
    }

    /// Sizes of the complete blobs that count against the quota.
    async fn counted_sizes(&self) -> NodeResult<HashMap<BlobHash, u64>> {
        let mut sizes = self.store.blob_sizes().await?;
        let mut in_place = Vec::new();
        for hash in sizes.keys() {
            if !self.meta.references(*hash)?.is_empty() {
                in_place.push(*hash);
            }
        }
        for hash in in_place {
            sizes.remove(&hash);
        }
        Ok(sizes)
    }
}

/// Bytes for people: `1.5 GiB`, `300 KiB`, `12 B`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_for_people() {
        assert_eq!(human(12), "12 B");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(human(1536 << 20), "1.5 GiB");
    }
}
