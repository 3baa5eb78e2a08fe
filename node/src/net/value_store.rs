//! The DHT's value records: signed name records, catalog pages and directories, kept
//! only once checked, and bounded.
//!
//! A record is kept only if [`DhtRecord::check`] accepts it under the key it came with
//! (size cap, type, signature, rules, key derived from its contents) and its sequence
//! is at least that of the record already held under the key: an older record replayed
//! never replaces a newer one. Records other peers send are capped per IP address
//! ([`MAX_VALUES_PER_IP`]) and in all ([`MAX_REMOTE_VALUES`]); this node's own records
//! (what it publishes and re-puts) have their own cap, so no flood can stop it
//! publishing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use libp2p::kad::{Record, RecordKey};
use seedbank_protocol::{DhtRecord, RecordError};

use super::tally::decrement;

/// Most value records other peers may have this node keep.
pub const MAX_REMOTE_VALUES: usize = 16_384;
/// Most value records kept for the peers behind one IP address.
pub const MAX_VALUES_PER_IP: usize = 1_024;
/// Most value records this node keeps of its own.
pub const MAX_OWN_VALUES: usize = 65_536;

/// Why a value record was not kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueRefusal {
    /// It is not a valid record for its key.
    #[error("{0}")]
    Invalid(#[from] RecordError),
    /// A record with a higher sequence is held.
    #[error("sequence {offered} is older than the {held} held")]
    Stale {
        /// The sequence offered.
        offered: u64,
        /// The sequence held.
        held: u64,
    },
    /// The peers behind its IP have [`MAX_VALUES_PER_IP`] records here.
    #[error("the per-IP record quota is used up")]
    IpQuota,
    /// The store is full.
    #[error("the record store is full")]
    Full,
}

#[derive(Debug, Clone)]
struct HeldValue {
    record: Record,
    sequence: u64,
    /// Where a remote record came from; `None` for this node's own.
    ip: Option<IpAddr>,
    own: bool,
}

/// Checked value records.
#[derive(Debug, Default)]
pub struct ValueStore {
    held: HashMap<RecordKey, HeldValue>,
    remote: usize,
    own: usize,
    per_ip: HashMap<IpAddr, usize>,
}

impl ValueStore {
    /// The record under `key`, if any is held and unexpired.
    pub fn get(&self, key: &RecordKey, now: Instant) -> Option<&Record> {
        self.held
            .get(key)
            .map(|h| &h.record)
            .filter(|r| !r.is_expired(now))
    }

