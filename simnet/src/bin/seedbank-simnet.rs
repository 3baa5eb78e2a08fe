//! `seedbank-simnet`: runs a scenario over many real Seedbank nodes in one process and
//! prints a table (and, with `--json-out`, writes the full report as JSON).

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use seedbank_simnet::{churn, discovery};

/// Many real Seedbank nodes in one process, over an in-memory transport.
#[derive(Debug, Parser)]
#[command(name = "seedbank-simnet", version, about)]
struct Cli {
    /// Write the full report as JSON here
    #[arg(long, global = true, value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Random seed: the same seed makes the same choices
    #[arg(long, global = true, default_value_t = 7)]
    seed: u64,
    /// The scenario
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// N nodes, K artifacts announced by random nodes, every node looks up random
    /// artifacts: success rate and latency percentiles
    Discovery {
        /// Nodes in the network
        #[arg(long, default_value_t = 200)]
        nodes: usize,
        /// Artifacts announced
        #[arg(long, default_value_t = 50)]
        artifacts: usize,
        /// Lookups per node
        #[arg(long, default_value_t = 1)]
        lookups_per_node: usize,
        /// Nodes started per batch while joining (staggered joins keep 2 cores responsive)
        #[arg(long, default_value_t = 25)]
        join_batch: usize,
    },
    /// Nodes leave and join at a rate; each artifact starts on R nodes that keep
    /// re-announcing it: fraction of artifacts whose providers can be found, over time
    Churn {
        /// Nodes up at any time
        #[arg(long, default_value_t = 100)]
        nodes: usize,
        /// Artifacts
        #[arg(long, default_value_t = 50)]
        artifacts: usize,
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
        #[arg(long, default_value_t = 8)]
        rounds: usize,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let json = runtime.block_on(async {
        match cli.scenario {
            Scenario::Discovery {
                nodes,
                artifacts,
                lookups_per_node,
                join_batch,
            } => {
                let report = discovery::run(discovery::DiscoveryConfig {
                    nodes,
                    artifacts,
                    lookups_per_node,
                    seed: cli.seed,
                    join_batch,
                })
                .await?;
                println!(
                    "{:<8} {:>10} {:>8} {:>8} {:>9} {:>9} {:>9} {:>9}",
                    "nodes",
                    "artifacts",
                    "lookups",
                    "found",
                    "success",
                    "p50 ms",
                    "p90 ms",
                    "p99 ms"
                );
                println!(
                    "{:<8} {:>10} {:>8} {:>8} {:>8.2}% {:>9.1} {:>9.1} {:>9.1}",
                    nodes,
                    artifacts,
                    report.lookups,
                    report.found,
                    report.success_rate * 100.0,
                    report.latency.p50_ms,
                    report.latency.p90_ms,
                    report.latency.p99_ms
                );
                println!("joined in {:.1} s", report.join_secs);
                anyhow::Ok(serde_json::to_string_pretty(&report)?)
            }
            Scenario::Churn {
                nodes,
                artifacts,
                replicas,
                churn_per_hour,
                round_minutes,
                rounds,
            } => {
                let report = churn::run(churn::ChurnConfig {
                    nodes,
                    artifacts,
                    replicas,
                    churn_per_hour,
                    round_minutes,
                    rounds,
                    seed: cli.seed,
                })
                .await?;
                println!(
                    "{:>7} {:>9} {:>12} {:>13} {:>11}",
                    "hours", "replaced", "live holder", "retrievable", "fraction"
                );
                for round in &report.rounds {
                    println!(
                        "{:>7.2} {:>9} {:>12} {:>13} {:>10.1}%",
                        round.hours,
                        round.replaced,
                        round.with_live_holder,
                        round.retrievable,
                        round.retrievable_fraction * 100.0
                    );
                }
                anyhow::Ok(serde_json::to_string_pretty(&report)?)
            }
        }
    })?;
    if let Some(path) = cli.json_out {
        std::fs::write(&path, json).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
