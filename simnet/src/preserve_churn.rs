//! Churn with preservers: the [`churn`](crate::churn) scenario, with P of the N nodes
//! preserving. One node publishes a collection of every artifact (R copies wanted
//! each) under its key and every preserver follows it. Each round, after the churn,
//! every live preserver runs one keeper round (`Node::preserve_round`: re-read the
//! follow, spot-check the members' providers, fetch members below R copies within its
//! budget), all at once; then every artifact is checked as in churn (a random live node
//! that does not hold it looks it up, fetches it verified, and drops its copy).
//!
//! A node that leaves is replaced by an empty newcomer with the same role: a preserver
//! by an empty preserver that follows the collection (its role persists, its data does
//! not). The publisher leaves like any node; its name record lives on at the nodes that
//! pinned the collection.
//!
//! Which nodes hold an artifact is asked of every live node's library each round, so
//! copies made by repairs count as much as the original ones.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use seedbank_node::node::NodeOptions;
use seedbank_node::preserve::PreserveOptions;
use seedbank_node::progress::ProgressReporter;
use seedbank_protocol::preserve_api::{CollectionRequest, FollowRequest};
use serde::Serialize;

use crate::churn::{
    add_artifacts, check_all, join_one, leave_one, reannounce, Artifact, ChurnConfig,
};
use crate::full_node::{start_full_node_with, FullNode};
use crate::join::{join_nodes, settle, wait_for_queries, SETTLE_LIMIT};

/// The name the collection is published under.
const COLLECTION_NAME: &str = "preserve-churn";

/// Knobs of the scenario beyond those of churn.
#[derive(Debug, Clone, Serialize)]
pub struct PreserveChurnConfig {
    /// Nodes, artifacts, replicas, churn rate, rounds, checks in flight, seed.
    pub churn: ChurnConfig,
    /// Copies of each member the collection asks for (its replica target); at least
    /// the copies each artifact starts with (`churn.replicas`).
    pub target: usize,
    /// Nodes that preserve (follow the collection and repair).
    pub preservers: usize,
    /// Bytes each preserver may fill with what its follow brings.
    pub budget: u64,
    /// Most repairs one preserver starts per round.
    pub repairs_per_round: usize,
    /// Longest random wait before each repair.
    pub repair_jitter: Duration,
    /// How old spot checks may grow before a round makes them again.
    pub health_interval: Duration,
}

/// A node's role; a newcomer takes the role of the node it replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Role {
    /// Holds what it was given, fetches nothing on its own.
    Plain,
    /// Follows the collection and repairs.
    Preserver,
    /// Published the collection (otherwise plain).
    Publisher,
}

/// The role of the empty node that replaces one with `leaving`: preservers stay
/// preservers, the publisher's place goes to a plain node (the key left with it).
pub fn newcomer_role(leaving: Role) -> Role {
    match leaving {
        Role::Preserver => Role::Preserver,
        Role::Plain | Role::Publisher => Role::Plain,
    }
}

/// A preserver's budget that leaves room for twice its fair share of every copy wanted
/// (artifacts × replicas / preservers, rounded up): repairs land unevenly, and copies
/// made by preservers that later left must be made again by those still up.
pub fn default_budget(artifacts: usize, replicas: usize, preservers: usize, bytes: u64) -> u64 {
    let share = (artifacts * replicas).div_ceil(preservers.max(1)) as u64;
    2 * share * bytes
}

/// One round's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct PreserveRound {
    /// Simulated hours since the start.
    pub hours: f64,
    /// Nodes replaced so far.
    pub replaced: usize,
    /// Preservers up (after the churn).
    pub preservers_up: usize,
    /// Copies of all artifacts held by live nodes, after this round's repairs.
    pub copies: usize,
    /// Artifacts by their copies on live nodes after this round's repairs: entry `i`
    /// counts the artifacts with `i` copies.
    pub artifacts_by_copies: Vec<usize>,
    /// Artifacts with at least one live holder (original or preserver).
    pub with_live_holder: usize,
    /// Artifacts whose lookup named a live holder.
    pub found: usize,
    /// Artifacts a node fetched completely and verified.
    pub retrievable: usize,
    /// retrievable / artifacts.
    pub retrievable_fraction: f64,
    /// Repairs (fetches of under-replicated members) this round, over all preservers.
    pub repairs: usize,
    /// Bytes those repairs fetched.
    pub repair_bytes: u64,
    /// Artifacts whose providers were spot-checked this round, over all preservers.
    pub checked: usize,
    /// Keeper rounds that failed, with why.
    pub keeper_errors: Vec<String>,
    /// Why fetches of artifacts with a live holder failed, if any did.
    pub failures: Vec<String>,
    /// Wall-clock seconds the round took.
    pub wall_secs: f64,
    /// Of them, seconds spent replacing nodes and waiting for the DHT to settle.
    pub churn_secs: f64,
    /// Of them, seconds the preservers' keeper rounds took (all at once).
    pub keeper_secs: f64,
    /// Of them, seconds checking every artifact (lookup, fetch, verify).
    pub check_secs: f64,
}

