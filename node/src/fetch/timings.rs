//! How patient fetches are: lookups, rounds of asking for the root, retries.

use std::time::Duration;

/// How patient fetches are. The defaults are the daemon's; tests shorten them through
/// the config so that a fetch of something nobody has fails in a second, not in seven.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTimings {
    /// Longest a fetch looks for peers before it says nobody has the artifact (lookups
    /// at once, then after 1, 2, 4 s… within this total).
    pub lookup_patience: Duration,
    /// Wait before looking again when no candidate sent the root.
    pub root_round_wait: Duration,
    /// Wait before a background job's second try; doubles per try.
    pub retry_delay: Duration,
    /// How long a fetch started only for readers (the gateway) runs on once nobody
    /// reads it.
    pub reader_grace: Duration,
}

impl Default for FetchTimings {
    fn default() -> Self {
        Self {
            lookup_patience: Duration::from_secs(7),
            root_round_wait: Duration::from_secs(1),
            retry_delay: Duration::from_secs(5),
            reader_grace: Duration::from_secs(30),
        }
    }
}
