//! Control-API types of preservation: pins with replica targets, the health of what a
//! node keeps (copies the DHT lists and copies that proved they exist), follows of
//! publishers, names and collections, and publishing a collection.

use serde::{Deserialize, Serialize};

use crate::{ContentId, PublisherKey};

/// Query of `PUT /v1/pins/{ref}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinRequest {
    /// Copies on the network wanted (this one included); fetches the artifact first if
    /// it is not here.
    #[serde(default)]
    pub replicas: Option<u32>,
    /// A note on why it is kept.
    #[serde(default)]
    pub reason: Option<String>,
}

/// Query of `GET /v1/health`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthQuery {
    /// Spot-check every provider now instead of answering from the last checks.
    #[serde(default)]
    pub refresh: bool,
}

/// What one provider answered to a spot check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerCheck {
    /// The provider's peer id.
    pub peer: String,
    /// Whether it said it holds every file and sent random ranges across them that
    /// verified against their hashes.
    pub verified: bool,
    /// Why not, when it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The network it answered from (its IPv4 /24 or IPv6 /48), when known: providers in
    /// one network count as one copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
}

/// The copies of one artifact this node keeps or watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactHealth {
    /// The artifact.
    pub id: ContentId,
    /// Its name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Whether this node holds it complete.
    pub held_here: bool,
    /// Whether it is pinned here.
    pub pinned: bool,
    /// Copies wanted on the network, when a target is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_target: Option<u32>,
    /// Why this node keeps or watches it: `pinned`, or the follow that brought it.
    pub because: String,
    /// Distinct providers the DHT lists (this node included when it announces it).
    pub providers: u32,
    /// Copies that proved they exist, one per independent network location: this
    /// node's own complete copy, plus one for each IPv4 /24 or IPv6 /48 from which a
    /// provider answered a spot check with data that verified (one party easily holds
    /// many peer ids and many addresses of one network).
    pub verified: u32,
    /// Providers that passed, this node's own copy included, however many share a
    /// network (shown beside `verified`).
    #[serde(default)]
    pub verified_peers: u32,
    /// Whether `verified` is below `replica_target`.
    pub under_target: bool,
    /// When the providers were last checked, seconds since the Unix epoch; `None`
    /// before the first check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<u64>,
    /// What each provider answered at the last check.
    #[serde(default)]
    pub peers: Vec<PeerCheck>,
    /// Why `--refresh` could not check it this time (the figures above are then those
    /// of the last check, if any).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_error: Option<String>,
    /// Checks in a row, the latest included, that found no provider sending its
    /// manifest; 0 once one does. The keeper waits longer before each next try.
    #[serde(default)]
    pub failed_checks: u32,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Every pin and every watched collection member, fewest verified copies first.
    pub artifacts: Vec<ArtifactHealth>,
    /// How many are below their replica target.
    pub under_target: u32,
}

/// Body of `POST /v1/follows`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowRequest {
    /// `PUBLISHER` (every name it publishes) or `PUBLISHER/NAME`; the publisher is a key
    /// (`sbp1…`) or a trusted alias.
    pub target: String,
    /// Copies wanted on the network of what the follow keeps [default: 3].
    #[serde(default)]
    pub replicas: Option<u32>,
}

/// One follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowEntry {
    /// As the user gave it, with the publisher's key in place of an alias.
    pub target: String,
    /// The publisher.
    pub publisher: PublisherKey,
    /// The name followed; `None` for every name of the publisher.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Copies wanted on the network.
    pub replicas: u32,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: u64,
    /// When the publisher's records were last read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<u64>,
    /// What went wrong at the last check, if anything did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Artifacts kept here because of it.
    #[serde(default)]
    pub kept: Vec<ContentId>,
    /// Collection members it watches (and fetches when copies run low).
    #[serde(default)]
    pub watched: Vec<ContentId>,
}

/// `GET /v1/follows`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowList {
    /// Every follow, by target.
    pub follows: Vec<FollowEntry>,
    /// Bytes this node may fill with what follows bring (`preserve_budget`); `None`:
    /// no budget of its own (the disk and `max_storage` still bound it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<u64>,
    /// Bytes of artifacts kept because of follows.
    pub budget_used: u64,
}

/// Body of `POST /v1/collections`: publishes a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectionRequest {
    /// The name to publish it under.
    pub name: String,
    /// Its members: content ids or published names (resolved to their latest root now).
    pub members: Vec<String>,
    /// Copies each member should have [default: 3].
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Revision label [default: the time, so each publication is a new revision].
    #[serde(default)]
    pub revision: Option<String>,
    /// Alias of the key to sign with; the node key when `None`.
    #[serde(default)]
    pub key: Option<String>,
}
