//! The DHT record store: this node's own provider records, kept apart, and the records
//! other peers ask it to keep, filtered and bounded.
//!
//! Kademlia runs with `StoreInserts::FilterBoth`, so nothing a peer sends is stored until
//! the event loop hands it to [`ProviderStore::add_remote`], which keeps a provider record
//! only if its key is a 32-byte hash, with at most [`MAX_PROVIDER_ADDRESSES`] addresses
//! the [`AddressPolicy`] allows, within quotas per provider
//! ([`MAX_KEYS_PER_PROVIDER`]), per IP address ([`MAX_RECORDS_PER_IP`]), per key
//! ([`MAX_PROVIDERS_PER_KEY`]) and in all ([`MAX_REMOTE_RECORDS`]). A key whose provider
//! list is full makes room by dropping an expired record, or else one whose provider is
//! not connected, before it refuses the newcomer. Value records (`PUT_VALUE`: signed
//! name records, catalog pages, directories) are checked and bounded by
//! [`ValueStore`].
//!
//! This node's own records live in a separate map that remote records can never fill,
//! so no flood can stop the node announcing what it adds.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use libp2p::kad::store::{Error as StoreError, RecordStore, Result as StoreResult};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use libp2p::PeerId;

use super::address_policy::AddressPolicy;
use super::tally::decrement;
use super::value_store::{ValueRefusal, ValueStore};

/// Length of every key Seedbank provides: a BLAKE3 hash.
pub const KEY_BYTES: usize = 32;
/// Most provider records kept per key: enough to find many seeders, bounded for memory.
pub const MAX_PROVIDERS_PER_KEY: usize = 64;
/// Most addresses kept per provider record.
pub const MAX_PROVIDER_ADDRESSES: usize = 4;
/// Most keys one provider may have records for here: a large seeding node holds
/// thousands of artifacts; free identities get no more than that each.
pub const MAX_KEYS_PER_PROVIDER: usize = 4096;
/// Most records kept for the providers behind one IP address.
pub const MAX_RECORDS_PER_IP: usize = 8192;
/// Most remote provider records kept in all (tens of MB at most).
pub const MAX_REMOTE_RECORDS: usize = 65_536;
/// Most keys this node itself provides.
pub const MAX_OWN_KEYS: usize = 1 << 20;

/// Why a remote record was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// The key is not a 32-byte hash.
    BadKey,
    /// No address in it is acceptable, and we know none for the provider.
    NoAddress,
    /// The provider has records for [`MAX_KEYS_PER_PROVIDER`] keys.
    ProviderQuota,
    /// Providers behind its IP have [`MAX_RECORDS_PER_IP`] records.
    IpQuota,
    /// The key has [`MAX_PROVIDERS_PER_KEY`] live providers, all connected.
    KeyFull,
    /// The store holds [`MAX_REMOTE_RECORDS`].
    StoreFull,
}

#[derive(Debug, Clone)]
struct Held {
    record: ProviderRecord,
    ip: Option<IpAddr>,
}

/// The record store Kademlia runs on.
#[derive(Debug)]
pub struct ProviderStore {
    local: PeerId,
    own: HashMap<RecordKey, ProviderRecord>,
    remote: HashMap<RecordKey, Vec<Held>>,
    remote_count: usize,
    per_provider: HashMap<PeerId, usize>,
    per_ip: HashMap<IpAddr, usize>,
    values: ValueStore,
}

impl ProviderStore {
    /// An empty store for the node `local`.
    pub fn new(local: PeerId) -> Self {
        Self {
            local,
            own: HashMap::new(),
            remote: HashMap::new(),
            remote_count: 0,
            per_provider: HashMap::new(),
            per_ip: HashMap::new(),
            values: ValueStore::default(),
        }
    }

    /// Keeps a value record a peer sent (from `ip`), if it checks out.
    pub fn put_remote_value(
        &mut self,
        record: Record,
        ip: Option<IpAddr>,
    ) -> Result<(), ValueRefusal> {
        self.values.put(record, false, ip)
    }

