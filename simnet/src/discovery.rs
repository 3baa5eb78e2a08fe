//! Discovery: N nodes, K artifacts each announced by a random node, every node looks
//! up random artifacts through the DHT. Measures lookup success, hops and latency.
//!
//! Hops are estimated: libp2p's Kademlia does not expose a lookup's path, only how many
//! DHT peers had answered when the first provider turned up. It asks
//! [`KAD_PARALLELISM`] peers at a time, so that count divided by it (rounded up) is the
//! number of rounds, i.e. hops, the lookup took; 0 means the asking node held the
//! record itself.

use std::time::Instant;

use anyhow::Result;
use futures::{StreamExt, TryStreamExt};
use rand::{RngExt, SeedableRng};
use seedbank_protocol::{BlobHash, ContentId};
use serde::Serialize;

use crate::join::{settle, start_nodes, SETTLE_LIMIT};
use crate::network::NodeProfile;
use crate::stats::{spread, spread_ms, Spread};

/// Kademlia's lookup parallelism (libp2p's default, which the node keeps).
pub const KAD_PARALLELISM: u32 = 3;

/// Knobs of the discovery scenario.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveryConfig {
    /// Nodes in the network.
    pub nodes: usize,
    /// Artifacts announced.
    pub artifacts: usize,
    /// Lookups each node makes.
    pub lookups_per_node: usize,
    /// Random seed: same seed, same choices.
    pub seed: u64,
    /// Nodes started per batch while joining.
    pub join_batch: usize,
    /// Lookups (and announcements) in flight at once, over all nodes. Real nodes each
    /// have their own CPU; here 2 cores serve all of them, and a thousand lookups at
    /// once would measure the CPU's queue instead of the network.
    pub concurrency: usize,
    /// How every node is set up.
    pub node: NodeProfile,
}

/// What the discovery scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct DiscoveryReport {
    /// The knobs.
    pub config: DiscoveryConfig,
    /// Seconds until every node had joined.
    pub join_secs: f64,
    /// Lookups made.
    pub lookups: usize,
    /// Lookups that found the announcing node.
    pub found: usize,
    /// found / lookups.
    pub success_rate: f64,
    /// Lookup latency in milliseconds (until the lookup finished).
    pub latency_ms: Spread,
    /// DHT peers that had answered when the provider turned up (successful lookups).
    pub requests: Spread,
    /// Estimated hops: `requests` / [`KAD_PARALLELISM`], rounded up.
    pub hops: Spread,
    /// Successful lookups by estimated hop count: `hop_histogram[h]` took `h` hops.
    pub hop_histogram: Vec<usize>,
}

/// Estimated hops of a lookup that found a provider after `requests` answers.
pub fn hops(requests: u32) -> u32 {
    requests.div_ceil(KAD_PARALLELISM)
}

/// Runs the scenario.
pub async fn run(config: DiscoveryConfig) -> Result<DiscoveryReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let started = Instant::now();
    let nodes = start_nodes(config.nodes, config.node, config.join_batch, &mut rng).await?;
    settle(&nodes, SETTLE_LIMIT).await?;
    let join_secs = started.elapsed().as_secs_f64();
    tracing::info!(join_secs, "all nodes joined");

    let mut artifacts = Vec::with_capacity(config.artifacts);
    for _ in 0..config.artifacts {
        let root = ContentId::from_hash(BlobHash(rng.random()));
        let owner = rng.random_range(0..nodes.len());
        artifacts.push((root, owner));
    }
    let concurrency = config.concurrency.max(1);
    futures::stream::iter(artifacts.iter().map(Ok))
        .try_for_each_concurrent(concurrency, |(root, owner)| {
            nodes[*owner].handle.start_providing(*root)
        })
        .await?;
    let artifacts: Vec<_> = artifacts
        .into_iter()
        .map(|(root, owner)| (root, nodes[owner].peer))
        .collect();

    tracing::info!(
        secs = started.elapsed().as_secs_f64(),
        "artifacts announced"
    );
    let mut lookups = Vec::new();
    for node in &nodes {
        for _ in 0..config.lookups_per_node {
            let (root, owner) = artifacts[rng.random_range(0..artifacts.len())];
            if owner != node.peer {
                lookups.push((node.handle.clone(), root, owner));
            }
        }
    }
    let total = lookups.len();
    let outcomes: Vec<_> =
        futures::stream::iter(lookups.into_iter().map(|(handle, root, owner)| async move {
            let started = Instant::now();
            let lookup = handle.lookup_providers(root).await.unwrap_or_default();
            let found = lookup.providers.contains(&owner);
            (found, lookup.requests_to_first, started.elapsed())
        }))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    tracing::info!(secs = started.elapsed().as_secs_f64(), "lookups done");
    let mut latencies = Vec::with_capacity(total);
    let mut requests = Vec::with_capacity(total);
    let mut hop_counts = Vec::with_capacity(total);
    let mut hop_histogram = Vec::new();
    let mut found = 0;
    for (ok, to_first, latency) in outcomes {
        latencies.push(latency);
        if ok {
            found += 1;
            let asked = to_first.unwrap_or(0);
            let h = hops(asked) as usize;
            requests.push(f64::from(asked));
            hop_counts.push(h as f64);
            if hop_histogram.len() <= h {
                hop_histogram.resize(h + 1, 0);
            }
            hop_histogram[h] += 1;
        }
    }
    Ok(DiscoveryReport {
        config,
        join_secs,
        lookups: total,
        found,
        success_rate: if total == 0 {
            1.0
        } else {
            found as f64 / total as f64
        },
        latency_ms: spread_ms(&latencies),
        requests: spread(&requests),
        hops: spread(&hop_counts),
        hop_histogram,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hops_are_rounds_of_parallel_requests() {
        assert_eq!(hops(0), 0);
        assert_eq!(hops(1), 1);
        assert_eq!(hops(3), 1);
        assert_eq!(hops(4), 2);
    }
}
