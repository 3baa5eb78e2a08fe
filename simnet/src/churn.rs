//! Churn: nodes leave and join at a steady rate while each artifact's original R
//! holders (those still up) keep re-announcing it. Each round, for every artifact, a
//! random live node that does not hold it looks it up and fetches it, verified, as
//! `seedbank fetch` does; the artifact counts as found if the lookup named a holder
//! that is still up, and as retrievable if the fetch completed. The fetcher then
//! drops its copy (garbage collection withdraws its announcement), so every artifact
//! keeps only its original holders and the curve shows what churn alone does.
//!
//! Every node is a whole Seedbank node with its own store in a temporary directory.
//! Nodes that leave are shut down for good (their stale provider records stay in the
//! DHT, as they would); new ones join through a random live node.
//!
//! Time is compressed: a round stands for `round_minutes` of simulated time, so a churn
//! of 10 %/hour removes (and adds) `nodes × 0.10 × round_minutes / 60` nodes per round.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use seedbank_node::node::NodeOptions;
use seedbank_node::progress::ProgressReporter;
use seedbank_protocol::api::FetchRequest;
use seedbank_protocol::{ArtifactKind, ContentId};
use serde::Serialize;

use crate::full_node::{
    add_pinned, start_full_node, start_full_node_with, write_random_file, FullNode,
};
use crate::join::{join_nodes, settle, wait_for_queries, SETTLE_LIMIT};
use crate::lookup_miss;
use crate::network::NodeProfile;

/// Longest one check (lookup and fetch of one artifact) may take; the fetch scheduler's
/// own timeouts end a hopeless fetch well before this.
const CHECK_TIMEOUT: Duration = Duration::from_secs(180);

/// Knobs of the churn scenario.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnConfig {
    /// Nodes up at any time.
    pub nodes: usize,
    /// Artifacts.
    pub artifacts: usize,
    /// Size of each artifact, bytes.
    pub artifact_bytes: u64,
    /// Holders each artifact starts with.
    pub replicas: usize,
    /// Fraction of nodes replaced per simulated hour.
    pub churn_per_hour: f64,
    /// Simulated minutes per round.
    pub round_minutes: f64,
    /// Rounds to run.
    pub rounds: usize,
    /// Checks (lookup + fetch) in flight at once, each by a different node.
    pub concurrency: usize,
    /// Random seed.
    pub seed: u64,
    /// How every node is set up.
    pub node: NodeProfile,
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
    /// Artifacts whose lookup named a holder that is still up.
    pub found: usize,
    /// Artifacts a node fetched completely and verified.
    pub retrievable: usize,
    /// retrievable / artifacts.
    pub retrievable_fraction: f64,
    /// retrievable / with_live_holder: how well the network serves what still exists.
    pub retrievable_of_live: f64,
    /// Why fetches of artifacts with a live holder failed, if any did.
    pub failures: Vec<String>,
}

/// What the churn scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct ChurnReport {
    /// The knobs.
    pub config: ChurnConfig,
    /// Every round.
    pub rounds: Vec<ChurnRound>,
}

/// Runs the scenario in a temporary directory.
pub async fn run(config: ChurnConfig) -> Result<ChurnReport> {
    let dir = tempfile::tempdir().context("creating a work directory")?;
    run_in(config, dir.path()).await
}

/// One artifact: its root and the indices of its holders (in this scenario, the
/// original ones).
pub(crate) struct Artifact {
    /// Its root.
    pub(crate) root: ContentId,
    /// Indices of the nodes that hold it.
    pub(crate) holders: Vec<usize>,
}

async fn run_in(config: ChurnConfig, dir: &Path) -> Result<ChurnReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let profile = config.node;
    let first = join_nodes(config.nodes, 25, &mut rng, |i, bootstrap| {
        let dir = dir.join(format!("node-{i}"));
        async move { start_full_node(&dir, &bootstrap, profile, true).await }
    })
    .await?;
    settle(&first, SETTLE_LIMIT).await?;
    let mut nodes: Vec<Option<FullNode>> = first.into_iter().map(Some).collect();

    let artifacts = add_artifacts(&config, &nodes, dir, &mut rng).await?;
    let per_round = (config.nodes as f64 * config.churn_per_hour * config.round_minutes / 60.0)
        .round() as usize;
    let mut replaced = 0;
    let mut rounds = Vec::with_capacity(config.rounds + 1);
    for round in 0..=config.rounds {
        if round > 0 {
            for _ in 0..per_round {
                let options = NodeOptions::default();
                replace_one(&mut nodes, profile, options, dir, &mut rng).await?;
                replaced += 1;
            }
            let live: Vec<FullNode> = nodes.iter().flatten().cloned().collect();
            wait_for_queries(&live, per_round as u64).await?;
        }
        // Holders still up re-announce, as their schedule would.
        reannounce(&nodes, &artifacts).await?;
        let checks = check_all(&config, &nodes, &artifacts, &mut rng).await?;
        let with_live_holder = checks.iter().filter(|c| c.live_holder).count();
        let found = checks.iter().filter(|c| c.found).count();
        let retrievable = checks.iter().filter(|c| c.fetched).count();
        let hours = round as f64 * config.round_minutes / 60.0;
        tracing::info!(hours, with_live_holder, found, retrievable, "churn round");
        rounds.push(ChurnRound {
            hours,
            replaced,
            with_live_holder,
            found,
            retrievable,
            retrievable_fraction: retrievable as f64 / artifacts.len().max(1) as f64,
            retrievable_of_live: retrievable as f64 / with_live_holder.max(1) as f64,
            failures: checks
                .iter()
                .filter(|c| c.live_holder)
                .filter_map(|c| c.error.clone())
                .collect(),
        });
    }
    for node in nodes.iter().flatten() {
        node.node.shutdown().await?;
    }
    Ok(ChurnReport { config, rounds })
}

