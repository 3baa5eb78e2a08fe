//! The fetch scheduler: a pure state machine deciding which peer fetches what, and
//! judging how each request ended. Time is passed in, so every rule here is tested
//! without sleeping.
//!
//! Invariants:
//! - A segment is in exactly one place: the queue, or in flight (possibly on several
//!   peers at once in the endgame); once the store holds all of it, it is in neither.
//! - A partial peer is given only ranges it has said it holds; a peer that holds nothing
//!   this node lacks takes no work and does not count as a co-fetcher, so idle connected
//!   peers cost nothing.
//! - Only bytes failing verification ban a peer. Every other failure (a stream that ends
//!   early, a timeout, an unreachable peer) backs the peer off for a growing while, and
//!   after [`MAX_FAILURES_PER_PEER`] in a row drops it from this fetch until it may be
//!   back ([`super::revival`]).
//! - Pieces of segments that no co-fetcher holds are split between the co-fetchers of an
//!   artifact by rendezvous hashing with BLAKE3, so every node computes the same split.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use iroh_blobs::protocol::ChunkRanges;
use iroh_blobs::Hash;
use libp2p::PeerId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::peer_state::{
    PeerState, FIRST_STREAMS_TO_COMPLETE, GREW_ASK_INTERVAL, MAX_ASK_INTERVAL,
};
use super::plan::{range_bytes, WorkItem};
use crate::discovery::Candidate;
use crate::transfer::client::RequestError;

/// Failures in a row (other than bad data) after which a peer is dropped from a fetch.
/// With the back-off below, a peer gets about half a minute to come back: long enough
/// for a seeder to restart.
pub const MAX_FAILURES_PER_PEER: u32 = 8;
/// Wait before retrying a peer after its first failure; doubles per failure in a row.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Longest wait between retries of a failing peer.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(8);
/// Wait before asking a busy peer again.
pub const BUSY_RETRY_DELAY: Duration = Duration::from_secs(2);
/// Most partial peers (co-fetchers, connected peers) one fetch takes on: their workers
/// wait and ask while they hold nothing useful, so they must not take every stream slot
/// from holders of everything found later; it also bounds what their answers cost.
pub const MAX_PARTIAL_PEERS: usize = 12;
/// Most fetchers of the artifact a node splits pieces among (the DHT lists at most 64
/// under one key per answering node).
pub const MAX_SWARM_MEMBERS: usize = 256;
/// How long a fetch's complete peers ramp up their requests even with no co-fetcher
/// listed: the fetchers that start together find each other within the first lookups.
pub const SWARM_WARMUP: Duration = Duration::from_secs(2);
/// Complete peers serve the rarest segment among this many at the head of the queue.
pub const RAREST_FIRST_WINDOW: usize = 64;
/// Most blobs a partial peer is asked about at once.
pub const MAX_BLOBS_PER_ASK: usize = 16;
/// While co-fetchers take part, how long a segment is in flight before idle workers
/// duplicate the request (endgame), and how long this node waits for a co-fetcher to
/// take the pieces it owns.
pub const ENDGAME_PATIENCE: Duration = Duration::from_secs(5);

/// What a worker does next.
#[derive(Debug)]
pub enum Next {
    /// Request these ranges of this item; stop when the token is cancelled (someone
    /// else completed it).
    Work(WorkItem, ChunkRanges, CancellationToken),
    /// Ask the peer what it holds of these blobs.
    Ask(Vec<Hash>),
    /// Nothing to do now.
    Wait,
    /// Stop: all done, or the peer is banned or dropped.
    Stop,
}

/// A segment being fetched.
#[derive(Debug)]
struct InFlight {
    item: WorkItem,
    /// Peers asked for (part of) it.
    peers: Vec<PeerId>,
    /// When it was first requested.
    since: Instant,
    /// Cancelled when it is complete, so duplicate requests stop at once.
    done: CancellationToken,
}

/// Why this node, not a peer, ended a transfer.
#[derive(Debug, Clone)]
pub struct LocalFailure {
    /// What failed, as the store said.
    pub reason: String,
    /// The disk is full.
    pub storage_full: bool,
}

