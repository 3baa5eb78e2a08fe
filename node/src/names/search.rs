//! Search without an index server: word → nodes announcing it (DHT provider records) →
//! their signed directories → the publishers they serve → those publishers' signed
//! catalogs → the entries that match every word. Bounded in nodes, publishers, catalog
//! pages (so in DHT lookups), results and time, and chosen so that cheap identities
//! cannot crowd the honest ones out ([`super::search_pick`]); only what a catalog's
//! signature proves is shown, trusted publishers first. Directories and the catalogs
//! of publishers nobody here trusts are read without being cached, so searching does
//! not grow the database.

use std::collections::HashSet;
use std::time::Duration;

use futures::stream::{self, StreamExt};
use seedbank_protocol::catalog::{directory_key, word_key, words, CatalogEntry};
use seedbank_protocol::names_api::{SearchResponse, SearchResult};
use seedbank_protocol::{BlobHash, ContentId, DhtRecord, PublisherKey};
use tokio::time::Instant;

use super::lookup::Keep;
use super::search_pick::{pick_nodes, pick_publishers, plan_pages};
use super::Names;
use crate::error::{NodeError, NodeResult};
use crate::net::provider_key;
use crate::random::random_u64;

/// Most words one search looks up.
pub const MAX_SEARCH_WORDS: usize = 8;
/// Most nodes whose directories one search reads.
pub const MAX_SEARCH_NODES: usize = 64;
/// Most publishers whose catalogs one search reads.
pub const MAX_SEARCH_PUBLISHERS: usize = 32;
/// Most catalog pages past the first that one search reads, over all its catalogs.
pub const MAX_SEARCH_EXTRA_PAGES: usize = 64;
/// Most DHT lookups one search makes: its words, directories, first pages and the
/// further pages.
pub const MAX_SEARCH_LOOKUPS: usize =
    MAX_SEARCH_WORDS + MAX_SEARCH_NODES + MAX_SEARCH_PUBLISHERS + MAX_SEARCH_EXTRA_PAGES;
/// Most results one search returns.
pub const MAX_SEARCH_RESULTS: usize = 100;
/// Longest a search runs.
pub const SEARCH_TIME: Duration = Duration::from_secs(30);
/// Records one search reads at once.
const READS_AT_ONCE: usize = 16;

/// One catalog being read: whose, whether trusted, its entries so far and its pages.
struct CatalogRead {
    publisher: PublisherKey,
    alias: Option<String>,
    trusted: bool,
    pages: u16,
    entries: Vec<CatalogEntry>,
}