    /// Value records held for other peers now.
    pub fn remote_values(&self) -> usize {
        self.values.remote_count()
    }

    /// Remote records held now.
    pub fn remote_records(&self) -> usize {
        self.remote_count
    }

    /// Keeps a provider record a peer sent, if it passes the filters and quotas.
    /// `ip` is the address the provider is connected from; `connected` says whether a
    /// peer is connected now.
    pub fn add_remote(
        &mut self,
        mut record: ProviderRecord,
        ip: Option<IpAddr>,
        policy: &AddressPolicy,
        connected: impl Fn(&PeerId) -> bool,
        now: Instant,
    ) -> Result<(), Refusal> {
        if record.key.as_ref().len() != KEY_BYTES {
            return Err(Refusal::BadKey);
        }
        record.addresses.retain(|a| policy.allows(a));
        record.addresses.truncate(MAX_PROVIDER_ADDRESSES);
        if record.addresses.is_empty() && !connected(&record.provider) {
            return Err(Refusal::NoAddress);
        }
        // An update of a record already held takes no new quota.
        if let Some(held) = self.remote.get_mut(&record.key).and_then(|list| {
            list.iter_mut()
                .find(|h| h.record.provider == record.provider)
        }) {
            held.record = record;
            return Ok(());
        }
        if self
            .per_provider
            .get(&record.provider)
            .copied()
            .unwrap_or(0)
            >= MAX_KEYS_PER_PROVIDER
        {
            return Err(Refusal::ProviderQuota);
        }
        if let Some(ip) = ip {
            if self.per_ip.get(&ip).copied().unwrap_or(0) >= MAX_RECORDS_PER_IP {
                return Err(Refusal::IpQuota);
            }
        }
        if let Some(list) = self
            .remote
            .get(&record.key)
            .filter(|list| list.len() >= MAX_PROVIDERS_PER_KEY)
        {
            let expired = list.iter().position(|h| h.record.is_expired(now));
            let unreachable = || list.iter().position(|h| !connected(&h.record.provider));
            match expired.or_else(unreachable) {
                Some(index) => self.remove_at(&record.key.clone(), index),
                None => return Err(Refusal::KeyFull),
            }
        }
        if self.remote_count >= MAX_REMOTE_RECORDS {
            return Err(Refusal::StoreFull);
        }
        *self.per_provider.entry(record.provider).or_default() += 1;
        if let Some(ip) = ip {
            *self.per_ip.entry(ip).or_default() += 1;
        }
        self.remote_count += 1;
        self.remote
            .entry(record.key.clone())
            .or_default()
            .push(Held { record, ip });
        Ok(())
    }

    /// Drops every remote record whose time is up. Returns how many went.
    pub fn remove_expired(&mut self, now: Instant) -> usize {
        let keys: Vec<RecordKey> = self.remote.keys().cloned().collect();
        let mut removed = self.values.remove_expired(now);
        for key in keys {
            while let Some(index) = self
                .remote
                .get(&key)
                .and_then(|list| list.iter().position(|h| h.record.is_expired(now)))
            {
                self.remove_at(&key, index);
                removed += 1;
            }
        }
        removed
    }

    fn remove_at(&mut self, key: &RecordKey, index: usize) {
        let Some(list) = self.remote.get_mut(key) else {
            return;
        };
        let held = list.swap_remove(index);
        if list.is_empty() {
            self.remote.remove(key);
        }
        self.remote_count -= 1;
        decrement(&mut self.per_provider, &held.record.provider);
        if let Some(ip) = held.ip {
            decrement(&mut self.per_ip, &ip);
        }
    }
}

impl RecordStore for ProviderStore {
    type RecordsIter<'a> = Box<dyn Iterator<Item = Cow<'a, Record>> + 'a>;
    type ProvidedIter<'a> = Box<dyn Iterator<Item = Cow<'a, ProviderRecord>> + 'a>;

