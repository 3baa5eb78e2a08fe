//! What a node remembers about names, in sled: the publishers it trusts, the signed
//! records it has seen (the highest sequence of each, to answer when the DHT cannot
//! and to refuse replays), the releases of its artifacts, the names it publishes, the
//! catalogs it serves, the words it announces, and when each record is due a re-put.
//!
//! Keys: `trust` by alias; `records` and `reputs` by the 32-byte DHT key; `releases`
//! by root then publisher (64 bytes); `published` by publisher then name; `served` by
//! publisher; `words` by word. Values are postcard.
//!
//! The record cache is bounded in bytes ([`MAX_CACHED_RECORD_BYTES`]): past the bound,
//! the records seen longest ago go first, down to three quarters of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use seedbank_protocol::names_api::TrustEntry;
use seedbank_protocol::{ContentId, PublisherKey, SignedRelease};
use serde::{Deserialize, Serialize};

use crate::error::{NodeError, NodeResult};
use crate::library::meta::{decode, encode};

/// Most bytes of signed records the cache keeps.
pub const MAX_CACHED_RECORD_BYTES: u64 = 64 * 1024 * 1024;

/// A signed record as last seen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CachedRecord {
    /// Its encoded bytes (checked before they were cached).
    pub bytes: Vec<u8>,
    /// Its sequence.
    pub sequence: u64,
    /// When this node first saw that sequence, seconds since the Unix epoch.
    pub seen_at: u64,
}

/// The name-related trees of the node's database.
#[derive(Debug, Clone)]
pub struct NameBook {
    trust: sled::Tree,
    records: sled::Tree,
    releases: sled::Tree,
    reputs: sled::Tree,
    published: sled::Tree,
    served: sled::Tree,
    words: sled::Tree,
    /// Bytes the record cache holds now.
    cached_bytes: Arc<AtomicU64>,
    /// Most bytes it may hold.
    cache_limit: u64,
}

fn key_of(bytes: &[u8]) -> Option<PublisherKey> {
    bytes.try_into().ok().map(PublisherKey)
}

impl NameBook {
    /// Its trees in the node's metadata database.
    pub fn open(meta: &crate::library::meta::Meta) -> NodeResult<Self> {
        Self::open_bounded(meta, MAX_CACHED_RECORD_BYTES)
    }

    /// [`Self::open`], its record cache holding at most `cache_limit` bytes.
    pub fn open_bounded(meta: &crate::library::meta::Meta, cache_limit: u64) -> NodeResult<Self> {
        let records = meta.tree("name_records")?;
        let mut bytes = 0u64;
        for item in records.iter() {
            let (key, value) = item?;
            bytes += (key.len() + value.len()) as u64;
        }
        Ok(Self {
            cached_bytes: Arc::new(AtomicU64::new(bytes)),
            cache_limit,
            trust: meta.tree("trust")?,
            records,
            releases: meta.tree("releases")?,
            reputs: meta.tree("reputs")?,
            published: meta.tree("published")?,
            served: meta.tree("served_catalogs")?,
            words: meta.tree("search_words")?,
        })
    }

    /// Trusts `key` as `alias`. Refuses an alias already given to another key.
    pub fn trust(&self, alias: &str, key: PublisherKey) -> NodeResult<TrustEntry> {
        if let Some(existing) = self.trusted_key(alias)? {
            if existing != key {
                return Err(NodeError::BadRequest(format!(
                    "alias {alias:?} already names {existing}; `seedbank trust remove {alias}` first"
                )));
            }
        }
        self.trust
            .insert(alias.as_bytes(), key.as_bytes().as_slice())?;
        Ok(TrustEntry {
            alias: alias.to_owned(),
            public_key: key,
        })
    }

    /// Stops trusting `alias`; returns the entry removed.
    pub fn distrust(&self, alias: &str) -> NodeResult<Option<TrustEntry>> {
        Ok(self
            .trust
            .remove(alias.as_bytes())?
            .and_then(|v| key_of(&v))
            .map(|public_key| TrustEntry {
                alias: alias.to_owned(),
                public_key,
            }))
    }

    /// Every trusted publisher, by alias.
    pub fn trusted(&self) -> NodeResult<Vec<TrustEntry>> {
        let mut entries = Vec::new();
        for item in self.trust.iter() {
            let (alias, key) = item?;
            if let (Ok(alias), Some(public_key)) = (String::from_utf8(alias.to_vec()), key_of(&key))
            {
                entries.push(TrustEntry { alias, public_key });
            }
        }
        Ok(entries)
    }

