//! The `names` scenario's table and chart: names resolved beside provider lookups.

use std::path::Path;

use anyhow::Result;
use seedbank_simnet::names;
use seedbank_simnet::plot::{write_svg, Chart, Series};

use crate::legend::print_legend;

pub(crate) fn print_names(report: &names::NamesReport) {
    let publish = &report.publish;
    println!(
        "{} nodes, {} publications ({} failed) by {} publishers; publish {:.0} / {:.0} ms, name record put answered by {} / {} DHT peers (p50 / p95)",
        report.config.nodes,
        publish.published,
        publish.failed,
        report.config.publishers,
        publish.latency_ms.p50,
        publish.latency_ms.p95,
        publish.put_answered.p50,
        publish.put_answered.p95
    );
    println!();
    println!(
        "{:<11} {:<9} {:>7} {:>6} {:>8} {:>7} {:>7} {:>9} {:>9}",
        "publishers",
        "lookup",
        "lookups",
        "found",
        "success",
        "ms p50",
        "ms p95",
        "asked p50",
        "asked p95"
    );
    for phase in &report.phases {
        let state = if phase.publishers_up { "up" } else { "left" };
        for (kind, figures) in [("name", &phase.names), ("providers", &phase.providers)] {
            println!(
                "{:<11} {:<9} {:>7} {:>6} {:>7.2}% {:>7.0} {:>7.0} {:>9} {:>9}",
                state,
                kind,
                figures.lookups,
                figures.found,
                figures.success_rate * 100.0,
                figures.latency_ms.p50,
                figures.latency_ms.p95,
                figures.requests.p50,
                figures.requests.p95
            );
        }
    }
    println!();
    println!(
        "joined in {:.1} s, whole run {:.1} s",
        report.join_secs, report.total_secs
    );
    for phase in &report.phases {
        for (kind, figures) in [("name", &phase.names), ("providers", &phase.providers)] {
            for failure in &figures.failures {
                println!("{kind} lookup failed: {failure}");
            }
        }
    }
    for failure in &publish.failures {
        println!("publication failed: {failure}");
    }
    print_legend(&[
        (
            "publishers",
            "up: every publisher is on the network; left: every publisher has left it for good",
        ),
        (
            "lookup",
            "name: resolve publisher/name (or @v1) on a node that is not the publisher; providers: look up the providers of the root it should resolve to, on the same node",
        ),
        ("lookups", "lookups made, each of a random name by a random node"),
        (
            "found",
            "name: resolved from the network to the root published; providers: the publisher was among them (after it left: its stale record)",
        ),
        ("success", "found / lookups"),
        ("ms", "milliseconds from the lookup's start to its end"),
        (
            "asked",
            "DHT peers that answered the whole lookup (for a name, from a second lookup of its record)",
        ),
        ("p50, p95", "median and 95th percentile over the lookups"),
    ]);
}

/// Points of the curve "share of lookups finished by then": every 2 % of the lookups.
fn finished_by(latencies: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted = latencies.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let step = (n / 50).max(1);
    (0..n)
        .filter(|i| (i + 1) % step == 0 || i + 1 == n)
        .map(|i| (sorted[i], (i + 1) as f64 / n as f64 * 100.0))
        .collect()
}

pub(crate) fn plot_names(dir: &Path, report: &names::NamesReport) -> Result<()> {
    let mut series = Vec::new();
    for phase in &report.phases {
        let state = if phase.publishers_up {
            "publishers up"
        } else {
            "publishers left"
        };
        for (kind, figures) in [("names", &phase.names), ("providers", &phase.providers)] {
            series.push(Series {
                name: format!(
                    "{kind}, {state}: {:.1}% found",
                    figures.success_rate * 100.0
                ),
                points: finished_by(&figures.latencies),
            });
        }
    }
    let title = format!(
        "Names: {} nodes, {} publishers, resolves beside provider lookups",
        report.config.nodes, report.config.publishers
    );
    write_svg(
        &dir.join("names.svg"),
        &Chart {
            title: &title,
            x_label: "milliseconds",
            y_label: "% of lookups finished",
            series,
        },
    )
}
