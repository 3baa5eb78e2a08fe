//! Swarm: one seeder whose upload is capped, M fetchers that all want the same artifact
//! at the same moment. Measures the time until every fetcher has it, for each M, twice:
//! as a swarm (fetchers trade the parts they already hold) and against a single-server
//! baseline (fetchers do not serve, so everything comes from the seeder).
//!
//! Every node here is a whole Seedbank node: an iroh-blobs store and sled metadata in a
//! temporary directory, the blob provider, the fetch scheduler, behind a shaped link.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use seedbank_node::node::Node;
use seedbank_node::progress::ProgressReporter;
use seedbank_protocol::api::FetchRequest;
use seedbank_protocol::{ArtifactKind, ContentId};
use serde::Serialize;

use crate::full_node::{add_pinned, start_full_node, write_random_file};
use crate::link::LinkShape;
use crate::network::NodeProfile;
use crate::stats::{spread, Spread};

/// Knobs of the swarm scenario.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmConfig {
    /// The numbers of fetchers to try, one run each.
    pub fetchers: Vec<usize>,
    /// Artifact size in bytes.
    pub size: u64,
    /// The seeder's upload capacity, bytes per second.
    pub seeder_upload: u64,
    /// Each fetcher's link (the same for all).
    pub fetcher_link: LinkShape,
    /// One-way delay of the seeder's link.
    pub seeder_latency: Duration,
    /// Also run the single-server baseline for each M.
    pub baseline: bool,
    /// Empty nodes connected to the seeder and to every fetcher, holding nothing: the
    /// idle peers of a LAN or a busy network. They must cost the fetch nothing.
    pub idle_peers: usize,
    /// Random seed (the artifact's bytes).
    pub seed: u64,
    /// Where nodes keep their data; a temporary directory when `None`.
    pub work_dir: Option<PathBuf>,
}

/// How the fetchers may get the artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SwarmMode {
    /// Fetchers serve what they hold to each other.
    Swarm,
    /// Fetchers only download: everything comes from the seeder.
    SingleServer,
}

impl SwarmMode {
    /// The mode's name in tables and plots.
    pub fn label(self) -> &'static str {
        match self {
            SwarmMode::Swarm => "swarm",
            SwarmMode::SingleServer => "single server",
        }
    }
}

/// One run: M fetchers in one mode.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmRun {
    /// The mode.
    pub mode: SwarmMode,
    /// Fetchers.
    pub fetchers: usize,
    /// Seconds until the last fetcher had the whole artifact.
    pub all_done_secs: f64,
    /// Seconds until each fetcher had it.
    pub fetcher_secs: Spread,
    /// Bytes the seeder uploaded, relative to the artifact size.
    pub seeder_upload_ratio: f64,
    /// all_done_secs relative to the same mode's run with one fetcher.
    pub ratio_to_one: f64,
}

/// What the swarm scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct SwarmReport {
    /// The knobs.
    pub config: SwarmConfig,
    /// Every run.
    pub runs: Vec<SwarmRun>,
}

