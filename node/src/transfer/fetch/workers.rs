//! The workers of one fetch: up to [`STREAMS_PER_PEER`] per peer and
//! [`MAX_FETCH_STREAMS`] in all, each a loop that asks the scheduler what to do, does
//! it on its own stream, and reports how it went.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use iroh_blobs::protocol::{ChunkRanges, GetRequest};
use iroh_blobs::Hash;
use libp2p::PeerId;
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::Instrument;

pub use super::peer_state::STREAMS_PER_PEER;
use super::plan::PLAN_WINDOW;
use super::scheduler::{Next, Scheduler};
use crate::discovery::Candidate;
use crate::library::store::from_iroh;
use crate::peers::{PeerAction, PeerBook};
use crate::transfer::client::{BlobClient, RequestError, Tally, REQUEST_IDLE_TIMEOUT};
use crate::transfer::have::ask_have;

/// Most streams one fetch runs at once, across all peers.
pub const MAX_FETCH_STREAMS: usize = 32;
/// How often an idle worker looks again for work returned by a failed one.
const IDLE_RECHECK: Duration = Duration::from_millis(200);
/// Streams started beside the others when a reader asks for files the fetch just took
/// on, each for one request: their segments go ahead of the queue, but every stream may
/// be busy with a long request.
pub const HURRY_STREAMS: usize = 2;
/// When fewer segments than this are queued, the driver plans more.
pub const PLAN_LOW_WATER: usize = PLAN_WINDOW / 2;

/// The scheduler and the signals around it, shared by the driver and the workers.
#[derive(Debug)]
pub struct Shared {
    state: Mutex<Scheduler>,
    /// Where peers' behaviour is remembered across fetches.
    book: PeerBook,
    /// Something changed that may give waiting workers work.
    pub changed: Notify,
    /// The queue runs low: the driver should plan more.
    pub refill: Notify,
    /// Verified bytes received so far, counted as they arrive (requests in flight
    /// included): what the stall timer watches.
    pub arrived: AtomicU64,
}

impl Shared {
    /// Wraps a scheduler.
    pub fn new(scheduler: Scheduler, book: PeerBook) -> Self {
        Self {
            state: Mutex::new(scheduler),
            book,
            changed: Notify::new(),
            refill: Notify::new(),
            arrived: AtomicU64::new(0),
        }
    }

    /// The scheduler.
    pub fn lock(&self) -> MutexGuard<'_, Scheduler> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wakes waiting workers, and the driver if the queue runs low.
    fn notify(&self, queued: usize) {
        self.changed.notify_waiters();
        if queued < PLAN_LOW_WATER {
            self.refill.notify_one();
        }
    }
}

/// The workers of one fetch.
#[derive(Default)]
pub struct Crew {
    /// Running workers.
    pub workers: tokio::task::JoinSet<()>,
    /// Streams not started yet: (stream number of its peer, whether the peer holds only
    /// part, peer), in starting order.
    waiting: VecDeque<(usize, bool, PeerId)>,
}

impl Crew {
    /// Adds the new peers among `candidates`; returns how many were new.
    pub fn add(
        &mut self,
        client: &BlobClient,
        shared: &Arc<Shared>,
        candidates: impl IntoIterator<Item = Candidate>,
    ) -> usize {
        let now = Instant::now();
        let mut candidates: Vec<Candidate> = candidates
            .into_iter()
            .filter(|c| !shared.book.is_banned(&c.peer, now))
            .collect();
        // Best-known peers first: they get the free stream slots.
        let mut order: Vec<PeerId> = candidates.iter().map(|c| c.peer).collect();
        shared.book.rank(&mut order, now);
        candidates.sort_by_key(|c| order.iter().position(|p| *p == c.peer));
        let mut added = 0;
        {
            let mut state = shared.lock();
            for candidate in candidates {
                if state.add_peer(candidate) {
                    added += 1;
                    let partial = !candidate.complete;
                    self.waiting
                        .extend((0..STREAMS_PER_PEER).map(|n| (n, partial, candidate.peer)));
                }
            }
        }
        // Every peer's first stream starts before anyone's second, and so on, holders of
        // everything first within each round (the sort is stable: best-known first): a
        // crowd of peers that claim everything and never answer cannot take every slot.
        self.waiting
            .make_contiguous()
            .sort_by_key(|(n, partial, _)| (*n, *partial));
        self.fill(client, shared);
        added
    }

    /// Starts workers again for peers taken back after they were dropped (`complete`:
    /// listed as holding everything).
    pub fn revive(
        &mut self,
        client: &BlobClient,
        shared: &Arc<Shared>,
        peers: impl IntoIterator<Item = (PeerId, bool)>,
    ) {
        for (peer, complete) in peers {
            self.waiting
                .extend((0..STREAMS_PER_PEER).map(|n| (n, !complete, peer)));
        }
        self.fill(client, shared);
    }

