//! Fetching the files of an artifact from several peers at once: the driver.
//!
//! The [`plan::Planner`] cuts what the store is missing into segments, a window at a
//! time; the [`scheduler::Scheduler`] decides who fetches what and judges every request;
//! the [`workers`] do the requests. This driver wires them together: it plans more when
//! the queue runs low, looks for new peers through [`ContentDiscovery`] while the fetch
//! runs (first every second, then every [`PROVIDER_REFRESH`]), reports progress, and
//! ends the fetch when everything is stored, when nothing verified has arrived for
//! [`STALL_TIMEOUT`], when no peer is left, or when it is cancelled.

mod peer_state;
pub mod plan;
pub mod revival;
pub mod scheduler;
pub mod workers;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use iroh_blobs::protocol::ChunkRanges;
use libp2p::PeerId;
use seedbank_protocol::api::{FileProgress, STALLED};
use seedbank_protocol::{ContentId, FileEntry};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::plan::{missing_bytes, PlannedBlob, Planner, PLAN_WINDOW};
use self::revival::{Link, Revival};
use self::scheduler::{Revived, Scheduler};
use self::workers::{local_ranges, Crew, Shared, PLAN_LOW_WATER};
use super::client::BlobClient;
use crate::discovery::{candidates, Candidate, ContentDiscovery};
use crate::error::{NodeError, NodeResult};
use crate::library::quota::Room;
use crate::library::store::to_iroh;
use crate::peers::PeerBook;
use crate::progress::ProgressReporter;

/// How often a running fetch looks for new peers, after the first few seconds.
pub const PROVIDER_REFRESH: Duration = Duration::from_secs(3);
/// How many times a fetch looks for new peers a second apart before slowing down to
/// [`PROVIDER_REFRESH`]: fetchers that start together announce themselves within moments.
pub const EARLY_REFRESHES: u64 = 5;
/// A fetch that stores no verified byte for this long gives up. Longer than the time a
/// failing peer is given to come back (see the scheduler's retry back-off).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(45);
/// How often progress is reported and the stall timer checked.
const REPORT_INTERVAL: Duration = Duration::from_millis(100);
/// After this long without a verified byte, progress says the fetch is stalled and
/// waiting for peers instead of naming the peers serving it.
const STALLED_AFTER: Duration = Duration::from_secs(3);

/// What a transfer did.
#[derive(Debug, Clone, Default)]
pub struct TransferOutcome {
    /// Bytes missing locally when it started.
    pub bytes_missing_at_start: u64,
    /// Verified payload bytes stored.
    pub bytes_downloaded: u64,
    /// Bytes received per peer.
    pub per_peer: HashMap<PeerId, u64>,
    /// Every peer the fetch knew of.
    pub peers: Vec<PeerId>,
    /// Peers banned for bad data.
    pub banned: HashSet<PeerId>,
    /// Peers dropped after failing too often.
    pub dropped: HashSet<PeerId>,
}

/// What one transfer works on.
pub struct Transfer<'a> {
    /// Requests to peers, and the store the data goes into.
    pub client: &'a BlobClient,
    /// Where new peers come from while the fetch runs.
    pub discovery: &'a dyn ContentDiscovery,
    /// The artifact, to look for more peers of (`None`: only `candidates`).
    pub root: Option<ContentId>,
    /// Peers banned before the transfer began (they sent a bad manifest).
    pub banned: Vec<PeerId>,
    /// Ends the transfer early.
    pub cancel: CancellationToken,
    /// Set while the transfer is paused because the disk is nearly full.
    pub paused: Arc<AtomicBool>,
    /// What this node remembers of peers: banned ones are left out, the best asked first.
    pub peers: PeerBook,
    /// Fetch segments in file order (for a reader streaming the files) rather than in
    /// this node's own order (which spreads fetchers of one artifact over its parts).
    pub in_order: bool,
    /// The room the storage quota gave the files, grown as bytes verify (`None`: no
    /// quota to ask).
    pub room: Option<&'a Room>,
}

