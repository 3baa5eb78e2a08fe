//! Control-API types for denylists: publishing one, subscribing to one, and what a node
//! says about an artifact a list it follows names.

use serde::{Deserialize, Serialize};

use crate::denylist::DenyEntry;
use crate::{ContentId, PublisherKey};

/// Why this node refuses an artifact: one list that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// The list as this node names it: `ALIAS/NAME` for a trusted publisher or one of
    /// its own keys, else `KEY/NAME`.
    pub list: String,
    /// The list's publisher.
    pub publisher: PublisherKey,
    /// The reason the list gives, if any.
    pub reason: Option<String>,
}

/// `POST /v1/denylists/publish`: publish a new revision of a denylist signed by one of
/// this node's keys. The new revision holds the latest revision's entries (unless
/// `replace`), less `remove`, plus `entries`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenylistPublishRequest {
    /// The name to publish the list under.
    pub name: String,
    /// Artifacts to list, each with its own reason or none.
    #[serde(default)]
    pub entries: Vec<DenyEntry>,
    /// Artifacts to take off the list.
    #[serde(default)]
    pub remove: Vec<ContentId>,
    /// Start afresh: the new revision holds `entries` only.
    #[serde(default)]
    pub replace: bool,
    /// Alias of the key to sign with; the node key when `None`.
    pub key: Option<String>,
}

/// What `denylist publish` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenylistPublishReport {
    /// `KEY/NAME`, what subscribers subscribe to.
    pub list: String,
    /// The signing key.
    pub publisher: PublisherKey,
    /// The list's name.
    pub name: String,
    /// The new revision's number (also its revision label, `r<N>`).
    pub revision: u64,
    /// The artifact holding it.
    pub root: ContentId,
    /// Entries it holds.
    pub entries: u64,
    /// Entries new in this revision.
    pub added: u64,
    /// Entries the previous revision had and this one does not.
    pub removed: u64,
    /// The name record's sequence number.
    pub sequence: u64,
}

/// `POST /v1/denylists`: subscribe to a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenylistSubscribeRequest {
    /// `PUBLISHER/NAME`, where the publisher is a trusted alias, one of this node's own
    /// keys, or the key of either.
    pub list: String,
}

/// One subscription, as `denylist list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenylistSubscription {
    /// The list as this node names it (see [`Denial::list`]).
    pub list: String,
    /// Its publisher.
    pub publisher: PublisherKey,
    /// Its name.
    pub name: String,
    /// The revision in force, once one was read.
    pub revision: Option<u64>,
    /// The artifact holding that revision.
    pub root: Option<ContentId>,
    /// Artifacts it lists now.
    pub entries: u64,
    /// When this node subscribed, seconds since the Unix epoch.
    pub subscribed_at: u64,
    /// When a refresh last succeeded.
    pub last_refresh: Option<u64>,
    /// When a refresh was last tried.
    pub last_attempt: Option<u64>,
    /// Why the last refresh failed (the entries read before stay in force), if it did.
    pub last_error: Option<String>,
}

/// `POST /v1/denylists/refresh`: what a refresh of every subscription found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenylistRefreshReport {
    /// Every subscription afterwards.
    pub subscriptions: Vec<DenylistSubscription>,
    /// Artifacts denied now, over all lists.
    pub denied: u64,
}
