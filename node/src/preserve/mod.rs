//! Preservation: keeping artifacts alive on the network after their first host goes.
//!
//! A pin can carry a replica target; [`health`] counts the copies that exist by
//! asking providers what they hold and spot-checking them ([`copy_proof`],
//! [`spot_check`]); follows ([`follow`]) keep the latest
//! releases of a publisher's names and watch the members of collections; the keeper
//! ([`keeper`], on a timer) fetches watched members whose verified copies
//! fell below their target, least-replicated first and within the disk budget
//! ([`plan`]). Everything it remembers is in sled ([`book`]).

pub mod book;
pub mod copy_proof;
pub mod follow;
pub mod health;
pub mod keeper;
pub mod plan;
pub mod service;
pub mod spot_check;

use std::time::Duration;

pub use book::{FollowRecord, HealthRecord, PreserveBook, WatchedMember};

/// Copies wanted when a follow or collection names no target.
pub const DEFAULT_REPLICAS: u32 = 3;

/// The pin reason of what a follow keeps: `follows PUBLISHER[/NAME]`.
pub const FOLLOW_REASON_PREFIX: &str = "follows ";

/// How a node preserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreserveOptions {
    /// Bytes that what follows bring may fill; `None`: no budget of its own.
    pub budget: Option<u64>,
    /// How often follows are checked for new releases and the keeper runs.
    pub follow_interval: Duration,
    /// How old the spot checks of an artifact may grow before they are made again.
    pub health_interval: Duration,
    /// Most repairs (fetches of under-replicated members) one round starts.
    pub repairs_per_round: usize,
    /// Longest random wait before a repair re-checks and fetches, so preservers that
    /// saw the same drop do not all fetch at once.
    pub repair_jitter: Duration,
    /// Run the keeper on its timer (the simulator drives rounds itself).
    pub keeper: bool,
}

impl Default for PreserveOptions {
    fn default() -> Self {
        Self {
            budget: None,
            follow_interval: Duration::from_secs(10 * 60),
            health_interval: Duration::from_secs(60 * 60),
            repairs_per_round: 2,
            repair_jitter: Duration::from_secs(30),
            keeper: true,
        }
    }
}

/// The pin reason of what the follow of `target` keeps.
pub fn follow_reason(target: &str) -> String {
    format!("{FOLLOW_REASON_PREFIX}{target}")
}