    fn get(&self, key: &RecordKey) -> Option<Cow<'_, Record>> {
        self.values.get(key, Instant::now()).map(Cow::Borrowed)
    }

    /// Kademlia calls this only for this node's own puts: records peers send are
    /// filtered first (see [`ProviderStore::put_remote_value`]).
    fn put(&mut self, record: Record) -> StoreResult<()> {
        self.values.put(record, true, None).map_err(|refusal| {
            tracing::debug!(%refusal, "own record not kept");
            StoreError::MaxRecords
        })
    }

    fn remove(&mut self, key: &RecordKey) {
        self.values.remove(key);
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        Box::new(self.values.records().map(Cow::Borrowed))
    }

    fn add_provider(&mut self, record: ProviderRecord) -> StoreResult<()> {
        if record.provider == self.local {
            if !self.own.contains_key(&record.key) && self.own.len() >= MAX_OWN_KEYS {
                return Err(StoreError::MaxProvidedKeys);
            }
            self.own.insert(record.key.clone(), record);
            return Ok(());
        }
        // Kademlia itself only adds this node's records; anything else is filtered first.
        let policy = AddressPolicy::from_listen(&[]);
        self.add_remote(record, None, &policy, |_| false, Instant::now())
            .map_err(|_| StoreError::MaxProvidedKeys)
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        let now = Instant::now();
        self.own
            .get(key)
            .into_iter()
            .cloned()
            .chain(
                self.remote
                    .get(key)
                    .into_iter()
                    .flatten()
                    .filter(|h| !h.record.is_expired(now))
                    .map(|h| h.record.clone()),
            )
            .collect()
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        Box::new(self.own.values().map(Cow::Borrowed))
    }

    fn remove_provider(&mut self, key: &RecordKey, provider: &PeerId) {
        if *provider == self.local {
            self.own.remove(key);
            return;
        }
        if let Some(index) = self
            .remote
            .get(key)
            .and_then(|list| list.iter().position(|h| h.record.provider == *provider))
        {
            self.remove_at(key, index);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use libp2p::Multiaddr;

    use super::*;

    fn key(n: u32) -> RecordKey {
        let mut bytes = [0u8; 32];
        bytes[..4].copy_from_slice(&n.to_le_bytes());
        RecordKey::new(&bytes)
    }

    fn record(key: RecordKey, provider: PeerId, addresses: usize) -> ProviderRecord {
        ProviderRecord {
            key,
            provider,
            expires: Some(Instant::now() + Duration::from_secs(3600)),
            addresses: (0..addresses)
                .map(|i| format!("/ip4/127.0.0.1/tcp/{}", 1000 + i).parse().unwrap())
                .collect(),
        }
    }

    fn loopback() -> AddressPolicy {
        AddressPolicy::from_listen(&["/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>().unwrap()])
    }

    const ATTACKER: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 66)));

    #[test]
    fn a_flood_of_keys_cannot_stop_this_node_providing() {
        let local = PeerId::random();
        let mut store = ProviderStore::new(local);
        let now = Instant::now();
        let mut kept = 0;
        for i in 0..70_000u32 {
            let sybil = PeerId::random();
            let ip = Some(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
            if store
                .add_remote(record(key(i), sybil, 1), ip, &loopback(), |_| true, now)
                .is_ok()
            {
                kept += 1;
            }
        }
        assert_eq!(kept, MAX_REMOTE_RECORDS);
        store.add_provider(record(key(1 << 30), local, 1)).unwrap();
        assert_eq!(store.provided().count(), 1);
        assert_eq!(store.providers(&key(1 << 30)).len(), 1);
    }

    #[test]
    fn one_address_gets_its_quota_and_no_more() {
        let mut store = ProviderStore::new(PeerId::random());
        let now = Instant::now();
        let mut outcomes = HashMap::new();
        for i in 0..(MAX_RECORDS_PER_IP as u32 + 100) {
            let outcome = store.add_remote(
                record(key(i), PeerId::random(), 1),
                ATTACKER,
                &loopback(),
                |_| true,
                now,
            );
            *outcomes.entry(outcome).or_insert(0) += 1;
        }
        assert_eq!(outcomes[&Ok(())], MAX_RECORDS_PER_IP);
        assert_eq!(outcomes[&Err(Refusal::IpQuota)], 100);

        let sybil = PeerId::random();
        for i in 0..(MAX_KEYS_PER_PROVIDER as u32 + 1) {
            let outcome = store.add_remote(
                record(key(1_000_000 + i), sybil, 1),
                None,
                &loopback(),
                |_| true,
                now,
            );
            assert_eq!(outcome.is_ok(), (i as usize) < MAX_KEYS_PER_PROVIDER);
        }
    }

    #[test]
    fn records_are_trimmed_and_bad_keys_refused() {
        let mut store = ProviderStore::new(PeerId::random());
        let now = Instant::now();
        let provider = PeerId::random();
        store
            .add_remote(
                record(key(1), provider, 5000),
                None,
                &loopback(),
                |_| true,
                now,
            )
            .unwrap();
        assert_eq!(
            store.providers(&key(1))[0].addresses.len(),
            MAX_PROVIDER_ADDRESSES
        );
        let mut short = record(key(2), provider, 1);
        short.key = RecordKey::new(&[1u8; 8]);
        assert_eq!(
            store.add_remote(short, None, &loopback(), |_| true, now),
            Err(Refusal::BadKey)
        );
        let public_only =
            AddressPolicy::from_listen(&["/ip4/203.0.113.1/tcp/1".parse::<Multiaddr>().unwrap()]);
        assert_eq!(
            store.add_remote(
                record(key(3), provider, 3),
                None,
                &public_only,
                |_| false,
                now
            ),
            Err(Refusal::NoAddress),
            "loopback addresses from a public node's peers are dropped"
        );
    }

    #[test]
    fn a_full_key_makes_room_for_a_newcomer_by_dropping_unreachable_providers() {
        let mut store = ProviderStore::new(PeerId::random());
        let now = Instant::now();
        let sybils: Vec<PeerId> = (0..MAX_PROVIDERS_PER_KEY)
            .map(|_| PeerId::random())
            .collect();
        for sybil in &sybils {
            store
                .add_remote(record(key(7), *sybil, 1), None, &loopback(), |_| true, now)
                .unwrap();
        }
        let honest = PeerId::random();
        // While every sybil is connected, the list is full.
        assert_eq!(
            store.add_remote(record(key(7), honest, 1), None, &loopback(), |_| true, now),
            Err(Refusal::KeyFull)
        );
        // Once one of them is gone, the honest seeder takes its place.
        let gone = sybils[5];
        store
            .add_remote(
                record(key(7), honest, 1),
                None,
                &loopback(),
                |p| *p != gone,
                now,
            )
            .unwrap();
        let providers: Vec<PeerId> = store
            .providers(&key(7))
            .iter()
            .map(|r| r.provider)
            .collect();
        assert!(providers.contains(&honest) && !providers.contains(&gone));
        assert_eq!(providers.len(), MAX_PROVIDERS_PER_KEY);
    }

    #[test]
    fn expired_records_are_removed_and_their_quota_returned() {
        let mut store = ProviderStore::new(PeerId::random());
        let now = Instant::now();
        let provider = PeerId::random();
        let mut old = record(key(1), provider, 1);
        old.expires = Some(now + Duration::from_secs(1));
        store
            .add_remote(old, ATTACKER, &loopback(), |_| true, now)
            .unwrap();
        assert_eq!(store.remove_expired(now + Duration::from_secs(2)), 1);
        assert_eq!(store.remote_records(), 0);
        assert!(store.per_ip.is_empty() && store.per_provider.is_empty());
        assert!(store.providers(&key(1)).is_empty());
    }

    #[test]
    fn value_records_are_not_kept() {
        let mut store = ProviderStore::new(PeerId::random());
        assert!(store.put(Record::new(key(1), vec![1, 2, 3])).is_err());
        assert!(store.get(&key(1)).is_none());
    }
}
