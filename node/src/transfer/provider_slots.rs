//! Who may hold one of the blob provider's stream slots, and for how long.
//!
//! Peer ids cost nothing, so slots are bounded per peer ([`MAX_STREAMS_PER_PEER`]), per
//! IP address ([`MAX_STREAMS_PER_IP`]) and in all ([`MAX_STREAMS`]). A stream must start
//! sending within [`REQUEST_DEADLINE`] of opening (an honest request is a few bytes, and
//! the answer starts at once or the stream ends), and must keep moving bytes: one that
//! moves nothing for [`SEND_IDLE_TIMEOUT`] is closed. When a newcomer finds a cap full,
//! the longest-idle stream under that cap is closed for it if it has been idle for
//! [`EVICTABLE_AFTER`]; only when every stream there is busy does the newcomer get the
//! busy answer. So streams held open and silent cannot keep honest fetchers out.
//!
//! Invariants: the table never holds more than the caps allow; every entry is removed
//! exactly once (when its stream ends, or when it is closed); time is passed in.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::provider_stats::{CloseReason, ProviderStats};

/// Most inbound blob streams served at once: bounds memory and file handles; fetchers
/// open a few streams per provider, so this serves dozens of peers concurrently.
pub const MAX_STREAMS: usize = 128;
/// Most inbound blob streams one peer may hold: a fetcher's
/// [`crate::transfer::fetch::workers::STREAMS_PER_PEER`], with room for the extra
/// streams of a widened fetch, questions about what this node holds and spot checks.
pub const MAX_STREAMS_PER_PEER: usize = 12;
/// Most inbound blob streams all peers behind one IP address may hold: identities are
/// free, addresses are not.
pub const MAX_STREAMS_PER_IP: usize = 32;
/// A stream that has sent nothing this long after opening is closed.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// A stream that has moved no byte for this long is closed: its reader stopped reading.
/// Twice the fetcher's own idle timeout, so an honest fetcher gives up first.
pub const SEND_IDLE_TIMEOUT: Duration = Duration::from_secs(20);
/// A stream idle this long may be closed to make room for a newcomer.
pub const EVICTABLE_AFTER: Duration = Duration::from_secs(2);

/// Bytes one stream has moved, updated by the stream as they pass.
#[derive(Debug, Default)]
pub struct StreamActivity {
    /// Bytes sent to the peer.
    pub sent: AtomicU64,
    /// Bytes received from the peer.
    pub received: AtomicU64,
}

impl StreamActivity {
    fn total(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// The answer to a new stream.
#[derive(Debug)]
pub enum Admission {
    /// Serve it: its slot id, its activity counters and its cancellation (cancelled
    /// when the provider closes it).
    Admitted {
        /// The slot.
        id: u64,
        /// Its counters.
        activity: Arc<StreamActivity>,
        /// Cancelled when the provider closes it.
        cancel: CancellationToken,
    },
    /// Every slot it could have is busy: answer busy.
    Busy,
}

#[derive(Debug)]
struct Slot {
    peer: PeerId,
    ip: Option<IpAddr>,
    opened: Instant,
    last_progress: Instant,
    seen: (u64, u64),
    activity: Arc<StreamActivity>,
    cancel: CancellationToken,
}

impl Slot {
    fn idle(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.last_progress)
    }
}

/// The provider's stream slots.
#[derive(Debug, Default)]
pub struct Slots {
    slots: HashMap<u64, Slot>,
    next_id: u64,
    stats: ProviderStats,
}

impl Slots {
    /// An empty table that counts the streams it closes in `stats`.
    pub fn counting_into(stats: ProviderStats) -> Self {
        Self {
            stats,
            ..Self::default()
        }
    }