/// Runs the scenario.
pub async fn run(config: SwarmConfig) -> Result<SwarmReport> {
    let temp;
    let work_dir = match &config.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a work directory")?;
            temp.path().to_path_buf()
        }
    };
    let source = work_dir.join("artifact.bin");
    write_random_file(&source, config.size, config.seed)?;
    let mut modes = vec![SwarmMode::Swarm];
    if config.baseline {
        modes.push(SwarmMode::SingleServer);
    }
    let mut runs: Vec<SwarmRun> = Vec::new();
    for mode in modes {
        for (index, &fetchers) in config.fetchers.iter().enumerate() {
            let dir = work_dir.join(format!("{mode:?}-{fetchers}-{index}"));
            let mut run = run_once(&config, mode, fetchers, &source, &dir).await?;
            let one = runs
                .iter()
                .find(|r| r.mode == mode && r.fetchers == 1)
                .map_or(run.all_done_secs, |r| r.all_done_secs);
            run.ratio_to_one = run.all_done_secs / one;
            tracing::info!(?mode, fetchers, secs = run.all_done_secs, "swarm run done");
            runs.push(run);
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    Ok(SwarmReport { config, runs })
}

async fn run_once(
    config: &SwarmConfig,
    mode: SwarmMode,
    fetchers: usize,
    source: &Path,
    dir: &Path,
) -> Result<SwarmRun> {
    let seeder_link = LinkShape {
        latency: config.seeder_latency,
        upload: Some(config.seeder_upload),
        download: None,
    };
    let seeder = start_full_node(
        &dir.join("seeder"),
        &[],
        NodeProfile::new(seeder_link),
        true,
    )
    .await?;
    let seeder_address = seeder.sim.address.clone();
    let seeder = seeder.node;
    let mut nodes = Vec::with_capacity(fetchers);
    let mut addresses = vec![seeder_address.clone()];
    for i in 0..fetchers {
        let fetcher = start_full_node(
            &dir.join(format!("fetcher-{i}")),
            std::slice::from_ref(&seeder_address),
            NodeProfile::new(config.fetcher_link),
            mode == SwarmMode::Swarm,
        )
        .await?;
        addresses.push(fetcher.sim.address.clone());
        nodes.push(fetcher.node);
    }
    let mut idle = Vec::with_capacity(config.idle_peers);
    for i in 0..config.idle_peers {
        let peer = start_full_node(
            &dir.join(format!("idle-{i}")),
            &addresses,
            NodeProfile::new(config.fetcher_link),
            true,
        )
        .await?;
        idle.push(peer.node);
    }
    // Added once the fetchers are in its routing table, so it is announced at once.
    wait_for_routing(&seeder).await?;
    let root = add_pinned(
        &seeder,
        source,
        ArtifactKind::Model,
        "swarm-test".into(),
        true,
    )
    .await?;
    wait_until_findable(&nodes, root, seeder.net().local_peer()).await?;

    let started = Instant::now();
    let tasks: Vec<_> = nodes
        .iter()
        .map(|node| {
            let node = node.clone();
            tokio::spawn(async move {
                let request = FetchRequest {
                    allow_unsigned: false,
                    id: root.to_string(),
                    include: Vec::new(),
                    pin: false,
                };
                node.fetcher()
                    .fetch(request, &mut ProgressReporter::silent())
                    .await
                    .map(|report| {
                        tracing::debug!(?report, "fetcher done");
                        started.elapsed()
                    })
            })
        })
        .collect();
    let mut times = Vec::with_capacity(fetchers);
    for task in tasks {
        let elapsed = task.await?.context("a fetcher failed")?;
        times.push(elapsed.as_secs_f64());
    }
    let uploaded: u64 = seeder.traffic().snapshot().values().map(|b| b.up).sum();
    for node in nodes.iter().chain(&idle).chain(std::iter::once(&seeder)) {
        node.shutdown().await?;
    }
    Ok(SwarmRun {
        mode,
        fetchers,
        all_done_secs: times.iter().copied().fold(0.0, f64::max),
        fetcher_secs: spread(&times),
        seeder_upload_ratio: uploaded as f64 / config.size as f64,
        ratio_to_one: 1.0,
    })
}

/// Waits until the seeder has a peer in its routing table.
async fn wait_for_routing(seeder: &Node) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while seeder.net().status().await?.routing_table_size == 0 {
        if Instant::now() > deadline {
            bail!("no fetcher joined the seeder's routing table within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until every fetcher's DHT lookup finds the seeder.
async fn wait_until_findable(
    nodes: &[Node],
    root: ContentId,
    seeder: libp2p::PeerId,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    for node in nodes {
        loop {
            if node.net().find_providers(root).await?.contains(&seeder) {
                break;
            }
            if Instant::now() > deadline {
                bail!("fetchers could not find the seeder's announcement within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}
