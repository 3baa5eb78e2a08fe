//! The `preserve-churn` scenario's options, table and chart: churn with preservers
//! that follow a collection and repair.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use seedbank_simnet::churn::ChurnConfig;
use seedbank_simnet::network::NodeProfile;
use seedbank_simnet::plot::{write_svg, Chart, Series};
use seedbank_simnet::preserve_churn::{
    self, default_budget, PreserveChurnConfig, PreserveChurnReport,
};

use crate::legend::print_legend;

/// Options of `preserve-churn`.
#[derive(Debug, Args)]
pub(crate) struct PreserveChurnArgs {
    /// Nodes up at any time
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    /// Of them, nodes that preserve: they follow the collection and repair
    #[arg(long, default_value_t = 20)]
    preservers: usize,
    /// Artifacts, all members of the collection
    #[arg(long, default_value_t = 50)]
    artifacts: usize,
    /// Size of each artifact in KiB
    #[arg(long, default_value_t = 256)]
    artifact_kib: u64,
    /// Holders each artifact starts with
    #[arg(long, default_value_t = 3)]
    replicas: usize,
    /// Copies of each member the collection asks for [default: --replicas]
    #[arg(long)]
    target: Option<usize>,
    /// Each preserver's budget in KiB [default: twice its fair share of every copy
    /// wanted, artifacts × target / preservers, rounded up]
    #[arg(long)]
    budget_kib: Option<u64>,
    /// Most repairs one preserver starts per round
    #[arg(long, default_value_t = 2)]
    repairs_per_round: usize,
    /// Longest random wait before each repair, in milliseconds
    #[arg(long, default_value_t = 1500)]
    repair_jitter_ms: u64,
    /// Seconds spot checks stay fresh (1: every round checks again)
    #[arg(long, default_value_t = 1)]
    health_secs: u64,
    /// Fraction of nodes replaced per simulated hour
    #[arg(long, default_value_t = 0.10)]
    churn_per_hour: f64,
    /// Simulated minutes per round
    #[arg(long, default_value_t = 30.0)]
    round_minutes: f64,
    /// Rounds
    #[arg(long, default_value_t = 8)]
    rounds: usize,
    /// Checks (lookup and fetch) in flight at once, each by a different node
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
}

/// Runs the scenario with `args`. With `json_out`, the report so far is written there
/// after every round (through a temporary file, so a stopped run leaves whole JSON).
pub(crate) async fn run_preserve_churn(
    args: PreserveChurnArgs,
    seed: u64,
    node: NodeProfile,
    json_out: Option<&Path>,
) -> Result<PreserveChurnReport> {
    let bytes = args.artifact_kib * 1024;
    let target = args.target.unwrap_or(args.replicas).max(args.replicas);
    let budget = args.budget_kib.map_or_else(
        || default_budget(args.artifacts, target, args.preservers, bytes),
        |kib| kib * 1024,
    );
    let on_round = |report: &PreserveChurnReport| {
        if let Some(path) = json_out {
            if let Err(e) = write_json_atomically(path, report) {
                tracing::warn!("could not save the report so far: {e:#}");
            }
        }
    };
    preserve_churn::run(
        PreserveChurnConfig {
            churn: ChurnConfig {
                nodes: args.nodes,
                artifacts: args.artifacts,
                artifact_bytes: bytes,
                replicas: args.replicas,
                churn_per_hour: args.churn_per_hour,
                round_minutes: args.round_minutes,
                rounds: args.rounds,
                concurrency: args.concurrency,
                seed,
                node,
            },
            target,
            preservers: args.preservers,
            budget,
            repairs_per_round: args.repairs_per_round,
            repair_jitter: Duration::from_millis(args.repair_jitter_ms),
            health_interval: Duration::from_secs(args.health_secs),
        },
        on_round,
    )
    .await
}

/// Writes `report` as JSON to `path` by way of a sibling temporary file.
fn write_json_atomically(path: &Path, report: &PreserveChurnReport) -> Result<()> {
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_vec_pretty(report)?)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("renaming to {}", path.display()))
}

