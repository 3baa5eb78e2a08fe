//! Taking failing peers back: the scheduler's side of [`crate::transfer::fetch::revival`].

use std::collections::HashSet;

use libp2p::PeerId;

use super::{Scheduler, MAX_FAILURES_PER_PEER};

/// A peer taken back into the fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revived {
    /// Listed as holding everything.
    pub complete: bool,
    /// It had been dropped, so it has no workers left and needs new ones.
    pub was_dropped: bool,
}

impl Scheduler {
    /// Peers that failed their last request (backing off) or were dropped, and may
    /// come back: not banned, nor over the relayed-transfer cap.
    pub fn failing(&self) -> HashSet<PeerId> {
        self.peers
            .iter()
            .filter(|(_, state)| state.failures > 0)
            .map(|(peer, _)| *peer)
            .chain(self.dropped.iter().copied())
            .filter(|peer| !self.banned.contains(peer) && !self.over_relay_cap.contains(peer))
            .collect()
    }

    /// The dropped peers among [`Self::failing`].
    pub fn dropped_revivable(&self) -> HashSet<PeerId> {
        self.dropped
            .difference(&self.over_relay_cap)
            .copied()
            .collect()
    }

    /// Takes a failing or dropped peer back at once, with `tries` failures in a row left
    /// before it is dropped (again); `None` for a peer unknown, banned or over the
    /// relayed-transfer cap.
    pub fn revive(&mut self, peer: PeerId, tries: u32) -> Option<Revived> {
        if self.banned.contains(&peer) || self.over_relay_cap.contains(&peer) {
            return None;
        }
        let state = self.peers.get_mut(&peer)?;
        state.failures = MAX_FAILURES_PER_PEER.saturating_sub(tries.max(1));
        state.retry_at = None;
        Some(Revived {
            complete: state.complete,
            was_dropped: self.dropped.remove(&peer),
        })
    }
}

#[cfg(test)]
mod tests {
    use tokio::time::Instant;

    use super::*;
    use crate::discovery::Candidate;
    use crate::transfer::client::RequestError;

    fn failed(scheduler: &mut Scheduler, peer: PeerId, times: u32) {
        let mut now = Instant::now();
        for _ in 0..times {
            now += std::time::Duration::from_secs(60);
            scheduler.judge(
                peer,
                Err(&RequestError::Unreachable {
                    peer,
                    reason: "refused".into(),
                }),
                now,
            );
        }
    }

    #[test]
    fn failing_and_dropped_peers_are_taken_back_and_banned_ones_never() {
        let mut scheduler = Scheduler::new(None);
        let [backing_off, dropped, banned] = [(); 3].map(|()| PeerId::random());
        for peer in [backing_off, dropped, banned] {
            scheduler.add_peer(Candidate {
                peer,
                complete: true,
                listed: true,
            });
        }
        failed(&mut scheduler, backing_off, 1);
        failed(&mut scheduler, dropped, MAX_FAILURES_PER_PEER);
        scheduler.ban(banned);
        assert_eq!(scheduler.failing(), HashSet::from([backing_off, dropped]));
        assert!(!scheduler.may_work(dropped));

        let back = scheduler
            .revive(backing_off, MAX_FAILURES_PER_PEER)
            .unwrap();
        assert!(!back.was_dropped, "its workers still run");
        let back = scheduler.revive(dropped, 1).unwrap();
        assert_eq!(
            back,
            Revived {
                complete: true,
                was_dropped: true
            }
        );
        assert!(scheduler.may_work(dropped));
        assert_eq!(
            scheduler.failing(),
            HashSet::from([dropped]),
            "one try left"
        );
        failed(&mut scheduler, dropped, 1);
        assert!(!scheduler.may_work(dropped), "one failure drops it again");
        assert_eq!(scheduler.revive(banned, MAX_FAILURES_PER_PEER), None);
    }

    #[test]
    fn a_peer_over_the_relay_cap_is_dropped_at_once_and_never_taken_back() {
        let mut scheduler = Scheduler::new(None);
        let peer = PeerId::random();
        scheduler.add_peer(Candidate {
            peer,
            complete: true,
            listed: true,
        });
        let capped = RequestError::OverRelayCap {
            peer,
            reason: "reachable only through a relay".into(),
        };
        scheduler.judge(peer, Err(&capped), Instant::now());
        assert!(!scheduler.may_work(peer));
        assert!(scheduler.failing().is_empty());
        assert!(scheduler.dropped_revivable().is_empty());
        assert_eq!(scheduler.revive(peer, MAX_FAILURES_PER_PEER), None);
        assert!(scheduler
            .last_failure()
            .unwrap()
            .contains("through a relay"));
    }
}
