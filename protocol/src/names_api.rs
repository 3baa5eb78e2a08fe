//! Control-API types for publishing and names: keys, trust, publish, resolve, history,
//! catalogs and search.

use serde::{Deserialize, Serialize};

use crate::{ArtifactKind, CatalogEntry, ContentId, PublisherKey, Release};

/// A release as the API shows it, with what this node thinks of its publisher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseInfo {
    /// Who signed it.
    pub publisher: PublisherKey,
    /// The local alias of the publisher, when the node trusts it (or holds its key).
    pub alias: Option<String>,
    /// Whether the publisher is in the trust list or is one of this node's keys.
    pub trusted: bool,
    /// What it says: root, kind, name, revision, licence, card, tags, parent, size,
    /// files, time (flattened into this object in JSON).
    #[serde(flatten)]
    pub release: Release,
}

/// One of this node's publisher keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Its alias.
    pub alias: String,
    /// Its public half.
    pub public_key: PublisherKey,
    /// True for the node key, the default publisher.
    pub default: bool,
}

/// `POST /v1/keys`: make a new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyNewRequest {
    /// Alias for it.
    pub alias: String,
}

/// `POST /v1/keys/import`: store a key exported elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyImportRequest {
    /// Alias for it.
    pub alias: String,
    /// The `sbsecret1…` text `key export` printed.
    pub secret: String,
}

/// `GET /v1/keys/{alias}/export`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyExport {
    /// The key.
    pub key: KeyInfo,
    /// Its secret in `sbsecret1…` form.
    pub secret: String,
}

/// A publisher the node trusts, under a local alias.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustEntry {
    /// The alias, usable as `alias/name`.
    pub alias: String,
    /// The publisher's key.
    pub public_key: PublisherKey,
}

/// `POST /v1/trust`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustAddRequest {
    /// The alias.
    pub alias: String,
    /// The publisher key's text form (`sbp1…`).
    pub public_key: String,
}

/// `POST /v1/publish`: sign and announce an artifact under a name. Streams progress
/// while a path is added, then a [`PublishReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishRequest {
    /// An absolute path to add, or an artifact the node holds (id or local name).
    pub target: String,
    /// The name to publish under.
    pub name: String,
    /// Revision label; defaults to `main` for a path, or the artifact's own label.
    pub revision: Option<String>,
    /// Model or dataset; defaults to the artifact's own kind, else model.
    pub kind: Option<ArtifactKind>,
    /// SPDX licence; defaults to the artifact's own, else the card's `license:`.
    pub licence: Option<String>,
    /// Card path among the artifact's files; defaults to `README.md` if there is one.
    pub card: Option<String>,
    /// Extra tags, besides those in the card's `tags:`.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Alias of the key to sign with; the node key when `None`.
    pub key: Option<String>,
    /// For a path: reference its files in place instead of copying them.
    #[serde(default)]
    pub reference: bool,
}

/// Result of a publication.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishReport {
    /// The signed release.
    pub release: ReleaseInfo,
    /// The name record's sequence number.
    pub sequence: u64,
    /// DHT peers that answered while the name record was put: those asked for closer
    /// peers included, so an upper bound on the copies stored (0 on a lone node).
    pub replicas: u32,
    /// Other nodes that handed the name record back when it was read right after the
    /// put: the copies really kept. A node acknowledges a put it refuses to keep.
    #[serde(default)]
    pub kept_by: u32,
    /// Pages the publisher's catalog now has.
    pub catalog_pages: u32,
    /// Words the name can be searched by.
    pub words: Vec<String>,
}

/// Where a resolution came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordSource {
    /// Read from the DHT just now.
    Network,
    /// The DHT did not answer: the copy cached when it last did.
    Cache,
}

/// `GET /v1/resolve?name=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// The revision asked for (the latest when none was), as a release. For an
    /// earlier revision only root, revision and time come from the record; the other
    /// fields are the latest release's.
    pub release: ReleaseInfo,
    /// The root of the revision asked for.
    pub root: ContentId,
    /// Its revision label.
    pub revision: String,
    /// The name record's sequence number.
    pub sequence: u64,
    /// When this node first saw that sequence, seconds since the Unix epoch.
    pub seen_at: u64,
    /// Network or cache.
    pub source: RecordSource,
}

/// One revision in a name's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Revision label.
    pub revision: String,
    /// Its root.
    pub root: ContentId,
    /// When it was published.
    pub published_at: u64,
}

/// `GET /v1/history?name=…`: newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The latest release.
    pub latest: ReleaseInfo,
    /// Every revision the record lists, the latest first; each one's parent is the next.
    pub revisions: Vec<HistoryEntry>,
    /// The name record's sequence number.
    pub sequence: u64,
    /// Network or cache.
    pub source: RecordSource,
}

/// `GET /v1/catalog?publisher=…`: what a publisher offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The publisher.
    pub publisher: PublisherKey,
    /// Its alias here, if trusted.
    pub alias: Option<String>,
    /// Whether it is trusted.
    pub trusted: bool,
    /// The catalog's sequence number.
    pub sequence: u64,
    /// Its names, sorted.
    pub entries: Vec<CatalogEntry>,
    /// Pages that could not be read (the list is then incomplete).
    pub missing_pages: u32,
    /// Network or cache.
    pub source: RecordSource,
}

/// `GET /v1/search?q=…`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResponse {
    /// The normalised words searched for.
    pub words: Vec<String>,
    /// What matched, trusted publishers first.
    pub results: Vec<SearchResult>,
    /// Nodes that announced the words and were asked for their directories.
    pub nodes: u32,
    /// Publishers whose catalogs were read.
    pub publishers: u32,
    /// DHT lookups the search made (words, directories, catalog pages).
    #[serde(default)]
    pub lookups: u32,
    /// False if a bound on count or time cut the search short.
    pub complete: bool,
}

/// One search hit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The publisher.
    pub publisher: PublisherKey,
    /// Its alias here, if trusted.
    pub alias: Option<String>,
    /// Whether it is trusted.
    pub trusted: bool,
    /// The catalog entry: name, latest revision, root, kind, size, licence, tags.
    pub entry: CatalogEntry,
}

/// Query of `GET /v1/resolve` and `GET /v1/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameQuery {
    /// `PUBLISHER/NAME[@REVISION]`.
    pub name: String,
}

/// Query of `GET /v1/catalog`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogQuery {
    /// A publisher key (`sbp1…`) or alias.
    pub publisher: String,
}

/// Query of `GET /v1/search`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchQuery {
    /// The words.
    pub q: String,
    /// Most results (default 20).
    pub limit: Option<usize>,
}
