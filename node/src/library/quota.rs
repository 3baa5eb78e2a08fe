//! The storage quota: keeps the bytes the blob store holds under `max_storage` by
//! evicting unpinned artifacts, least recently used first, as an add or a fetch stores
//! new bytes, and refuses with the numbers what cannot fit even then.
//!
//! Owns the room reservations of operations under way. Invariants:
//! - Planning is serialized (one make-room at a time), and an operation's reservation
//!   stands from its plan until it drops the returned [`Room`], so two operations never
//!   count the same free bytes.
//! - Nothing is evicted on a claim. A fetch's manifest only claims sizes; its room is
//!   the free space at its start, and grows by eviction only as bytes that verified
//!   need it ([`Room::cover`]). A claim that could not fit even after evicting all that
//!   may go is refused at once, evicting nothing. An add's bytes are the user's own
//!   files, so it makes its whole room up front.
//! - Never evicted: pinned artifacts, those a fetch job (running or saved) or a
//!   reservation is filling, the operation's own target, and blobs another kept artifact
//!   still holds (eviction goes through the library's removal path, which frees only
//!   blobs nothing else holds).
//! - What counts: complete blobs in the store, less those referenced in place (their
//!   bytes live in the user's files), plus what reservations have room for and have yet
//!   to store.
//! - An evicted artifact stops being announced: its schedule is dropped with it, and its
//!   root is sent to whoever took [`Library::evictions`] (the node, which withdraws it
//!   from the DHT).
//!
//! Called by the fetch path (after the root and manifest arrive, then as verified bytes
//! arrive) and by `add`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use seedbank_protocol::{BlobHash, ContentId, FileEntry};
use tokio::sync::mpsc;

use super::eviction_plan::{plan_eviction, Demand, EvictionPlan, Holding, Shortfall};
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

    /// Bytes reservations (all, or all but `except`) have room for and have yet to
    /// store, each blob counted once, and the roots they keep from eviction. `sizes`:
    /// the complete blobs, already counted as stored.
    fn reserved(
        &self,
        sizes: &HashMap<BlobHash, u64>,
        except: Option<u64>,
    ) -> (u64, HashSet<ContentId>) {
        let reservations = self.reservations();
        let mut counted_blobs = HashSet::new();
        let mut reserved = 0u64;
        let mut kept = HashSet::new();
        for (id, reservation) in reservations.iter() {
            if Some(*id) == except {
                continue;
            }
            kept.extend(reservation.root);
            let mut complete = 0u64;
            let mut to_store = 0u64;
            for (hash, size) in &reservation.blobs {
                if sizes.contains_key(hash) {
                    complete = complete.saturating_add(*size);
                } else if counted_blobs.insert(*hash) {
                    to_store = to_store.saturating_add(*size);
                }
            }
            let room_left = reservation.covered.saturating_sub(complete);
            reserved = reserved
                .saturating_add(reservation.bytes)
                .saturating_add(to_store.min(room_left));
        }
        (reserved, kept)
    }

    /// Blobs some reservation will store.
    fn reserved_blobs(&self, sizes: &HashMap<BlobHash, u64>) -> HashSet<BlobHash> {
        self.reservations()
            .values()
            .flat_map(|r| r.blobs.keys())
            .filter(|hash| !sizes.contains_key(hash))
            .copied()
            .collect()
    }
}

/// Bytes an operation under way will store.
#[derive(Debug, Clone)]
struct Reservation {
    /// The artifact it fills, kept from eviction.
    root: Option<ContentId>,
    /// Blobs it will complete, with their sizes (as claimed).
    blobs: HashMap<BlobHash, u64>,
    /// Bytes whose blobs are not known yet (an add before its files are hashed).
    bytes: u64,
    /// How many of the blobs' bytes have room: free when it began, or freed for bytes
    /// that verified. `u64::MAX`: all of them.
    covered: u64,
}

impl Default for Reservation {
    fn default() -> Self {
        Self {
            root: None,
            blobs: HashMap::new(),
            bytes: 0,
            covered: u64::MAX,
        }
    }
}

impl Reservation {
    fn claimed(&self) -> u64 {
        self.blobs.values().sum()
    }
}

/// Room reserved for an operation; the reservation ends when this is dropped, by which
/// time what it stored is counted as stored.
#[derive(Debug)]
pub struct Room {
    library: Library,
    id: u64,
}

impl Drop for Room {
    fn drop(&mut self) {
        self.library.quota.reservations().remove(&self.id);
    }
}

