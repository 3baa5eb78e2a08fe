//! What preservation remembers across restarts, in sled: the follows (and what each
//! keeps and watches) and the last spot checks of every artifact kept or watched.

use seedbank_protocol::preserve_api::PeerCheck;
use seedbank_protocol::{ContentId, PublisherKey};
use serde::{Deserialize, Serialize};

use super::follow::FollowTarget;
use crate::error::NodeResult;
use crate::library::meta::{decode, encode};

/// A collection member a follow watches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedMember {
    /// The member.
    pub root: ContentId,
    /// Copies it should have.
    pub target: u32,
    /// Its name in the collection.
    pub name: Option<String>,
    /// Its licence, as the collection states it.
    pub licence: Option<String>,
}

/// One follow and what it found at its last check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FollowRecord {
    /// The publisher.
    pub publisher: PublisherKey,
    /// The name; `None` for every name of the publisher.
    pub name: Option<String>,
    /// Copies wanted of what it keeps.
    pub replicas: u32,
    /// When it was added, seconds since the Unix epoch.
    pub added_at: u64,
    /// When the publisher's records were last read.
    pub checked_at: Option<u64>,
    /// What went wrong at the last check.
    pub last_error: Option<String>,
    /// Latest releases it keeps (fetched and pinned here).
    pub kept: Vec<ContentId>,
    /// Collection members it watches.
    pub watched: Vec<WatchedMember>,
}

impl FollowRecord {
    /// `PUBLISHER` or `PUBLISHER/NAME`, with the key's text form.
    pub fn target(&self) -> String {
        self.follow_target().text()
    }

    /// What it follows.
    pub fn follow_target(&self) -> FollowTarget {
        FollowTarget {
            publisher: self.publisher,
            name: self.name.clone(),
        }
    }
}

/// What one provider answered to a spot check, as stored (the API's [`PeerCheck`]
/// skips empty fields, which postcard cannot read back).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerOutcome {
    /// The provider's peer id.
    pub peer: String,
    /// Whether its range verified.
    pub verified: bool,
    /// Why not.
    pub error: Option<String>,
    /// The network it answered from (IPv4 /24, IPv6 /48), when known.
    pub network: Option<String>,
}

impl From<&PeerOutcome> for PeerCheck {
    fn from(outcome: &PeerOutcome) -> Self {
        PeerCheck {
            peer: outcome.peer.clone(),
            verified: outcome.verified,
            error: outcome.error.clone(),
            network: outcome.network.clone(),
        }
    }
}

/// The last spot checks of one artifact's providers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthRecord {
    /// When, seconds since the Unix epoch.
    pub checked_at: u64,
    /// Distinct providers the DHT listed, this node included if it was listed.
    pub providers: u32,
    /// Whether this node held it complete then.
    pub held_here: bool,
    /// What each other provider answered.
    pub peers: Vec<PeerOutcome>,
}

impl HealthRecord {
    /// Copies that proved they exist: this node's own, and one per network from which a
    /// provider passed.
    pub fn verified(&self) -> u32 {
        u32::from(self.held_here) + self.verified_elsewhere()
    }

    /// Networks (IPv4 /24, IPv6 /48) from which another provider passed its spot check;
    /// a provider whose network is not known counts for nothing.
    pub fn verified_elsewhere(&self) -> u32 {
        let networks: std::collections::HashSet<&str> = self
            .peers
            .iter()
            .filter(|p| p.verified)
            .filter_map(|p| p.network.as_deref())
            .collect();
        networks.len() as u32
    }

    /// Other providers that passed, however many share a network.
    pub fn verified_peers_elsewhere(&self) -> u32 {
        self.peers.iter().filter(|p| p.verified).count() as u32
    }

    /// Whether these checks are `max_age` seconds old or more at `now`.
    pub fn is_stale(&self, now: u64, max_age: u64) -> bool {
        now.saturating_sub(self.checked_at) >= max_age
    }
}

/// Checks in a row that found no provider sending an artifact's manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// How many checks in a row failed.
    pub failures: u32,
    /// When the last one did, seconds since the Unix epoch.
    pub last: u64,
}

/// The longest a keeper waits between checks of an unreachable artifact, in
/// `health_interval`s: the wait doubles with each failed check up to this.
pub const MAX_UNREACHABLE_BACKOFF: u64 = 16;

impl Unreachable {
    /// Whether a keeper round at `now` checks it again, when checks are due every
    /// `interval` seconds: after `interval` × 2^(failures − 1), at most
    /// [`MAX_UNREACHABLE_BACKOFF`] × `interval`.
    pub fn is_due(&self, now: u64, interval: u64) -> bool {
        let factor = 1u64
            .checked_shl(self.failures.saturating_sub(1))
            .unwrap_or(u64::MAX)
            .min(MAX_UNREACHABLE_BACKOFF);
        now.saturating_sub(self.last) >= interval.saturating_mul(factor)
    }
}

/// The trees of preservation.
#[derive(Debug, Clone)]
pub struct PreserveBook {
    follows: sled::Tree,
    health: sled::Tree,
    unreachable: sled::Tree,
}

impl PreserveBook {
    /// Its trees in the node's metadata database.
    pub fn open(meta: &crate::library::meta::Meta) -> NodeResult<Self> {
        Ok(Self {
            follows: meta.tree("follows")?,
            health: meta.tree("health")?,
            unreachable: meta.tree("unreachable")?,
        })
    }

    /// Saves a follow under its target.
    pub fn put_follow(&self, record: &FollowRecord) -> NodeResult<()> {
        self.follows
            .insert(record.target().as_bytes(), encode(record)?)?;
        Ok(())
    }

