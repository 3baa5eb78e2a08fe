//! The DHT's value records: signed name records, catalog pages and directories, kept
//! only once checked, and bounded.
//!
//! A record is kept only if [`DhtRecord::check`] accepts it under the key it came with
//! (size cap, type, signature, rules, key derived from its contents) and its sequence
//! is at least that of the record already held under the key: an older record replayed
//! never replaces a newer one. Records other peers send are capped per network
//! ([`MAX_VALUES_PER_NETWORK`]: an IPv4 /24 or IPv6 /48), in count
//! ([`MAX_REMOTE_VALUES`]) and in bytes ([`MAX_REMOTE_VALUE_BYTES`]). A full quota
//! makes way as the provider store's does: a record whose sender is no longer
//! connected goes first, else the one farthest from this node if the newcomer's key is
//! closer, so a flood that ends leaves room at once, not after the records' 48 hours.
//! This node's own records (what it publishes and re-puts) have their own cap, so no
//! flood can stop it publishing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use libp2p::kad::{KBucketKey, Record, RecordKey};
use libp2p::PeerId;
use seedbank_protocol::{DhtRecord, RecordError};

use super::ip_network::network_of;
use super::make_way::record_to_replace;
use super::tally::decrement;

/// Most value records other peers may have this node keep.
pub const MAX_REMOTE_VALUES: usize = 16_384;
/// Most bytes of value records other peers may have this node keep.
pub const MAX_REMOTE_VALUE_BYTES: usize = 32 * 1024 * 1024;
/// Most value records kept for the peers of one network (IPv4 /24, IPv6 /48).
pub const MAX_VALUES_PER_NETWORK: usize = 1_024;
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
    /// The peers of its network have [`MAX_VALUES_PER_NETWORK`] records here, none
    /// of which may give way to it.
    #[error("the record quota of the sender's network is used up")]
    NetworkQuota,
    /// The store is full, and nothing in it may give way.
    #[error("the record store is full")]
    Full,
}

#[derive(Debug, Clone)]
struct HeldValue {
    record: Record,
    sequence: u64,
    /// The network a remote record came from; `None` for this node's own.
    network: Option<IpAddr>,
    /// The peer that sent a remote record.
    sender: Option<PeerId>,
    own: bool,
}

/// Checked value records.
#[derive(Debug)]
pub struct ValueStore {
    held: HashMap<RecordKey, HeldValue>,
    remote: usize,
    remote_bytes: usize,
    own: usize,
    per_network: HashMap<IpAddr, usize>,
    /// This node's place in the key space, to measure keys against.
    local_key: KBucketKey<PeerId>,
}

impl ValueStore {
    /// An empty store for the node `local`.
    pub fn new(local: PeerId) -> Self {
        Self {
            held: HashMap::new(),
            remote: 0,
            remote_bytes: 0,
            own: 0,
            per_network: HashMap::new(),
            local_key: KBucketKey::from(local),
        }
    }

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

    /// Keeps `record`, one of this node's own, if it checks out.
    pub fn put_own(&mut self, record: Record) -> Result<(), ValueRefusal> {
        self.keep(record, None, None, |_| true)
    }

    /// Keeps a record `sender` sent from `ip`, if it checks out; `connected` says
    /// whether a peer is connected now.
    pub fn put_remote(
        &mut self,
        record: Record,
        sender: PeerId,
        ip: Option<IpAddr>,
        connected: impl Fn(&PeerId) -> bool,
    ) -> Result<(), ValueRefusal> {
        self.keep(record, Some(sender), ip, connected)
    }

    /// Keeps `record`: this node's own when `sender` is `None`.
    fn keep(
        &mut self,
        record: Record,
        sender: Option<PeerId>,
        ip: Option<IpAddr>,
        connected: impl Fn(&PeerId) -> bool,
    ) -> Result<(), ValueRefusal> {
        let own = sender.is_none();
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
        // The record it replaces gives its quota back first, and is put back if the
        // newcomer finds no room.
        let replaced = self.held.remove(&record.key);
        if let Some(old) = &replaced {
            self.forget(old);
        }
        let network = if own { None } else { ip.map(network_of) };
        let room = if own {
            if self.own < MAX_OWN_VALUES {
                Ok(())
            } else {
                Err(ValueRefusal::Full)
            }
        } else {
            self.make_room(&record, network, &connected)
        };
        if let Err(refusal) = room {
            if let Some(old) = replaced {
                self.remember(old);
            }
            return Err(refusal);
        }
        self.remember(HeldValue {
            record,
            sequence,
            network,
            sender,
            own,
        });
        Ok(())
    }

    /// Makes room for a remote `record` from `network` under the per-network, count and
    /// byte quotas, replacing what may give way.
    fn make_room(
        &mut self,
        record: &Record,
        network: Option<IpAddr>,
        connected: impl Fn(&PeerId) -> bool,
    ) -> Result<(), ValueRefusal> {
        if let Some(network) = network {
            while self.per_network.get(&network).copied().unwrap_or(0) >= MAX_VALUES_PER_NETWORK {
                self.make_way(&record.key, Some(network), &connected)
                    .ok_or(ValueRefusal::NetworkQuota)?;
            }
        }
        while self.remote >= MAX_REMOTE_VALUES
            || self.remote_bytes + record.value.len() > MAX_REMOTE_VALUE_BYTES
        {
            self.make_way(&record.key, None, &connected)
                .ok_or(ValueRefusal::Full)?;
        }
        Ok(())
    }

