//! Churn: nodes leave and join at a steady rate while each artifact's original R
//! holders (those still up) keep re-announcing it. Each round, for every artifact, a
//! random live node that does not hold it looks it up; the artifact counts as
//! retrievable if the lookup names at least one holder that is still up.
//!
//! Time is compressed: a round stands for `round_minutes` of simulated time, so a churn
//! of 10 %/hour removes (and adds) `nodes × 0.10 × round_minutes / 60` nodes per round.

use std::time::Duration;

use anyhow::{Context, Result};
use rand::{RngExt, SeedableRng};
use seedbank_protocol::{BlobHash, ContentId};
use serde::Serialize;

use crate::link::LinkShape;
use crate::network::{start_node, start_nodes, SimNode};

/// Knobs of the churn scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnConfig {
    /// Nodes up at any time.
    pub nodes: usize,
    /// Artifacts.
    pub artifacts: usize,
    /// Holders each artifact starts with.
    pub replicas: usize,
    /// Fraction of nodes replaced per simulated hour.
    pub churn_per_hour: f64,
    /// Simulated minutes per round.
    pub round_minutes: f64,
    /// Rounds to run.
    pub rounds: usize,
    /// Random seed.
    pub seed: u64,
    /// Every node's link.
    pub link: LinkShape,
}

/// One round's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnRound {
    /// Simulated hours since the start.
    pub hours: f64,
    /// Nodes replaced so far.
    pub replaced: usize,
    /// Artifacts with at least one holder still up.
    pub with_live_holder: usize,
    /// Artifacts a lookup found a live holder of.
    pub retrievable: usize,
    /// retrievable / artifacts.
    pub retrievable_fraction: f64,
}

/// What the churn scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    /// The knobs.
    pub config: ChurnConfig,
    /// Every round.
    pub rounds: Vec<ChurnRound>,
}

/// Runs the scenario.
pub async fn run(config: ChurnConfig) -> Result<ChurnReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let mut nodes: Vec<Option<SimNode>> = start_nodes(
        config.nodes,
        config.link,
        25,
        Duration::from_millis(200),
        &mut rng,
    )
    .await?
    .into_iter()
    .map(Some)
    .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut artifacts: Vec<(ContentId, Vec<usize>)> = Vec::with_capacity(config.artifacts);
    for _ in 0..config.artifacts {
        let root = ContentId::from_hash(BlobHash(rng.random()));
        let mut holders = Vec::new();
        while holders.len() < config.replicas.min(nodes.len()) {
            let i = rng.random_range(0..nodes.len());
            if !holders.contains(&i) {
                holders.push(i);
            }
        }
        artifacts.push((root, holders));
    }
    let per_round = (config.nodes as f64 * config.churn_per_hour * config.round_minutes / 60.0)
        .round() as usize;
    let mut replaced = 0;
    let mut rounds = Vec::with_capacity(config.rounds);
    for round in 0..=config.rounds {
        if round > 0 {
            for _ in 0..per_round {
                let live: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect();
                let leaving = live[rng.random_range(0..live.len())];
                nodes[leaving] = None;
                let live: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect();
                let via = nodes[live[rng.random_range(0..live.len())]]
                    .as_ref()
                    .context("chose a live node")?
                    .address
                    .clone();
                nodes.push(Some(start_node(&[via], config.link).await?));
                replaced += 1;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        // Holders still up re-announce, as their schedule would.
        for (root, holders) in &artifacts {
            for holder in holders {
                if let Some(node) = &nodes[*holder] {
                    node.handle.start_providing(*root).await?;
                }
            }
        }
        let mut with_live_holder = 0;
        let mut retrievable = 0;
        for (root, holders) in &artifacts {
            let live_holders: Vec<_> = holders
                .iter()
                .filter_map(|h| nodes[*h].as_ref().map(|n| n.peer))
                .collect();
            if live_holders.is_empty() {
                continue;
            }
            with_live_holder += 1;
            let askers: Vec<usize> = (0..nodes.len())
                .filter(|i| nodes[*i].is_some() && !holders.contains(i))
                .collect();
            let asker = nodes[askers[rng.random_range(0..askers.len())]]
                .as_ref()
                .context("chose a live node")?;
            let found = asker.handle.find_providers(*root).await?;
            if found.iter().any(|p| live_holders.contains(p)) {
                retrievable += 1;
            }
        }
        rounds.push(ChurnRound {
            hours: round as f64 * config.round_minutes / 60.0,
            replaced,
            with_live_holder,
            retrievable,
            retrievable_fraction: retrievable as f64 / artifacts.len().max(1) as f64,
        });
    }
    Ok(ChurnReport { config, rounds })
}
