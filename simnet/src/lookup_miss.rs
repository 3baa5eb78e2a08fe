//! Explains a provider lookup that found nobody although a holder is up: which live
//! nodes' DHT stores list a live holder, how close they are to the key, and whether the
//! lookup finds it when asked again.

use libp2p::kad::KBucketKey;
use libp2p::PeerId;
use seedbank_node::net::provider_key;
use seedbank_protocol::ContentId;

use crate::full_node::FullNode;

/// Closest nodes to a key that Kademlia stores its provider records on.
const REPLICATION: usize = 20;

/// A one-line account of why a lookup of `root` from `asker` missed `live_holders`.
pub(crate) async fn explain(
    nodes: &[Option<FullNode>],
    root: ContentId,
    asker_index: usize,
    asker: &FullNode,
    live_holders: &[PeerId],
) -> String {
    let key = KBucketKey::new(provider_key(root));
    let mut live: Vec<&FullNode> = nodes.iter().flatten().collect();
    live.sort_by_key(|n| key.distance(&KBucketKey::from(n.sim.peer)));
    let mut storing_ranks = Vec::new();
    for (rank, node) in live.iter().enumerate() {
        let stored = node
            .sim
            .handle
            .stored_providers(root)
            .await
            .unwrap_or_default();
        if stored.iter().any(|p| live_holders.contains(p)) {
            storing_ranks.push(rank);
        }
    }
    let near = storing_ranks.iter().filter(|r| **r < REPLICATION).count();
    let status = asker.sim.handle.status().await;
    let table = status
        .as_ref()
        .map(|s| {
            (
                s.routing_table_size,
                s.connected_peers,
                s.dht_queries_started,
            )
        })
        .ok();
    let mut thin = Vec::new();
    for (i, node) in nodes.iter().enumerate() {
        if let Some(node) = node {
            let size = node
                .sim
                .handle
                .status()
                .await
                .map_or(0, |s| s.routing_table_size);
            if size < 5 {
                thin.push((i, size));
            }
        }
    }
    let again = asker.sim.handle.lookup_providers(root).await;
    let again = again.map(|l| {
        let live_found = l
            .providers
            .iter()
            .filter(|p| live_holders.contains(p))
            .count();
        format!(
            "{live_found} live of {} listed, {} requests",
            l.providers.len(),
            l.requests
        )
    });
    format!(
        "{near} of the {REPLICATION} closest live nodes store a live holder (ranks {storing_ranks:?}); \
         asker {asker_index} (table, connected, queries) {table:?}; thin tables {thin:?}; asked again: {again:?}"
    )
}