/// What the scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct PreserveChurnReport {
    /// The knobs.
    pub config: PreserveChurnConfig,
    /// Every round.
    pub rounds: Vec<PreserveRound>,
    /// Simulated hour at which the collection's publisher left, if it did.
    pub publisher_left_at: Option<f64>,
    /// Bytes fetched for repair over the whole run.
    pub repair_bytes_total: u64,
    /// repair_bytes_total / simulated hours.
    pub repair_bytes_per_hour: f64,
}

impl PreserveChurnReport {
    /// The report of `rounds` run so far with `config`.
    fn of(
        config: &PreserveChurnConfig,
        rounds: &[PreserveRound],
        publisher_left_at: Option<f64>,
    ) -> Self {
        let repair_bytes_total = rounds.iter().map(|r| r.repair_bytes).sum();
        let hours = rounds.last().map_or(0.0, |r| r.hours);
        PreserveChurnReport {
            // Nothing per hour before an hour has passed (not an infinity, which JSON
            // cannot hold).
            repair_bytes_per_hour: if hours > 0.0 {
                repair_bytes_total as f64 / hours
            } else {
                0.0
            },
            repair_bytes_total,
            publisher_left_at,
            rounds: rounds.to_vec(),
            config: config.clone(),
        }
    }

    /// The retrievable fraction of the last round at or before `hours`; `None` when
    /// the run ended before `hours`.
    pub fn fraction_at(&self, hours: f64) -> Option<f64> {
        fraction_at(&self.rounds, hours)
    }
}

/// The retrievable fraction of the last of `rounds` at or before `hours`; `None` when
/// they end before `hours`.
fn fraction_at(rounds: &[PreserveRound], hours: f64) -> Option<f64> {
    const EPSILON: f64 = 1e-9;
    if rounds.last()?.hours + EPSILON < hours {
        return None;
    }
    rounds
        .iter()
        .rfind(|r| r.hours <= hours + EPSILON)
        .map(|r| r.retrievable_fraction)
}

/// Runs the scenario in a temporary directory. `on_round` is handed the report so far
/// after every round, so a run stopped early still leaves its figures.
pub async fn run(
    config: PreserveChurnConfig,
    on_round: impl FnMut(&PreserveChurnReport),
) -> Result<PreserveChurnReport> {
    let dir = tempfile::tempdir().context("creating a work directory")?;
    run_in(config, dir.path(), on_round).await
}

/// The options a node of `role` starts with.
fn options_of(config: &PreserveChurnConfig, role: Role) -> NodeOptions {
    let preserve = PreserveOptions {
        budget: Some(config.budget),
        health_interval: config.health_interval,
        repairs_per_round: config.repairs_per_round,
        repair_jitter: config.repair_jitter,
        keeper: false,
        ..PreserveOptions::default()
    };
    match role {
        Role::Preserver => NodeOptions {
            preserve,
            ..NodeOptions::default()
        },
        Role::Plain | Role::Publisher => NodeOptions {
            preserve: PreserveOptions {
                keeper: false,
                ..PreserveOptions::default()
            },
            ..NodeOptions::default()
        },
    }
}

