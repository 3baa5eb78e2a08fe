//! Names: do published names resolve as reliably as content is found? N whole nodes;
//! P of them publish one small artifact each under a name (signed release and name
//! record put into the DHT, as `seedbank publish` does), optionally a second revision
//! of it. Then R random other nodes each resolve a random name (`publisher/name` or
//! `publisher/name@v1`) and look up the providers of the root it should resolve to,
//! side by side. With departure on, every publisher then leaves the network for good
//! and the same is measured again: name records are kept by the DHT peers closest to
//! their key, so they outlive their publisher.
//!
//! A resolve counts as found when it gives the root published under that name and
//! revision *from the network*: an answer from the resolver's own cache (it may have
//! resolved the name before) does not count. A provider lookup counts as found when it
//! names the publisher. After departure that is a stale record, since the publisher
//! is gone: it shows provider records outliving their node too, not that the content
//! could be fetched.
//!
//! Resolves and provider lookups alternate in which runs first, so neither profits
//! from connections the other opened. Their DHT request counts are the peers that
//! answered the whole lookup; for a name that needs a second, untimed record lookup of
//! the same key (resolving does not report it).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use libp2p::PeerId;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use seedbank_node::progress::ProgressReporter;
use seedbank_protocol::name_record::name_key;
use seedbank_protocol::names_api::{PublishRequest, RecordSource};
use seedbank_protocol::{ArtifactKind, ContentId, PublisherKey};
use serde::Serialize;

use crate::full_node::{start_full_node, write_random_file, FullNode};
use crate::join::{join_nodes, settle, wait_for_queries, SETTLE_LIMIT};
use crate::network::NodeProfile;
use crate::stats::{spread, spread_ms, Spread};

/// Longest one resolve or provider lookup may take before it counts as failed; the
/// node's own lookup timeout (25 s) ends a hopeless one well before this.
const PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Failure reasons kept per figure: enough to see what went wrong without a report as
/// long as the run.
const MAX_FAILURES_KEPT: usize = 10;

/// Knobs of the names scenario.
#[derive(Debug, Clone, Serialize)]
pub struct NamesConfig {
    /// Nodes in the network.
    pub nodes: usize,
    /// Nodes that publish a name (one each).
    pub publishers: usize,
    /// Revisions published under each name, 1 or 2 (`v1`, then `v2`).
    pub revisions: usize,
    /// Resolves (each with a provider lookup beside it) per phase.
    pub resolves: usize,
    /// Size of each published artifact, bytes.
    pub artifact_bytes: u64,
    /// After the first phase, every publisher leaves and the resolves run again.
    pub departure: bool,
    /// Random seed.
    pub seed: u64,
    /// Nodes started per batch while joining.
    pub join_batch: usize,
    /// Publications, and resolves with their lookups, in flight at once over all
    /// nodes (2 cores serve every node).
    pub concurrency: usize,
    /// How every node is set up.
    pub node: NodeProfile,
}

/// How one kind of lookup fared in a phase.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LookupFigures {
    /// Lookups made.
    pub lookups: usize,
    /// Lookups that found what was published.
    pub found: usize,
    /// found / lookups.
    pub success_rate: f64,
    /// Milliseconds from start to end, every lookup.
    pub latency_ms: Spread,
    /// DHT peers that answered the whole lookup, every lookup.
    pub requests: Spread,
    /// Why lookups failed (the first few).
    pub failures: Vec<String>,
    /// Every lookup's milliseconds, for the plot.
    #[serde(skip)]
    pub latencies: Vec<f64>,
}

/// One phase: resolves and provider lookups with the publishers up, or after they left.
#[derive(Debug, Clone, Serialize)]
pub struct NamesPhase {
    /// Whether the publishers were still up.
    pub publishers_up: bool,
    /// Name resolves.
    pub names: LookupFigures,
    /// Provider lookups of the same roots.
    pub providers: LookupFigures,
}

/// What the publications took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PublishFigures {
    /// Publications made (publishers × revisions).
    pub published: usize,
    /// Publications that failed.
    pub failed: usize,
    /// Milliseconds per publication (signing, name record, catalog, words).
    pub latency_ms: Spread,
    /// DHT peers that answered each name record's put, as the node reports it. libp2p
    /// counts the walk to the peers closest to the key and the puts to them together,
    /// so this is above the number of peers that stored the record (at most 20).
    pub put_answered: Spread,
    /// Why publications failed (the first few).
    pub failures: Vec<String>,
}

