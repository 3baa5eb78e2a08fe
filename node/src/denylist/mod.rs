//! Denylists this node follows: signed lists of content ids (published by keys it
//! trusts) that it never fetches, serves or announces.
//!
//! [`Denylists`] owns the subscriptions ([`DenyBook`], in sled) and the union of their
//! entries, kept in memory for the checks every fetch, announcement and gateway request
//! makes. Invariant: the union is rebuilt from the book after every change to it, under
//! one lock together with the caller's reaction to what changed (the node withdraws
//! announcements, cancels fetches and updates its seed gate), so reactions happen in
//! the order of the changes. Entries read from a list stay in force until a later
//! revision of that list is read or the subscription ends: a failed refresh never
//! lifts a denial.
//!
//! Reading lists from the network ([`read`]) and publishing them ([`publish`]) go
//! through the [`Node`](crate::node::Node), which calls this module.

mod book;
pub mod publish;
pub mod read;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

pub use book::{DenyBook, StoredEntry, SubscriptionRecord};
use seedbank_protocol::denylist_api::{Denial, DenylistSubscription};
use seedbank_protocol::{ContentId, PublisherKey};
use tokio_util::sync::CancellationToken;

use crate::error::{NodeError, NodeResult};
use crate::names::Names;

/// Default time between two refreshes of a list (config `denylist_refresh`).
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(3600);

/// Shortest refresh interval the config accepts: each refresh is a DHT lookup per
/// list, which is cheap but not free for the nodes that answer.
pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

/// After a failed refresh, how soon the list is tried again (unless the interval is
/// shorter): a list publisher briefly out of reach should not leave a node an hour
/// behind.
pub const RETRY_AFTER_FAILURE: Duration = Duration::from_secs(5 * 60);

/// One list naming a root.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Listed {
    publisher: PublisherKey,
    name: String,
    reason: Option<String>,
}

/// What a change to the subscriptions changed in the union.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyChanges {
    /// Roots denied now that were not before.
    pub added: HashSet<ContentId>,
    /// Roots no longer denied.
    pub removed: HashSet<ContentId>,
}

/// The node's denylists. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Denylists {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    book: DenyBook,
    names: Names,
    denied: RwLock<HashMap<ContentId, Vec<Listed>>>,
    /// Held while the union changes and the node reacts.
    changing: tokio::sync::Mutex<()>,
    interval: Duration,
    stop: CancellationToken,
}

impl Denylists {
    /// The denylists kept in `book`, refreshed every `interval`; their entries apply at
    /// once.
    pub fn open(book: DenyBook, names: Names, interval: Duration) -> NodeResult<Self> {
        let lists = Self {
            inner: Arc::new(Inner {
                book,
                names,
                denied: RwLock::default(),
                changing: tokio::sync::Mutex::new(()),
                interval,
                stop: CancellationToken::new(),
            }),
        };
        let union = lists.union()?;
        *lists.write() = union;
        Ok(lists)
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

    /// Whether any list this node follows names `root`.
    pub fn denies(&self, root: ContentId) -> bool {
        self.read().contains_key(&root)
    }

    /// Every root denied now.
    pub fn denied_roots(&self) -> HashSet<ContentId> {
        self.read().keys().copied().collect()
    }

    /// The lists that name `root`, as the API shows them.
    pub fn denials(&self, root: ContentId) -> Vec<Denial> {
        let listed = self.read().get(&root).cloned().unwrap_or_default();
        listed
            .into_iter()
            .map(|l| Denial {
                list: self.list_text(&l.publisher, &l.name),
                publisher: l.publisher,
                reason: l.reason,
            })
            .collect()
    }

    /// The error a request for `root` gets, if a list names it: which list, whose, and
    /// why.
    pub fn refusal(&self, root: ContentId) -> Option<NodeError> {
        let denials = self.denials(root);
        let first = denials.first()?;
        let mut message = format!(
            "{root} is on the denylist {} (publisher {})",
            first.list, first.publisher
        );
        if let Some(reason) = &first.reason {
            message.push_str(&format!(": {reason}"));
        }
        if denials.len() > 1 {
            message.push_str(&format!(" and {} other lists", denials.len() - 1));
        }
        message.push_str(
            "; this node does not fetch, serve or announce it (`seedbank denylist list` shows \
             the lists it follows)",
        );
        Some(NodeError::Denied(message))
    }

    /// `PUBLISHER/NAME` as this node writes it: the alias of a trusted or own key, else
    /// the key.
    pub fn list_text(&self, publisher: &PublisherKey, name: &str) -> String {
        let alias = self
            .inner
            .names
            .describe(publisher)
            .ok()
            .and_then(|(a, _)| a);
        match alias {
            Some(alias) => format!("{alias}/{name}"),
            None => format!("{publisher}/{name}"),
        }
    }

    /// A subscription as the API shows it.
    pub fn view(
        &self,
        publisher: &PublisherKey,
        name: &str,
        record: &SubscriptionRecord,
    ) -> DenylistSubscription {
        DenylistSubscription {
            list: self.list_text(publisher, name),
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
        let union = self.union()?;
        let mut denied = self.write();
        let changes = DenyChanges {
            added: union
                .keys()
                .filter(|root| !denied.contains_key(root))
                .copied()
                .collect(),
            removed: denied
                .keys()
                .filter(|root| !union.contains_key(root))
                .copied()
                .collect(),
        };
        *denied = union;
        Ok(changes)
    }

    fn union(&self) -> NodeResult<HashMap<ContentId, Vec<Listed>>> {
        let mut union: HashMap<ContentId, Vec<Listed>> = HashMap::new();
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

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ContentId, Vec<Listed>>> {
        self.inner
            .denied
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ContentId, Vec<Listed>>> {
        self.inner
            .denied
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
