//! Denylists this node follows: signed lists of content ids (published by keys it
//! trusts) that it never fetches, serves or announces.
//!
//! [`Denylists`] is the service: it owns the subscriptions ([`DenyBook`], in sled), reads
//! lists from the network through the fetcher ([`read`]), publishes them ([`publish`]),
//! refreshes them on a schedule, and keeps the union of their entries in
//! [`DeniedRoots`], which every fetch, announcement and gateway request reads.
//! Invariant: the union is rebuilt from the book after every change to it, under one
//! lock together with the reaction to what changed (announcements withdrawn, fetches
//! cancelled, the seed gate updated), so reactions happen in the order of the changes. Entries read from a list stay in force until a later
//! revision of that list is read or the subscription ends: a failed refresh never
//! lifts a denial.

mod book;
pub mod publish;
pub mod read;
mod service;

use std::sync::Arc;
use std::time::Duration;

pub use book::{DenyBook, StoredEntry, SubscriptionRecord};
use seedbank_protocol::denylist_api::DenylistSubscription;
use seedbank_protocol::PublisherKey;
use tokio_util::sync::CancellationToken;

use crate::announce::Seeding;
use crate::clock::Clock;
use crate::denied::{DeniedRoots, DenyChanges, DenyUnion, Listed};
use crate::error::NodeResult;
use crate::fetch::Fetcher;
use crate::library::Library;
use crate::names::Names;
use crate::net::NetHandle;

/// Default time between two refreshes of a list (config `denylist_refresh`).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// Shortest refresh interval the config accepts: each refresh is a DHT lookup per
/// list, which is cheap but not free for the nodes that answer.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// After a failed refresh, how soon the list is tried again (unless the interval is
/// shorter): a list publisher briefly out of reach should not leave a node an hour
/// behind.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5 * 60);

/// The node's denylists. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Denylists {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    book: DenyBook,
    denied: DeniedRoots,
    parts: Parts,
    /// Held while the union changes and the node reacts.
    changing: tokio::sync::Mutex<()>,
    interval: Duration,
    stop: CancellationToken,
}

/// What the service works with.
#[derive(Debug, Clone)]
pub struct Parts {
    /// Where list artifacts are kept.
    pub library: Library,
    /// Resolves list names and publishes lists.
    pub names: Names,
    /// Withdraws announcements of what becomes denied.
    pub net: NetHandle,
    /// Reads lists from the network; cancels fetches of what becomes denied.
    pub fetcher: Fetcher,
    /// Announces again what no list names any more, and keeps the seed gate.
    pub seeding: Seeding,
    /// Stamps subscriptions and refreshes, and says which lists are due.
    pub clock: Clock,
}

impl Denylists {
    /// The denylists kept in `book`, refreshed every `interval`; their entries apply at
    /// once, in `denied`. Nothing runs until [`Self::spawn_refresher`].
    pub fn open(
        book: DenyBook,
        denied: DeniedRoots,
        parts: Parts,
        interval: Duration,
    ) -> NodeResult<Self> {
        let lists = Self {
            inner: Arc::new(Inner {
                book,
                denied,
                parts,
                changing: tokio::sync::Mutex::new(()),
                interval,
                stop: CancellationToken::new(),
            }),
        };
        lists.inner.denied.replace(lists.union()?);
        Ok(lists)
    }

    /// What is denied now.
    pub fn denied(&self) -> &DeniedRoots {
        &self.inner.denied
    }

    fn library(&self) -> &Library {
        &self.inner.parts.library
    }

    fn names(&self) -> &Names {
        &self.inner.parts.names
    }

    fn fetcher(&self) -> &Fetcher {
        &self.inner.parts.fetcher
    }

    fn seeding(&self) -> &Seeding {
        &self.inner.parts.seeding
    }

    fn clock(&self) -> &Clock {
        &self.inner.parts.clock
    }

    /// The subscriptions tree.
    pub fn book(&self) -> &DenyBook {
        &self.inner.book
    }

    /// Time between two refreshes of a list.
    pub fn interval(&self) -> Duration {
        self.inner.interval
    }

    /// Cancelled when the node stops.
    pub fn stop_token(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    /// Stops the refresher.
    pub fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// A subscription as the API shows it.
    pub fn view(
        &self,
        publisher: &PublisherKey,
        name: &str,
        record: &SubscriptionRecord,
    ) -> DenylistSubscription {
        DenylistSubscription {
            list: self.inner.denied.list_text(publisher, name),
            publisher: *publisher,
            name: name.to_owned(),
            revision: record.revision,
            root: record.root,
            entries: record.entries.len() as u64,
            subscribed_at: record.subscribed_at,
            last_refresh: record.last_refresh,
            last_attempt: record.last_attempt,
            last_error: record.last_error.clone(),
        }
    }

    /// Every subscription.
    pub fn subscriptions(&self) -> NodeResult<Vec<DenylistSubscription>> {
        Ok(self
            .inner
            .book
            .all()?
            .iter()
            .map(|(publisher, name, record)| self.view(publisher, name, record))
            .collect())
    }

    /// Subscriptions due a refresh at `now` (seconds since the epoch): never tried,
    /// or tried an interval ago (sooner after a failure).
    pub fn due(&self, now: u64) -> NodeResult<Vec<(PublisherKey, String)>> {
        let interval = self.inner.interval.as_secs();
        let retry = interval.min(RETRY_AFTER_FAILURE.as_secs());
        Ok(self
            .inner
            .book
            .all()?
            .into_iter()
            .filter(|(_, _, record)| match record.last_attempt {
                None => true,
                Some(at) if record.last_error.is_some() => now >= at.saturating_add(retry),
                Some(at) => now >= at.saturating_add(interval),
            })
            .map(|(publisher, name, _)| (publisher, name))
            .collect())
    }

    /// Takes the lock under which the union changes; hold it until the node has reacted
    /// to what [`Denylists::rebuild`] returns.
    pub async fn lock_changes(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.inner.changing.lock().await
    }

    /// Rebuilds the union from the book; returns what changed. Call with
    /// [`Denylists::lock_changes`] held.
    pub fn rebuild(&self) -> NodeResult<DenyChanges> {
        Ok(self.inner.denied.replace(self.union()?))
    }

    fn union(&self) -> NodeResult<DenyUnion> {
        let mut union = DenyUnion::new();
        for (publisher, name, record) in self.inner.book.all()? {
            for entry in record.entries {
                union.entry(entry.id).or_default().push(Listed {
                    publisher,
                    name: name.clone(),
                    reason: entry.reason,
                });
            }
        }
        Ok(union)
    }
}