impl Names {
    /// Finds published names matching every word of `query`.
    pub async fn search(&self, query: &str, limit: usize) -> NodeResult<SearchResponse> {
        let mut query_words = words(query);
        if query_words.is_empty() {
            return Err(NodeError::BadRequest(format!(
                "{query:?} has no word to search for (words are 2 to 32 letters or digits)"
            )));
        }
        query_words.truncate(MAX_SEARCH_WORDS);
        let limit = limit.clamp(1, MAX_SEARCH_RESULTS);
        let deadline = Instant::now() + SEARCH_TIME;
        let mut complete = true;
        let mut lookups = 0usize;

        // Nodes announcing the words; this node too, if it serves catalogs.
        let word_keys: Vec<ContentId> = query_words
            .iter()
            .map(|w| ContentId(BlobHash(word_key(w))))
            .collect();
        lookups += word_keys.len();
        let provider_lookups = word_keys
            .iter()
            .map(|key| tokio::time::timeout_at(deadline, self.inner.net.find_providers(*key)));
        let mut announcers = Vec::new();
        for result in futures::future::join_all(provider_lookups).await {
            match result {
                Ok(Ok(peers)) => announcers.extend(peers),
                Ok(Err(e)) => return Err(e),
                Err(_) => complete = false,
            }
        }
        announcers.sort();
        announcers.dedup();
        let record_keys: Vec<_> = word_keys.iter().map(|k| provider_key(*k)).collect();
        if announcers.len() > MAX_SEARCH_NODES {
            complete = false;
        }
        let nodes = pick_nodes(announcers, &record_keys, MAX_SEARCH_NODES, random_u64);

        // Their directories, read but not cached.
        lookups += nodes.len();
        let reads = stream::iter(nodes.iter().filter_map(node_key_of))
            .map(|node| {
                tokio::time::timeout_at(
                    deadline,
                    self.read_record(directory_key(&node), "directory", Keep::InMemory),
                )
            })
            .buffer_unordered(READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut directories: Vec<Vec<PublisherKey>> = Vec::new();
        for read in reads {
            match read {
                Ok(Ok(Some(found))) => {
                    if let DhtRecord::Directory(directory) = found.record {
                        directories.push(directory.body().publishers.clone());
                    }
                }
                Ok(_) => {}
                Err(_) => complete = false,
            }
        }

        // Publishers: this node's served ones and trusted ones listed first.
        let listed: HashSet<PublisherKey> = directories.iter().flatten().copied().collect();
        let mut first = self.inner.book.served_catalogs()?;
        for publisher in &listed {
            if self.describe(publisher)?.1 {
                first.push(*publisher);
            }
        }
        let publishers = pick_publishers(&first, directories, MAX_SEARCH_PUBLISHERS, random_u64);
        if listed.iter().any(|p| !publishers.contains(p)) {
            complete = false;
        }

        // Their catalogs: every first page, then further pages from one budget.
        lookups += publishers.len();
        let mut catalogs = self
            .first_pages(&publishers, deadline, &mut complete)
            .await?;
        catalogs.sort_by_key(|c| !c.trusted);
        let counts: Vec<u16> = catalogs.iter().map(|c| c.pages).collect();
        let wanted: usize = counts
            .iter()
            .map(|&c| usize::from(c.saturating_sub(1)))
            .sum();
        let plan = plan_pages(&counts, MAX_SEARCH_EXTRA_PAGES);
        if plan.len() < wanted {
            complete = false;
        }
        lookups += plan.len();
        let further = stream::iter(plan)
            .map(|(index, page)| {
                let publisher = catalogs[index].publisher;
                let keep = keep_for(catalogs[index].trusted);
                async move {
                    let read = tokio::time::timeout_at(
                        deadline,
                        self.catalog_page_kept(&publisher, page, keep),
                    )
                    .await;
                    (index, read)
                }
            })
            .buffer_unordered(READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        for (index, read) in further {
            match read {
                Ok(Ok(Some((page, _)))) => catalogs[index]
                    .entries
                    .extend(page.body().entries.iter().cloned()),
                Ok(_) => {}
                Err(_) => complete = false,
            }
        }

        let publisher_count = catalogs.len();
        let mut results = Vec::new();
        for catalog in catalogs {
            let mut seen = HashSet::new();
            for entry in catalog.entries {
                if entry.matches(&query_words) && seen.insert(entry.name.clone()) {
                    results.push(SearchResult {
                        publisher: catalog.publisher,
                        alias: catalog.alias.clone(),
                        trusted: catalog.trusted,
                        entry,
                    });
                }
            }
        }
        results.sort_by(|a, b| {
            b.trusted
                .cmp(&a.trusted)
                .then(a.entry.name.cmp(&b.entry.name))
                .then(a.publisher.cmp(&b.publisher))
        });
        if results.len() > limit {
            results.truncate(limit);
            complete = false;
        }
        Ok(SearchResponse {
            words: query_words,
            results,
            nodes: nodes.len() as u32,
            publishers: publisher_count as u32,
            lookups: lookups as u32,
            complete,
        })
    }

    /// The first page of each of `publishers`' catalogs; the ones found, in order.
    async fn first_pages(
        &self,
        publishers: &[PublisherKey],
        deadline: Instant,
        complete: &mut bool,
    ) -> NodeResult<Vec<CatalogRead>> {
        let mut described = Vec::with_capacity(publishers.len());
        for publisher in publishers {
            let (alias, trusted) = self.describe(publisher)?;
            described.push((*publisher, alias, trusted));
        }
        let reads = stream::iter(described)
            .map(|(publisher, alias, trusted)| async move {
                let read = tokio::time::timeout_at(
                    deadline,
                    self.catalog_page_kept(&publisher, 0, keep_for(trusted)),
                )
                .await;
                (publisher, alias, trusted, read)
            })
            .buffered(READS_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        let mut catalogs = Vec::new();
        for (publisher, alias, trusted, read) in reads {
            match read {
                Ok(Ok(Some((page, _)))) => catalogs.push(CatalogRead {
                    publisher,
                    alias,
                    trusted,
                    pages: page.body().pages,
                    entries: page.body().entries.clone(),
                }),
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::debug!(%publisher, error = %e, "catalog unreadable"),
                Err(_) => *complete = false,
            }
        }
        Ok(catalogs)
    }
}

/// Whether a search keeps a publisher's records: only a trusted one's.
fn keep_for(trusted: bool) -> Keep {
    if trusted {
        Keep::Cache
    } else {
        Keep::InMemory
    }
}

/// The ed25519 key inside a peer id (Seedbank node ids are ed25519 keys), which signs
/// that node's directory.
fn node_key_of(peer: &libp2p::PeerId) -> Option<PublisherKey> {
    let multihash: &libp2p::multihash::Multihash<64> = peer.as_ref();
    let public = libp2p::identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let ed25519 = public.try_into_ed25519().ok()?;
    Some(PublisherKey(ed25519.to_bytes()))
}