/// What the names scenario measured.
#[derive(Debug, Clone, Serialize)]
pub struct NamesReport {
    /// The knobs.
    pub config: NamesConfig,
    /// Seconds until every node had joined.
    pub join_secs: f64,
    /// The publications.
    pub publish: PublishFigures,
    /// Publishers up, then (with departure) after they left.
    pub phases: Vec<NamesPhase>,
    /// Seconds the whole run took.
    pub total_secs: f64,
}

/// Runs the scenario in a temporary directory.
pub async fn run(config: NamesConfig) -> Result<NamesReport> {
    let dir = tempfile::tempdir().context("creating a work directory")?;
    run_in(config, dir.path()).await
}

/// One published name: who published it and the root of each revision, oldest first.
struct Published {
    publisher: usize,
    peer: PeerId,
    key: PublisherKey,
    name: String,
    roots: Vec<ContentId>,
}

async fn run_in(config: NamesConfig, dir: &Path) -> Result<NamesReport> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(config.seed);
    let started = Instant::now();
    let profile = config.node;
    let nodes = join_nodes(config.nodes, config.join_batch, &mut rng, |i, bootstrap| {
        let dir = dir.join(format!("node-{i}"));
        async move { start_full_node(&dir, &bootstrap, profile, true).await }
    })
    .await?;
    settle(&nodes, SETTLE_LIMIT).await?;
    let join_secs = started.elapsed().as_secs_f64();
    tracing::info!(join_secs, "all nodes joined");

    let mut order: Vec<usize> = (0..nodes.len()).collect();
    order.shuffle(&mut rng);
    let publishers: Vec<usize> = order
        .into_iter()
        .take(config.publishers.min(nodes.len().saturating_sub(1)))
        .collect();
    let (published, publish) = publish_all(&config, &nodes, &publishers, dir).await?;
    // Let announcements the nodes started on their own (words, the announcer) finish.
    wait_for_queries(&nodes, nodes.len() as u64 / 20).await?;
    tracing::info!(
        secs = started.elapsed().as_secs_f64(),
        published = publish.published,
        "names published"
    );

    let askers: Vec<usize> = (0..nodes.len())
        .filter(|i| !publishers.contains(i))
        .collect();
    let mut phases = Vec::new();
    phases.push(probe_phase(&config, &nodes, &askers, &published, true, &mut rng).await?);
    if config.departure {
        for &p in &publishers {
            nodes[p].leave().await?;
        }
        tracing::info!(left = publishers.len(), "publishers left");
        phases.push(probe_phase(&config, &nodes, &askers, &published, false, &mut rng).await?);
    }
    for (i, node) in nodes.iter().enumerate() {
        if !config.departure || !publishers.contains(&i) {
            node.node.shutdown().await?;
        }
    }
    Ok(NamesReport {
        config,
        join_secs,
        publish,
        phases,
        total_secs: started.elapsed().as_secs_f64(),
    })
}

/// Each publisher publishes `revisions` random artifacts under its own name, the
/// revisions in order; publishers run `concurrency` at a time.
async fn publish_all(
    config: &NamesConfig,
    nodes: &[FullNode],
    publishers: &[usize],
    dir: &Path,
) -> Result<(Vec<Published>, PublishFigures)> {
    let revisions = config.revisions.clamp(1, 2);
    let jobs = publishers.iter().map(|&p| {
        let node = nodes[p].clone();
        let sources: Vec<_> = (0..revisions)
            .map(|r| dir.join(format!("artifact-{p}-v{}.bin", r + 1)))
            .collect();
        let seed = config.seed ^ ((p as u64) << 8);
        let bytes = config.artifact_bytes;
        async move {
            let name = format!("model-{p}");
            let mut roots = Vec::new();
            let mut outcomes = Vec::new();
            for (r, source) in sources.iter().enumerate() {
                write_random_file(source, bytes, seed + r as u64)?;
                let started = Instant::now();
                let outcome = publish_one(&node, source, &name, &format!("v{}", r + 1)).await;
                if let Ok((root, _)) = &outcome {
                    roots.push(*root);
                }
                outcomes.push(outcome.map(|(_, replicas)| (started.elapsed(), replicas)));
            }
            let published = Published {
                publisher: p,
                peer: node.sim.peer,
                key: node.node.names().node_publisher(),
                name,
                roots,
            };
            anyhow::Ok((published, outcomes))
        }
    });
    let results: Vec<_> = futures::stream::iter(jobs)
        .buffer_unordered(config.concurrency.max(1))
        .collect()
        .await;
    let mut published = Vec::new();
    let mut figures = PublishFigures::default();
    let (mut latencies, mut replicas) = (Vec::new(), Vec::new());
    for result in results {
        let (name, outcomes) = result?;
        for outcome in outcomes {
            match outcome {
                Ok((took, stored)) => {
                    figures.published += 1;
                    latencies.push(took);
                    replicas.push(f64::from(stored));
                }
                Err(e) => {
                    figures.failed += 1;
                    keep_failure(&mut figures.failures, format!("{}: {e:#}", name.name));
                }
            }
        }
        // A name counts only if every revision was published: the latest is then known.
        if name.roots.len() == revisions {
            published.push(name);
        }
    }
    published.sort_by_key(|p| p.publisher);
    figures.latency_ms = spread_ms(&latencies);
    figures.put_answered = spread(&replicas);
    Ok((published, figures))
}