/// Announcements in flight at once when holders re-announce.
const REANNOUNCE_CONCURRENCY: usize = 32;

/// Every live holder of every artifact announces it again, as its schedule would; the
/// announcements run side by side (each waits for its DHT put).
pub(crate) async fn reannounce(nodes: &[Option<FullNode>], artifacts: &[Artifact]) -> Result<()> {
    let announcements = artifacts.iter().flat_map(|artifact| {
        let holders = artifact.holders.iter().filter_map(|h| nodes[*h].as_ref());
        holders.map(move |holder| anyhow::Ok((holder, artifact.root)))
    });
    futures::stream::iter(announcements)
        .try_for_each_concurrent(REANNOUNCE_CONCURRENCY, |(holder, root)| async move {
            holder.sim.handle.start_providing(root).await?;
            Ok(())
        })
        .await
}

/// Writes each artifact's bytes and adds them on `replicas` random nodes (pinned).
pub(crate) async fn add_artifacts(
    config: &ChurnConfig,
    nodes: &[Option<FullNode>],
    dir: &Path,
    rng: &mut impl RngExt,
) -> Result<Vec<Artifact>> {
    let mut artifacts = Vec::with_capacity(config.artifacts);
    for a in 0..config.artifacts {
        let source = dir.join(format!("artifact-{a}.bin"));
        write_random_file(&source, config.artifact_bytes, config.seed ^ a as u64)?;
        let mut holders: Vec<usize> = (0..nodes.len()).collect();
        holders.shuffle(rng);
        holders.truncate(config.replicas.min(nodes.len()));
        let mut root = None;
        for holder in &holders {
            let node = nodes[*holder].as_ref().context("a holder is up")?;
            let name = format!("churn-{a}");
            root = Some(add_pinned(&node.node, &source, ArtifactKind::Dataset, name, false).await?);
        }
        let root = root.context("an artifact has at least one holder")?;
        artifacts.push(Artifact { root, holders });
    }
    Ok(artifacts)
}

/// Shuts a random live node down for good and starts a new one (with `options`)
/// through another.
async fn replace_one(
    nodes: &mut Vec<Option<FullNode>>,
    profile: NodeProfile,
    options: NodeOptions,
    dir: &Path,
    rng: &mut impl RngExt,
) -> Result<()> {
    leave_one(nodes, rng).await?;
    join_one(nodes, profile, options, dir, rng).await
}

/// The index of a random live node (there must be one).
fn random_live(nodes: &[Option<FullNode>], rng: &mut impl RngExt) -> usize {
    let live: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect();
    live[rng.random_range(0..live.len())]
}

/// Shuts a random live node down and takes it off the network for good; returns its
/// index.
pub(crate) async fn leave_one(
    nodes: &mut [Option<FullNode>],
    rng: &mut impl RngExt,
) -> Result<usize> {
    let leaving = random_live(nodes, rng);
    if let Some(node) = nodes[leaving].take() {
        // Off the network too: a shut-down node whose link stays up keeps routing DHT
        // queries and holding provider records, which a departed machine does not.
        node.leave().await?;
    }
    Ok(leaving)
}

/// Starts a new node with `options` through [`NEWCOMER_BOOTSTRAP_PEERS`] random live
/// ones and pushes it at the end of `nodes`.
pub(crate) async fn join_one(
    nodes: &mut Vec<Option<FullNode>>,
    profile: NodeProfile,
    options: NodeOptions,
    dir: &Path,
    rng: &mut impl RngExt,
) -> Result<()> {
    let mut live: Vec<&FullNode> = nodes.iter().flatten().collect();
    live.shuffle(rng);
    let via: Vec<libp2p::Multiaddr> = live
        .iter()
        .take(NEWCOMER_BOOTSTRAP_PEERS)
        .map(|node| node.sim.address.clone())
        .collect();
    let index = nodes.len();
    let dir = dir.join(format!("node-{index}"));
    let node = start_full_node_with(&dir, &via, profile, options).await?;
    nodes.push(Some(node));
    Ok(())
}