impl Room {
    /// Grows the room to hold `stored` bytes of the claim (bytes that verified, and
    /// those stored before the operation began), evicting least recently used
    /// artifacts if the free space is not enough; fails with the numbers when nothing
    /// more can go.
    pub async fn cover(&self, stored: u64) -> NodeResult<()> {
        let quota = &self.library.quota;
        let wanted = |quota: &Quota| {
            let reservations = quota.reservations();
            let reservation = reservations.get(&self.id)?;
            let claimed = reservation.claimed();
            let target = stored.min(claimed);
            (target > reservation.covered).then_some((
                target,
                claimed,
                reservation.covered,
                reservation.root,
            ))
        };
        if quota.max.is_none() || wanted(quota).is_none() {
            return Ok(());
        }
        let _planning = quota.planning.lock().await;
        let Some((target, claimed, covered, root)) = wanted(quota) else {
            return Ok(());
        };
        let set_covered = |covered: u64| {
            if let Some(reservation) = quota.reservations().get_mut(&self.id) {
                reservation.covered = covered;
            }
        };
        // Counted with its grown room (bytes already stored count as stored), what is
        // stored and promised must fit: evict what must go for that.
        set_covered(target);
        if let Some(max) = quota.max {
            let sizes = self.library.counted_sizes().await?;
            let (all, kept) = quota.reserved(&sizes, None);
            let (reserved, _) = quota.reserved(&sizes, Some(self.id));
            let demand = Demand {
                needed: all - reserved,
                reserved,
                max,
            };
            let what = root.map_or_else(|| "a fetch".to_owned(), |r| format!("fetching {r}"));
            let freed = match self.library.fit(&kept, demand, &sizes, &what).await {
                Ok(freed) => freed,
                Err(e) => {
                    set_covered(covered);
                    return Err(e);
                }
            };
            // What is free now (what eviction freed beyond the need included) is room
            // too: the next ticks need no new plan until the bytes fill it.
            let used: u64 = sizes.values().sum();
            let spare = max.saturating_sub(used.saturating_sub(freed).saturating_add(all));
            set_covered(target.saturating_add(spare).min(claimed));
        }
        Ok(())
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

    /// Reserves room for fetching `files` of `root`: the free space under the quota,
    /// without evicting (grow it with [`Room::cover`] as bytes verify). Fails with the
    /// numbers, evicting nothing, if the files could not fit even after evicting all
    /// that may go. Hold the returned room until the fetch is recorded.
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
            ..Reservation::default()
        };
        self.make_room(reservation, false, &format!("fetching {root}"))
            .await
    }

    /// Makes room for an add that stores `bytes`, evicting if need be.
    pub(super) async fn make_room_to_add(&self, bytes: u64, what: &str) -> NodeResult<Room> {
        let reservation = Reservation {
            bytes,
            ..Reservation::default()
        };
        self.make_room(reservation, true, &format!("adding {what}"))
            .await
    }

    /// Reserves `wanted`: all of it, evicting for it when `evict`; else what is free
    /// now, after checking the rest could be made room for.
    async fn make_room(
        &self,
        mut wanted: Reservation,
        evict: bool,
        what: &str,
    ) -> NodeResult<Room> {
        let _planning = self.quota.planning.lock().await;
        if let Some(max) = self.quota.max {
            let sizes = self.counted_sizes().await?;
            // A blob another operation is already bringing is counted once, as theirs.
            let theirs = self.quota.reserved_blobs(&sizes);
            wanted.blobs.retain(|hash, _| !theirs.contains(hash));
            let (reserved, mut kept) = self.quota.reserved(&sizes, None);
            kept.extend(wanted.root);
            let needed = wanted.bytes.saturating_add(wanted.claimed());
            let demand = Demand {
                needed,
                reserved,
                max,
            };
            if evict {
                self.fit(&kept, demand, &sizes, what).await?;
            } else {
                let used: u64 = sizes.values().sum();
                let free = max.saturating_sub(used.saturating_add(reserved));
                if needed > free {
                    self.check_fits(&kept, demand, &sizes, what).await?;
                    wanted.covered = free;
                }
            }
        }
        let id = self.quota.next_id.fetch_add(1, Ordering::Relaxed);
        self.quota.reservations().insert(id, wanted);
        Ok(Room {
            library: self.clone(),
            id,
        })
    }

    /// Fails with the numbers if `demand` could not fit even after evicting all that
    /// may go; evicts nothing.
    async fn check_fits(
        &self,
        kept: &HashSet<ContentId>,
        demand: Demand,
        sizes: &HashMap<BlobHash, u64>,
        what: &str,
    ) -> NodeResult<()> {
        self.plan(kept, demand, sizes, what).await.map(|_| ())
    }

    /// Evicts what must go for `demand` to fit, never one of `kept`, or fails with the
    /// numbers. Returns the bytes freed.
    async fn fit(
        &self,
        kept: &HashSet<ContentId>,
        demand: Demand,
        sizes: &HashMap<BlobHash, u64>,
        what: &str,
    ) -> NodeResult<u64> {
        let (plan, holdings) = self.plan(kept, demand, sizes, what).await?;
        for (root, freed) in &plan.evict {
            let last_used_ms = holdings
                .iter()
                .find(|h| h.root == *root)
                .map_or(0, |h| h.last_used);
            tracing::info!(%root, bytes = freed, last_used_ms, for_what = what, "evicting the least recently used artifact to make room");
        }
        let roots: Vec<ContentId> = plan.evict.iter().map(|(root, _)| *root).collect();
        self.evict(&roots).await?;
        Ok(plan.evict.iter().map(|(_, freed)| freed).sum())
    }

    /// The evictions that let `demand` fit, with the holdings they were chosen from, or
    /// the error with the numbers.
    async fn plan(
        &self,
        kept: &HashSet<ContentId>,
        demand: Demand,
        sizes: &HashMap<BlobHash, u64>,
        what: &str,
    ) -> NodeResult<(EvictionPlan, Vec<Holding>)> {
        let holdings = self.holdings(kept).await?;
        let plan = plan_eviction(&holdings, sizes, demand)
            .map_err(|shortfall| over_quota(what, demand, shortfall))?;
        Ok((plan, holdings))
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

/// The error for `demand` that cannot fit, with the numbers.
fn over_quota(what: &str, demand: Demand, Shortfall { held }: Shortfall) -> NodeError {
    NodeError::OverQuota(format!(
        "{what} needs {} more but max_storage is {} and {} is held by pins, fetches under \
         way and what cannot be evicted; raise max_storage or unpin something",
        human(demand.needed),
        human(demand.max),
        human(held)
    ))
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