    /// Starts up to [`HURRY_STREAMS`] one-request workers on the best complete peers, for
    /// segments queued first for a waiting reader.
    pub fn hurry(&mut self, client: &BlobClient, shared: &Arc<Shared>) {
        let now = Instant::now();
        let mut peers = shared.lock().ready_complete_peers(now);
        shared.book.rank(&mut peers, now);
        for peer in peers.into_iter().take(HURRY_STREAMS) {
            let span = tracing::debug_span!("peer", %peer, hurry = true);
            self.workers.spawn(
                run_worker(client.clone(), shared.clone(), peer, Requests::One).instrument(span),
            );
        }
    }

    /// Starts waiting workers while there are free slots.
    pub fn fill(&mut self, client: &BlobClient, shared: &Arc<Shared>) {
        while self.workers.len() < MAX_FETCH_STREAMS {
            let Some((_, _, peer)) = self.waiting.pop_front() else {
                break;
            };
            let span = tracing::debug_span!("peer", %peer);
            self.workers.spawn(
                run_worker(client.clone(), shared.clone(), peer, Requests::Many).instrument(span),
            );
        }
    }
}

/// How many requests a worker makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requests {
    /// Until the fetch ends or the peer is dropped.
    Many,
    /// One, then the worker ends (it does not wait for work).
    One,
}

async fn run_worker(client: BlobClient, shared: Arc<Shared>, peer: PeerId, requests: Requests) {
    loop {
        let next = shared.lock().next_for(peer, Instant::now());
        match next {
            Next::Stop => break,
            // An ask is answered even so (the scheduler waits for its answer).
            Next::Wait if requests == Requests::One => break,
            Next::Wait => {
                // Nothing for this peer now; others' progress or failures may change that.
                let _ = tokio::time::timeout(IDLE_RECHECK, shared.changed.notified()).await;
            }
            Next::Ask(hashes) => {
                let mut have = Vec::with_capacity(hashes.len());
                let mut failure = None;
                for hash in hashes {
                    match ask_have(&client.net, peer, hash).await {
                        Ok(ranges) => have.push((hash, ranges)),
                        Err(e) => {
                            tracing::debug!(%peer, error = %e, "asking what a peer holds failed");
                            failure = Some(e);
                            break;
                        }
                    }
                }
                let queued = {
                    let mut state = shared.lock();
                    state.answered(peer, have, failure.as_ref(), Instant::now());
                    state.queued()
                };
                shared.notify(queued);
            }
            Next::Work(item, part, done) => {
                let request = GetRequest::blob_ranges(item.hash, part);
                let delivered = AtomicU64::new(0);
                let tally = Tally {
                    transfer: &shared.arrived,
                    request: &delivered,
                };
                let result = tokio::select! {
                    result = client.get(peer, request, REQUEST_IDLE_TIMEOUT, tally) => result,
                    // Others finished the segment; what this peer sent so far still counts.
                    () = done.cancelled() => Ok(delivered.load(Ordering::Relaxed)),
                };
                let still_missing = local_ranges(&client, item.hash)
                    .await
                    .map(|present| &item.segment - &present);
                let (received, outcome) = match result {
                    Ok(bytes) => (bytes, Ok(())),
                    Err(e) => {
                        tracing::debug!(%peer, hash = %from_iroh(item.hash), error = %e, "segment request failed");
                        (delivered.load(Ordering::Relaxed), Err(e))
                    }
                };
                if let Some(action) = peer_action(&outcome) {
                    shared.book.report(peer, action, Instant::now());
                }
                let queued = {
                    let mut state = shared.lock();
                    state.request_ended(
                        &item,
                        peer,
                        received,
                        still_missing,
                        outcome.as_ref().map(|_| ()),
                        Instant::now(),
                    );
                    state.queued()
                };
                shared.notify(queued);
                if requests == Requests::One {
                    break;
                }
            }
        }
    }
    shared.changed.notify_waiters();
}

/// What a request's outcome says about the peer, for the peer book.
fn peer_action(outcome: &Result<(), RequestError>) -> Option<PeerAction> {
    match outcome {
        Ok(()) => Some(PeerAction::Served),
        Err(e) if e.is_misbehaviour() => Some(PeerAction::SentBadData),
        Err(RequestError::TimedOut { .. }) => Some(PeerAction::TimedOut),
        Err(RequestError::Local { .. } | RequestError::Busy { .. }) => None,
        Err(_) => Some(PeerAction::Failed),
    }
}

/// The chunk ranges of `hash` the local store holds, verified.
pub async fn local_ranges(client: &BlobClient, hash: Hash) -> Option<ChunkRanges> {
    client.store.verified_ranges(from_iroh(hash)).await.ok()
}