impl Transfer<'_> {
    /// Fetches the missing parts of `files` from `candidates` and whoever discovery
    /// finds, and of the files `wider` adds while it runs (the whole selection each
    /// time; those already wanted are skipped). Memory grows with the work in flight,
    /// not with the size of the files.
    pub async fn run(
        &self,
        files: &[&FileEntry],
        wider: Option<watch::Receiver<Vec<FileEntry>>>,
        candidates: Vec<Candidate>,
        progress: &mut ProgressReporter,
    ) -> NodeResult<TransferOutcome> {
        let span = tracing::info_span!("transfer", root = ?self.root.map(|r| r.to_string()), files = files.len());
        self.run_inner(files, wider, candidates, progress)
            .instrument(span)
            .await
    }

    async fn run_inner(
        &self,
        files: &[&FileEntry],
        mut wider: Option<watch::Receiver<Vec<FileEntry>>>,
        candidates: Vec<Candidate>,
        progress: &mut ProgressReporter,
    ) -> NodeResult<TransferOutcome> {
        let mut planner = Planner::new(std::iter::empty());
        if self.in_order {
            planner = planner.striped();
        }
        let mut wanted = Wanted::default();
        wanted.add(self.client, &mut planner, files).await?;
        progress.set_total(wanted.missing);
        let mut scheduler = Scheduler::new(Some(self.client.net.local_peer()));
        scheduler.set_in_order(self.in_order);
        for peer in &self.banned {
            scheduler.ban(*peer);
        }
        let shared = Arc::new(Shared::new(scheduler, self.peers.clone()));
        self.plan_more(&mut planner, &shared).await?;
        let mut crew = Crew::default();
        crew.add(self.client, &shared, candidates);

        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        refresh.tick().await;
        let mut refreshes = 0u64;
        let mut lookup: Option<BoxFuture<'_, Vec<Candidate>>> = None;
        let mut report = tokio::time::interval(REPORT_INTERVAL);
        let mut stall = StallTimer::new(STALL_TIMEOUT, Instant::now());
        let mut revival = Revival::default();
        let mut awaiting_return = false;
        let ending = loop {
            // Files added while the last segments were in flight are taken on before
            // the transfer could end without them.
            if let Some(files) = wider.as_mut().filter(|w| w.has_changed().unwrap_or(false)) {
                let files = files.borrow_and_update().clone();
                self.take_on(
                    &files,
                    &mut wanted,
                    &mut planner,
                    &shared,
                    &mut crew,
                    progress,
                )
                .await?;
            }
            if shared.lock().all_done() {
                break None;
            }
            if shared.lock().local_failure().is_some() {
                break None;
            }
            if !crew.workers.is_empty() {
                awaiting_return = false;
            } else if lookup.is_none() && !awaiting_return {
                // Everyone known gave up: one last look for others before failing,
                // unless a dropped peer is still listed and may come back.
                let found = tokio::select! {
                    () = self.cancel.cancelled() => break Some(Ending::Cancelled),
                    found = self.look_for_peers() => found,
                };
                revival.note_listed(found.iter().map(|c| c.peer));
                if crew.add(self.client, &shared, found) == 0 {
                    let dropped = shared.lock().dropped_revivable();
                    if !revival.awaits_any(&dropped, |peer| link_to(&self.client.net, peer)) {
                        break None;
                    }
                    awaiting_return = true;
                }
            }
            tokio::select! {
                () = self.cancel.cancelled() => break Some(Ending::Cancelled),
                _ = report.tick() => {
                    let disk_full = !self.client.store.has_headroom();
                    if disk_full != self.paused.swap(disk_full, Ordering::Relaxed) {
                        tracing::info!(paused = disk_full, "disk space: pausing or resuming the fetch");
                        shared.lock().set_paused(disk_full);
                        shared.changed.notify_waiters();
                    }
                    let (done, serving, known, under_way) = {
                        let state = shared.lock();
                        let under_way = files_under_way(&wanted.files, state.done_by_blob());
                        (state.done_bytes(), state.serving(), state.peers().count(), under_way)
                    };
                    if let Some(room) = self.room {
                        if let Err(e) = room.cover(wanted.stored_before.saturating_add(done)).await {
                            crew.workers.abort_all();
                            return Err(e);
                        }
                    }
                    if disk_full {
                        progress.report(done, "paused: the disk is full; free some space to resume");
                        stall.hold(Instant::now());
                        continue;
                    }
                    let now = Instant::now();
                    let arrived = shared.arrived.load(Ordering::Relaxed);
                    if stall.stalled(arrived, now) {
                        break Some(Ending::Stalled);
                    }
                    progress.report_files(done, &stall.describe(serving, known, arrived, now), under_way);
                    self.revive_returning(&mut revival, &shared, &mut crew, now);
                }
                () = shared.refill.notified() => self.plan_more(&mut planner, &shared).await?,
                Ok(()) = async { wider.as_mut().expect("guarded by is_some").changed().await }, if wider.is_some() => {
                    let files = wider.as_mut().map(|w| w.borrow_and_update().clone()).unwrap_or_default();
                    self.take_on(&files, &mut wanted, &mut planner, &shared, &mut crew, progress).await?;
                }
                _ = refresh.tick(), if self.root.is_some() && lookup.is_none() => {
                    refreshes += 1;
                    if refreshes <= EARLY_REFRESHES
                        || refreshes.is_multiple_of(PROVIDER_REFRESH.as_secs().max(1))
                    {
                        lookup = Some(Box::pin(self.look_for_peers()));
                    }
                }
                found = async { lookup.as_mut().expect("guarded by is_some").await }, if lookup.is_some() => {
                    lookup = None;
                    revival.note_listed(found.iter().map(|c| c.peer));
                    crew.add(self.client, &shared, found);
                }
                Some(_) = crew.workers.join_next() => crew.fill(self.client, &shared),
            }
        };
        crew.workers.abort_all();
        let state = shared.lock();
        let outcome = TransferOutcome {
            bytes_missing_at_start: wanted.missing,
            bytes_downloaded: state.done_bytes(),
            per_peer: state.per_peer().clone(),
            peers: state.peers().collect(),
            banned: state.banned().clone(),
            dropped: state.dropped().clone(),
        };
        if state.all_done() {
            return Ok(outcome);
        }
        Err(self.failure(&state, ending))
    }

    /// Adds `files` not wanted yet to the plan, and (striped plans: a reader waits for
    /// them) queues their first segments ahead of the rest, on extra streams.
    async fn take_on(
        &self,
        files: &[FileEntry],
        wanted: &mut Wanted,
        planner: &mut Planner,
        shared: &Arc<Shared>,
        crew: &mut Crew,
        progress: &mut ProgressReporter,
    ) -> NodeResult<()> {
        let files: Vec<&FileEntry> = files.iter().collect();
        let added = wanted.add(self.client, planner, &files).await?;
        if added.is_empty() {
            return Ok(());
        }
        tracing::debug!(blobs = added.len(), "files added to the running transfer");
        progress.set_total(wanted.missing);
        let first: Vec<_> = added
            .iter()
            .filter_map(|(blob, present)| planner.next_segment_of(blob.hash, present))
            .collect();
        let hurry = !first.is_empty();
        {
            let mut state = shared.lock();
            state.set_planning_more();
            state.enqueue_first(first, Instant::now());
        }
        self.plan_more(planner, shared).await?;
        if hurry {
            crew.hurry(self.client, shared);
        }
        Ok(())
    }

    /// Takes back at once the failing peers that may be back (see [`revival`]).
    fn revive_returning(
        &self,
        revival: &mut Revival,
        shared: &Arc<Shared>,
        crew: &mut Crew,
        now: Instant,
    ) {
        let revived: Vec<(PeerId, Revived)> = {
            let mut state = shared.lock();
            let failing = state.failing();
            if failing.is_empty() {
                return;
            }
            let dropped = state.dropped_revivable();
            let net = &self.client.net;
            revival
                .due(&failing, &dropped, |peer| link_to(net, peer), now)
                .into_iter()
                .filter_map(|(peer, tries)| Some((peer, state.revive(peer, tries)?)))
                .collect()
        };
        if revived.is_empty() {
            return;
        }
        tracing::info!(
            peers = revived.len(),
            "failing peers may be back: trying them again at once"
        );
        crew.revive(
            self.client,
            shared,
            revived
                .into_iter()
                .filter(|(_, revived)| revived.was_dropped)
                .map(|(peer, revived)| (peer, revived.complete)),
        );
        // Workers waiting out a back-off look again now.
        shared.changed.notify_waiters();
    }

    /// Complete and partial peers discovery lists, and connected peers as partial ones.
    async fn look_for_peers(&self) -> Vec<Candidate> {
        candidates(self.discovery, self.root).await
    }

    /// Plans segments until the queue holds [`PLAN_LOW_WATER`] or more, or all are planned.
    async fn plan_more(&self, planner: &mut Planner, shared: &Shared) -> NodeResult<()> {
        loop {
            let queued = shared.lock().queued();
            let Some(blob) = planner.current().filter(|_| queued < PLAN_LOW_WATER) else {
                break;
            };
            let present = local_ranges(self.client, blob.hash).await.ok_or_else(|| {
                NodeError::Store(format!("reading what is stored of blob {}", blob.hash))
            })?;
            let items = planner.next_segments(&present, PLAN_WINDOW - queued);
            shared.lock().enqueue(items, Instant::now());
        }
        if planner.is_done() {
            shared.lock().set_planned_all();
        }
        shared.changed.notify_waiters();
        Ok(())
    }

    /// Why an unfinished transfer ended, as the error a user sees.
    fn failure(&self, state: &Scheduler, ending: Option<Ending>) -> NodeError {
        let left = state.segments_left();
        let known = state.peers().count();
        if let Some(local) = state.local_failure() {
            let store = std::path::Path::new("the blob store");
            if local.storage_full {
                return NodeError::disk_full_in(store);
            }
            return NodeError::Store(format!("fetching: {}", local.reason));
        }
        match ending {
            Some(Ending::Cancelled) => NodeError::Cancelled(
                "the fetch was cancelled; verified bytes are kept, fetch again to resume".into(),
            ),
            Some(Ending::Stalled) => NodeError::TimedOut(format!(
                "nothing arrived for {} s from {known} peers; {left} segments missing (fetch again to resume){}",
                STALL_TIMEOUT.as_secs(),
                state
                    .last_failure()
                    .map_or(String::new(), |reason| format!("; last failure: {reason}"))
            )),
            None if known > 0 && state.banned().len() == known => NodeError::PeerMisbehaved(format!(
                "every peer that offered the data sent bytes failing verification ({})",
                list(state.banned())
            )),
            None => NodeError::Unreachable(format!(
                "{left} segments could not be fetched from {known} peers{}{}{}",
                if state.dropped().is_empty() {
                    String::new()
                } else {
                    format!(" (failed too often: {})", list(state.dropped()))
                },
                if state.banned().is_empty() {
                    String::new()
                } else {
                    format!(" (banned for bad data: {})", list(state.banned()))
                },
                state
                    .last_failure()
                    .map_or(String::new(), |reason| format!("; last failure: {reason}"))
            )),
        }
    }
}