/// Bootstrap peers a newcomer is given. A node given one that leaves while it joins
/// knows nobody else and stays cut off for good (the first churn runs had such nodes;
/// see simnet/results/README.md); real nodes are configured with a few.
pub(crate) const NEWCOMER_BOOTSTRAP_PEERS: usize = 3;

/// The outcome of one artifact's check.
#[derive(Debug, Clone, Default)]
pub(crate) struct Check {
    /// The node that looked it up and fetched it.
    pub(crate) asker: usize,
    /// A node that holds it is up.
    pub(crate) live_holder: bool,
    /// The lookup named a holder that is up.
    pub(crate) found: bool,
    /// The fetch completed, verified.
    pub(crate) fetched: bool,
    /// Why the fetch failed.
    pub(crate) error: Option<String>,
}

/// Checks every artifact from a random live node that does not hold it; up to
/// `concurrency` checks at once, each from a different node.
pub(crate) async fn check_all(
    config: &ChurnConfig,
    nodes: &[Option<FullNode>],
    artifacts: &[Artifact],
    rng: &mut impl RngExt,
) -> Result<Vec<Check>> {
    let concurrency = config.concurrency.max(1);
    let mut askers: Vec<usize> = (0..nodes.len()).filter(|i| nodes[*i].is_some()).collect();
    askers.shuffle(rng);
    // The artifact index each node last checked: a node is used again only once the
    // checks that may run beside its last one are behind it.
    let mut last_used: HashMap<usize, usize> = HashMap::new();
    let live_holders: Vec<Vec<libp2p::PeerId>> = artifacts
        .iter()
        .map(|artifact| {
            let holders = artifact.holders.iter();
            holders
                .filter_map(|h| nodes[*h].as_ref().map(|n| n.sim.peer))
                .collect()
        })
        .collect();
    let mut jobs = Vec::with_capacity(artifacts.len());
    for (a, artifact) in artifacts.iter().enumerate() {
        let free = |i: &usize| last_used.get(i).is_none_or(|last| a - last >= concurrency);
        let asker = (0..askers.len())
            .map(|k| askers[(a + k) % askers.len()])
            .find(|i| !artifact.holders.contains(i) && free(i))
            .context("a free live node that does not hold the artifact (lower the concurrency)")?;
        last_used.insert(asker, a);
        let asker_node = nodes[asker].clone().context("askers are live")?;
        jobs.push(check_one(
            asker,
            asker_node,
            artifact.root,
            live_holders[a].clone(),
        ));
    }
    let checks = futures::stream::iter(jobs)
        .buffered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let mut checks: Vec<Check> = checks.into_iter().collect::<Result<_>>()?;
    for ((check, artifact), live_holders) in checks.iter_mut().zip(artifacts).zip(&live_holders) {
        // A fetch that failed although a holder was up, and whose lookup missed it.
        if check.live_holder && !check.found && !check.fetched {
            let asker = nodes[check.asker].as_ref().context("askers are live")?;
            let why =
                lookup_miss::explain(nodes, artifact.root, check.asker, asker, live_holders).await;
            tracing::info!(root = %artifact.root, %why, "lookup missed a live holder");
            check.error = Some(format!("{}; {why}", check.error.take().unwrap_or_default()));
        }
    }
    Ok(checks)
}

/// Looks `root` up from `asker`, fetches it, and drops the copy again.
async fn check_one(
    asker_index: usize,
    asker: FullNode,
    root: ContentId,
    live_holders: Vec<libp2p::PeerId>,
) -> Result<Check> {
    let mut check = Check {
        asker: asker_index,
        live_holder: !live_holders.is_empty(),
        ..Check::default()
    };
    let providers = asker.sim.handle.find_providers(root).await?;
    check.found = providers.iter().any(|p| live_holders.contains(p));
    let request = FetchRequest {
        allow_unsigned: false,
        id: root.to_string(),
        include: Vec::new(),
        pin: false,
    };
    let mut progress = ProgressReporter::silent();
    let fetch = asker.node.fetcher().fetch(request, &mut progress);
    match tokio::time::timeout(CHECK_TIMEOUT, fetch).await {
        Ok(Ok(_)) => check.fetched = true,
        Ok(Err(e)) => {
            tracing::debug!(%root, error = %e, "fetch failed");
            check.error = Some(e.to_string());
        }
        Err(_) => {
            tracing::warn!(%root, "fetch still running after {CHECK_TIMEOUT:?}");
            check.error = Some(format!("still running after {CHECK_TIMEOUT:?}"));
        }
    }
    asker.node.collect_garbage(false).await?;
    Ok(check)
}
