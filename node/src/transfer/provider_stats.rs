//! What the blob provider did with incoming streams since the node started, for
//! `/metrics`: streams served, refused (banned peer, every slot busy) and closed by the
//! slot table (no request in time, idle, evicted for a newcomer).
//!
//! Owned by the provider task and its slot table, read by the control API; counters
//! only grow.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Why a stream was closed by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// It sent nothing within the provider's request deadline.
    NoRequest,
    /// It moved nothing for the provider's send idle timeout.
    Idle,
    /// It was the longest idle when a newcomer needed its slot.
    Evicted,
}

/// The provider's counters. Cheap to clone; clones share them.
#[derive(Debug, Clone, Default)]
pub struct ProviderStats {
    counters: Arc<Counters>,
}

#[derive(Debug, Default)]
struct Counters {
    served: AtomicU64,
    refused_banned: AtomicU64,
    refused_busy: AtomicU64,
    refused_licence: AtomicU64,
    refused_denied: AtomicU64,
    closed_no_request: AtomicU64,
    closed_idle: AtomicU64,
    closed_evicted: AtomicU64,
}

/// A reading of [`ProviderStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProviderCounts {
    /// Streams admitted and served.
    pub served: u64,
    /// Streams of banned peers, closed unanswered.
    pub refused_banned: u64,
    /// Streams that found every slot they could use busy.
    pub refused_busy: u64,
    /// Requests for blobs of artifacts under a licence the node does not seed.
    pub refused_licence: u64,
    /// Requests for blobs of artifacts a denylist the node follows names.
    pub refused_denied: u64,
    /// Admitted streams closed for sending no request within the deadline.
    pub closed_no_request: u64,
    /// Admitted streams closed for moving no byte too long.
    pub closed_idle: u64,
    /// Admitted streams closed to make room for a newcomer.
    pub closed_evicted: u64,
}

impl ProviderStats {
    /// Counts a stream admitted.
    pub fn served(&self) {
        self.counters.served.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream of a banned peer refused.
    pub fn refused_banned(&self) {
        self.counters.refused_banned.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a stream refused because every slot was busy.
    pub fn refused_busy(&self) {
        self.counters.refused_busy.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused because the node does not seed the blob's licence.
    pub fn refused_licence(&self) {
        self.counters
            .refused_licence
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request refused because a denylist the node follows names the blob's
    /// artifact.
    pub fn refused_denied(&self) {
        self.counters.refused_denied.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an admitted stream the slot table closed.
    pub fn closed(&self, reason: CloseReason) {
        let counter = match reason {
            CloseReason::NoRequest => &self.counters.closed_no_request,
            CloseReason::Idle => &self.counters.closed_idle,
            CloseReason::Evicted => &self.counters.closed_evicted,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The counts now.
    pub fn counts(&self) -> ProviderCounts {
        let c = &self.counters;
        ProviderCounts {
            served: c.served.load(Ordering::Relaxed),
            refused_banned: c.refused_banned.load(Ordering::Relaxed),
            refused_busy: c.refused_busy.load(Ordering::Relaxed),
            refused_licence: c.refused_licence.load(Ordering::Relaxed),
            refused_denied: c.refused_denied.load(Ordering::Relaxed),
            closed_no_request: c.closed_no_request.load(Ordering::Relaxed),
            closed_idle: c.closed_idle.load(Ordering::Relaxed),
            closed_evicted: c.closed_evicted.load(Ordering::Relaxed),
        }
    }
}
