//! Whether other nodes can reach this one, as `GET /v1/status` reports it.

use serde::{Deserialize, Serialize};

/// How other nodes reach this one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Reachability {
    /// Not known yet: no address has been checked from outside.
    #[default]
    Unknown,
    /// Listens only on loopback: reachable from this machine alone.
    LocalOnly,
    /// Reachable on an address of its own (a public listen address, or one another
    /// node dialled back).
    Public,
    /// Behind NAT, reachable through a port the router mapped for it.
    Mapped,
    /// Behind NAT, reachable through relays (and hole punching from there).
    Relayed,
    /// Behind NAT and reachable by nobody: it can fetch but not seed to others.
    BehindNat,
}

impl Reachability {
    /// The words `status` shows, with what the state means for seeding.
    pub fn describe(self) -> &'static str {
        match self {
            Reachability::Unknown => "unknown yet (no address checked from outside)",
            Reachability::LocalOnly => "this machine only (listening on loopback)",
            Reachability::Public => "public: other nodes reach this node directly",
            Reachability::Mapped => {
                "behind NAT, port mapped on the router: other nodes reach this node directly"
            }
            Reachability::Relayed => {
                "behind NAT, relayed: other nodes reach this node through relays and hole punching"
            }
            Reachability::BehindNat => {
                "behind NAT, unreachable: this node can fetch, but nobody can fetch from it"
            }
        }
    }
}

/// The reachability of this node and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ReachabilityStatus {
    /// The state.
    pub state: Reachability,
    /// What the state rests on, one fact per line (addresses confirmed and by whom,
    /// checks that failed, the router's answer).
    pub evidence: Vec<String>,
    /// Port mapping on the router: `off`, `searching`, `mapped …`, or why not.
    pub port_mapping: String,
    /// Relay service for others: `off`, `on`, or `waiting` until this node is public.
    pub relay_service: String,
    /// Relays holding a reservation for this node.
    pub relays: Vec<String>,
}