pub(crate) fn print_preserve_churn(report: &PreserveChurnReport) {
    println!(
        "{:>6} {:>8} {:>10} {:>6} {:>11} {:>8} {:>9} {:>7} {:>12} {:>7} {:>8} {:>7}  by copies",
        "hours",
        "replaced",
        "preservers",
        "copies",
        "live holder",
        "fetched",
        "fraction",
        "repairs",
        "repair bytes",
        "wall s",
        "keeper s",
        "check s"
    );
    for r in &report.rounds {
        println!(
            "{:>6.2} {:>8} {:>10} {:>6} {:>11} {:>8} {:>8.1}% {:>7} {:>12} {:>7.0} {:>8.0} {:>7.0}  {:?}",
            r.hours,
            r.replaced,
            r.preservers_up,
            r.copies,
            r.with_live_holder,
            r.retrievable,
            r.retrievable_fraction * 100.0,
            r.repairs,
            r.repair_bytes,
            r.wall_secs,
            r.keeper_secs,
            r.check_secs,
            r.artifacts_by_copies
        );
    }
    println!();
    let at = |h: f64| {
        report
            .fraction_at(h)
            .map_or("-".into(), |f| format!("{:.1}%", f * 100.0))
    };
    println!(
        "retrievable after 4 h: {}, after 24 h: {}; repair traffic {} bytes in all, {:.0} bytes per simulated hour ({:.2} MiB/h); publisher left at {}",
        at(4.0),
        at(24.0),
        report.repair_bytes_total,
        report.repair_bytes_per_hour,
        report.repair_bytes_per_hour / (1024.0 * 1024.0),
        report
            .publisher_left_at
            .map_or("never".into(), |h| format!("{h:.1} h")),
    );
    print_legend(&[
        ("hours", "simulated hours since the start"),
        (
            "replaced",
            "nodes replaced so far: each left for good and a fresh node (same role) joined",
        ),
        ("preservers", "preservers up"),
        (
            "copies",
            "complete copies of all artifacts on live nodes, after this round's repairs",
        ),
        (
            "live holder",
            "artifacts with at least one live holder (original or preserver)",
        ),
        (
            "fetched",
            "artifacts a non-holder fetched completely and verified this round",
        ),
        ("fraction", "fetched / all artifacts"),
        (
            "repairs",
            "under-replicated members fetched by preservers this round",
        ),
        ("repair bytes", "bytes those repairs fetched"),
        ("wall s", "wall-clock seconds the round took"),
        (
            "keeper s",
            "of them, the preservers' keeper rounds (all at once)",
        ),
        ("check s", "of them, checking every artifact"),
        (
            "by copies",
            "artifacts with 0, 1, 2, … copies on live nodes after the repairs",
        ),
    ]);
}

pub(crate) fn plot_preserve_churn(dir: &Path, report: &PreserveChurnReport) -> Result<()> {
    let config = &report.config.churn;
    let total = config.artifacts.max(1) as f64;
    let wanted = (config.artifacts * report.config.target).max(1) as f64;
    let curve = |f: &dyn Fn(&preserve_churn::PreserveRound) -> f64| {
        report.rounds.iter().map(|r| (r.hours, f(r))).collect()
    };
    let title = format!(
        "Churn with {} preservers: {} nodes, {:.0}%/hour, {} copies at the start, target {}",
        report.config.preservers,
        config.nodes,
        config.churn_per_hour * 100.0,
        config.replicas,
        report.config.target
    );
    write_svg(
        &dir.join("preserve-churn.svg"),
        &Chart {
            title: &title,
            x_label: "simulated hours",
            y_label: "% of artifacts / of copies wanted",
            series: vec![
                Series {
                    name: "fetched".into(),
                    points: curve(&|r| r.retrievable_fraction * 100.0),
                },
                Series {
                    name: "a holder is up".into(),
                    points: curve(&|r| r.with_live_holder as f64 / total * 100.0),
                },
                Series {
                    name: "copies on live nodes / copies wanted".into(),
                    points: curve(&|r| r.copies as f64 / wanted * 100.0),
                },
            ],
        },
    )
}
