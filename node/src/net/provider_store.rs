//! The DHT record store: this node's own provider records, kept apart, and the records
//! other peers ask it to keep, filtered and bounded.
//!
//! Kademlia runs with `StoreInserts::FilterBoth`, so nothing a peer sends is stored until
//! the event loop hands it to [`ProviderStore::add_remote`], which keeps a provider record
//! only if its key is a 32-byte hash, with at most [`MAX_PROVIDER_ADDRESSES`] addresses
//! the [`AddressPolicy`] allows, within quotas per provider
//! ([`MAX_KEYS_PER_PROVIDER`]), per network ([`MAX_RECORDS_PER_NETWORK`]: an IPv4 /24 or
//! an IPv6 /48, as one party easily holds many addresses of one), per key
//! ([`MAX_PROVIDERS_PER_KEY`]) and in all ([`MAX_REMOTE_RECORDS`]).
//!
//! A full quota does not simply refuse: records are replaced by a policy a flood cannot
//! win. A key whose provider list is full drops an expired record, or else one whose
//! provider is not connected. A full network or store looks at up to
//! [`REPLACEMENT_SAMPLE`] of the records it holds there and drops one whose provider
//! is gone, or else the one whose key is farthest from this node if the newcomer's is
//! closer (a node is asked to keep records for keys near its own id; a flood of random
//! keys is mostly far). So a sybil flood that ends leaves room as soon as its
//! connections close, not when its records expire 48 hours later. Value records
//! (`PUT_VALUE`: signed name records, catalog pages, directories) are checked and
//! bounded by [`ValueStore`].
//!
//! This node's own records live in a separate map that remote records can never fill,
//! so no flood can stop the node announcing what it adds.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

use libp2p::kad::store::{Error as StoreError, RecordStore, Result as StoreResult};
use libp2p::kad::{KBucketKey, ProviderRecord, Record, RecordKey};
use libp2p::PeerId;

use super::address_policy::AddressPolicy;
use super::ip_network::network_of;
use super::make_way::{record_to_replace, REPLACEMENT_SAMPLE};
use super::peer_ips::PeerIps;
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
/// Most records kept for the providers of one network (IPv4 /24, IPv6 /48).
pub const MAX_RECORDS_PER_NETWORK: usize = 8192;
/// Most held records scanned to find [`REPLACEMENT_SAMPLE`] of one network.
const REPLACEMENT_SCAN: usize = 16 * REPLACEMENT_SAMPLE;
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
    /// Providers of its network have [`MAX_RECORDS_PER_NETWORK`] records, none of
    /// which may give way to it.
    NetworkQuota,
    /// The key has [`MAX_PROVIDERS_PER_KEY`] live providers, all connected.
    KeyFull,
    /// The store holds [`MAX_REMOTE_RECORDS`], none of which may give way to it.
    StoreFull,
}

#[derive(Debug, Clone)]
struct Held {
    record: ProviderRecord,
    network: Option<IpAddr>,
}

/// The record store Kademlia runs on.
#[derive(Debug)]
pub struct ProviderStore {
    local: PeerId,
    own: HashMap<RecordKey, ProviderRecord>,
    remote: HashMap<RecordKey, Vec<Held>>,
    remote_count: usize,
    per_provider: HashMap<PeerId, usize>,
    per_network: HashMap<IpAddr, usize>,
    /// This node's place in the key space, to measure keys against.
    local_key: KBucketKey<PeerId>,
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
            per_network: HashMap::new(),
            local_key: KBucketKey::from(local),
            values: ValueStore::new(local),
        }
    }

    /// Keeps a value record `sender` sent (from `ip`), if it checks out; `connected` says
    /// whether a peer is connected now.
    pub fn put_remote_value(
        &mut self,
        record: Record,
        sender: PeerId,
        ip: Option<IpAddr>,
        connected: impl Fn(&PeerId) -> bool,
    ) -> Result<(), ValueRefusal> {
        self.values.put_remote(record, sender, ip, connected)
    }

    /// Keeps what a peer asked this node to store (a provider record or a value record),
    /// if it passes the filters and quotas; `connected` says whether a peer is connected
    /// now. Refusals are logged, not answered: the DHT's answer is the same either way.
    pub fn keep_inbound(
        &mut self,
        request: libp2p::kad::InboundRequest,
        peer_ips: &PeerIps,
        policy: &AddressPolicy,
        connected: impl Fn(&PeerId) -> bool,
    ) {
        match request {
            libp2p::kad::InboundRequest::AddProvider {
                record: Some(record),
            } => {
                let provider = record.provider;
                let ip = peer_ips.get(&provider);
                let outcome = self.add_remote(record, ip, policy, connected, Instant::now());
                if let Err(refusal) = outcome {
                    tracing::trace!(%provider, ?refusal, "provider record not kept");
                }
            }
            libp2p::kad::InboundRequest::PutRecord {
                source,
                record: Some(record),
                ..
            } => {
                let ip = peer_ips.get(&source);
                if let Err(refusal) = self.put_remote_value(record, source, ip, connected) {
                    tracing::debug!(peer = %source, %refusal, "value record refused");
                }
            }
            _ => {}
        }
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
        let network = ip.map(network_of);
        if let Some(network) = network {
            if self.per_network.get(&network).copied().unwrap_or(0) >= MAX_RECORDS_PER_NETWORK {
                self.make_way(&record, Some(network), &connected)
                    .ok_or(Refusal::NetworkQuota)?;
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
            self.make_way(&record, None, &connected)
                .ok_or(Refusal::StoreFull)?;
        }
        *self.per_provider.entry(record.provider).or_default() += 1;
        if let Some(network) = network {
            *self.per_network.entry(network).or_default() += 1;
        }
        self.remote_count += 1;
        self.remote
            .entry(record.key.clone())
            .or_default()
            .push(Held { record, network });
        Ok(())
    }

    /// Drops one held record (of `network`, or of any) for `newcomer`: one whose
    /// provider is not connected, or else the farthest from this node if the newcomer
    /// is closer. Looks at [`REPLACEMENT_SAMPLE`] records at most; `None` when none of
    /// them gives way.
    fn make_way(
        &mut self,
        newcomer: &ProviderRecord,
        network: Option<IpAddr>,
        connected: impl Fn(&PeerId) -> bool,
    ) -> Option<()> {
        let held = self
            .remote
            .iter()
            .flat_map(|(key, list)| list.iter().map(move |h| (key, h)))
            .take(REPLACEMENT_SCAN)
            .filter(|(_, h)| network.is_none() || h.network == network)
            .map(|(key, h)| (key, h.record.provider, (key.clone(), h.record.provider)));
        let (key, provider) = record_to_replace(held, &self.local_key, &newcomer.key, connected)?;
        let index = self
            .remote
            .get(&key)?
            .iter()
            .position(|h| h.record.provider == provider)?;
        tracing::trace!(%provider, "provider record replaced to make way");
        self.remove_at(&key, index);
        Some(())
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
        if let Some(network) = held.network {
            decrement(&mut self.per_network, &network);
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
        self.values.put_own(record).map_err(|refusal| {
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
#[path = "provider_store_tests.rs"]
mod tests;