    /// The key trusted as `alias`.
    pub fn trusted_key(&self, alias: &str) -> NodeResult<Option<PublisherKey>> {
        Ok(self.trust.get(alias.as_bytes())?.and_then(|v| key_of(&v)))
    }

    /// The alias `key` is trusted as.
    pub fn trusted_alias(&self, key: &PublisherKey) -> NodeResult<Option<String>> {
        Ok(self
            .trusted()?
            .into_iter()
            .find(|e| e.public_key == *key)
            .map(|e| e.alias))
    }

    /// The record cached under `key`.
    pub fn cached(&self, key: &[u8; 32]) -> NodeResult<Option<CachedRecord>> {
        self.records.get(key)?.map(|v| decode(&v)).transpose()
    }

    /// Caches a checked record unless one with a higher sequence is cached; returns
    /// what is cached afterwards.
    pub fn cache(
        &self,
        key: &[u8; 32],
        bytes: Vec<u8>,
        sequence: u64,
        now: u64,
    ) -> NodeResult<CachedRecord> {
        if let Some(held) = self.cached(key)? {
            if held.sequence >= sequence {
                return Ok(held);
            }
        }
        let record = CachedRecord {
            bytes,
            sequence,
            seen_at: now,
        };
        let value = encode(&record)?;
        let added = (key.len() + value.len()) as u64;
        let replaced = self.records.insert(key, value)?;
        let removed = replaced.map_or(0, |old| (key.len() + old.len()) as u64);
        let total = self.cached_bytes.fetch_add(added, Ordering::Relaxed) + added;
        self.cached_bytes.fetch_sub(removed, Ordering::Relaxed);
        if total.saturating_sub(removed) > self.cache_limit {
            self.shrink_cache()?;
        }
        Ok(record)
    }

    /// Drops the records seen longest ago until the cache holds three quarters of its
    /// limit.
    fn shrink_cache(&self) -> NodeResult<()> {
        let mut held = Vec::new();
        for item in self.records.iter() {
            let (key, value) = item?;
            let seen_at = decode::<CachedRecord>(&value).map_or(0, |r| r.seen_at);
            held.push((seen_at, key, value.len()));
        }
        held.sort_by_key(|(seen_at, _, _)| *seen_at);
        let goal = self.cache_limit / 4 * 3;
        let mut total: u64 = held.iter().map(|(_, k, v)| (k.len() + v) as u64).sum();
        let mut dropped = 0usize;
        for (_, key, len) in held {
            if total <= goal {
                break;
            }
            self.records.remove(&key)?;
            total -= (key.len() + len) as u64;
            dropped += 1;
        }
        self.cached_bytes.store(total, Ordering::Relaxed);
        tracing::debug!(dropped, bytes = total, "record cache shrunk");
        Ok(())
    }

    /// Bytes the record cache holds.
    pub fn cached_bytes(&self) -> u64 {
        self.cached_bytes.load(Ordering::Relaxed)
    }

    /// Remembers a verified release of `root`.
    pub fn put_release(&self, release: &SignedRelease) -> NodeResult<()> {
        let mut key = release.body().root.hash().as_bytes().to_vec();
        key.extend_from_slice(release.signer().as_bytes());
        self.releases.insert(key, release.encode())?;
        Ok(())
    }

    /// The releases remembered for `root`, newest first.
    pub fn releases(&self, root: ContentId) -> NodeResult<Vec<SignedRelease>> {
        let mut found = Vec::new();
        for item in self.releases.scan_prefix(root.hash().as_bytes()) {
            let (_, bytes) = item?;
            match SignedRelease::decode(&bytes) {
                Ok(release) => found.push(release),
                Err(e) => tracing::warn!(%root, error = %e, "dropping unreadable release"),
            }
        }
        found.sort_by_key(|r| std::cmp::Reverse(r.body().published_at));
        Ok(found)
    }

    /// Schedules a re-put of the record under `key` at `due` (seconds since the epoch).
    pub fn schedule_reput(&self, key: &[u8; 32], due: u64) -> NodeResult<()> {
        self.reputs.insert(key, &due.to_be_bytes())?;
        Ok(())
    }

