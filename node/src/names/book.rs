//! What a node remembers about names, in sled: the publishers it trusts, the signed
//! records it has seen (the highest sequence of each, to answer when the DHT cannot
//! and to refuse replays), the releases of its artifacts, the names it publishes, the
//! catalogs it serves, the words it announces, and when each record is due a re-put.
//!
//! Keys: `trust` by alias; `records` and `reputs` by the 32-byte DHT key; `releases`
//! by root then publisher (64 bytes); `published` by publisher then name; `served` by
//! publisher; `words` by word. Values are postcard.

use seedbank_protocol::names_api::TrustEntry;
use seedbank_protocol::{ContentId, PublisherKey, SignedRelease};
use serde::{Deserialize, Serialize};

use crate::error::{NodeError, NodeResult};
use crate::library::meta::{decode, encode};

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
}

fn key_of(bytes: &[u8]) -> Option<PublisherKey> {
    bytes.try_into().ok().map(PublisherKey)
}

impl NameBook {
    /// Its trees in the node's metadata database.
    pub fn open(meta: &crate::library::meta::Meta) -> NodeResult<Self> {
        Ok(Self {
            trust: meta.tree("trust")?,
            records: meta.tree("name_records")?,
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
        self.records.insert(key, encode(&record)?)?;
        Ok(record)
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
}