/// Publishes `source` on `node` as `name` at `revision`; returns its root and how many
/// DHT peers answered the name record's put.
async fn publish_one(
    node: &FullNode,
    source: &Path,
    name: &str,
    revision: &str,
) -> Result<(ContentId, u32)> {
    let request = PublishRequest {
        target: source.display().to_string(),
        name: name.to_owned(),
        revision: Some(revision.to_owned()),
        kind: Some(ArtifactKind::Model),
        licence: Some("MIT".into()),
        card: None,
        tags: Vec::new(),
        key: None,
        reference: false,
    };
    let report = node
        .node
        .publish(&request, &mut ProgressReporter::silent())
        .await?;
    let root = report.release.release.root;
    // The node announces the root in the background; announce it here too, so every
    // provider lookup of the phase has its record in place, as every resolve does.
    node.sim.handle.start_providing(root).await?;
    Ok((root, report.replicas))
}

/// One resolve and its provider lookup.
struct Probe {
    asker: FullNode,
    /// `publisher/name` or `publisher/name@v1`.
    text: String,
    key: [u8; 32],
    root: ContentId,
    publisher: PeerId,
    names_first: bool,
}

/// What one lookup gave.
struct Outcome {
    found: bool,
    took: Duration,
    requests: u32,
    failure: Option<String>,
}

/// `config.resolves` probes, each by a random asker of a random name.
async fn probe_phase(
    config: &NamesConfig,
    nodes: &[FullNode],
    askers: &[usize],
    published: &[Published],
    publishers_up: bool,
    rng: &mut impl RngExt,
) -> Result<NamesPhase> {
    let mut probes = Vec::with_capacity(config.resolves);
    if !published.is_empty() && !askers.is_empty() {
        for i in 0..config.resolves {
            let name = &published[rng.random_range(0..published.len())];
            let asker = nodes[askers[rng.random_range(0..askers.len())]].clone();
            // With two revisions, one resolve in two asks for the earlier one by label.
            let earlier = name.roots.len() > 1 && rng.random_bool(0.5);
            let (text, root) = if earlier {
                (format!("{}/{}@v1", name.key, name.name), name.roots[0])
            } else {
                let latest = *name.roots.last().context("a published name has a root")?;
                (format!("{}/{}", name.key, name.name), latest)
            };
            probes.push(Probe {
                asker,
                text,
                key: name_key(&name.key, &name.name),
                root,
                publisher: name.peer,
                names_first: i % 2 == 0,
            });
        }
    }
    let outcomes: Vec<(Outcome, Outcome)> =
        futures::stream::iter(probes.into_iter().map(run_probe))
            .buffer_unordered(config.concurrency.max(1))
            .collect()
            .await;
    let (names, providers): (Vec<_>, Vec<_>) = outcomes.into_iter().unzip();
    let phase = NamesPhase {
        publishers_up,
        names: figures(names),
        providers: figures(providers),
    };
    tracing::info!(
        publishers_up,
        names = phase.names.found,
        providers = phase.providers.found,
        lookups = phase.names.lookups,
        "names phase done"
    );
    Ok(phase)
}