/// Notices a fetch that receives no verified byte for a while. It counts this fetch's
/// verified bytes only (as they arrive, so a slow link's long requests count), so a live
/// fetch beside it cannot keep a dead one going.
#[derive(Debug)]
struct StallTimer {
    limit: Duration,
    last_done: u64,
    since: Instant,
}

impl StallTimer {
    fn new(limit: Duration, now: Instant) -> Self {
        Self {
            limit,
            last_done: 0,
            since: now,
        }
    }

    /// Records the verified bytes so far; true once none arrived for the limit.
    fn stalled(&mut self, done: u64, now: Instant) -> bool {
        if done != self.last_done {
            self.last_done = done;
            self.since = now;
        }
        now.duration_since(self.since) >= self.limit
    }

    /// What progress says: who serves, or that the fetch is stalled and for how long.
    fn describe(&self, serving: usize, known: usize, arrived: u64, now: Instant) -> String {
        let peers = if known == 1 { "peer" } else { "peers" };
        let quiet = now.duration_since(self.since);
        if quiet < STALLED_AFTER {
            return format!("from {serving} of {known} {peers}");
        }
        let quiet = quiet.as_secs();
        if arrived == 0 {
            format!("{STALLED}: waiting for peers ({known} known, nothing for {quiet} s)")
        } else {
            format!("{STALLED}: waiting for peers ({known} known, last byte {quiet} s ago)")
        }
    }