    /// Stops re-putting the record under `key`.
    pub fn forget_reput(&self, key: &[u8; 32]) -> NodeResult<()> {
        self.reputs.remove(key)?;
        Ok(())
    }

    /// Keys of records due a re-put at `now`.
    pub fn due_reputs(&self, now: u64) -> NodeResult<Vec<[u8; 32]>> {
        let mut due = Vec::new();
        for item in self.reputs.iter() {
            let (key, when) = item?;
            let when = <[u8; 8]>::try_from(when.as_ref()).map_or(0, u64::from_be_bytes);
            if when <= now {
                if let Ok(key) = <[u8; 32]>::try_from(key.as_ref()) {
                    due.push(key);
                }
            }
        }
        Ok(due)
    }

    /// Notes that this node publishes `name` under `publisher`.
    pub fn mark_published(&self, publisher: &PublisherKey, name: &str) -> NodeResult<()> {
        let mut key = publisher.as_bytes().to_vec();
        key.extend_from_slice(name.as_bytes());
        self.published.insert(key, &[])?;
        Ok(())
    }

    /// Names this node publishes under `publisher`, sorted.
    pub fn published_names(&self, publisher: &PublisherKey) -> NodeResult<Vec<String>> {
        let mut names = Vec::new();
        for item in self.published.scan_prefix(publisher.as_bytes()) {
            let (key, _) = item?;
            if let Ok(name) = std::str::from_utf8(&key[32..]) {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    /// Notes that this node keeps and re-puts `publisher`'s catalog; returns true if
    /// it is new.
    pub fn serve_catalog(&self, publisher: &PublisherKey) -> NodeResult<bool> {
        Ok(self.served.insert(publisher.as_bytes(), &[])?.is_none())
    }

    /// Publishers whose catalogs this node serves, sorted.
    pub fn served_catalogs(&self) -> NodeResult<Vec<PublisherKey>> {
        let mut keys = Vec::new();
        for item in self.served.iter() {
            let (key, _) = item?;
            keys.extend(key_of(&key));
        }
        Ok(keys)
    }

    /// Notes a search word this node announces; returns true if it is new.
    pub fn add_word(&self, word: &str) -> NodeResult<bool> {
        Ok(self.words.insert(word.as_bytes(), &[])?.is_none())
    }

    /// Every search word this node announces.
    pub fn words(&self) -> NodeResult<Vec<String>> {
        let mut words = Vec::new();
        for item in self.words.iter() {
            let (word, _) = item?;
            if let Ok(word) = String::from_utf8(word.to_vec()) {
                words.push(word);
            }
        }
        Ok(words)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_cache_keeps_the_highest_sequence_and_trust_aliases_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::library::meta::Meta::open(dir.path()).unwrap();
        let book = NameBook::open(&db).unwrap();
        let key = [1; 32];
        book.cache(&key, vec![2], 2, 100).unwrap();
        let kept = book.cache(&key, vec![1], 1, 200).unwrap();
        assert_eq!((kept.bytes, kept.sequence, kept.seen_at), (vec![2], 2, 100));
        let alice = PublisherKey([3; 32]);
        book.trust("alice", alice).unwrap();
        assert!(book.trust("alice", PublisherKey([4; 32])).is_err());
        assert_eq!(
            book.trusted_alias(&alice).unwrap().as_deref(),
            Some("alice")
        );
        assert!(book.distrust("alice").unwrap().is_some());
        assert!(book.trusted_key("alice").unwrap().is_none());
    }

    #[test]
    fn the_cache_drops_the_records_seen_longest_ago_past_its_bound() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::library::meta::Meta::open(dir.path()).unwrap();
        let book = NameBook::open_bounded(&db, 64 * 1024).unwrap();
        for i in 0..32u8 {
            book.cache(&[i; 32], vec![i; 4096], 1, u64::from(i))
                .unwrap();
        }
        assert!(book.cached_bytes() <= 64 * 1024, "{}", book.cached_bytes());
        assert!(
            book.cached(&[31; 32]).unwrap().is_some(),
            "the newest stays"
        );
        assert!(book.cached(&[0; 32]).unwrap().is_none(), "the oldest goes");
        // Reopened, it counts what it holds.
        let held = book.cached_bytes();
        drop(book);
        assert_eq!(NameBook::open(&db).unwrap().cached_bytes(), held);
    }
}