    /// Removes a follow; whether there was one.
    pub fn remove_follow(&self, target: &str) -> NodeResult<bool> {
        Ok(self.follows.remove(target.as_bytes())?.is_some())
    }

    /// The follow of `target`.
    pub fn follow(&self, target: &str) -> NodeResult<Option<FollowRecord>> {
        self.follows
            .get(target.as_bytes())?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every follow, by target.
    pub fn follows(&self) -> NodeResult<Vec<FollowRecord>> {
        self.follows.iter().map(|item| decode(&item?.1)).collect()
    }

    /// Saves the checks of `root`.
    pub fn put_health(&self, root: ContentId, record: &HealthRecord) -> NodeResult<()> {
        self.health.insert(root.hash().0, encode(record)?)?;
        Ok(())
    }

    /// The last checks of `root`. A record in an older form is not read: checks are
    /// made again, and the record replaced.
    pub fn health(&self, root: ContentId) -> NodeResult<Option<HealthRecord>> {
        Ok(self
            .health
            .get(root.hash().0)?
            .and_then(|bytes| decode(&bytes).ok()))
    }

    /// Forgets the checks of `root` (it is neither kept nor watched any more).
    pub fn forget_health(&self, root: ContentId) -> NodeResult<()> {
        self.health.remove(root.hash().0)?;
        self.unreachable.remove(root.hash().0)?;
        Ok(())
    }

    /// Notes that a check of `root` at `now` found no provider; returns the tally.
    pub fn note_unreachable(&self, root: ContentId, now: u64) -> NodeResult<Unreachable> {
        let failures = self.unreachable(root)?.map_or(0, |u| u.failures);
        let tally = Unreachable {
            failures: failures.saturating_add(1),
            last: now,
        };
        self.unreachable.insert(root.hash().0, encode(&tally)?)?;
        Ok(tally)
    }

    /// Notes that a check of `root` reached a provider.
    pub fn note_reachable(&self, root: ContentId) -> NodeResult<()> {
        self.unreachable.remove(root.hash().0)?;
        Ok(())
    }

    /// The failed checks in a row of `root`, if its last check failed.
    pub fn unreachable(&self, root: ContentId) -> NodeResult<Option<Unreachable>> {
        Ok(self
            .unreachable
            .get(root.hash().0)?
            .and_then(|bytes| decode(&bytes).ok()))
    }
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::BlobHash;

    use super::*;

    #[test]
    fn an_unreachable_artifact_waits_twice_as_long_after_each_failed_check() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::library::meta::Meta::open(dir.path()).unwrap();
        let book = PreserveBook::open(&db).unwrap();
        let root = ContentId(BlobHash([7; 32]));
        let hour = 3600;
        let first = book.note_unreachable(root, 1000).unwrap();
        assert!(!first.is_due(1000 + hour - 1, hour));
        assert!(first.is_due(1000 + hour, hour));
        book.note_unreachable(root, 5000).unwrap();
        let third = book.note_unreachable(root, 9000).unwrap();
        assert_eq!(third.failures, 3);
        assert!(!third.is_due(9000 + 4 * hour - 1, hour));
        assert!(third.is_due(9000 + 4 * hour, hour));
        let many = Unreachable {
            failures: 200,
            last: 0,
        };
        assert!(
            many.is_due(MAX_UNREACHABLE_BACKOFF * hour, hour),
            "the wait is capped"
        );
        book.note_reachable(root).unwrap();
        assert!(book.unreachable(root).unwrap().is_none());
    }

    #[test]
    fn follows_and_checks_read_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::library::meta::Meta::open(dir.path()).unwrap();
        let book = PreserveBook::open(&db).unwrap();
        let root = ContentId::from_hash(BlobHash([7; 32]));
        let follow = FollowRecord {
            publisher: PublisherKey([1; 32]),
            name: Some("data".into()),
            replicas: 3,
            added_at: 10,
            checked_at: None,
            last_error: Some("no record".into()),
            kept: vec![root],
            watched: vec![WatchedMember {
                root,
                target: 4,
                name: None,
                licence: Some("MIT".into()),
            }],
        };
        book.put_follow(&follow).unwrap();
        assert_eq!(book.follow(&follow.target()).unwrap(), Some(follow.clone()));
        assert_eq!(book.follows().unwrap(), vec![follow.clone()]);
        let health = HealthRecord {
            checked_at: 20,
            providers: 3,
            held_here: true,
            peers: vec![
                PeerOutcome {
                    peer: "a".into(),
                    verified: true,
                    error: None,
                    network: Some("203.0.113.0/24".into()),
                },
                PeerOutcome {
                    peer: "b".into(),
                    verified: false,
                    error: Some("unreachable".into()),
                    network: None,
                },
            ],
        };
        book.put_health(root, &health).unwrap();
        let read = book.health(root).unwrap().unwrap();
        assert_eq!(read, health);
        assert_eq!(read.verified(), 2, "its own copy and one that passed");
        // Sybils in one network count once; a pass from an unknown network, not at all.
        let mut crowded = health.clone();
        for (i, network) in ["203.0.113.0/24", "203.0.113.0/24", "198.51.100.0/24"]
            .into_iter()
            .enumerate()
        {
            crowded.peers.push(PeerOutcome {
                peer: format!("sybil{i}"),
                verified: true,
                error: None,
                network: Some(network.into()),
            });
        }
        crowded.peers.push(PeerOutcome {
            peer: "unknown".into(),
            verified: true,
            error: None,
            network: None,
        });
        assert_eq!(
            crowded.verified(),
            3,
            "own, 203.0.113.0/24, 198.51.100.0/24"
        );
        assert_eq!(crowded.verified_peers_elsewhere(), 5);
        assert!(book.remove_follow(&follow.target()).unwrap());
        assert!(book.follows().unwrap().is_empty());
    }
}