    /// Starts the wait afresh (while paused on purpose).
    fn hold(&mut self, now: Instant) {
        self.since = now;
    }
}

/// How `peer` is connected now, as [`revival`] weighs it.
fn link_to(net: &crate::net::NetHandle, peer: &PeerId) -> Link {
    if !net.is_connected(peer) {
        Link::None
    } else if net.relayed_only(peer) {
        Link::Relayed
    } else {
        Link::Direct
    }
}

/// Why the driver stopped before the work was done.
#[derive(Debug, Clone, Copy)]
enum Ending {
    Cancelled,
    Stalled,
}

fn list(peers: &HashSet<PeerId>) -> String {
    let mut peers: Vec<String> = peers.iter().map(ToString::to_string).collect();
    peers.sort();
    peers.join(", ")
}

/// Files of a fetch shown with their own progress at most: the first ones under way.
const MAX_FILES_REPORTED: usize = 8;

/// The files of `wanted` (blob, path, bytes missing at the start) that have started and
/// not finished, with how far each has got.
/// What a transfer fetches: its blobs' missing bytes, and one file per blob for progress.
#[derive(Debug, Default)]
struct Wanted {
    /// One file per missing blob (identical files share one), in the order added.
    files: Vec<(iroh_blobs::Hash, String, u64)>,
    /// Bytes missing when each blob was added.
    missing: u64,
    /// Bytes of the wanted blobs stored before they were added: part of what the room
    /// must hold, as the bytes that verify now are.
    stored_before: u64,
}

