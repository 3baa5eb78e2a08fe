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
}

impl PeerState {
    /// A peer just met; `complete` if it is listed as holding everything.
    pub fn new(complete: bool) -> Self {
        Self {
            complete,
            have: HashMap::new(),
            asked_at: None,
            ask_every: FIRST_ASK_INTERVAL,
            asking: false,
            failures: 0,
            retry_at: None,
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
