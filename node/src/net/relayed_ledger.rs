//! Bytes fetched from each peer through relays, kept across its connections: a relay
//! closes a circuit at its byte limit and the next fetch opens another, so a count that
//! lived with the connection would start afresh at each circuit and carry a whole model
//! past the cap a megabyte at a time.
//!
//! Bounded: counts are forgotten [`RELAYED_WINDOW`] after they began, and at most
//! [`MAX_PEERS_COUNTED`] peers are counted (the oldest count goes first), so peer ids that
//! cost nothing cannot grow it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use libp2p::PeerId;

/// How long bytes fetched through relays count against a peer's cap.
pub const RELAYED_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Most peers whose relayed bytes are counted at once.
pub const MAX_PEERS_COUNTED: usize = 4096;

/// Relayed bytes per peer since the count began; cheap to clone, clones share it.
#[derive(Debug, Clone, Default)]
pub struct RelayedLedger {
    counts: Arc<Mutex<HashMap<PeerId, (u64, Instant)>>>,
}

impl RelayedLedger {
    /// Counts `bytes` fetched from `peer` through a relay at `now`; returns its total.
    pub fn add(&self, peer: PeerId, bytes: u64, now: Instant) -> u64 {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.retain(|_, (_, since)| now.duration_since(*since) < RELAYED_WINDOW);
        if !counts.contains_key(&peer) && counts.len() >= MAX_PEERS_COUNTED {
            if let Some(oldest) = counts.iter().min_by_key(|(_, (_, since))| *since) {
                let oldest = *oldest.0;
                counts.remove(&oldest);
            }
        }
        let (total, _) = counts.entry(peer).or_insert((0, now));
        *total = total.saturating_add(bytes);
        *total
    }

    /// Bytes fetched from `peer` through relays within the window before `now`.
    pub fn bytes(&self, peer: &PeerId, now: Instant) -> u64 {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts
            .get(peer)
            .filter(|(_, since)| now.duration_since(*since) < RELAYED_WINDOW)
            .map_or(0, |(total, _)| *total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_outlives_connections_until_its_window_ends() {
        let ledger = RelayedLedger::default();
        let peer = PeerId::random();
        let start = Instant::now();
        assert_eq!(ledger.add(peer, 600_000, start), 600_000);
        // A new circuit, a new connection: the count goes on.
        assert_eq!(
            ledger.add(peer, 600_000, start + Duration::from_secs(5)),
            1_200_000
        );
        assert_eq!(
            ledger.bytes(&peer, start + Duration::from_secs(6)),
            1_200_000
        );
        assert_eq!(ledger.bytes(&peer, start + RELAYED_WINDOW), 0, "forgotten");
        assert_eq!(ledger.add(peer, 1, start + RELAYED_WINDOW), 1);
    }

    #[test]
    fn a_flood_of_peer_ids_keeps_the_ledger_bounded() {
        let ledger = RelayedLedger::default();
        let start = Instant::now();
        let first = PeerId::random();
        ledger.add(first, 7, start);
        for i in 0..MAX_PEERS_COUNTED as u64 {
            ledger.add(PeerId::random(), 1, start + Duration::from_millis(i + 1));
        }
        assert_eq!(ledger.counts.lock().unwrap().len(), MAX_PEERS_COUNTED);
        assert_eq!(
            ledger.bytes(&first, start),
            0,
            "the oldest count went first"
        );
    }
}
