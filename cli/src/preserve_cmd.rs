//! The preservation subcommands: `pin` (with `--replicas`), `health`, `follow`,
//! `unfollow`, `following` and `collection publish`.

use anyhow::Result;
use reqwest::Method;
use seedbank_protocol::api::PinReport;
use seedbank_protocol::names_api::PublishReport;
use seedbank_protocol::preserve_api::{
    ArtifactHealth, CollectionRequest, FollowEntry, FollowList, FollowRequest, HealthQuery,
    HealthReport, PinRequest,
};

use crate::args::CollectionCommand;
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::output::{count, human_bytes, outln, print, print_table};
use crate::progress::Bars;

/// `seedbank pin ARTIFACT [--replicas N] [--reason TEXT]`: fetches first if needed.
pub fn pin(
    client: &DaemonClient,
    json: bool,
    quiet: bool,
    artifact: &str,
    request: &PinRequest,
) -> Result<Exit> {
    let mut bars = Bars::new("fetching", quiet);
    let report: PinReport =
        client.stream(&["v1", "pins", artifact], request, |p| bars.update(p))?;
    bars.finish();
    print(json, &report, || {
        let already = if report.changed { "" } else { " (already)" };
        match report.replica_target {
            Some(target) => outln!(
                "pinned {}{already}, {target} copies wanted on the network (see `seedbank health`)",
                report.id
            ),
            None => outln!("pinned {}{already}", report.id),
        }
    })?;
    Ok(Exit::Ok)
}

/// `seedbank health [--refresh]`; ends as [`Exit::UnderTarget`] when an artifact has
/// fewer verified copies than its target, so a script or a timer can alert on it.
pub fn health(client: &DaemonClient, json: bool, refresh: bool) -> Result<Exit> {
    let report: HealthReport =
        client.call_with_query(Method::GET, &["v1", "health"], &HealthQuery { refresh })?;
    print(json, &report, || print_health(&report, refresh))?;
    Ok(if report.under_target > 0 {
        Exit::UnderTarget
    } else {
        Exit::Ok
    })
}

fn print_health(report: &HealthReport, refresh: bool) {
    if report.artifacts.is_empty() {
        outln!("nothing pinned or watched");
        return;
    }
    let rows: Vec<Vec<String>> = report.artifacts.iter().map(health_row).collect();
    print_table(
        &[
            "ID",
            "NAME",
            "VERIFIED",
            "PROVIDERS",
            "TARGET",
            "STATE",
            "WHY",
        ],
        &rows,
    );
    if report.under_target > 0 {
        outln!(
            "{} below target",
            count(u64::from(report.under_target), "artifact")
        );
    }
    for artifact in &report.artifacts {
        print_uncounted(artifact);
        if let Some(error) = &artifact.check_error {
            outln!("could not check {}: {error}", artifact.id);
        }
        if artifact.failed_checks > 1 {
            outln!(
                "{}: no provider answered the last {} checks; the keeper waits twice as long after each (up to 16 health_intervals)",
                artifact.id,
                artifact.failed_checks
            );
        }
    }
    if !refresh && report.artifacts.iter().any(|a| a.checked_at.is_none()) {
        outln!("some artifacts are not checked yet: `seedbank health --refresh` checks now");
    }
}

/// Most providers named per artifact as not counted, with why.
const UNCOUNTED_SHOWN: usize = 4;

/// The providers of an artifact under target that did not prove a copy, and why.
fn print_uncounted(artifact: &ArtifactHealth) {
    if !artifact.under_target {
        return;
    }
    let uncounted: Vec<_> = artifact.peers.iter().filter(|p| !p.verified).collect();
    let short: String = artifact.id.to_string().chars().take(16).collect();
    for peer in uncounted.iter().take(UNCOUNTED_SHOWN) {
        let why = peer.error.as_deref().unwrap_or("no proof");
        outln!("{short}: not counted: {}: {why}", peer.peer);
    }
    if uncounted.len() > UNCOUNTED_SHOWN {
        outln!(
            "{short}: {} more providers not counted (`--json` lists them)",
            uncounted.len() - UNCOUNTED_SHOWN
        );
    }
}