    /// Streams held now.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no stream is held.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Decides about a new stream of `peer` from `ip`, closing the longest-idle stream
    /// under the first full cap if that makes room.
    pub fn admit(&mut self, peer: PeerId, ip: Option<IpAddr>, now: Instant) -> Admission {
        let of_peer = |s: &Slot| s.peer == peer;
        let of_ip = |s: &Slot| ip.is_some() && s.ip == ip;
        let any = |_: &Slot| true;
        let full_group: Option<&dyn Fn(&Slot) -> bool> =
            if self.count(of_peer) >= MAX_STREAMS_PER_PEER {
                Some(&of_peer)
            } else if self.count(of_ip) >= MAX_STREAMS_PER_IP {
                Some(&of_ip)
            } else if self.slots.len() >= MAX_STREAMS {
                Some(&any)
            } else {
                None
            };
        if let Some(group) = full_group {
            let victim = self
                .slots
                .iter()
                .filter(|(_, s)| group(s) && s.idle(now) >= EVICTABLE_AFTER)
                .max_by_key(|(_, s)| s.idle(now))
                .map(|(id, _)| *id);
            match victim {
                Some(id) => self.close(id, CloseReason::Evicted),
                None => return Admission::Busy,
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        let activity = Arc::new(StreamActivity::default());
        let cancel = CancellationToken::new();
        self.slots.insert(
            id,
            Slot {
                peer,
                ip,
                opened: now,
                last_progress: now,
                seen: (0, 0),
                activity: activity.clone(),
                cancel: cancel.clone(),
            },
        );
        Admission::Admitted {
            id,
            activity,
            cancel,
        }
    }

    /// Frees the slot of a stream that ended.
    pub fn release(&mut self, id: u64) {
        self.slots.remove(&id);
    }

    /// Notes which streams moved bytes since the last check, and closes those past
    /// [`REQUEST_DEADLINE`] or [`SEND_IDLE_TIMEOUT`]. Returns what it closed.
    pub fn check(&mut self, now: Instant) -> Vec<(PeerId, CloseReason)> {
        let mut expired = Vec::new();
        for (id, slot) in &mut self.slots {
            let moved = slot.activity.total();
            if moved != slot.seen {
                slot.seen = moved;
                slot.last_progress = now;
            }
            let sent_nothing = moved.0 == 0;
            if sent_nothing && now.saturating_duration_since(slot.opened) >= REQUEST_DEADLINE {
                expired.push((*id, slot.peer, CloseReason::NoRequest));
            } else if slot.idle(now) >= SEND_IDLE_TIMEOUT {
                expired.push((*id, slot.peer, CloseReason::Idle));
            }
        }
        expired
            .into_iter()
            .map(|(id, peer, reason)| {
                self.close(id, reason);
                (peer, reason)
            })
            .collect()
    }

    fn count(&self, belongs: impl Fn(&Slot) -> bool) -> usize {
        self.slots.values().filter(|s| belongs(s)).count()
    }

    fn close(&mut self, id: u64, reason: CloseReason) {
        if let Some(slot) = self.slots.remove(&id) {
            tracing::debug!(peer = %slot.peer, ?reason, "closing blob stream");
            self.stats.closed(reason);
            slot.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn admitted(admission: Admission) -> (u64, Arc<StreamActivity>, CancellationToken) {
        match admission {
            Admission::Admitted {
                id,
                activity,
                cancel,
            } => (id, activity, cancel),
            Admission::Busy => panic!("refused"),
        }
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn sybils_behind_one_address_get_one_addresses_share() {
        let mut slots = Slots::default();
        let now = Instant::now();
        let mut held = Vec::new();
        for _ in 0..16 {
            let sybil = PeerId::random();
            for _ in 0..8 {
                if let Admission::Admitted { cancel, .. } = slots.admit(sybil, ip(66), now) {
                    held.push(cancel);
                }
            }
        }
        assert_eq!(held.len(), MAX_STREAMS_PER_IP);
        let honest = PeerId::random();
        for _ in 0..MAX_STREAMS_PER_PEER {
            admitted(slots.admit(honest, ip(1), now));
        }
        assert!(matches!(slots.admit(honest, ip(1), now), Admission::Busy));
    }

    #[test]
    fn silent_streams_are_evicted_for_newcomers_and_busy_ones_are_not() {
        let mut slots = Slots::default();
        let now = Instant::now();
        let mut silent = Vec::new();
        for i in 0..MAX_STREAMS {
            let ip = Some(IpAddr::from([10, 0, (i / 256) as u8, i as u8]));
            silent.push(admitted(slots.admit(PeerId::random(), ip, now)));
        }
        // Right away, nobody is evictable: the newcomer hears "busy".
        assert!(matches!(
            slots.admit(PeerId::random(), ip(1), now),
            Admission::Busy
        ));
        // Later, all but the first have moved bytes; the first is evicted.
        let later = now + EVICTABLE_AFTER;
        for (_, activity, _) in &silent[1..] {
            activity.sent.fetch_add(1, Ordering::Relaxed);
        }
        slots.check(later);
        admitted(slots.admit(PeerId::random(), ip(1), later));
        assert!(silent[0].2.is_cancelled());
        assert!(silent[1..].iter().all(|(_, _, c)| !c.is_cancelled()));
        assert_eq!(slots.len(), MAX_STREAMS);
    }

    #[test]
    fn streams_that_never_send_or_stop_moving_are_closed() {
        let mut slots = Slots::default();
        let now = Instant::now();
        let (_, _, mute) = admitted(slots.admit(PeerId::random(), ip(1), now));
        let (_, serving, stalled) = admitted(slots.admit(PeerId::random(), ip(2), now));
        let (_, trickling, alive) = admitted(slots.admit(PeerId::random(), ip(3), now));
        serving.sent.fetch_add(100, Ordering::Relaxed);
        trickling.sent.fetch_add(1, Ordering::Relaxed);
        slots.check(now + Duration::from_secs(1));
        let closed = slots.check(now + REQUEST_DEADLINE);
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].1, CloseReason::NoRequest);
        assert!(mute.is_cancelled());
        // The trickling stream keeps moving; the stalled one stops at 100 bytes.
        let mut t = now + REQUEST_DEADLINE;
        while t < now + Duration::from_secs(1) + SEND_IDLE_TIMEOUT {
            trickling.sent.fetch_add(1, Ordering::Relaxed);
            t += Duration::from_secs(5);
            slots.check(t);
        }
        assert!(stalled.is_cancelled());
        assert!(!alive.is_cancelled());
        assert_eq!(slots.len(), 1);
    }

    #[test]
    fn closed_streams_are_counted_by_reason() {
        let stats = ProviderStats::default();
        let mut slots = Slots::counting_into(stats.clone());
        let now = Instant::now();
        let peer = PeerId::random();
        for _ in 0..MAX_STREAMS_PER_PEER {
            admitted(slots.admit(peer, None, now));
        }
        let later = now + EVICTABLE_AFTER;
        admitted(slots.admit(peer, None, later));
        slots.check(later + REQUEST_DEADLINE);
        let counts = stats.counts();
        assert_eq!(counts.closed_evicted, 1);
        assert_eq!(counts.closed_no_request, MAX_STREAMS_PER_PEER as u64);
        assert_eq!(counts.closed_idle, 0);
    }

    #[test]
    fn a_released_slot_is_free_again() {
        let mut slots = Slots::default();
        let now = Instant::now();
        let peer = PeerId::random();
        let ids: Vec<u64> = (0..MAX_STREAMS_PER_PEER)
            .map(|_| admitted(slots.admit(peer, None, now)).0)
            .collect();
        assert!(matches!(slots.admit(peer, None, now), Admission::Busy));
        slots.release(ids[3]);
        admitted(slots.admit(peer, None, now));
        assert!(!slots.is_empty());
    }
}
