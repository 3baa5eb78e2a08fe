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
//! passed in, so every rule is tested without sleeping. The book outlives restarts:
//! [`PeerBook::snapshot`] and [`PeerBook::restore`] carry scores and bans across them in
//! wall-clock time, so a banned peer cannot clear its ban by waiting for a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};
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

/// One peer's entry as saved across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedPeer {
    /// The peer id's bytes.
    pub peer: Vec<u8>,
    /// Its score when saved.
    pub score: f64,
    /// When it was saved, seconds since the Unix epoch.
    pub saved_at: u64,
    /// When its ban ends, seconds since the Unix epoch (none: not banned).
    pub banned_until: Option<u64>,
}

/// The peer book; cheap to clone, shared by the fetcher and the provider.
#[derive(Debug, Clone, Default)]
pub struct PeerBook {
    entries: Arc<Mutex<HashMap<PeerId, Entry>>>,
    /// Bans imposed since the book was made (restored bans not counted), for `/metrics`.
    bans: Arc<AtomicU64>,
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
            self.bans.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Bans imposed since the node started.
    pub fn bans_since_start(&self) -> u64 {
        self.bans.load(Ordering::Relaxed)
    }

    /// Peers banned now (bans restored from the saved book included).
    pub fn banned_now(&self, now: Instant) -> usize {
        self.lock().values().filter(|e| e.is_banned(now)).count()
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

    /// Every notable entry (banned, or a score not yet decayed to nothing), for saving.
    /// `now` and `unix_now` are the same moment on the two clocks.
    pub fn snapshot(&self, now: Instant, unix_now: u64) -> Vec<SavedPeer> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.is_banned(now) || e.score_at(now).abs() >= 0.01)
            .map(|(peer, e)| SavedPeer {
                peer: peer.to_bytes(),
                score: e.score_at(now),
                saved_at: unix_now,
                banned_until: e
                    .banned_until
                    .filter(|_| e.is_banned(now))
                    .map(|until| unix_now + until.saturating_duration_since(now).as_secs()),
            })
            .collect()
    }

    /// A book holding what [`Self::snapshot`] saved: scores decayed over the time since
    /// (in wall-clock time), bans that have not ended. Unreadable entries are skipped, and
    /// at most [`MAX_PEERS_KEPT`] are taken.
    pub fn restore(saved: &[SavedPeer], now: Instant, unix_now: u64) -> Self {
        let mut entries = HashMap::new();
        for item in saved.iter().take(MAX_PEERS_KEPT) {
            let Ok(peer) = PeerId::from_bytes(&item.peer) else {
                continue;
            };
            if !item.score.is_finite() {
                continue;
            }
            let elapsed = Duration::from_secs(unix_now.saturating_sub(item.saved_at));
            let at = now.checked_sub(elapsed).unwrap_or(now);
            let banned_until = item
                .banned_until
                .filter(|until| *until > unix_now)
                .map(|until| now + Duration::from_secs(until - unix_now).min(BAN_DURATION));
            entries.insert(
                peer,
                Entry {
                    score: item.score.clamp(BAD_DATA_PENALTY * 2.0, MAX_SCORE),
                    at,
                    banned_until,
                },
            );
        }
        Self {
            entries: Arc::new(Mutex::new(entries)),
            bans: Arc::default(),
        }
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
        book.report(liar, PeerAction::SentBadData, now);
        assert_eq!(book.bans_since_start(), 1, "a banned peer is banned once");
        assert_eq!(book.banned_now(now), 1);
        assert_eq!(book.banned_now(now + BAN_DURATION), 0);
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
    fn bans_and_scores_survive_a_restart_in_wall_clock_time() {
        let book = PeerBook::default();
        let now = Instant::now();
        let (liar, slow) = (PeerId::random(), PeerId::random());
        book.report(liar, PeerAction::SentBadData, now);
        book.report(slow, PeerAction::TimedOut, now);
        book.report(
            PeerId::random(),
            PeerAction::Served,
            now - SCORE_HALF_LIFE * 40,
        );
        let saved = book.snapshot(now, 1_000_000);
        assert_eq!(saved.len(), 2, "forgotten peers are not saved: {saved:?}");

        // Restarted ten minutes later.
        let later = Instant::now();
        let restored = PeerBook::restore(&saved, later, 1_000_000 + 600);
        assert!(restored.is_banned(&liar, later));
        assert!(!restored.is_banned(&liar, later + BAN_DURATION - Duration::from_secs(599)));
        let score = restored.score(&slow, later);
        assert!((score - TIMEOUT_PENALTY / 2.0).abs() < 0.1, "{score}");

        // Restarted after the ban ended.
        let restored = PeerBook::restore(&saved, later, 1_000_000 + 7200);
        assert!(!restored.is_banned(&liar, later));
    }

    #[test]
    fn a_damaged_saved_book_restores_what_it_can() {
        let now = Instant::now();
        let good = PeerId::random();
        let saved = vec![
            SavedPeer {
                peer: vec![1, 2, 3],
                score: -10.0,
                saved_at: 5,
                banned_until: Some(u64::MAX),
            },
            SavedPeer {
                peer: good.to_bytes(),
                score: f64::NAN,
                saved_at: 5,
                banned_until: None,
            },
            SavedPeer {
                peer: good.to_bytes(),
                score: -60.0,
                saved_at: 5,
                banned_until: Some(u64::MAX),
            },
        ];
        let book = PeerBook::restore(&saved, now, 5);
        assert_eq!(book.lock().len(), 1);
        assert!(book.is_banned(&good, now));
        assert!(
            !book.is_banned(&good, now + BAN_DURATION),
            "a saved ban never outlasts one ban"
        );
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