impl Wanted {
    /// Adds the blobs of `files` the planner lacks, reading what the store holds of
    /// each. Returns the blobs added, with what the store held of them.
    async fn add(
        &mut self,
        client: &BlobClient,
        planner: &mut Planner,
        files: &[&FileEntry],
    ) -> NodeResult<Vec<(PlannedBlob, ChunkRanges)>> {
        // The first file of each blob names it (identical files share one blob).
        let mut first_path: HashMap<iroh_blobs::Hash, &str> = HashMap::new();
        let added = planner.extend(files.iter().map(|file| {
            let hash = to_iroh(file.hash);
            first_path.entry(hash).or_insert(file.path.as_str());
            PlannedBlob {
                hash,
                size: file.size,
            }
        }));
        let mut read = Vec::with_capacity(added.len());
        for blob in added {
            let present = local_ranges(client, blob.hash).await.ok_or_else(|| {
                NodeError::Store(format!("reading what is stored of blob {}", blob.hash))
            })?;
            let blob_missing = missing_bytes(blob.size, &present);
            if blob_missing > 0 {
                self.missing = self.missing.saturating_add(blob_missing);
                self.stored_before += blob.size - blob_missing;
                if let Some(path) = first_path.get(&blob.hash) {
                    self.files
                        .push((blob.hash, (*path).to_owned(), blob_missing));
                }
            }
            read.push((blob, present));
        }
        Ok(read)
    }
}

fn files_under_way(
    wanted: &[(iroh_blobs::Hash, String, u64)],
    done_by_blob: &HashMap<iroh_blobs::Hash, u64>,
) -> Vec<FileProgress> {
    wanted
        .iter()
        .filter_map(|(hash, path, missing)| {
            let done = *done_by_blob.get(hash)?;
            (done < *missing).then(|| FileProgress {
                path: path.clone(),
                done_bytes: done,
                total_bytes: *missing,
            })
        })
        .take(MAX_FILES_REPORTED)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fetch_stalls_only_after_the_limit_without_a_verified_byte() {
        let start = Instant::now();
        let limit = Duration::from_secs(45);
        let mut timer = StallTimer::new(limit, start);
        assert!(!timer.stalled(0, start + limit - Duration::from_millis(1)));
        assert!(
            !timer.stalled(10, start + limit),
            "bytes arrived: the wait starts again"
        );
        assert!(!timer.stalled(10, start + 2 * limit - Duration::from_millis(1)));
        timer.hold(start + 2 * limit - Duration::from_millis(1));
        assert!(
            !timer.stalled(10, start + 2 * limit),
            "a pause is not a stall"
        );
        assert!(timer.stalled(10, start + 3 * limit));
    }

    #[test]
    fn files_under_way_are_those_started_and_unfinished() {
        let (a, b, c) = (
            iroh_blobs::Hash::new(b"a"),
            iroh_blobs::Hash::new(b"b"),
            iroh_blobs::Hash::new(b"c"),
        );
        let wanted = [
            (a, "a.bin".to_owned(), 100),
            (b, "b.bin".to_owned(), 50),
            (c, "c.bin".to_owned(), 10),
        ];
        let done = HashMap::from([(a, 40), (b, 50)]);
        assert_eq!(
            files_under_way(&wanted, &done),
            vec![FileProgress {
                path: "a.bin".into(),
                done_bytes: 40,
                total_bytes: 100
            }],
            "b is finished and c not started"
        );
    }
}
