//! The denylists a node follows, in sled: one record per subscription, keyed by the
//! publisher's 32 key bytes followed by the list's name, holding the entries of the
//! revision last read. The union of those entries is what the node refuses, so it
//! outlives a restart without any network.

use seedbank_protocol::denylist::DenyEntry;
use seedbank_protocol::{ContentId, PublisherKey};
use serde::{Deserialize, Serialize};

use crate::error::NodeResult;
use crate::library::meta::{decode, encode};

/// One listed artifact as kept here (postcard cannot skip fields, so not [`DenyEntry`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredEntry {
    /// The artifact.
    pub id: ContentId,
    /// Why the list names it.
    pub reason: Option<String>,
}

impl From<&DenyEntry> for StoredEntry {
    fn from(entry: &DenyEntry) -> Self {
        Self {
            id: entry.id,
            reason: entry.reason.clone(),
        }
    }
}

/// A subscription and the revision of its list last read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionRecord {
    /// When the node subscribed, seconds since the Unix epoch.
    pub subscribed_at: u64,
    /// When a refresh last succeeded.
    pub last_refresh: Option<u64>,
    /// When a refresh was last tried.
    pub last_attempt: Option<u64>,
    /// Why the last refresh failed, if it did.
    pub last_error: Option<String>,
    /// The artifact holding the revision in force.
    pub root: Option<ContentId>,
    /// That revision's number.
    pub revision: Option<u64>,
    /// Its entries.
    pub entries: Vec<StoredEntry>,
}

impl SubscriptionRecord {
    /// A subscription made at `now`, with no list read yet.
    pub fn new(now: u64) -> Self {
        Self {
            subscribed_at: now,
            last_refresh: None,
            last_attempt: None,
            last_error: None,
            root: None,
            revision: None,
            entries: Vec::new(),
        }
    }
}

/// The subscriptions tree.
#[derive(Debug, Clone)]
pub struct DenyBook {
    subscriptions: sled::Tree,
}

fn key(publisher: &PublisherKey, name: &str) -> Vec<u8> {
    let mut key = publisher.as_bytes().to_vec();
    key.extend_from_slice(name.as_bytes());
    key
}

impl DenyBook {
    /// Its trees in the node's metadata database.
    pub fn open(meta: &crate::library::meta::Meta) -> NodeResult<Self> {
        Ok(Self {
            subscriptions: meta.tree("denylist_subscriptions")?,
        })
    }

    /// The subscription to `publisher`'s list `name`, if any.
    pub fn get(
        &self,
        publisher: &PublisherKey,
        name: &str,
    ) -> NodeResult<Option<SubscriptionRecord>> {
        self.subscriptions
            .get(key(publisher, name))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Saves a subscription (replacing the one there).
    pub fn put(
        &self,
        publisher: &PublisherKey,
        name: &str,
        record: &SubscriptionRecord,
    ) -> NodeResult<()> {
        self.subscriptions
            .insert(key(publisher, name), encode(record)?)?;
        Ok(())
    }

    /// Forgets a subscription; returns it if there was one.
    pub fn remove(
        &self,
        publisher: &PublisherKey,
        name: &str,
    ) -> NodeResult<Option<SubscriptionRecord>> {
        self.subscriptions
            .remove(key(publisher, name))?
            .map(|bytes| decode(&bytes))
            .transpose()
    }

    /// Every subscription, by publisher then name. Unreadable entries are skipped with
    /// a warning: a damaged record must not stop the others from applying.
    pub fn all(&self) -> NodeResult<Vec<(PublisherKey, String, SubscriptionRecord)>> {
        let mut all = Vec::new();
        for item in self.subscriptions.iter() {
            let (key, value) = item?;
            let Some((publisher, name)) = key.split_at_checked(32) else {
                continue;
            };
            let (Ok(publisher), Ok(name)) = (
                <[u8; 32]>::try_from(publisher),
                String::from_utf8(name.to_vec()),
            ) else {
                continue;
            };
            match decode(&value) {
                Ok(record) => all.push((PublisherKey(publisher), name, record)),
                Err(e) => {
                    tracing::warn!(name, error = %e, "skipping an unreadable denylist subscription")
                }
            }
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use seedbank_protocol::BlobHash;

    use super::*;

    #[tokio::test]
    async fn subscriptions_survive_reopening_and_can_be_removed() {
        let dir = tempfile::tempdir().unwrap();
        let publisher = PublisherKey([7; 32]);
        let mut record = SubscriptionRecord::new(5);
        record.entries.push(StoredEntry {
            id: ContentId(BlobHash([1; 32])),
            reason: Some("why".into()),
        });
        {
            let db = crate::library::meta::Meta::open(dir.path()).unwrap();
            let book = DenyBook::open(&db).unwrap();
            book.put(&publisher, "bad-models", &record).unwrap();
            db.flush().await.unwrap();
        }
        let db = crate::library::meta::Meta::open(dir.path()).unwrap();
        let book = DenyBook::open(&db).unwrap();
        assert_eq!(
            book.get(&publisher, "bad-models").unwrap(),
            Some(record.clone())
        );
        assert_eq!(
            book.all().unwrap(),
            vec![(publisher, "bad-models".to_owned(), record.clone())]
        );
        assert_eq!(book.remove(&publisher, "bad-models").unwrap(), Some(record));
        assert!(book.all().unwrap().is_empty());
        assert_eq!(book.remove(&publisher, "bad-models").unwrap(), None);
    }
}
