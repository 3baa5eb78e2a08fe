//! How a complete peer's next request is chosen while other fetchers of the artifact
//! take part: pieces this node owns by rendezvous hashing first, then pieces nobody
//! fetching holds, then (after [`ENDGAME_PATIENCE`]) any piece of a segment that waited.

use std::collections::HashMap;

use iroh_blobs::protocol::ChunkRanges;
use iroh_blobs::Hash;
use libp2p::PeerId;
use tokio::time::Instant;

use super::{Scheduler, ENDGAME_PATIENCE, RAREST_FIRST_WINDOW};
use crate::transfer::fetch::plan::{
    choose, first_piece, pieces, rendezvous_score, SWARM_REQUEST_BYTES,
};

impl Scheduler {
    /// Partial peers that hold something this node still lacks and may work: the
    /// fetchers whose pieces are split by rendezvous hashing. A connected peer that holds
    /// nothing wanted is not one of them, so it changes nothing about the split.
    pub(super) fn co_fetchers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(peer, state)| {
                !state.complete
                    && self.may_work(**peer)
                    && state.have.values().any(|r| !r.is_empty())
                    && self
                        .queue
                        .iter()
                        .take(RAREST_FIRST_WINDOW)
                        .chain(self.in_flight.values().map(|f| &f.item))
                        .any(|item| state.can_serve(item).is_some())
            })
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Whom pieces are split among besides this node: the co-fetchers, and every other
    /// fetcher the DHT listed that may work and has not turned out complete. Nodes that
    /// work with different co-fetchers thus mostly agree on each piece's owner, and each
    /// piece is asked of the seeder about once.
    fn swarm_members(&self, fetchers: &[PeerId]) -> Vec<PeerId> {
        let mut members = fetchers.to_vec();
        members.extend(self.swarm.iter().filter(|peer| {
            self.may_work(**peer)
                && !fetchers.contains(peer)
                && self.peers.get(peer).is_none_or(|state| !state.complete)
        }));
        members
    }

    /// What the co-fetchers hold, per blob (union over peers).
    fn held_by(&self, fetchers: &[PeerId]) -> HashMap<Hash, ChunkRanges> {
        let mut held: HashMap<Hash, ChunkRanges> = HashMap::new();
        for state in fetchers.iter().filter_map(|peer| self.peers.get(peer)) {
            for (hash, have) in &state.have {
                let union = held.entry(*hash).or_default();
                *union = &*union | have;
            }
        }
        held
    }

    /// What a complete peer is asked for next, as (queue position, ranges).
    ///
    /// Without co-fetchers: the first piece of the first queued segment. With them, the
    /// complete peer is usually the one seeder whose upload everyone shares, so it is
    /// asked only for what the fetchers cannot get from each other, and each such piece
    /// by one fetcher only: a piece of [`SWARM_REQUEST_BYTES`] of which no co-fetcher
    /// holds anything and which this node *owns* (rendezvous hashing over the fetchers
    /// it knows). Once this node has owned nothing untouched for [`ENDGAME_PATIENCE`],
    /// untouched pieces of others count too (their owner may be gone), and then pieces
    /// some peer holds part of whose segment has waited that long in the queue.
    pub(super) fn pick_for_complete_peer(&mut self, now: Instant) -> Option<(usize, ChunkRanges)> {
        let fetchers = self.co_fetchers();
        let members = self.swarm_members(&fetchers);
        // A streamed fetch takes the front of the queue even beside co-fetchers: its
        // reader waits for exactly that part.
        if members.is_empty() || self.in_order {
            // Pieces even so: other fetchers may turn up any moment, and then what this
            // node has asked for cannot be taken back.
            self.owned_exhausted_at = None;
            return self
                .queue
                .front()
                .map(|item| (0, first_piece(&item.ranges, SWARM_REQUEST_BYTES)));
        }
        let held = self.held_by(&fetchers);
        let salt = self.salt ^ (self.requests as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut unowned = None;
        let mut overdue = None;
        for (position, item) in self.queue.iter().enumerate().take(RAREST_FIRST_WINDOW) {
            let fresh = match held.get(&item.hash) {
                Some(held) => &item.ranges - held,
                None => item.ranges.clone(),
            };
            let (untouched, any) = pieces(&item.ranges, &fresh, SWARM_REQUEST_BYTES);
            let (owned, others): (Vec<_>, Vec<_>) = untouched
                .into_iter()
                .partition(|(block, _)| self.owns(&members, item.hash, *block));
            if let Some(piece) = choose(owned, salt) {
                self.owned_exhausted_at = None;
                return Some((position, piece));
            }
            if unowned.is_none() {
                unowned = choose(others, salt).map(|piece| (position, piece));
            }
            let waited = item
                .queued_at
                .is_none_or(|at| now.duration_since(at) >= ENDGAME_PATIENCE);
            if overdue.is_none() && waited {
                let piece = choose(any, salt)
                    .unwrap_or_else(|| first_piece(&item.ranges, SWARM_REQUEST_BYTES));
                overdue = Some((position, piece));
            }
        }
        let exhausted_at = *self.owned_exhausted_at.get_or_insert(now);
        if now.duration_since(exhausted_at) < ENDGAME_PATIENCE {
            return None;
        }
        unowned.or(overdue)
    }

    /// Whether this node, among itself and `members`, owns block `block` of `hash`: it
    /// scores highest (rendezvous hashing with BLAKE3, the same on every node).
    pub(super) fn owns(&self, members: &[PeerId], hash: Hash, block: u64) -> bool {
        let Some(me) = self.me else {
            return true;
        };
        let mine = rendezvous_score(&me, hash, block);
        members
            .iter()
            .all(|peer| rendezvous_score(peer, hash, block) < mine)
    }
}