    /// Holds `held`, counting it against its quotas.
    fn remember(&mut self, held: HeldValue) {
        if held.own {
            self.own += 1;
        } else {
            self.remote += 1;
            self.remote_bytes += held.record.value.len();
            if let Some(network) = held.network {
                *self.per_network.entry(network).or_default() += 1;
            }
        }
        self.held.insert(held.record.key.clone(), held);
    }

    /// Drops one remote record (of `network`, or of any) for a newcomer under `key`:
    /// one whose sender is not connected, or else the farthest from this node if `key`
    /// is closer. Looks at [`super::make_way::REPLACEMENT_SAMPLE`] records at most; `None` when none of
    /// them gives way.
    fn make_way(
        &mut self,
        key: &RecordKey,
        network: Option<IpAddr>,
        connected: impl Fn(&PeerId) -> bool,
    ) -> Option<()> {
        let held = self
            .held
            .iter()
            .filter(|(_, h)| !h.own && (network.is_none() || h.network == network))
            .filter_map(|(key, h)| Some((key, h.sender?, key)));
        let victim = record_to_replace(held, &self.local_key, key, connected)?.clone();
        tracing::trace!("value record replaced to make way");
        self.remove(&victim);
        Some(())
    }

    fn forget(&mut self, held: &HeldValue) {
        if held.own {
            self.own -= 1;
        } else {
            self.remote -= 1;
            self.remote_bytes -= held.record.value.len();
            if let Some(network) = held.network {
                decrement(&mut self.per_network, &network);
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

    /// Keeps `record` as if a connected peer at [`PEER`] sent it.
    fn put_from_peer(store: &mut ValueStore, record: Record) -> Result<(), ValueRefusal> {
        store.put_remote(record, PeerId::random(), PEER, |_| true)
    }

    #[test]
    fn newer_records_replace_older_and_replays_are_refused() {
        let alice = PublisherSecret::from_seed([1; 32]);
        let mut store = ValueStore::new(PeerId::random());
        put_from_peer(&mut store, name_record(&alice, "toy", 2)).unwrap();
        assert!(matches!(
            put_from_peer(&mut store, name_record(&alice, "toy", 1)),
            Err(ValueRefusal::Stale {
                offered: 1,
                held: 2
            })
        ));
        put_from_peer(&mut store, name_record(&alice, "toy", 3)).unwrap();
        assert_eq!(store.remote_count(), 1);
    }

    #[test]
    fn a_record_under_someone_elses_key_or_with_a_bad_signature_is_refused() {
        let alice = PublisherSecret::from_seed([1; 32]);
        let mallory = PublisherSecret::from_seed([2; 32]);
        let mut store = ValueStore::new(PeerId::random());
        let mut forged = name_record(&mallory, "toy", 9);
        forged.key = RecordKey::new(&name_key(&alice.public(), "toy"));
        assert!(matches!(
            put_from_peer(&mut store, forged),
            Err(ValueRefusal::Invalid(RecordError::WrongKey(_)))
        ));
        let mut tampered = name_record(&alice, "toy", 1);
        let last = tampered.value.len() - 1;
        tampered.value[last] ^= 1;
        assert!(matches!(
            put_from_peer(&mut store, tampered),
            Err(ValueRefusal::Invalid(RecordError::BadSignature { .. }))
        ));
        let mut oversized = name_record(&alice, "toy", 1);
        oversized.value = vec![0; 64 * 1024];
        assert!(put_from_peer(&mut store, oversized).is_err());
        assert_eq!(store.remote_count(), 0);
    }

    #[test]
    fn one_network_cannot_fill_the_store_and_a_flood_that_ends_makes_way() {
        let mut store = ValueStore::new(PeerId::random());
        let sybil = PeerId::random();
        for i in 0..MAX_VALUES_PER_NETWORK {
            let key = PublisherSecret::from_seed([(i % 251) as u8; 32]);
            store
                .put_remote(name_record(&key, &format!("n{i}"), 1), sybil, PEER, |_| {
                    true
                })
                .unwrap();
        }
        // More from the network replace what is held, never add to it.
        let extra = PublisherSecret::from_seed([255; 32]);
        for i in 0..64 {
            let _ = store.put_remote(
                name_record(&extra, &format!("more{i}"), 1),
                sybil,
                PEER,
                |_| true,
            );
        }
        let network = network_of(PEER.unwrap());
        assert_eq!(store.per_network[&network], MAX_VALUES_PER_NETWORK);
        assert_eq!(store.remote_count(), MAX_VALUES_PER_NETWORK);
        // Another network still gets in.
        let elsewhere = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)));
        store
            .put_remote(
                name_record(&extra, "elsewhere", 1),
                PeerId::random(),
                elsewhere,
                |_| true,
            )
            .unwrap();
        // Once the flooding peer is gone, an honest publisher of its network gets in.
        let honest = PeerId::random();
        let gone = |p: &PeerId| *p != sybil;
        let publisher = PublisherSecret::from_seed([254; 32]);
        let real = name_record(&publisher, "real", 1);
        let key = real.key.clone();
        store.put_remote(real, honest, PEER, gone).unwrap();
        assert!(store.get(&key, Instant::now()).is_some());
        // This node's own records are never refused for what peers sent.
        store.put_own(name_record(&extra, "mine", 1)).unwrap();
    }
}