/// The state of one fetch's work.
#[derive(Debug, Default)]
pub struct Scheduler {
    queue: VecDeque<WorkItem>,
    in_flight: HashMap<usize, InFlight>,
    peers: HashMap<PeerId, PeerState>,
    banned: HashSet<PeerId>,
    dropped: HashSet<PeerId>,
    /// Dropped for good: reached only through relays, over the relayed-transfer cap.
    over_relay_cap: HashSet<PeerId>,
    /// Why the last failed request of this fetch failed, for the user.
    last_failure: Option<String>,
    per_peer: HashMap<PeerId, u64>,
    done_bytes: u64,
    /// `done_bytes` by blob, for per-file progress.
    done_by_blob: HashMap<Hash, u64>,
    /// Differs between nodes, so that fetchers choose differently.
    salt: u64,
    /// Requests handed out so far.
    requests: usize,
    /// This node, for splitting pieces between fetchers (`None`: owns everything).
    me: Option<PeerId>,
    /// Other fetchers of the artifact as the DHT lists them (bounded by
    /// [`MAX_SWARM_MEMBERS`]), whether or not this node works with them: pieces are split
    /// among all of them, so that nodes which each know a different dozen of co-fetchers
    /// still agree on who asks the seeder for what.
    swarm: HashSet<PeerId>,
    /// Since when this node has owned no untouched piece.
    owned_exhausted_at: Option<Instant>,
    /// Every segment has been planned (none will be added to the queue but returns).
    planned_all: bool,
    /// A local failure (the store could not take data) that ends the fetch.
    local_failure: Option<LocalFailure>,
    /// No new requests while set (the disk is nearly full).
    paused: bool,
    /// Queue segments in file order instead of this node's own order.
    in_order: bool,
    /// When this fetch first looked for work.
    started: Option<Instant>,
    /// Requests a new complete peer may serve at once, when not
    /// [`FIRST_STREAMS_TO_COMPLETE`] (tests of other rules).
    first_streams: Option<usize>,
}

impl Scheduler {
    /// A scheduler for the node `me` (`None`: owns every piece; tests).
    pub fn new(me: Option<PeerId>) -> Self {
        let salt = me.map_or(0, |me| {
            let hash = blake3::hash(&me.to_bytes());
            let mut first = [0; 8];
            first.copy_from_slice(&hash.as_bytes()[..8]);
            u64::from_le_bytes(first)
        });
        Self {
            me,
            salt,
            ..Self::default()
        }
    }

    /// Lets new complete peers serve `streams` requests at once from the start.
    #[cfg(test)]
    pub fn set_first_streams(&mut self, streams: usize) {
        self.first_streams = Some(streams);
    }

    /// Queues segments in file order from now on (a reader streams the files).
    pub fn set_in_order(&mut self, in_order: bool) {
        self.in_order = in_order;
    }

    /// Adds planned segments at the back of the queue, in an order of this node's own
    /// so that fetchers of the same artifact start on different parts (in file order
    /// when [`Self::set_in_order`] asked for it).
    pub fn enqueue(&mut self, mut items: Vec<WorkItem>, now: Instant) {
        let salt = self.salt.to_le_bytes();
        if !self.in_order {
            items.sort_by_cached_key(|item| {
                *blake3::Hasher::new()
                    .update(&salt)
                    .update(&(item.id as u64).to_le_bytes())
                    .finalize()
                    .as_bytes()
            });
        }
        for mut item in items {
            item.queued_at = Some(now);
            self.queue.push_back(item);
        }
    }

    /// Queues `items` ahead of everything queued (a reader waits for them).
    pub fn enqueue_first(&mut self, items: Vec<WorkItem>, now: Instant) {
        for mut item in items.into_iter().rev() {
            item.queued_at = Some(now);
            self.queue.push_front(item);
        }
    }

    /// Says that no more segments will be planned.
    pub fn set_planned_all(&mut self) {
        self.planned_all = true;
    }

    /// More segments will be planned: files were added to the fetch.
    pub fn set_planning_more(&mut self) {
        self.planned_all = false;
    }

    /// Stops or resumes handing out requests (requests in flight finish).
    pub fn set_paused(&mut self, paused: bool) {
        self.paused = paused;
    }

    /// Segments waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether every planned segment is in the store.
    pub fn all_done(&self) -> bool {
        self.planned_all && self.queue.is_empty() && self.in_flight.is_empty()
    }