    /// Every record held.
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.held.values().map(|h| &h.record)
    }

    /// Records held for other peers now.
    pub fn remote_count(&self) -> usize {
        self.remote
    }

    /// Keeps `record` if it checks out: `own` for this node's own puts, else `ip` is
    /// where the sending peer connects from.
    pub fn put(
        &mut self,
        record: Record,
        own: bool,
        ip: Option<IpAddr>,
    ) -> Result<(), ValueRefusal> {
        let checked = DhtRecord::check(record.key.as_ref(), &record.value)?;
        let sequence = checked.sequence();
        if let Some(held) = self.held.get(&record.key) {
            if sequence < held.sequence {
                return Err(ValueRefusal::Stale {
                    offered: sequence,
                    held: held.sequence,
                });
            }
            if sequence == held.sequence && !own {
                // The same statement again (or a second one at the same sequence, which
                // only the publisher could sign): keep the first, refresh nothing.
                return Ok(());
            }
        }
        let ip = if own { None } else { ip };
        // Whose quota the record it replaces frees: this node's own, or an IP's.
        let replaced = self.held.get(&record.key).map(|h| (h.own, h.ip));
        let frees_own = replaced.is_some_and(|(own, _)| own);
        let frees_ip = replaced.and_then(|(_, ip)| ip);
        if own {
            if !frees_own && self.own >= MAX_OWN_VALUES {
                return Err(ValueRefusal::Full);
            }
        } else {
            let frees_remote = replaced.is_some_and(|(own, _)| !own);
            if let Some(ip) = ip {
                let used = self.per_ip.get(&ip).copied().unwrap_or(0);
                if used >= MAX_VALUES_PER_IP && frees_ip != Some(ip) {
                    return Err(ValueRefusal::IpQuota);
                }
            }
            if !frees_remote && self.remote >= MAX_REMOTE_VALUES {
                return Err(ValueRefusal::Full);
            }
        }
        if let Some(old) = self.held.remove(&record.key) {
            self.forget(&old);
        }
        if own {
            self.own += 1;
        } else {
            self.remote += 1;
            if let Some(ip) = ip {
                *self.per_ip.entry(ip).or_default() += 1;
            }
        }
        self.held.insert(
            record.key.clone(),
            HeldValue {
                record,
                sequence,
                ip,
                own,
            },
        );
        Ok(())
    }

    fn forget(&mut self, held: &HeldValue) {
        if held.own {
            self.own -= 1;
        } else {
            self.remote -= 1;
            if let Some(ip) = held.ip {
                decrement(&mut self.per_ip, &ip);
            }
        }
    }

    /// Drops the record under `key`.
    pub fn remove(&mut self, key: &RecordKey) {
        if let Some(held) = self.held.remove(key) {
            self.forget(&held);
        }
    }

    /// Drops every expired record. Returns how many went.
    pub fn remove_expired(&mut self, now: Instant) -> usize {
        let expired: Vec<RecordKey> = self
            .held
            .iter()
            .filter(|(_, h)| h.record.is_expired(now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in &expired {
            self.remove(key);
        }
        expired.len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use seedbank_protocol::name_record::name_key;
    use seedbank_protocol::{
        ArtifactKind, BlobHash, ContentId, NameRecord, PublisherSecret, Release, Signed,
    };

    use super::*;

    fn name_record(secret: &PublisherSecret, name: &str, sequence: u64) -> Record {
        let release = Release {
            root: ContentId(BlobHash([1; 32])),
            kind: ArtifactKind::Model,
            name: name.into(),
            revision: "v1".into(),
            licence: None,
            card: None,
            tags: vec![],
            parent: None,
            size: 1,
            files: 1,
            published_at: 0,
        };
        let record = Signed::sign(
            NameRecord {
                name: name.into(),
                sequence,
                latest: Signed::sign(release, secret).unwrap(),
                earlier: vec![],
            },
            secret,
        )
        .unwrap();
        Record::new(
            RecordKey::new(&name_key(&secret.public(), name)),
            record.encode(),
        )
    }

    const PEER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9)));

    #[test]
    fn newer_records_replace_older_and_replays_are_refused() {
        let alice = PublisherSecret::from_seed([1; 32]);
        let mut store = ValueStore::default();
        store
            .put(name_record(&alice, "toy", 2), false, PEER)
            .unwrap();
        assert!(matches!(
            store.put(name_record(&alice, "toy", 1), false, PEER),
            Err(ValueRefusal::Stale {
                offered: 1,
                held: 2
            })
        ));
        store
            .put(name_record(&alice, "toy", 3), false, PEER)
            .unwrap();
        assert_eq!(store.remote_count(), 1);
    }

    #[test]
    fn a_record_under_someone_elses_key_or_with_a_bad_signature_is_refused() {
        let alice = PublisherSecret::from_seed([1; 32]);
        let mallory = PublisherSecret::from_seed([2; 32]);
        let mut store = ValueStore::default();
        let mut forged = name_record(&mallory, "toy", 9);
        forged.key = RecordKey::new(&name_key(&alice.public(), "toy"));
        assert!(matches!(
            store.put(forged, false, PEER),
            Err(ValueRefusal::Invalid(RecordError::WrongKey(_)))
        ));
        let mut tampered = name_record(&alice, "toy", 1);
        let last = tampered.value.len() - 1;
        tampered.value[last] ^= 1;
        assert!(matches!(
            store.put(tampered, false, PEER),
            Err(ValueRefusal::Invalid(RecordError::BadSignature { .. }))
        ));
        let mut oversized = name_record(&alice, "toy", 1);
        oversized.value = vec![0; 64 * 1024];
        assert!(store.put(oversized, false, PEER).is_err());
        assert_eq!(store.remote_count(), 0);
    }

    #[test]
    fn one_ip_cannot_fill_the_store() {
        let mut store = ValueStore::default();
        for i in 0..MAX_VALUES_PER_IP {
            let key = PublisherSecret::from_seed([(i % 251) as u8; 32]);
            store
                .put(name_record(&key, &format!("n{i}"), 1), false, PEER)
                .unwrap();
        }
        let extra = PublisherSecret::from_seed([255; 32]);
        assert_eq!(
            store.put(name_record(&extra, "one-more", 1), false, PEER),
            Err(ValueRefusal::IpQuota)
        );
        // This node's own records are never refused for what peers sent.
        store
            .put(name_record(&extra, "mine", 1), true, None)
            .unwrap();
    }
}
