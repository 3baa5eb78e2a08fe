//! Bytes moved per peer, and the global rate limits on them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_speed_limit::Limiter;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};

/// Bytes exchanged with one peer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerBytes {
    /// Bytes this node sent to the peer.
    pub up: u64,
    /// Bytes this node received from the peer.
    pub down: u64,
}

/// Per-peer counters and the node's upload and download limiters. Cheap to clone.
#[derive(Clone)]
pub struct Traffic {
    counters: Arc<Mutex<HashMap<PeerId, PeerBytes>>>,
    upload: Limiter,
    download: Limiter,
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traffic").finish_non_exhaustive()
    }
}

fn limiter(bytes_per_second: Option<u64>) -> Limiter {
    Limiter::new(bytes_per_second.map_or(f64::INFINITY, |b| b as f64))
}

impl Traffic {
    /// Counters with the given limits in bytes per second (`None`: unlimited).
    pub fn new(upload_limit: Option<u64>, download_limit: Option<u64>) -> Self {
        Self {
            counters: Arc::default(),
            upload: limiter(upload_limit),
            download: limiter(download_limit),
        }
    }

    /// The limiter every upload shares.
    pub fn upload_limiter(&self) -> Limiter {
        self.upload.clone()
    }

    /// The limiter every download shares.
    pub fn download_limiter(&self) -> Limiter {
        self.download.clone()
    }

    /// Adds to a peer's counters.
    pub fn record(&self, peer: PeerId, up: u64, down: u64) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        let entry = counters.entry(peer).or_default();
        entry.up += up;
        entry.down += down;
    }

    /// Counters of every peer ever seen.
    pub fn snapshot(&self) -> HashMap<PeerId, PeerBytes> {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bytes received from all peers so far.
    pub fn total_down(&self) -> u64 {
        self.counters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(|b| b.down)
            .sum()
    }
}