/// Copies by network location, with the peers behind them when more peers passed.
fn verified_cell(a: &ArtifactHealth) -> String {
    if a.verified_peers > a.verified {
        format!("{} ({} peers)", a.verified, a.verified_peers)
    } else {
        a.verified.to_string()
    }
}

fn health_row(a: &ArtifactHealth) -> Vec<String> {
    let id = a.id.to_string();
    let state = match (a.under_target, a.checked_at, a.held_here) {
        _ if a.check_error.is_some() => "CHECK FAILED",
        _ if a.failed_checks > 0 => "NO PROVIDER",
        (true, _, _) => "UNDER TARGET",
        (false, None, _) => "not checked",
        (false, Some(_), true) => "ok",
        (false, Some(_), false) => "ok (not here)",
    };
    vec![
        id.chars().take(16).collect(),
        a.name.clone().unwrap_or_else(|| "-".into()),
        verified_cell(a),
        a.providers.to_string(),
        a.replica_target.map_or("-".into(), |t| t.to_string()),
        state.into(),
        a.because.clone(),
    ]
}

/// `seedbank follow TARGET [--replicas N]`
pub fn follow(client: &DaemonClient, json: bool, request: &FollowRequest) -> Result<Exit> {
    let entry: FollowEntry = client.send_json(Method::POST, &["v1", "follows"], request)?;
    print(json, &entry, || {
        outln!(
            "following {} ({} copies wanted); new releases are fetched and pinned, checked every follow_interval",
            entry.target,
            entry.replicas
        )
    })?;
    Ok(Exit::Ok)
}

/// `seedbank unfollow TARGET`
pub fn unfollow(client: &DaemonClient, json: bool, target: &str) -> Result<Exit> {
    #[derive(serde::Serialize)]
    struct Query<'a> {
        target: &'a str,
    }
    let entry: FollowEntry =
        client.call_with_query(Method::DELETE, &["v1", "follows"], &Query { target })?;
    print(json, &entry, || {
        outln!(
            "no longer following {}; {} it kept are unpinned (still cached until `seedbank gc` or the storage quota removes them)",
            entry.target,
            count(entry.kept.len() as u64, "artifact")
        )
    })?;
    Ok(Exit::Ok)
}

/// `seedbank following`
pub fn following(client: &DaemonClient, json: bool) -> Result<Exit> {
    let list: FollowList = client.call(Method::GET, &["v1", "follows"])?;
    print(json, &list, || {
        if list.follows.is_empty() {
            outln!("following nothing (`seedbank follow PUBLISHER[/NAME]`)");
        } else {
            let rows: Vec<Vec<String>> = list
                .follows
                .iter()
                .map(|f| {
                    vec![
                        f.target.clone(),
                        f.replicas.to_string(),
                        f.kept.len().to_string(),
                        f.watched.len().to_string(),
                        f.last_error.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            print_table(
                &["TARGET", "REPLICAS", "KEPT", "WATCHED", "LAST ERROR"],
                &rows,
            );
        }
        match list.budget {
            Some(budget) => outln!(
                "preservation budget: {} of {} used",
                human_bytes(list.budget_used),
                human_bytes(budget)
            ),
            None => outln!(
                "kept by follows: {} (no preserve_budget set)",
                human_bytes(list.budget_used)
            ),
        }
    })?;
    Ok(Exit::Ok)
}

/// `seedbank collection …`
pub fn collection(
    client: &DaemonClient,
    json: bool,
    quiet: bool,
    command: CollectionCommand,
) -> Result<Exit> {
    match command {
        CollectionCommand::Publish {
            name,
            members,
            replicas,
            revision,
            key,
        } => {
            let request = CollectionRequest {
                name,
                members,
                replicas: Some(replicas),
                revision,
                key,
            };
            let mut bars = Bars::new("adding", quiet);
            let report: PublishReport =
                client.stream(&["v1", "collections"], &request, |p| bars.update(p))?;
            bars.finish();
            print(json, &report, || {
                let info = &report.release;
                let r = &info.release;
                outln!(
                    "published collection {}/{}@{} = {} ({})",
                    info.alias.as_deref().unwrap_or(&info.publisher.to_string()),
                    r.name,
                    r.revision,
                    r.root,
                    count(request.members.len() as u64, "member")
                )
            })?;
        }
    }
    Ok(Exit::Ok)
}