/// Resolves the name and looks up the providers of its root, in the probe's order;
/// then counts the DHT peers a lookup of the name's record hears from.
async fn run_probe(probe: Probe) -> (Outcome, Outcome) {
    let (names, providers) = if probe.names_first {
        let names = resolve(&probe).await;
        (names, lookup_providers(&probe).await)
    } else {
        let providers = lookup_providers(&probe).await;
        (resolve(&probe).await, providers)
    };
    let mut names = names;
    let lookup = tokio::time::timeout(PROBE_TIMEOUT, probe.asker.sim.handle.get_records(probe.key));
    if let Ok(Ok(lookup)) = lookup.await {
        names.requests = lookup.peers_answered;
    }
    (names, providers)
}

async fn resolve(probe: &Probe) -> Outcome {
    let started = Instant::now();
    let resolved =
        tokio::time::timeout(PROBE_TIMEOUT, probe.asker.node.names().resolve(&probe.text)).await;
    let took = started.elapsed();
    let failure = match resolved {
        Err(_) => Some(format!("no answer within {PROBE_TIMEOUT:?}")),
        Ok(Err(e)) => Some(e.to_string()),
        Ok(Ok(r)) if r.source != RecordSource::Network => {
            Some("answered from the resolver's cache, not the network".into())
        }
        Ok(Ok(r)) if r.root != probe.root => {
            Some(format!("resolved to {} instead of {}", r.root, probe.root))
        }
        Ok(Ok(_)) => None,
    };
    Outcome {
        found: failure.is_none(),
        took,
        requests: 0,
        failure,
    }
}

async fn lookup_providers(probe: &Probe) -> Outcome {
    let started = Instant::now();
    let lookup = tokio::time::timeout(
        PROBE_TIMEOUT,
        probe.asker.sim.handle.lookup_providers(probe.root),
    )
    .await;
    let took = started.elapsed();
    match lookup {
        Ok(Ok(lookup)) => {
            let found = lookup.providers.contains(&probe.publisher);
            Outcome {
                found,
                took,
                requests: lookup.requests,
                failure: (!found).then(|| {
                    format!(
                        "{} providers found, not the publisher",
                        lookup.providers.len()
                    )
                }),
            }
        }
        Ok(Err(e)) => Outcome {
            found: false,
            took,
            requests: 0,
            failure: Some(e.to_string()),
        },
        Err(_) => Outcome {
            found: false,
            took,
            requests: 0,
            failure: Some(format!("no answer within {PROBE_TIMEOUT:?}")),
        },
    }
}

/// Sums up one kind of lookup.
fn figures(outcomes: Vec<Outcome>) -> LookupFigures {
    let mut figures = LookupFigures {
        lookups: outcomes.len(),
        ..LookupFigures::default()
    };
    let mut took = Vec::with_capacity(outcomes.len());
    let mut requests = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        took.push(outcome.took);
        requests.push(f64::from(outcome.requests));
        if outcome.found {
            figures.found += 1;
        }
        if let Some(failure) = outcome.failure {
            keep_failure(&mut figures.failures, failure);
        }
    }
    figures.success_rate = if figures.lookups == 0 {
        1.0
    } else {
        figures.found as f64 / figures.lookups as f64
    };
    figures.latency_ms = spread_ms(&took);
    figures.requests = spread(&requests);
    figures.latencies = took.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    figures
}

/// Keeps `failure` if fewer than [`MAX_FAILURES_KEPT`] are kept.
fn keep_failure(kept: &mut Vec<String>, failure: String) {
    if kept.len() < MAX_FAILURES_KEPT {
        kept.push(failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(found: bool, ms: u64, requests: u32) -> Outcome {
        Outcome {
            found,
            took: Duration::from_millis(ms),
            requests,
            failure: (!found).then(|| "missed".to_owned()),
        }
    }

    #[test]
    fn figures_count_what_was_found_and_keep_why_not() {
        let f = figures(vec![
            outcome(true, 10, 4),
            outcome(true, 30, 6),
            outcome(false, 20, 5),
        ]);
        assert_eq!((f.lookups, f.found), (3, 2));
        assert!((f.success_rate - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(f.latency_ms.p50, 20.0);
        assert_eq!(f.requests.p50, 5.0);
        assert_eq!(f.failures, vec!["missed".to_owned()]);
        assert_eq!(figures(Vec::new()).success_rate, 1.0);
    }
}
