//! Search without an index server: word → nodes announcing it (DHT provider records) →
//! their signed directories → the publishers they serve → those publishers' signed
//! catalogs → the entries that match every word. Bounded in nodes, publishers, results
//! and time; only what a catalog's signature proves is shown.

use std::collections::BTreeSet;
use std::time::Duration;

use seedbank_protocol::catalog::{directory_key, word_key, words};
use seedbank_protocol::names_api::{SearchResponse, SearchResult};
use seedbank_protocol::{BlobHash, ContentId, DhtRecord, PublisherKey};
use tokio::time::Instant;

use super::Names;
use crate::error::{NodeError, NodeResult};

/// Most words one search looks up.
pub const MAX_SEARCH_WORDS: usize = 8;
/// Most nodes whose directories one search reads.
pub const MAX_SEARCH_NODES: usize = 32;
/// Most publishers whose catalogs one search reads.
pub const MAX_SEARCH_PUBLISHERS: usize = 32;
/// Most results one search returns.
pub const MAX_SEARCH_RESULTS: usize = 100;
/// Longest a search runs.
pub const SEARCH_TIME: Duration = Duration::from_secs(30);

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

        // Nodes announcing the words; this node too, if it serves catalogs.
        let lookups = query_words.iter().map(|w| {
            tokio::time::timeout_at(
                deadline,
                self.inner
                    .net
                    .find_providers(ContentId(BlobHash(word_key(w)))),
            )
        });
        let mut nodes = BTreeSet::new();
        for result in futures::future::join_all(lookups).await {
            match result {
                Ok(Ok(peers)) => nodes.extend(peers),
                Ok(Err(e)) => return Err(e),
                Err(_) => complete = false,
            }
        }
        let node_count = nodes.len().min(MAX_SEARCH_NODES);
        if nodes.len() > MAX_SEARCH_NODES {
            complete = false;
        }

        // Their directories.
        let mut publishers: BTreeSet<PublisherKey> =
            self.inner.book.served_catalogs()?.into_iter().collect();
        let directory_reads = nodes.iter().take(MAX_SEARCH_NODES).filter_map(|peer| {
            node_key_of(peer).map(|node| {
                tokio::time::timeout_at(deadline, self.lookup(directory_key(&node), "directory"))
            })
        });
        for result in futures::future::join_all(directory_reads).await {
            match result {
                Ok(Ok(Some(found))) => {
                    if let DhtRecord::Directory(directory) = found.record {
                        publishers.extend(directory.body().publishers.iter().copied());
                    }
                }
                Ok(_) => {}
                Err(_) => complete = false,
            }
        }
        if publishers.len() > MAX_SEARCH_PUBLISHERS {
            complete = false;
        }

        // Their catalogs, filtered by the words.
        let publisher_count = publishers.len().min(MAX_SEARCH_PUBLISHERS);
        let catalog_reads = publishers.iter().take(MAX_SEARCH_PUBLISHERS).map(|p| {
            let text = p.to_string();
            async move {
                (
                    *p,
                    tokio::time::timeout_at(deadline, self.catalog(&text)).await,
                )
            }
        });
        let mut results = Vec::new();
        for (publisher, result) in futures::future::join_all(catalog_reads).await {
            match result {
                Ok(Ok(catalog)) => {
                    for entry in catalog.entries {
                        if entry.matches(&query_words) {
                            results.push(SearchResult {
                                publisher,
                                alias: catalog.alias.clone(),
                                trusted: catalog.trusted,
                                entry,
                            });
                        }
                    }
                }
                Ok(Err(e)) => tracing::debug!(%publisher, error = %e, "catalog unreadable"),
                Err(_) => complete = false,
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
            nodes: node_count as u32,
            publishers: publisher_count as u32,
            complete,
        })
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
