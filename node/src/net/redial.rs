//! When to dial a bootstrap peer again: at once when it is lost, then with a doubling
//! back-off (1 s, 2 s, 4 s … at most 30 s) while dials fail, and back to the start once
//! it is connected. A node whose only way in restarted gets back in within seconds; a
//! bootstrap peer that is down for good costs one dial per 30 s.

use std::time::{Duration, Instant};

use libp2p::{Multiaddr, PeerId};

/// First wait after a failed dial.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two dials of one bootstrap peer.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// One configured bootstrap peer and its dial schedule.
#[derive(Debug, Clone)]
pub struct BootstrapPeer {
    /// Its id.
    pub peer: PeerId,
    /// Its address, without `/p2p`.
    pub address: Multiaddr,
    next_dial: Instant,
    backoff: Duration,
}

impl BootstrapPeer {
    /// A peer to dial now.
    pub fn new(peer: PeerId, address: Multiaddr, now: Instant) -> Self {
        Self {
            peer,
            address,
            next_dial: now,
            backoff: FIRST_BACKOFF,
        }
    }

    /// Whether a dial is due; if so, the next one is pushed back.
    pub fn take_due_dial(&mut self, now: Instant) -> bool {
        if now < self.next_dial {
            return false;
        }
        self.next_dial = now + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        true
    }

    /// The peer is connected: when it is lost, dial again at once.
    pub fn connected(&mut self, now: Instant) {
        self.backoff = FIRST_BACKOFF;
        self.next_dial = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_dials_back_off_up_to_a_cap_and_a_connection_resets_it() {
        let start = Instant::now();
        let mut peer = BootstrapPeer::new(
            PeerId::random(),
            "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
            start,
        );
        let mut dials = Vec::new();
        for second in 0..120 {
            let now = start + Duration::from_secs(second);
            if peer.take_due_dial(now) {
                dials.push(second);
            }
        }
        assert_eq!(&dials[..6], &[0, 1, 3, 7, 15, 31]);
        assert!(dials.windows(2).all(|w| w[1] - w[0] <= 30), "{dials:?}");
        let later = start + Duration::from_secs(200);
        peer.connected(later);
        assert!(peer.take_due_dial(later));
        assert!(!peer.take_due_dial(later + Duration::from_millis(500)));
        assert!(peer.take_due_dial(later + Duration::from_secs(1)));
    }
}
