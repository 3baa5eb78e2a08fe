//! Discovery: N nodes, K artifacts each announced by a random node, every node looks
//! up random artifacts through the DHT. Measures lookup success and latency.

use std::time::{Duration, Instant};

use anyhow::Result;
use rand::{RngExt, SeedableRng};
use seedbank_protocol::{BlobHash, ContentId};
use serde::Serialize;

use crate::network::start_nodes;
use crate::stats::{percentiles, Percentiles};

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
    /// Lookup latency.
    pub latency: Percentiles,
}

/// Runs the scenario.
pub async fn run(config: DiscoveryConfig) -> Result<DiscoveryReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let started = Instant::now();
    let nodes = start_nodes(
        config.nodes,
        config.join_batch,
        Duration::from_millis(200),
        &mut rng,
    )
    .await?;
    // Let bootstrap queries settle before announcing.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let join_secs = started.elapsed().as_secs_f64();

    let mut artifacts = Vec::with_capacity(config.artifacts);
    for _ in 0..config.artifacts {
        let root = ContentId::from_hash(BlobHash(rng.random()));
        let owner = rng.random_range(0..nodes.len());
        nodes[owner].handle.start_providing(root).await?;
        artifacts.push((root, nodes[owner].peer));
    }

    let mut lookups = Vec::new();
    for node in &nodes {
        for _ in 0..config.lookups_per_node {
            let (root, owner) = artifacts[rng.random_range(0..artifacts.len())];
            if owner == node.peer {
                continue;
            }
            let handle = node.handle.clone();
            lookups.push(tokio::spawn(async move {
                let started = Instant::now();
                let found = handle
                    .find_providers(root)
                    .await
                    .map(|p| p.contains(&owner))
                    .unwrap_or(false);
                (found, started.elapsed())
            }));
        }
    }
    let mut latencies = Vec::with_capacity(lookups.len());
    let mut found = 0;
    let total = lookups.len();
    for lookup in lookups {
        let (ok, latency) = lookup.await?;
        found += usize::from(ok);
        latencies.push(latency);
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
        latency: percentiles(&latencies),
    })
}
