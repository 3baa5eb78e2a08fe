//! Names and publishers: keys, trust, signed releases and name records, catalogs,
//! search, and keeping records alive in the DHT.
//!
//! [`Names`] is the one door: the API and the node call it; it reads and writes sled
//! through [`NameBook`], signs with the [`KeyRing`], and talks to the DHT through the
//! network handle. Every record read from the network is checked
//! ([`seedbank_protocol::DhtRecord::check`]) before anything uses it.

mod book;
mod card;
mod keyring;
mod lookup;
mod policy;
mod publish;
mod reput;
mod search;
mod search_pick;

pub use search::{MAX_SEARCH_EXTRA_PAGES, MAX_SEARCH_LOOKUPS};

use std::sync::Arc;

pub use book::{CachedRecord, NameBook};
pub use card::{card_facts, CardFacts};
pub use keyring::{check_alias, generate_secret, KeyRing, NODE_KEY_ALIAS};
pub use policy::LicencePolicy;
use seedbank_protocol::names_api::{
    KeyExport, KeyImportRequest, KeyInfo, ReleaseInfo, TrustAddRequest, TrustEntry,
};
use seedbank_protocol::{ContentId, NameRef, PublisherKey, PublisherSecret, SignedRelease};

use crate::clock::Clock;
use crate::error::{NodeError, NodeResult};
use crate::library::meta::Labels;
use crate::library::Library;
use crate::net::NetHandle;

/// Publishing, resolving and searching names.
#[derive(Debug, Clone)]
pub struct Names {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    book: NameBook,
    keys: KeyRing,
    net: NetHandle,
    library: Library,
    /// Stamps releases, cached records and re-put schedules; orders sequence numbers.
    clock: Clock,
    node_key: PublisherSecret,
    policy: LicencePolicy,
}

impl Names {
    /// Names for the node whose key is `node_key`, stamped by `clock`.
    pub fn new(
        library: Library,
        net: NetHandle,
        clock: Clock,
        node_key: PublisherSecret,
        policy: LicencePolicy,
    ) -> NodeResult<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                book: NameBook::open(library.meta())?,
                keys: KeyRing::new(library.keys_dir(), node_key.clone()),
                net,
                library,
                clock,
                node_key,
                policy,
            }),
        })
    }

    /// The node's licence allowlist.
    pub fn policy(&self) -> &LicencePolicy {
        &self.inner.policy
    }

    /// This node's publisher keys.
    pub fn keys(&self) -> NodeResult<Vec<KeyInfo>> {
        self.inner.keys.list()
    }

    /// Makes a new key named `alias`.
    pub fn new_key(&self, alias: &str) -> NodeResult<KeyInfo> {
        self.inner.keys.store(alias, &generate_secret()?)
    }

    /// Stores a key exported elsewhere.
    pub fn import_key(&self, request: &KeyImportRequest) -> NodeResult<KeyInfo> {
        let secret = PublisherSecret::from_export_text(&request.secret)
            .map_err(|e| NodeError::BadRequest(e.to_string()))?;
        self.inner.keys.store(&request.alias, &secret)
    }

    /// The secret of `alias`, for backup or another machine.
    pub fn export_key(&self, alias: &str) -> NodeResult<KeyExport> {
        let secret = self.inner.keys.secret(Some(alias))?;
        Ok(KeyExport {
            key: KeyInfo {
                alias: alias.to_owned(),
                public_key: secret.public(),
                default: alias == NODE_KEY_ALIAS,
            },
            secret: secret.to_export_text(),
        })
    }

    /// Trusted publishers.
    pub fn trusted(&self) -> NodeResult<Vec<TrustEntry>> {
        self.inner.book.trusted()
    }

    /// Trusts a publisher under an alias.
    pub fn trust(&self, request: &TrustAddRequest) -> NodeResult<TrustEntry> {
        let key = parse_key(request.public_key.trim())?;
        let alias = &request.alias;
        check_alias(alias)?;
        if self.inner.keys.public(alias)?.is_some() {
            return Err(NodeError::BadRequest(format!(
                "alias {alias:?} already names one of this node's own keys"
            )));
        }
        let entry = self.inner.book.trust(alias, key)?;
        tracing::info!(alias, key = %key, "trusting publisher");
        Ok(entry)
    }

    /// Stops trusting `alias`.
    pub fn distrust(&self, alias: &str) -> NodeResult<TrustEntry> {
        self.inner.book.distrust(alias)?.ok_or_else(|| {
            NodeError::NotFound(format!(
                "no trusted publisher {alias:?}: `seedbank trust list` shows them"
            ))
        })
    }

    /// The key `text` names: a key's text form, a trusted alias, or an alias of one of
    /// this node's keys.
    pub fn publisher(&self, text: &str) -> NodeResult<PublisherKey> {
        if PublisherKey::looks_like_key(text) {
            return parse_key(text);
        }
        if let Some(key) = self.inner.book.trusted_key(text)? {
            return Ok(key);
        }
        if let Some(key) = self.inner.keys.public(text)? {
            return Ok(key);
        }
        Err(NodeError::NotFound(format!(
            "unknown publisher {text:?}: give its key (sbp1…), or trust it first with \
             `seedbank trust add {text} sbp1…`"
        )))
    }

    /// The alias of `key` here and whether it is trusted (own keys are).
    pub fn describe(&self, key: &PublisherKey) -> NodeResult<(Option<String>, bool)> {
        if let Some(alias) = self.inner.keys.alias_of(key)? {
            return Ok((Some(alias), true));
        }
        let alias = self.inner.book.trusted_alias(key)?;
        let trusted = alias.is_some();
        Ok((alias, trusted))
    }

    /// A release as the API shows it.
    pub fn release_info(&self, release: &SignedRelease) -> NodeResult<ReleaseInfo> {
        let (alias, trusted) = self.describe(release.signer())?;
        Ok(ReleaseInfo {
            publisher: *release.signer(),
            alias,
            trusted,
            release: release.body().clone(),
        })
    }

    /// Signed releases of `root` this node has seen, newest first.
    pub fn releases(&self, root: ContentId) -> NodeResult<Vec<ReleaseInfo>> {
        self.inner
            .book
            .releases(root)?
            .iter()
            .map(|r| self.release_info(r))
            .collect()
    }

    /// The labels the newest release this node has seen gives `root`, if any (a fetch
    /// by name carries its own).
    pub fn labels_for(&self, root: ContentId) -> NodeResult<Option<Labels>> {
        Ok(self
            .inner
            .book
            .releases(root)?
            .first()
            .map(|r| labels_of(r.body())))
    }

    /// Whether this node seeds `root`: false when its licence is outside the allowlist.
    pub fn seeds(&self, licence: Option<&str>) -> bool {
        self.inner.policy.allows(licence)
    }

    /// Parses `text` as a published name.
    pub fn parse_name(text: &str) -> NodeResult<NameRef> {
        text.parse()
            .map_err(|e: seedbank_protocol::LabelError| NodeError::BadRequest(e.to_string()))
    }
}

/// A publisher key's text form, read.
fn parse_key(text: &str) -> NodeResult<PublisherKey> {
    text.parse()
        .map_err(|e: seedbank_protocol::publisher_key::KeyError| {
            NodeError::BadRequest(e.to_string())
        })
}

/// The labels a release gives an artifact.
fn labels_of(release: &seedbank_protocol::Release) -> Labels {
    Labels {
        name: release.name.clone(),
        kind: Some(release.kind),
        revision: release.revision.clone(),
        licence: release.licence.clone(),
        card: release.card.clone(),
    }
}