async fn run_in(
    config: PreserveChurnConfig,
    dir: &Path,
    mut on_round: impl FnMut(&PreserveChurnReport),
) -> Result<PreserveChurnReport> {
    let churn = &config.churn;
    let mut rng = rand::rngs::StdRng::seed_from_u64(churn.seed);
    let mut order: Vec<usize> = (0..churn.nodes).collect();
    order.shuffle(&mut rng);
    let mut roles = vec![Role::Plain; churn.nodes];
    for &i in order.iter().take(config.preservers.min(churn.nodes)) {
        roles[i] = Role::Preserver;
    }
    let publisher = *order
        .get(config.preservers)
        .context("more nodes than preservers")?;
    roles[publisher] = Role::Publisher;
    let profile = churn.node;
    let first = join_nodes(churn.nodes, 25, &mut rng, |i, bootstrap| {
        let dir = dir.join(format!("node-{i}"));
        let options = options_of(&config, roles[i]);
        async move { start_full_node_with(&dir, &bootstrap, profile, options).await }
    })
    .await?;
    settle(&first, SETTLE_LIMIT).await?;
    let mut nodes: Vec<Option<FullNode>> = first.into_iter().map(Some).collect();
    let artifacts = add_artifacts(churn, &nodes, dir, &mut rng).await?;

    let publishing = nodes[publisher].as_ref().context("the publisher is up")?;
    let target = config.target.max(churn.replicas) as u32;
    let request = CollectionRequest {
        name: COLLECTION_NAME.into(),
        members: artifacts.iter().map(|a| a.root.to_string()).collect(),
        replicas: Some(target),
        revision: Some("v1".into()),
        key: None,
    };
    publishing
        .node
        .preserver()
        .publish_collection(&request, &mut ProgressReporter::silent())
        .await
        .context("publishing the collection")?;
    let follow = FollowRequest {
        target: format!(
            "{}/{COLLECTION_NAME}",
            publishing.node.names().node_publisher()
        ),
        replicas: Some(target),
    };
    for (i, node) in nodes.iter().enumerate() {
        if roles[i] == Role::Preserver {
            let node = node.as_ref().context("preservers are up")?;
            node.node.preserver().follow(&follow).await?;
        }
    }

    let per_round =
        (churn.nodes as f64 * churn.churn_per_hour * churn.round_minutes / 60.0).round() as usize;
    let mut replaced = 0;
    let mut publisher_left_at = None;
    let mut rounds = Vec::with_capacity(churn.rounds + 1);
    for round in 0..=churn.rounds {
        let started = Instant::now();
        let hours = round as f64 * churn.round_minutes / 60.0;
        if round > 0 {
            for _ in 0..per_round {
                let left = leave_one(&mut nodes, &mut rng).await?;
                let role = newcomer_role(roles[left]);
                join_one(
                    &mut nodes,
                    profile,
                    options_of(&config, role),
                    dir,
                    &mut rng,
                )
                .await?;
                roles.push(role);
                if role == Role::Preserver {
                    let newcomer = nodes.last().and_then(Option::as_ref);
                    let newcomer = newcomer.context("the newcomer is up")?;
                    newcomer.node.preserver().follow(&follow).await?;
                }
                if left == publisher {
                    publisher_left_at = Some(hours);
                }
                replaced += 1;
            }
            let live: Vec<FullNode> = nodes.iter().flatten().cloned().collect();
            wait_for_queries(&live, per_round as u64).await?;
        }
        let churn_secs = started.elapsed().as_secs_f64();
        let (repairs, repair_bytes, checked, keeper_errors) = keeper_rounds(&nodes, &roles).await;
        let keeper_secs = started.elapsed().as_secs_f64() - churn_secs;
        let holders = holders_now(&nodes, &artifacts).await;
        // Original holders still up re-announce, as their schedule would (preservers'
        // own announcers do the same for what they fetched).
        reannounce(&nodes, &holders).await?;
        let copies = holders.iter().map(|a| a.holders.len()).sum();
        let artifacts_by_copies = histogram(holders.iter().map(|a| a.holders.len()));
        let checking = Instant::now();
        let checks = check_all(churn, &nodes, &holders, &mut rng).await?;
        let check_secs = checking.elapsed().as_secs_f64();
        let with_live_holder = checks.iter().filter(|c| c.live_holder).count();
        let found = checks.iter().filter(|c| c.found).count();
        let retrievable = checks.iter().filter(|c| c.fetched).count();
        let preservers_up = (0..nodes.len())
            .filter(|i| nodes[*i].is_some() && roles[*i] == Role::Preserver)
            .count();
        tracing::info!(
            hours,
            with_live_holder,
            retrievable,
            repairs,
            repair_bytes,
            copies,
            "preserve churn round"
        );
        rounds.push(PreserveRound {
            hours,
            replaced,
            preservers_up,
            copies,
            artifacts_by_copies,
            with_live_holder,
            found,
            retrievable,
            retrievable_fraction: retrievable as f64 / artifacts.len().max(1) as f64,
            repairs,
            repair_bytes,
            checked,
            keeper_errors,
            failures: checks
                .iter()
                .filter(|c| c.live_holder)
                .filter_map(|c| c.error.clone())
                .collect(),
            wall_secs: started.elapsed().as_secs_f64(),
            churn_secs,
            keeper_secs,
            check_secs,
        });
        on_round(&PreserveChurnReport::of(
            &config,
            &rounds,
            publisher_left_at,
        ));
    }
    for node in nodes.iter().flatten() {
        node.node.shutdown().await?;
    }
    Ok(PreserveChurnReport::of(&config, &rounds, publisher_left_at))
}

