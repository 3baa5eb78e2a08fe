//! What one fetch knows of one peer: what it holds, how its requests went, and how often
//! it is asked what it holds. Owned by the fetch's scheduler.

use std::collections::HashMap;
use std::time::Duration;

use iroh_blobs::protocol::ChunkRanges;
use iroh_blobs::Hash;
use tokio::time::Instant;

use super::plan::WorkItem;

/// How soon a new partial peer is asked again what it holds; each answer with nothing
/// new doubles the wait, up to [`MAX_ASK_INTERVAL`].
pub const FIRST_ASK_INTERVAL: Duration = Duration::from_millis(500);
/// How soon a partial peer whose holdings grew is asked again: at once, nearly, since a
/// peer that holds much (a seeder the DHT does not list yet) is asked about a few blobs
/// at a time.
pub const GREW_ASK_INTERVAL: Duration = Duration::from_millis(50);
/// Longest wait between asking a partial peer what it holds.
pub const MAX_ASK_INTERVAL: Duration = Duration::from_secs(8);

/// Parallel streams per peer: keeps a peer's link busy across request gaps. Measured
/// on loopback (1 GiB, one seeder): 2 streams 5.2 s and 7.3 CPU-s, 4 streams 4.5 s,
/// 8 streams 4.25 s and 6.3 CPU-s; fewer gaps also mean fewer wake-ups.
pub const STREAMS_PER_PEER: usize = 8;
/// Requests a fetch first sends at once to a peer that holds everything. More follow
/// while each runs fast: a seeder that many fetchers share (its upload divided among
/// them all) then serves each a piece or two at a time, which completes and can be
/// traded on, instead of dozens of pieces each crawling in and most sent twice.
pub const FIRST_STREAMS_TO_COMPLETE: usize = 1;
/// A request to a complete peer that ran at least this fast (bytes per second) earns it
/// one more request at once, up to [`STREAMS_PER_PEER`]...
pub const FAST_REQUEST_RATE: f64 = 2.0 * 1024.0 * 1024.0;
/// ...and one slower than this costs it one (down to one).
pub const SLOW_REQUEST_RATE: f64 = 512.0 * 1024.0;
/// Requests that moved fewer bytes than this tell nothing of the peer's rate.
const RATE_SAMPLE_BYTES: u64 = 64 * 1024;

/// What one peer is known to hold, and how it has done.
#[derive(Debug)]
pub struct PeerState {
    /// Listed as holding everything.
    pub complete: bool,
    /// Per blob, the chunk ranges it said it holds (partial peers only).
    pub have: HashMap<Hash, ChunkRanges>,
    /// When it was last asked what it holds.
    pub asked_at: Option<Instant>,
    /// How long to wait before asking again.
    pub ask_every: Duration,
    /// One of its workers is asking it now.
    pub asking: bool,
    /// Failures in a row.
    pub failures: u32,
    /// When it may be tried again.
    pub retry_at: Option<Instant>,
    /// Requests it is serving for this fetch now.
    pub in_flight: usize,
    /// Requests it may serve at once (complete peers; partial ones serve what they hold).
    pub streams_allowed: usize,
}

impl PeerState {
    /// A peer just met; `complete` if it is listed as holding everything, then first
    /// allowed `first_streams` requests at once.
    pub fn new(complete: bool, first_streams: usize) -> Self {
        Self {
            complete,
            have: HashMap::new(),
            asked_at: None,
            ask_every: FIRST_ASK_INTERVAL,
            asking: false,
            failures: 0,
            retry_at: None,
            in_flight: 0,
            streams_allowed: first_streams,
        }
    }

    /// Whether it may take one more request now.
    pub fn has_room(&self) -> bool {
        !self.complete || self.in_flight < self.streams_allowed
    }

    /// Counts a request to it that ended, having moved `bytes` in `took`: a fast one lets
    /// it serve one more at once (up to [`STREAMS_PER_PEER`]), a slow one one fewer.
    pub fn request_done(&mut self, bytes: u64, took: Duration) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if !self.complete || bytes < RATE_SAMPLE_BYTES {
            return;
        }
        let rate = bytes as f64 / took.as_secs_f64().max(1e-3);
        if rate >= FAST_REQUEST_RATE {
            self.streams_allowed = self.streams_allowed.saturating_add(1).min(STREAMS_PER_PEER);
        } else if rate < SLOW_REQUEST_RATE {
            self.streams_allowed = self.streams_allowed.saturating_sub(1).max(1);
        }
    }

    /// The part of `item` this peer can serve.
    pub fn can_serve(&self, item: &WorkItem) -> Option<ChunkRanges> {
        if self.complete {
            return Some(item.ranges.clone());
        }
        let have = self.have.get(&item.hash)?;
        let part = &item.ranges & have;
        (!part.is_empty()).then_some(part)
    }
}
