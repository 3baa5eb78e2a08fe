//! The peer book: what this node has seen of other peers, across fetches, in the style
//! of lighthouse's peer scores.
//!
//! Services report what a peer did with a small vocabulary ([`PeerAction`]); the book
//! keeps a score per peer that decays towards zero (half-life [`SCORE_HALF_LIFE`]) and
//! bans a peer whose score falls below [`BAN_THRESHOLD`] for [`BAN_DURATION`]. The fetch
//! asks it who to try first and whom to leave out; the blob provider asks it whom to
//! refuse. Only bytes failing verification come near a ban at once: honest peers fail,
//! restart and time out, and that costs them rank, not access.
//!
//! Invariants: at most [`MAX_PEERS_KEPT`] peers are remembered (the least notable are
//! forgotten first), so peer ids that cost nothing cannot grow it without bound; time is
//! passed in, so every rule is tested without sleeping.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;

/// What a peer did, as services report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerAction {
    /// Sent bytes that failed verification: no honest peer does.
    SentBadData,
    /// A request failed (stream ended early, unreachable, lacked the data).
    Failed,
    /// A request delivered nothing for its idle timeout.
    TimedOut,
    /// A request was served in full.
    Served,
}

/// Score change for bytes failing verification: one such answer bans.
pub const BAD_DATA_PENALTY: f64 = -100.0;
/// Score change for a failed request.
pub const FAILURE_PENALTY: f64 = -1.0;
/// Score change for a request that timed out: worse than a failure, since it held a
/// stream (and perhaps a segment) for the whole timeout.
pub const TIMEOUT_PENALTY: f64 = -5.0;
/// Score change for a request served in full.
pub const SERVED_REWARD: f64 = 0.5;
/// Highest score: good service long ago does not buy tolerance for bad data now.
pub const MAX_SCORE: f64 = 20.0;
/// Below this a peer is banned.
pub const BAN_THRESHOLD: f64 = -50.0;
/// How long a ban lasts.
pub const BAN_DURATION: Duration = Duration::from_secs(3600);
/// Scores halve towards zero over this time: a peer that failed during a restart an
/// hour ago is as good as new.
pub const SCORE_HALF_LIFE: Duration = Duration::from_secs(600);
/// Most peers remembered.
pub const MAX_PEERS_KEPT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Entry {
    score: f64,
    at: Instant,
    banned_until: Option<Instant>,
}

impl Entry {
    fn score_at(&self, now: Instant) -> f64 {
        let halves =
            now.saturating_duration_since(self.at).as_secs_f64() / SCORE_HALF_LIFE.as_secs_f64();
        self.score * 0.5f64.powf(halves)
    }

    fn is_banned(&self, now: Instant) -> bool {
        self.banned_until.is_some_and(|until| now < until)
    }
}

/// The peer book; cheap to clone, shared by the fetcher and the provider.
#[derive(Debug, Clone, Default)]
pub struct PeerBook {
    entries: Arc<Mutex<HashMap<PeerId, Entry>>>,
}

impl PeerBook {
    /// Records what `peer` did.
    pub fn report(&self, peer: PeerId, action: PeerAction, now: Instant) {
        let change = match action {
            PeerAction::SentBadData => BAD_DATA_PENALTY,
            PeerAction::Failed => FAILURE_PENALTY,
            PeerAction::TimedOut => TIMEOUT_PENALTY,
            PeerAction::Served => SERVED_REWARD,
        };
        let mut entries = self.lock();
        if !entries.contains_key(&peer) && entries.len() >= MAX_PEERS_KEPT {
            forget_least_notable(&mut entries, now);
        }
        let entry = entries.entry(peer).or_insert(Entry {
            score: 0.0,
            at: now,
            banned_until: None,
        });
        entry.score = (entry.score_at(now) + change).min(MAX_SCORE);
        entry.at = now;
        if entry.score <= BAN_THRESHOLD && !entry.is_banned(now) {
            tracing::debug!(%peer, score = entry.score, "banning peer");
            entry.banned_until = Some(now + BAN_DURATION);
        }
    }

    /// Whether `peer` is banned now.
    pub fn is_banned(&self, peer: &PeerId, now: Instant) -> bool {
        self.lock().get(peer).is_some_and(|e| e.is_banned(now))
    }

    /// `peer`'s score now (0 for peers never seen).
    pub fn score(&self, peer: &PeerId, now: Instant) -> f64 {
        self.lock().get(peer).map_or(0.0, |e| e.score_at(now))
    }

    /// Sorts `peers` best first.
    pub fn rank(&self, peers: &mut [PeerId], now: Instant) {
        let entries = self.lock();
        let score = |peer: &PeerId| entries.get(peer).map_or(0.0, |e| e.score_at(now));
        peers.sort_by(|a, b| score(b).total_cmp(&score(a)));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Forgets the peer whose memory matters least: not banned, score nearest zero.
fn forget_least_notable(entries: &mut HashMap<PeerId, Entry>, now: Instant) {
    let least = entries
        .iter()
        .min_by(|(_, a), (_, b)| {
            let weight = |e: &Entry| {
                if e.is_banned(now) {
                    f64::INFINITY
                } else {
                    e.score_at(now).abs()
                }
            };
            weight(a).total_cmp(&weight(b))
        })
        .map(|(peer, _)| *peer);
    if let Some(peer) = least {
        entries.remove(&peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_data_bans_at_once_and_the_ban_ends() {
        let book = PeerBook::default();
        let now = Instant::now();
        let liar = PeerId::random();
        book.report(liar, PeerAction::SentBadData, now);
        assert!(book.is_banned(&liar, now));
        assert!(book.is_banned(&liar, now + BAN_DURATION - Duration::from_secs(1)));
        assert!(!book.is_banned(&liar, now + BAN_DURATION));
    }

    #[test]
    fn an_honest_peer_that_restarts_loses_rank_not_access() {
        let book = PeerBook::default();
        let now = Instant::now();
        let (restarting, steady) = (PeerId::random(), PeerId::random());
        for i in 0..20 {
            book.report(restarting, PeerAction::Failed, now + Duration::from_secs(i));
            book.report(steady, PeerAction::Served, now + Duration::from_secs(i));
        }
        book.report(
            restarting,
            PeerAction::TimedOut,
            now + Duration::from_secs(20),
        );
        let later = now + Duration::from_secs(21);
        assert!(!book.is_banned(&restarting, later));
        let mut peers = vec![restarting, steady];
        book.rank(&mut peers, later);
        assert_eq!(peers, vec![steady, restarting]);
        // An hour on, the failures are all but forgotten.
        let hour = later + Duration::from_secs(3600);
        assert!(book.score(&restarting, hour).abs() < 1.0);
    }

    #[test]
    fn the_book_stays_bounded_and_keeps_bans() {
        let book = PeerBook::default();
        let now = Instant::now();
        let liar = PeerId::random();
        book.report(liar, PeerAction::SentBadData, now);
        for _ in 0..MAX_PEERS_KEPT + 100 {
            book.report(PeerId::random(), PeerAction::Failed, now);
        }
        assert_eq!(book.lock().len(), MAX_PEERS_KEPT);
        assert!(
            book.is_banned(&liar, now),
            "a ban outlives cheap identities"
        );
    }
}