/// How many of `counts` are 0, 1, 2, … (up to the largest).
fn histogram(counts: impl Iterator<Item = usize>) -> Vec<usize> {
    let mut bins = Vec::new();
    for count in counts {
        if bins.len() <= count {
            bins.resize(count + 1, 0);
        }
        bins[count] += 1;
    }
    bins
}

/// Runs one keeper round on every live preserver at once; returns repairs, bytes
/// repaired, artifacts spot-checked, and the errors of rounds that failed.
async fn keeper_rounds(
    nodes: &[Option<FullNode>],
    roles: &[Role],
) -> (usize, u64, usize, Vec<String>) {
    let preservers = (0..nodes.len())
        .filter(|i| roles[*i] == Role::Preserver)
        .filter_map(|i| nodes[i].clone());
    let results = futures::future::join_all(
        preservers.map(|p| async move { p.node.preserver().preserve_round().await }),
    )
    .await;
    let (mut repairs, mut bytes, mut checked, mut errors) = (0, 0, 0, Vec::new());
    for result in results {
        match result {
            Ok(report) => {
                repairs += report.repaired.len();
                bytes += report.repair_bytes;
                checked += report.checked;
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    (repairs, bytes, checked, errors)
}

/// Every artifact with the live nodes that hold it complete now, asked of their
/// libraries.
async fn holders_now(nodes: &[Option<FullNode>], artifacts: &[Artifact]) -> Vec<Artifact> {
    let mut now = Vec::with_capacity(artifacts.len());
    for artifact in artifacts {
        let mut holders = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            if let Some(node) = node {
                if node.node.library().holds_complete(artifact.root).await {
                    holders.push(i);
                }
            }
        }
        now.push(Artifact {
            root: artifact.root,
            holders,
        });
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_preserver_is_replaced_by_a_preserver_and_the_publisher_by_a_plain_node() {
        assert_eq!(newcomer_role(Role::Preserver), Role::Preserver);
        assert_eq!(newcomer_role(Role::Plain), Role::Plain);
        assert_eq!(newcomer_role(Role::Publisher), Role::Plain);
    }

    #[test]
    fn the_default_budget_holds_twice_a_fair_share_of_every_copy() {
        // 50 artifacts × 3 copies over 20 preservers: 7.5, so 8 each, twice over.
        assert_eq!(default_budget(50, 3, 20, 1024), 16 * 1024);
        assert!(20 * default_budget(50, 3, 20, 1) >= 150);
        // No preservers: no division by zero.
        assert_eq!(default_budget(2, 3, 0, 10), 120);
    }

    fn round(hours: f64, retrievable_fraction: f64) -> PreserveRound {
        PreserveRound {
            hours,
            replaced: 0,
            preservers_up: 0,
            copies: 0,
            artifacts_by_copies: Vec::new(),
            with_live_holder: 0,
            found: 0,
            retrievable: 0,
            retrievable_fraction,
            repairs: 0,
            repair_bytes: 0,
            checked: 0,
            keeper_errors: Vec::new(),
            failures: Vec::new(),
            wall_secs: 0.0,
            churn_secs: 0.0,
            keeper_secs: 0.0,
            check_secs: 0.0,
        }
    }

    #[test]
    fn the_histogram_counts_artifacts_by_their_copies() {
        assert_eq!(histogram([3, 1, 3, 0].into_iter()), vec![1, 1, 0, 2]);
        assert!(histogram(std::iter::empty()).is_empty());
    }

    #[test]
    fn the_fraction_at_an_hour_is_that_of_the_last_round_by_then_and_none_past_the_end() {
        let rounds = [round(0.0, 1.0), round(0.5, 0.9), round(1.0, 0.8)];
        assert_eq!(fraction_at(&rounds, 0.7), Some(0.9));
        assert_eq!(fraction_at(&rounds, 1.0), Some(0.8));
        assert_eq!(fraction_at(&rounds, 4.0), None);
        assert_eq!(fraction_at(&[], 0.0), None);
    }
}
