//! The roots this node refuses now: the union of the entries of every denylist it
//! follows, with the lists that name each. The denylist service replaces the union
//! after every change to its subscriptions; the fetch path, the announcer, the seed gate
//! and the gateway only read it, so none of them needs to know how lists are kept.
//!
//! Invariant: the union is replaced whole, under the denylist service's change lock, so
//! a reader sees one revision of it or the next, never a mix.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use seedbank_protocol::denylist_api::Denial;
use seedbank_protocol::{escape_path, ContentId, PublisherKey};

use crate::error::NodeError;
use crate::names::Names;

/// One list naming a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The list's publisher.
    pub publisher: PublisherKey,
    /// The list's name.
    pub name: String,
    /// Why the list names the root, if it says.
    pub reason: Option<String>,
}

/// Every denied root and the lists that name it.
pub type DenyUnion = HashMap<ContentId, Vec<Listed>>;

/// What a new union changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DenyChanges {
    /// Roots denied now that were not before.
    pub added: HashSet<ContentId>,
    /// Roots no longer denied.
    pub removed: HashSet<ContentId>,
}

/// The roots denied now. Cheap to clone; every clone sees the same union.
#[derive(Debug, Clone)]
pub struct DeniedRoots {
    union: Arc<RwLock<DenyUnion>>,
    names: Names,
}

impl DeniedRoots {
    /// No root denied yet; `names` gives the aliases lists are shown under.
    pub fn new(names: Names) -> Self {
        Self {
            union: Arc::default(),
            names,
        }
    }

    /// Replaces the union; returns what changed.
    pub fn replace(&self, union: DenyUnion) -> DenyChanges {
        let mut denied = self
            .union
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
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
        changes
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

    /// Fails with the reason when a list this node follows names `root`.
    pub fn check(&self, root: ContentId) -> Result<(), NodeError> {
        match self.refusal(root) {
            Some(refusal) => Err(refusal),
            None => Ok(()),
        }
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
            // A list's publisher wrote it: shown with control and format characters (a
            // bidi override could reorder the message) escaped.
            message.push_str(&format!(": {}", escape_path(reason)));
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
        let alias = self.names.describe(publisher).ok().and_then(|(a, _)| a);
        match alias {
            Some(alias) => format!("{alias}/{name}"),
            None => format!("{publisher}/{name}"),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, DenyUnion> {
        self.union
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
