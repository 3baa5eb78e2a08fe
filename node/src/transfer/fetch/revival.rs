//! Taking failing peers back into a running fetch once they may be back: a seeder that
//! rebooted comes back with the same peer id, and the fetch should use it at once
//! instead of waiting out its back-off or stalling on the peers it has left.
//!
//! Two signs count. A failing peer (backed off, or dropped) seen without a connection
//! and later connected again has come back: it is tried at once, with all its tries. A
//! dropped peer that discovery
//! still lists while no connection to it is open is tried once every
//! [`PROBE_INTERVAL`] (the dial tells whether it is back; one failure drops it again).
//! A peer that stays connected and keeps failing is never taken back on a listing
//! alone, so peers that claim an artifact and never serve it cost nothing more.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

use super::scheduler::MAX_FAILURES_PER_PEER;

/// How often a dropped peer that discovery still lists is tried again while no
/// connection to it is open.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(5);

/// How a peer is connected now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// No connection is open.
    None,
    /// Only relay circuits are open: a new circuit is no sign the peer is back, relays
    /// open and close them at their limits.
    Relayed,
    /// A direct connection is open.
    Direct,
}

/// What is known of one failing peer.
#[derive(Debug, Clone, Copy)]
struct FailingPeer {
    /// It has been seen with no connection open since it began failing.
    seen_gone: bool,
    /// When it was first seen failing or last tried again.
    last_try: Instant,
}

/// The failing peers of one fetch being watched for their return.
#[derive(Debug, Default)]
pub struct Revival {
    failing: HashMap<PeerId, FailingPeer>,
    /// Peers the latest lookup listed.
    listed: HashSet<PeerId>,
}

impl Revival {
    /// Remembers who the latest lookup listed.
    pub fn note_listed(&mut self, listed: impl IntoIterator<Item = PeerId>) {
        self.listed = listed.into_iter().collect();
    }

    /// Whether a dropped peer may still come back: one discovery lists that has no
    /// connection open (one reached through a relay has been tried as it is).
    pub fn awaits_any(&self, dropped: &HashSet<PeerId>, link: impl Fn(&PeerId) -> Link) -> bool {
        dropped
            .iter()
            .any(|peer| self.listed.contains(peer) && link(peer) == Link::None)
    }

    /// The peers to take back now, each with the failures in a row it may have before
    /// it is dropped: those among `failing` (backed off or dropped) that reconnected, and
    /// those among `dropped` that are listed with no connection open, once per
    /// [`PROBE_INTERVAL`]. `link` says how a peer is connected now.
    pub fn due(
        &mut self,
        failing: &HashSet<PeerId>,
        dropped: &HashSet<PeerId>,
        link: impl Fn(&PeerId) -> Link,
        now: Instant,
    ) -> Vec<(PeerId, u32)> {
        self.failing
            .retain(|peer, _| failing.contains(peer) || dropped.contains(peer));
        let mut due = Vec::new();
        for peer in failing.union(dropped) {
            let watch = self.failing.entry(*peer).or_insert(FailingPeer {
                seen_gone: false,
                last_try: now,
            });
            let now_link = link(peer);
            if now_link == Link::None {
                watch.seen_gone = true;
            }
            if now_link == Link::Direct && watch.seen_gone {
                due.push((*peer, MAX_FAILURES_PER_PEER));
            } else if now_link == Link::None
                && dropped.contains(peer)
                && self.listed.contains(peer)
                && now.duration_since(watch.last_try) >= PROBE_INTERVAL
            {
                due.push((*peer, 1));
            } else {
                continue;
            }
            // Tried again: a peer that fails at once is watched afresh.
            self.failing.remove(peer);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_that_reconnects_is_taken_back_with_all_its_tries() {
        let none = HashSet::new();
        for (failing, dropped) in [(true, false), (false, true)] {
            let mut revival = Revival::default();
            let peer = PeerId::random();
            let set = |on: bool| {
                if on {
                    HashSet::from([peer])
                } else {
                    HashSet::new()
                }
            };
            let (failing, dropped) = (set(failing), set(dropped));
            let start = Instant::now();
            let due = |r: &mut Revival, open: bool, at| {
                r.due(
                    &failing,
                    &dropped,
                    |_| if open { Link::Direct } else { Link::None },
                    at,
                )
            };
            assert!(
                due(&mut revival, true, start).is_empty(),
                "still connected: no sign"
            );
            assert!(due(&mut revival, false, start).is_empty(), "gone");
            assert_eq!(
                due(&mut revival, true, start + Duration::from_secs(1)),
                vec![(peer, MAX_FAILURES_PER_PEER)]
            );
        }
        let mut revival = Revival::default();
        assert!(revival
            .due(&none, &none, |_| Link::None, Instant::now())
            .is_empty());
    }

    #[test]
    fn a_listed_dropped_peer_with_no_connection_is_tried_once_per_interval() {
        let mut revival = Revival::default();
        let peer = PeerId::random();
        let dropped = HashSet::from([peer]);
        let none = HashSet::new();
        let start = Instant::now();
        let due = |r: &mut Revival, failing: &HashSet<PeerId>, dropped: &HashSet<PeerId>, at| {
            r.due(failing, dropped, |_| Link::None, at)
        };
        assert!(due(&mut revival, &none, &dropped, start).is_empty());
        assert!(
            due(&mut revival, &none, &dropped, start + PROBE_INTERVAL).is_empty(),
            "not listed: nothing says it may be back"
        );
        revival.note_listed([peer]);
        assert!(revival.awaits_any(&dropped, |_| Link::None));
        assert!(
            !revival.awaits_any(&dropped, |_| Link::Relayed),
            "tried as it is"
        );
        assert!(
            due(&mut revival, &dropped, &none, start + PROBE_INTERVAL).is_empty(),
            "backed off but not dropped: its own back-off tries it"
        );
        assert_eq!(
            due(&mut revival, &none, &dropped, start + 2 * PROBE_INTERVAL),
            vec![(peer, 1)]
        );
        // Dropped again at once: the next try waits a whole interval.
        let later = start + 2 * PROBE_INTERVAL + Duration::from_secs(1);
        assert!(due(&mut revival, &none, &dropped, later).is_empty());
        assert_eq!(
            due(&mut revival, &none, &dropped, later + PROBE_INTERVAL),
            vec![(peer, 1)]
        );
    }

    #[test]
    fn a_connected_peer_that_keeps_failing_is_not_taken_back_on_a_listing_or_a_circuit() {
        let mut revival = Revival::default();
        let peer = PeerId::random();
        let dropped = HashSet::from([peer]);
        revival.note_listed([peer]);
        let start = Instant::now();
        for second in 0..60 {
            let now = start + Duration::from_secs(second);
            assert!(revival
                .due(&dropped, &dropped, |_| Link::Direct, now)
                .is_empty());
        }
        // Behind a relay, circuits come and go: none of them is a return.
        let mut revival = Revival::default();
        revival.note_listed([peer]);
        for second in 0..60 {
            let link = if second % 2 == 0 {
                Link::Relayed
            } else {
                Link::None
            };
            let now = start + Duration::from_secs(second);
            let due = revival.due(&dropped, &HashSet::new(), |_| link, now);
            assert!(due.is_empty(), "second {second}: {due:?}");
        }
    }
}
