//! `seedbank-simnet`: runs a scenario over many real Seedbank nodes in one process and
//! prints a table; `--json-out` writes the full report as JSON and `--plot-dir` its
//! curves as SVG.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use seedbank_simnet::link::LinkShape;
use seedbank_simnet::network::{self, NodeProfile};
use seedbank_simnet::plot::{write_svg, Chart, Series};
use seedbank_simnet::{churn, discovery, names, swarm};

mod legend;
mod names_report;
mod preserve_report;
use legend::print_legend;
use names_report::{plot_names, print_names};
use preserve_report::{plot_preserve_churn, print_preserve_churn, PreserveChurnArgs};

const MIB: u64 = 1024 * 1024;

/// Log filter when `SEEDBANK_SIMNET_LOG` is unset. iroh-blobs logs an error for every
/// request that reaches the store of a node that has left (churn), which is expected.
const DEFAULT_LOG_FILTER: &str = "warn,iroh_blobs=off";

/// Many real Seedbank nodes in one process, over shaped in-memory links.
///
/// Every node runs the node crate's own code (Kademlia DHT, blob store, fetch
/// scheduler); only the transport is in memory. Each node's access link has a one-way
/// delay and optional upload/download caps. Choices are drawn from `--seed`, so a run
/// can be repeated.
///
/// Each scenario's defaults finish in about a minute on 2 cores (release build); its
/// help names the bigger runs recorded in simnet/results, which take many minutes.
#[derive(Debug, Parser)]
#[command(name = "seedbank-simnet", version, about, long_about)]
struct Cli {
    /// Write the full report as JSON here
    #[arg(long, global = true, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Write SVG plots of the scenario's curves into this directory
    #[arg(long, global = true, value_name = "DIR")]
    plot_dir: Option<PathBuf>,
    /// Random seed: the same seed makes the same choices
    #[arg(long, global = true, default_value_t = 7)]
    seed: u64,
    /// One-way delay of every node's link, in milliseconds
    #[arg(long, global = true, default_value_t = 5)]
    latency_ms: u64,
    /// Seconds before an idle connection between simulated nodes closes: shorter saves
    /// memory, longer saves connection handshakes (CPU)
    #[arg(long, global = true, default_value_t = network::DEFAULT_IDLE_SECS)]
    idle_secs: u64,
    /// The scenario
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// N nodes, K artifacts announced by random nodes, every node looks up random
    /// artifacts: success rate, hops (estimated from the DHT peers asked) and latency
    /// percentiles. Plot: lookups by hop count.
    ///
    /// Big run (recorded): `discovery --nodes 1000 --concurrency 8`, about 12 minutes
    /// and 4 GB of memory on 2 cores; 400 nodes take about 4 minutes.
    Discovery {
        /// Nodes in the network
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Artifacts announced
        #[arg(long, default_value_t = 50)]
        artifacts: usize,
        /// Lookups per node
        #[arg(long, default_value_t = 1)]
        lookups_per_node: usize,
        /// Nodes started per batch while joining; the next batch waits until the last
        /// one's bootstraps are mostly done
        #[arg(long, default_value_t = 25)]
        join_batch: usize,
        /// Lookups and announcements in flight at once over all nodes (2 cores serve
        /// every node, so this keeps latency a measure of the network, not of the CPU)
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
    },
    /// Nodes leave and join at a rate; each artifact starts on R nodes that keep
    /// re-announcing it. Every round a node that does not hold an artifact looks it up
    /// and fetches it (then drops its copy): fraction of artifacts found and fetched,
    /// over (compressed) time. Whole nodes, each with an on-disk store in a temporary
    /// directory; nodes that leave never come back. Plot: fractions against simulated
    /// hours.
    ///
    /// Big run (recorded): `churn --nodes 100 --artifacts 50 --rounds 8`, about 9
    /// minutes on 2 cores.
    Churn {
        /// Nodes up at any time
        #[arg(long, default_value_t = 40)]
        nodes: usize,
        /// Artifacts
        #[arg(long, default_value_t = 20)]
        artifacts: usize,
        /// Size of each artifact in KiB
        #[arg(long, default_value_t = 256)]
        artifact_kib: u64,
        /// Holders each artifact starts with
        #[arg(long, default_value_t = 3)]
        replicas: usize,
        /// Fraction of nodes replaced per simulated hour
        #[arg(long, default_value_t = 0.10)]
        churn_per_hour: f64,
        /// Simulated minutes per round
        #[arg(long, default_value_t = 30.0)]
        round_minutes: f64,
        /// Rounds
        #[arg(long, default_value_t = 4)]
        rounds: usize,
        /// Checks (lookup and fetch) in flight at once, each by a different node
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Churn with preservers: as churn, but P of the N nodes follow a collection of
    /// every artifact (published by one node, R copies wanted each) and repair: each
    /// round every preserver spot-checks the members' copies and fetches those below R,
    /// least-replicated first, within its budget. A preserver that leaves is replaced
    /// by an empty preserver. Table and plot: retrievable artifacts, copies, repairs.
    ///
    /// Recorded run: `--idle-secs 300 preserve-churn --target 4 --round-minutes 60
    /// --rounds 24` (2-10 min a round on 2 cores); --json-out is written every round.
    PreserveChurn(PreserveChurnArgs),
    /// One seeder with capped upload, M fetchers of one artifact starting together:
    /// time until all have it, as a swarm (fetchers trade parts) and, with
    /// --baseline, from a single server (fetchers never upload). Whole nodes, each
    /// with an on-disk store in a temporary directory. Plot: time against M.
    ///
    /// Big run (recorded): `swarm --size-mib 256 --fetchers 1,4,16 --baseline`, about
    /// 7 minutes on 2 cores (the single server with 16 fetchers alone takes over 4).
    Swarm {
        /// Fetcher counts to run, comma-separated
        #[arg(long, value_delimiter = ',', default_value = "1,2,4,8,16")]
        fetchers: Vec<usize>,
        /// Artifact size in MiB
        #[arg(long, default_value_t = 64)]
        size_mib: u64,
        /// The seeder's upload capacity in MiB/s
        #[arg(long, default_value_t = 16)]
        seeder_upload_mib: u64,
        /// Each fetcher's upload capacity in MiB/s (0: unlimited)
        #[arg(long, default_value_t = 16)]
        fetcher_upload_mib: u64,
        /// Each fetcher's download capacity in MiB/s (0: unlimited)
        #[arg(long, default_value_t = 0)]
        fetcher_download_mib: u64,
        /// Also run the single-server baseline
        #[arg(long)]
        baseline: bool,
        /// Empty peers connected to the seeder and every fetcher, holding nothing
        #[arg(long, default_value_t = 0)]
        idle_peers: usize,
        /// Keep node data here instead of a temporary directory
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
    },
    /// N whole nodes; P publish a small artifact each under a name (v1, then v2).
    /// Random other nodes then resolve random names (`publisher/name` or `…@v1`) and
    /// look up the providers of the same root: success, latency and DHT peers asked of
    /// both, side by side; then again after every publisher left the network (records
    /// outlive their publisher). Plot: share of lookups done against milliseconds.
    ///
    /// Defaults take about 2 minutes on 2 cores. Big run (recorded): `names --nodes 500
    /// --publishers 50 --resolves 500`, about 30 minutes (most of it joining) and 2 GB
    /// of memory on 2 cores shared with a compile.
    Names {
        /// Nodes in the network
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Nodes that publish a name, one each
        #[arg(long, default_value_t = 20)]
        publishers: usize,
        /// Revisions published under each name (1 or 2)
        #[arg(long, default_value_t = 2)]
        revisions: usize,
        /// Resolves, each with a provider lookup of the same root, per phase
        #[arg(long, default_value_t = 100)]
        resolves: usize,
        /// Size of each published artifact in KiB
        #[arg(long, default_value_t = 16)]
        artifact_kib: u64,
        /// Skip the second phase, after the publishers left
        #[arg(long)]
        no_departure: bool,
        /// Nodes started per batch while joining
        #[arg(long, default_value_t = 25)]
        join_batch: usize,
        /// Publications, and resolves with their lookups, in flight at once over all
        /// nodes
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SEEDBANK_SIMNET_LOG")
                .unwrap_or_else(|_| DEFAULT_LOG_FILTER.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let link = LinkShape {
        latency: Duration::from_millis(cli.latency_ms),
        upload: None,
        download: None,
    };
    let node = NodeProfile {
        link,
        idle_secs: cli.idle_secs,
    };
    if let Some(dir) = &cli.plot_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let plot_dir = cli.plot_dir.clone();
    let json = runtime.block_on(async {
        match cli.scenario {
            Scenario::Discovery {
                nodes,
                artifacts,
                lookups_per_node,
                join_batch,
                concurrency,
            } => {
                let report = discovery::run(discovery::DiscoveryConfig {
                    nodes,
                    artifacts,
                    lookups_per_node,
                    seed: cli.seed,
                    join_batch,
                    concurrency,
                    node,
                })
                .await?;
                finish(
                    &report,
                    print_discovery,
                    plot_discovery,
                    plot_dir.as_deref(),
                )
            }
            Scenario::Churn {
                nodes,
                artifacts,
                artifact_kib,
                replicas,
                churn_per_hour,
                round_minutes,
                rounds,
                concurrency,
            } => {
                let report = churn::run(churn::ChurnConfig {
                    nodes,
                    artifacts,
                    artifact_bytes: artifact_kib * 1024,
                    replicas,
                    churn_per_hour,
                    round_minutes,
                    rounds,
                    concurrency,
                    seed: cli.seed,
                    node,
                })
                .await?;
                finish(&report, print_churn, plot_churn, plot_dir.as_deref())
            }
            Scenario::PreserveChurn(args) => {
                let json_out = cli.json_out.as_deref();
                let report =
                    preserve_report::run_preserve_churn(args, cli.seed, node, json_out).await?;
                let (print, plot) = (print_preserve_churn, plot_preserve_churn);
                finish(&report, print, plot, plot_dir.as_deref())
            }
            Scenario::Swarm {
                fetchers,
                size_mib,
                seeder_upload_mib,
                fetcher_upload_mib,
                fetcher_download_mib,
                baseline,
                idle_peers,
                work_dir,
            } => {
                let cap = |mib: u64| (mib > 0).then_some(mib * MIB);
                let report = swarm::run(swarm::SwarmConfig {
                    fetchers,
                    size: size_mib * MIB,
                    seeder_upload: seeder_upload_mib.max(1) * MIB,
                    fetcher_link: LinkShape {
                        upload: cap(fetcher_upload_mib),
                        download: cap(fetcher_download_mib),
                        ..link
                    },
                    seeder_latency: link.latency,
                    baseline,
                    idle_peers,
                    seed: cli.seed,
                    work_dir,
                })
                .await?;
                finish(&report, print_swarm, plot_swarm, plot_dir.as_deref())
            }
            Scenario::Names {
                nodes,
                publishers,
                revisions,
                resolves,
                artifact_kib,
                no_departure,
                join_batch,
                concurrency,
            } => {
                let report = names::run(names::NamesConfig {
                    nodes,
                    publishers,
                    revisions,
                    resolves,
                    artifact_bytes: artifact_kib * 1024,
                    departure: !no_departure,
                    seed: cli.seed,
                    join_batch,
                    concurrency,
                    node,
                })
                .await?;
                finish(&report, print_names, plot_names, plot_dir.as_deref())
            }
        }
    })?;
    if let Some(path) = cli.json_out {
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Prints the table, draws the plots if asked, and returns the report as JSON.
fn finish<R: serde::Serialize>(
    report: &R,
    print: fn(&R),
    plot: fn(&Path, &R) -> Result<()>,
    plot_dir: Option<&Path>,
) -> Result<String> {
    print(report);
    if let Some(dir) = plot_dir {
        plot(dir, report)?;
    }
    Ok(serde_json::to_string_pretty(report)?)
}

fn print_discovery(report: &discovery::DiscoveryReport) {
    println!(
        "{:<7} {:>9} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "nodes",
        "artifacts",
        "lookups",
        "found",
        "success",
        "hops p50",
        "hops p90",
        "ms p50",
        "ms p90",
        "ms p99"
    );
    println!(
        "{:<7} {:>9} {:>8} {:>7} {:>7.2}% {:>8} {:>8} {:>8.1} {:>8.1} {:>8.1}",
        report.config.nodes,
        report.config.artifacts,
        report.lookups,
        report.found,
        report.success_rate * 100.0,
        report.hops.p50,
        report.hops.p90,
        report.latency_ms.p50,
        report.latency_ms.p90,
        report.latency_ms.p99
    );
    println!();
    println!("joined in {:.1} s", report.join_secs);
    println!(
        "successful lookups by estimated hops: {}",
        hop_counts(&report.hop_histogram)
    );
    print_legend(&[
        ("nodes", "simulated nodes in the network"),
        ("artifacts", "artifacts announced, each by a random node"),
        ("lookups", "lookups made, each by a node for a random artifact"),
        ("found", "lookups that found the announcing node"),
        ("success", "found / lookups"),
        (
            "hops",
            "estimated: DHT peers that had answered when the provider turned up / 3 (Kademlia's parallelism), rounded up; 0 hops: the record was in the node's own store",
        ),
        (
            "p50, p90, p99",
            "median, 90th and 99th percentile over the lookups",
        ),
        ("ms", "milliseconds from the lookup's start to its end"),
    ]);
}

/// `[22, 8]` as `0 hops: 22, 1 hop: 8`.
fn hop_counts(histogram: &[usize]) -> String {
    let counts: Vec<String> = histogram
        .iter()
        .enumerate()
        .map(|(hops, count)| {
            let unit = if hops == 1 { "hop" } else { "hops" };
            format!("{hops} {unit}: {count}")
        })
        .collect();
    if counts.is_empty() {
        "none".into()
    } else {
        counts.join(", ")
    }
}

fn plot_discovery(dir: &Path, report: &discovery::DiscoveryReport) -> Result<()> {
    let points = report
        .hop_histogram
        .iter()
        .enumerate()
        .map(|(hops, count)| (hops as f64, *count as f64))
        .collect();
    let title = format!(
        "Discovery: {} nodes, lookups by hop count",
        report.config.nodes
    );
    write_svg(
        &dir.join("discovery-hops.svg"),
        &Chart {
            title: &title,
            x_label: "hops (estimated)",
            y_label: "successful lookups",
            series: vec![Series {
                name: format!("{:.2}% found", report.success_rate * 100.0),
                points,
            }],
        },
    )
}

fn print_churn(report: &churn::ChurnReport) {
    println!(
        "{:>7} {:>9} {:>12} {:>7} {:>8} {:>9} {:>13}",
        "hours", "replaced", "live holder", "found", "fetched", "fraction", "of live held"
    );
    for round in &report.rounds {
        println!(
            "{:>7.2} {:>9} {:>12} {:>7} {:>8} {:>8.1}% {:>12.1}%",
            round.hours,
            round.replaced,
            round.with_live_holder,
            round.found,
            round.retrievable,
            round.retrievable_fraction * 100.0,
            round.retrievable_of_live * 100.0
        );
    }
    print_legend(&[
        ("hours", "simulated hours since the start"),
        (
            "replaced",
            "nodes replaced so far: each left for good and a fresh node joined",
        ),
        ("live holder", "artifacts with at least one holder still up"),
        ("found", "artifacts whose lookup named a holder that is up"),
        (
            "fetched",
            "artifacts a node fetched completely and verified this round",
        ),
        ("fraction", "fetched / all artifacts"),
        (
            "of live held",
            "fetched / artifacts with a holder up: how well the network serves what still exists",
        ),
    ]);
}

fn plot_churn(dir: &Path, report: &churn::ChurnReport) -> Result<()> {
    let total = report.config.artifacts.max(1) as f64;
    let curve = |f: &dyn Fn(&churn::ChurnRound) -> f64| {
        report.rounds.iter().map(|r| (r.hours, f(r))).collect()
    };
    let title = format!(
        "Churn: {} nodes, {:.0}%/hour, {} replicas",
        report.config.nodes,
        report.config.churn_per_hour * 100.0,
        report.config.replicas
    );
    write_svg(
        &dir.join("churn.svg"),
        &Chart {
            title: &title,
            x_label: "simulated hours",
            y_label: "% of artifacts",
            series: vec![
                Series {
                    name: "fetched".into(),
                    points: curve(&|r| r.retrievable_fraction * 100.0),
                },
                Series {
                    name: "fetched, of those with a holder up".into(),
                    points: curve(&|r| r.retrievable_of_live * 100.0),
                },
                Series {
                    name: "a holder is up".into(),
                    points: curve(&|r| r.with_live_holder as f64 / total * 100.0),
                },
            ],
        },
    )
}

fn print_swarm(report: &swarm::SwarmReport) {
    println!(
        "{:<14} {:>8} {:>10} {:>9} {:>12} {:>13}",
        "mode", "fetchers", "all done s", "p50 s", "vs 1 fetcher", "seeder copies"
    );
    for run in &report.runs {
        println!(
            "{:<14} {:>8} {:>10.1} {:>9.1} {:>11.2}x {:>12.2}x",
            run.mode.label(),
            run.fetchers,
            run.all_done_secs,
            run.fetcher_secs.p50,
            run.ratio_to_one,
            run.seeder_upload_ratio
        );
    }
    print_legend(&[
        (
            "mode",
            "swarm: fetchers also serve each other what they hold; single server: they only download, so everything comes from the seeder",
        ),
        ("fetchers", "fetchers, all starting at once"),
        (
            "all done s",
            "seconds until the last fetcher had the whole artifact",
        ),
        ("p50 s", "median seconds until a fetcher had it"),
        (
            "vs 1 fetcher",
            "all done s / the same mode's time with one fetcher (1.00x: as fast as one alone)",
        ),
        (
            "seeder copies",
            "bytes the seeder uploaded / the artifact's size (1.00x: it sent one copy)",
        ),
    ]);
}

fn plot_swarm(dir: &Path, report: &swarm::SwarmReport) -> Result<()> {
    let curve = |mode: swarm::SwarmMode| -> Vec<(f64, f64)> {
        report
            .runs
            .iter()
            .filter(|r| r.mode == mode)
            .map(|r| (r.fetchers as f64, r.all_done_secs))
            .collect()
    };
    let mut series = vec![Series {
        name: swarm::SwarmMode::Swarm.label().into(),
        points: curve(swarm::SwarmMode::Swarm),
    }];
    let baseline = curve(swarm::SwarmMode::SingleServer);
    if !baseline.is_empty() {
        series.push(Series {
            name: swarm::SwarmMode::SingleServer.label().into(),
            points: baseline,
        });
    }
    let title = format!(
        "Swarm: {} MiB from one seeder at {} MiB/s",
        report.config.size / MIB,
        report.config.seeder_upload / MIB
    );
    write_svg(
        &dir.join("swarm.svg"),
        &Chart {
            title: &title,
            x_label: "fetchers",
            y_label: "seconds until all have it",
            series,
        },
    )
}