    /// Verified bytes added to the store so far.
    pub fn done_bytes(&self) -> u64 {
        self.done_bytes
    }

    /// Verified bytes added to the store so far, by blob.
    pub fn done_by_blob(&self) -> &HashMap<Hash, u64> {
        &self.done_by_blob
    }

    /// Segments not yet in the store (queued or in flight).
    pub fn segments_left(&self) -> usize {
        self.queue.len() + self.in_flight.len()
    }

    /// Peers known to this fetch.
    pub fn peers(&self) -> impl Iterator<Item = PeerId> + '_ {
        self.peers.keys().copied()
    }

    /// Peers that hold everything and may take work now (not backing off).
    pub fn ready_complete_peers(&self, now: Instant) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(peer, state)| {
                state.complete && self.may_work(**peer) && state.retry_at.is_none_or(|at| at <= now)
            })
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Peers banned for bad data.
    pub fn banned(&self) -> &HashSet<PeerId> {
        &self.banned
    }

    /// Why the last failed request of this fetch failed.
    pub fn last_failure(&self) -> Option<&str> {
        self.last_failure.as_deref()
    }

    /// Peers dropped after failing too often.
    pub fn dropped(&self) -> &HashSet<PeerId> {
        &self.dropped
    }

    /// Verified bytes each peer delivered.
    pub fn per_peer(&self) -> &HashMap<PeerId, u64> {
        &self.per_peer
    }

    /// Peers that delivered anything.
    pub fn serving(&self) -> usize {
        self.per_peer.values().filter(|b| **b > 0).count()
    }

    /// The local failure that ends the fetch, if any.
    pub fn local_failure(&self) -> Option<&LocalFailure> {
        self.local_failure.as_ref()
    }

    /// Whether `peer` may take work: neither banned nor dropped.
    pub fn may_work(&self, peer: PeerId) -> bool {
        !self.banned.contains(&peer) && !self.dropped.contains(&peer)
    }

    /// Bans `peer` for the rest of the fetch (it sent bad data).
    pub fn ban(&mut self, peer: PeerId) {
        self.banned.insert(peer);
    }

    /// Adds a peer; a known partial peer now listed as complete is upgraded. Returns
    /// whether it is new.
    pub fn add_peer(&mut self, candidate: Candidate) -> bool {
        if Some(candidate.peer) == self.me || !self.may_work(candidate.peer) {
            return false;
        }
        if candidate.complete {
            self.swarm.remove(&candidate.peer);
        } else if candidate.listed && self.swarm.len() < MAX_SWARM_MEMBERS {
            self.swarm.insert(candidate.peer);
        }
        let partial = self.peers.values().filter(|p| !p.complete).count();
        if !candidate.complete
            && !self.peers.contains_key(&candidate.peer)
            && partial >= MAX_PARTIAL_PEERS
        {
            return false;
        }
        match self.peers.get_mut(&candidate.peer) {
            Some(state) => {
                state.complete |= candidate.complete;
                false
            }
            None => {
                let first_streams = self.first_streams.unwrap_or(FIRST_STREAMS_TO_COMPLETE);
                self.peers.insert(
                    candidate.peer,
                    PeerState::new(candidate.complete, first_streams),
                );
                true
            }
        }
    }

    /// The next thing for `peer` to do: a queued segment it can serve, else (endgame)
    /// part of a segment in flight on other peers only, else ask it what it holds if
    /// that is due, else wait.
    pub fn next_for(&mut self, peer: PeerId, now: Instant) -> Next {
        if self.all_done() || !self.may_work(peer) || self.local_failure.is_some() {
            return Next::Stop;
        }
        let started = *self.started.get_or_insert(now);
        // Complete peers ramp up only where other fetchers may share them: beside listed
        // co-fetchers, and at the start, before the first lookups could list them. A
        // streamed fetch (a reader waits on it) never waits for the ramp.
        let shared_seeders = !self.swarm.is_empty() || now.duration_since(started) < SWARM_WARMUP;
        if shared_seeders
            && !self.in_order
            && self.peers.get(&peer).is_some_and(|state| !state.has_room())
        {
            return Next::Wait;
        }
        let next = self.pick_next(peer, now);
        if let (Next::Work(..), Some(state)) = (&next, self.peers.get_mut(&peer)) {
            state.in_flight += 1;
        }
        next
    }

    /// [`Self::next_for`] once the peer has room for one more request.
    fn pick_next(&mut self, peer: PeerId, now: Instant) -> Next {
        let Some(state) = self.peers.get(&peer) else {
            return Next::Stop;
        };
        if self.paused || state.retry_at.is_some_and(|at| now < at) {
            return Next::Wait;
        }
        let pick = if state.complete {
            self.pick_for_complete_peer(now)
        } else {
            self.queue
                .iter()
                .enumerate()
                .find_map(|(position, item)| state.can_serve(item).map(|part| (position, part)))
        };
        if let Some((position, part)) = pick {
            if let Some(item) = self.queue.remove(position) {
                self.requests += 1;
                let entry = InFlight {
                    item: item.clone(),
                    peers: vec![peer],
                    since: now,
                    done: CancellationToken::new(),
                };
                let done = entry.done.clone();
                self.in_flight.insert(item.id, entry);
                return Next::Work(item, part, done);
            }
        }
        if let Some(next) = self.steal_for(peer, now) {
            return next;
        }
        self.ask_if_due(peer, now)
    }

    /// Endgame: part of a segment in flight on other peers. Only once nothing is left
    /// to plan or queue; among complete peers at once, while co-fetchers take part only
    /// for segments in flight for [`ENDGAME_PATIENCE`] (a stuck or slow peer), since
    /// workers run out of queued segments long before the end.
    fn steal_for(&mut self, peer: PeerId, now: Instant) -> Option<Next> {
        if !self.planned_all || !self.queue.is_empty() {
            return None;
        }
        let swarming = !self.co_fetchers().is_empty();
        let state = self.peers.get(&peer)?;
        let (id, part) = self
            .in_flight
            .values()
            .filter(|f| !f.peers.contains(&peer))
            .filter(|f| !swarming || now.duration_since(f.since) >= ENDGAME_PATIENCE)
            .filter_map(|f| state.can_serve(&f.item).map(|part| (f, part)))
            .min_by_key(|(f, _)| (f.peers.len(), f.item.id))
            .map(|(f, part)| (f.item.id, part))?;
        let entry = self.in_flight.get_mut(&id)?;
        entry.peers.push(peer);
        Some(Next::Work(entry.item.clone(), part, entry.done.clone()))
    }

    /// Asks a partial peer what it holds, if that is due.
    fn ask_if_due(&mut self, peer: PeerId, now: Instant) -> Next {
        let Some(state) = self.peers.get(&peer) else {
            return Next::Stop;
        };
        let due = !state.complete
            && !state.asking
            && state
                .asked_at
                .is_none_or(|at| now.duration_since(at) >= state.ask_every);
        if !due {
            return Next::Wait;
        }
        let mut hashes: Vec<Hash> = Vec::new();
        for item in self
            .queue
            .iter()
            .chain(self.in_flight.values().map(|f| &f.item))
        {
            if !hashes.contains(&item.hash) {
                hashes.push(item.hash);
                if hashes.len() == MAX_BLOBS_PER_ASK {
                    break;
                }
            }
        }
        if hashes.is_empty() {
            return Next::Wait;
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.asking = true;
        }
        Next::Ask(hashes)
    }

    /// Records what `peer` said it holds (or that asking failed). Peers that hold
    /// nothing new are asked less often.
    pub fn answered(
        &mut self,
        peer: PeerId,
        have: Vec<(Hash, ChunkRanges)>,
        failure: Option<&RequestError>,
        now: Instant,
    ) {
        if let Some(state) = self.peers.get_mut(&peer) {
            let mut grew = false;
            for (hash, ranges) in have {
                let known = state.have.entry(hash).or_default();
                if !(&ranges - &*known).is_empty() {
                    grew = true;
                }
                *known = ranges;
            }
            state.asking = false;
            state.asked_at = Some(now);
            state.ask_every = if grew {
                GREW_ASK_INTERVAL
            } else {
                (state.ask_every * 2).min(MAX_ASK_INTERVAL)
            };
        }
        if let Some(failure) = failure {
            self.judge(peer, Err(failure), now);
        }
    }

    /// Judges how one request of `peer` ended: the one place where peers are credited,
    /// backed off, dropped or banned.
    fn judge(&mut self, peer: PeerId, result: Result<(), &RequestError>, now: Instant) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        match result {
            // Failures count only in a row: a connection closing under one request
            // says little about a peer that serves the next.
            Ok(()) => {
                state.failures = 0;
                state.retry_at = None;
            }
            Err(e) if e.is_misbehaviour() => {
                tracing::debug!(%peer, error = %e, "banning peer: bad data");
                self.banned.insert(peer);
            }
            Err(e) if e.is_local() => {
                self.local_failure.get_or_insert_with(|| LocalFailure {
                    reason: e.to_string(),
                    storage_full: e.is_storage_full(),
                });
            }
            Err(RequestError::Busy { .. }) => state.retry_at = Some(now + BUSY_RETRY_DELAY),
            // What the relay cap allows is fetched: more tries cannot change that.
            Err(e @ RequestError::OverRelayCap { .. }) => {
                self.last_failure = Some(e.to_string());
                self.dropped.insert(peer);
                self.over_relay_cap.insert(peer);
            }
            // Requests under way together fail together when a peer goes away (a fetch
            // runs several streams to it): one that ends while the peer is already
            // backed off is part of the same outage, not another failure in a row.
            Err(_) if state.retry_at.is_some_and(|at| now < at) => {}
            Err(e) => {
                self.last_failure = Some(e.to_string());
                state.failures += 1;
                let delay = FIRST_RETRY_DELAY
                    .saturating_mul(1 << (state.failures - 1).min(16))
                    .min(MAX_RETRY_DELAY);
                state.retry_at = Some(now + delay);
                if state.failures >= MAX_FAILURES_PER_PEER {
                    tracing::debug!(%peer, error = %e, "dropping peer from the fetch: failed too often");
                    self.dropped.insert(peer);
                }
            }
        }
    }

    /// A request for part of `item` ended: `still_missing` is what the local store still
    /// lacks of its segment. Updates the item, requeues what is left if nobody else is
    /// working on it, and judges the peer.
    pub fn request_ended(
        &mut self,
        item: &WorkItem,
        peer: PeerId,
        received: u64,
        still_missing: Option<ChunkRanges>,
        result: Result<(), &RequestError>,
        now: Instant,
    ) {
        if let Err(RequestError::Incomplete { .. }) = result {
            // A partial peer that lacks what it said it held: ask it again before
            // giving it more of this blob.
            if let Some(state) = self.peers.get_mut(&peer).filter(|s| !s.complete) {
                state.have.remove(&item.hash);
                state.asked_at = None;
            }
        }
        self.judge(peer, result, now);
        let took = self
            .in_flight
            .get(&item.id)
            .map_or(Duration::ZERO, |entry| now.duration_since(entry.since));
        if let Some(state) = self.peers.get_mut(&peer) {
            let bytes = if result.is_ok() { received } else { 0 };
            state.request_done(bytes, took);
        }
        let Some(entry) = self.in_flight.get_mut(&item.id) else {
            *self.per_peer.entry(peer).or_default() += received;
            return;
        };
        let current = &mut entry.item;
        let mut added = 0;
        if let Some(missing) = still_missing {
            let bytes = range_bytes(&missing, current.size);
            added = current.bytes.saturating_sub(bytes);
            self.done_bytes += added;
            *self.done_by_blob.entry(current.hash).or_default() += added;
            current.bytes = current.bytes.min(bytes);
            current.ranges = &current.ranges & &missing;
        }
        // A request reports the verified bytes it delivered, even when cut short
        // (cancelled, or failed half-way). What the store gained is credited to it too,
        // but only if it worked on the segment alone: with others on it (the end-game),
        // those bytes may be theirs.
        let alone = entry.peers.iter().all(|p| *p == peer);
        let credited = if alone { received.max(added) } else { received };
        *self.per_peer.entry(peer).or_default() += credited;
        entry.peers.retain(|p| *p != peer);
        if current.ranges.is_empty() {
            entry.done.cancel();
            self.in_flight.remove(&item.id);
        } else if entry.peers.is_empty() {
            if let Some(mut left) = self.in_flight.remove(&item.id) {
                left.item.queued_at = Some(now);
                self.queue.push_front(left.item);
            }
        }
    }
}

mod revive;
mod swarm_pick;

pub use revive::Revived;

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;
