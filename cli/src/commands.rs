//! What each subcommand does: `daemon` runs a node here, `completions` and `man` print
//! from the command line's own description; the rest ask the daemon.

use anyhow::{Context, Result};
use clap::CommandFactory;
use reqwest::Method;
use seedbank_node::config::{ConfigOverrides, LoadedConfig};
use seedbank_node::DataDir;
use seedbank_protocol::api::{
    AddRequest, ArtifactDetail, ArtifactSummary, CancelReport, ExportReport, ExportRequest,
    FetchJobSummary, FetchReport, FetchRequest, GcReport, GcRequest, PeerSummary, PinReport,
    ProvidersResponse, RemoveReport, RemoveRequest, StatusResponse, VerifyReport,
};
use seedbank_protocol::preserve_api::{FollowRequest, PinRequest};
use seedbank_protocol::ArtifactKind;
use serde::Serialize;

use crate::cli::{Cli, Command, KindArg};
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::hf_cache_cmd;
use crate::output::{count, human_bytes, outln, print_table};
use crate::progress::Bars;
use crate::render::{
    print_artifacts, print_detail, print_gc, print_jobs, print_removed, print_status, print_verify,
};

/// Log filter when `RUST_LOG` is unset. iroh-blobs' GC loop logs every skipped run at
/// info, which the store's on-demand collection turns into noise. Kademlia warns when
/// its own automatic bootstrap finds no peer, which is every first node of a network
/// (the event loop bootstraps on its own schedule), and libp2p's swarm logs the node id,
/// which the start-up block already shows.
const DEFAULT_LOG_FILTER: &str =
    "info,iroh_blobs=warn,libp2p_kad::behaviour=error,libp2p_swarm=warn";

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<Exit> {
    // These need neither a daemon nor a data dir.
    match &cli.command {
        Command::Completions { shell } => return print_completions(*shell),
        Command::Man => return print_man_page(),
        _ => {}
    }
    let data_dir = DataDir::resolve(cli.data_dir.as_deref())?;
    let json = cli.json;
    let quiet = cli.quiet;
    match cli.command {
        Command::Daemon(args) => return run_daemon(data_dir, args.into(), json),
        Command::Config(args) => return show_config(&data_dir, args.into(), json),
        _ => {}
    }
    let client = DaemonClient::connect(data_dir.root())?;
    match cli.command {
        Command::Daemon(_) | Command::Config(_) | Command::Completions { .. } | Command::Man => {
            unreachable!("handled above")
        }
        command @ (Command::Key(_)
        | Command::Trust(_)
        | Command::Publish { .. }
        | Command::LsRemote { .. }
        | Command::Search { .. }
        | Command::Resolve { .. }
        | Command::History { .. }) => return crate::names_cmd::run(command, &client, json, quiet),
        Command::MirrorHf {
            repo,
            revision,
            origin,
            limit_rate,
            key,
        } => {
            let own_gateway = std::fs::read_to_string(data_dir.hf_endpoint()).ok();
            let request =
                crate::mirror_cmd::request(repo, revision, origin, limit_rate, key, own_gateway)?;
            return crate::mirror_cmd::run(&request, &client, json, quiet);
        }
        Command::Denylist(command) => {
            return crate::denylist_cmd::run(command, &client, json, quiet)
        }
        command @ Command::ImportHf { .. } => {
            return crate::hf_cmd::run(command, &client, json, quiet)
        }
        Command::Add {
            path,
            kind,
            name,
            revision,
            licence,
            pin,
            reference,
            follow_symlinks,
        } => {
            // Absolute, but not canonical: resolving symlinks here would hide them from the daemon.
            let path = std::path::absolute(&path)
                .with_context(|| format!("resolving {}", path.display()))?;
            let request = AddRequest {
                path: path.display().to_string(),
                kind: match kind {
                    KindArg::Model => ArtifactKind::Model,
                    KindArg::Dataset => ArtifactKind::Dataset,
                },
                name,
                revision,
                licence,
                pin,
                reference,
                follow_symlinks,
            };
            let mut bars = Bars::new("adding", quiet);
            let added: ArtifactSummary =
                client.stream(&["v1", "artifacts"], &request, |p| bars.update(p))?;
            bars.finish();
            print(json, &added, || {
                outln!(
                    "added {} ({}@{}, {}, {}){}",
                    added.id,
                    added.name,
                    added.revision,
                    count(added.files, "file"),
                    human_bytes(added.size),
                    if added.pinned { ", pinned" } else { "" }
                )
            })?;
        }
        Command::Ls => {
            let list: Vec<ArtifactSummary> = client.call(Method::GET, &["v1", "artifacts"])?;
            print(json, &list, || print_artifacts(&list))?;
        }
        Command::Show { artifact } => {
            let detail: ArtifactDetail =
                client.call(Method::GET, &["v1", "artifacts", &artifact])?;
            print(json, &detail, || print_detail(&detail))?;
        }
        Command::Export {
            artifact,
            dir,
            include,
            force,
        } => {
            let dir = std::path::absolute(&dir)
                .with_context(|| format!("resolving {}", dir.display()))?;
            let request = ExportRequest {
                dir: dir.display().to_string(),
                include,
                force,
            };
            let mut bars = Bars::new("exporting", quiet);
            let report: ExportReport =
                client.stream(&["v1", "artifacts", &artifact, "export"], &request, |p| {
                    bars.update(p)
                })?;
            bars.finish();
            print(json, &report, || {
                outln!(
                    "exported {} ({}) to {}",
                    count(report.files, "file"),
                    human_bytes(report.bytes),
                    report.dir
                )
            })?;
        }
        Command::Pin {
            artifact,
            replicas,
            reason,
        } => {
            let request = PinRequest { replicas, reason };
            return crate::preserve_cmd::pin(&client, json, quiet, &artifact, &request);
        }
        Command::Health { refresh } => return crate::preserve_cmd::health(&client, json, refresh),
        Command::Follow { target, replicas } => {
            let request = FollowRequest { target, replicas };
            return crate::preserve_cmd::follow(&client, json, &request);
        }
        Command::Unfollow { target } => {
            return crate::preserve_cmd::unfollow(&client, json, &target)
        }
        Command::Following => return crate::preserve_cmd::following(&client, json),
        Command::Collection(command) => {
            return crate::preserve_cmd::collection(&client, json, quiet, command)
        }
        Command::Unpin { artifact } => pin(&client, json, &artifact, Method::DELETE)?,
        Command::Rm { artifact, force } => {
            let report: RemoveReport = client.call_with_query(
                Method::DELETE,
                &["v1", "artifacts", &artifact],
                &RemoveRequest { force },
            )?;
            print(json, &report, || print_removed(&report))?;
        }
        Command::Fetch {
            artifact,
            detach,
            cancel,
            include,
            out,
            force,
            pin,
            allow_unsigned,
            hf_cache,
            hf_repo,
        } => {
            if cancel {
                let report: CancelReport =
                    client.call(Method::DELETE, &["v1", "jobs", &artifact])?;
                print(json, &report, || {
                    outln!("cancelled the fetch of {}", report.id)
                })?;
                return Ok(Exit::Ok);
            }
            let request = FetchRequest {
                allow_unsigned,
                id: artifact.clone(),
                include: include.clone(),
                pin,
            };
            if detach {
                let job: FetchJobSummary =
                    client.send_json(Method::POST, &["v1", "jobs"], &request)?;
                print(json, &job, || {
                    outln!(
                        "fetching {} in the background{} (`seedbank jobs` shows it, `seedbank fetch --cancel {}` ends it)",
                        job.id,
                        if job.pin { ", to pin when done" } else { "" },
                        job.id
                    )
                })?;
                return Ok(Exit::Ok);
            }
            if hf_cache.is_some() {
                hf_cache_cmd::check_repo(&artifact, hf_repo.as_ref())?;
            }
            cancel_on_ctrl_c(client.clone(), artifact.clone());
            let mut bars = Bars::new("fetching", quiet);
            let report: FetchReport =
                client.stream(&["v1", "fetch"], &request, |p| bars.update(p))?;
            bars.finish();
            if !json {
                for warning in &report.warnings {
                    eprintln!("warning: {warning}");
                }
            }
            let exported = match out {
                Some(dir) => {
                    let dir = std::path::absolute(&dir)
                        .with_context(|| format!("resolving {}", dir.display()))?;
                    let request = ExportRequest {
                        dir: dir.display().to_string(),
                        include: include.clone(),
                        force,
                    };
                    let id = report.id.to_string();
                    let mut bars = Bars::new("exporting", quiet);
                    let exported: ExportReport =
                        client.stream(&["v1", "artifacts", &id, "export"], &request, |p| {
                            bars.update(p)
                        })?;
                    bars.finish();
                    Some(exported)
                }
                None => None,
            };
            let cached = match hf_cache {
                Some(dir) => {
                    let args = hf_cache_cmd::CacheArgs {
                        dir,
                        repo: hf_repo,
                        include: include.clone(),
                    };
                    Some(hf_cache_cmd::write_cache(
                        &client, &artifact, &report, args, quiet,
                    )?)
                }
                None => None,
            };
            if let (true, Some(cached)) = (json, &cached) {
                let both = hf_cache_cmd::FetchedIntoCache {
                    fetch: &report,
                    hf_cache: cached,
                };
                return print(json, &both, || {}).map(|()| Exit::Ok);
            }
            print(json, &report, || {
                let serving: Vec<String> = report
                    .providers
                    .iter()
                    .filter(|p| p.bytes > 0 || p.banned)
                    .map(|p| {
                        let short = &p.peer[p.peer.len().saturating_sub(8)..];
                        if p.banned {
                            format!("…{short} banned (bad data)")
                        } else if p.dropped {
                            format!("…{short} {} (then failed too often)", human_bytes(p.bytes))
                        } else {
                            format!("…{short} {}", human_bytes(p.bytes))
                        }
                    })
                    .collect();
                outln!(
                    "fetched {} ({}@{}, {}, {}; downloaded {} from {}){}",
                    report.id,
                    report.name,
                    report.revision,
                    count(report.files, "file"),
                    human_bytes(report.size),
                    human_bytes(report.bytes_downloaded),
                    if serving.is_empty() {
                        "nobody: already here".into()
                    } else {
                        serving.join(", ")
                    },
                    if report.pinned { ", pinned" } else { "" }
                );
                if let Some(exported) = &exported {
                    outln!(
                        "exported {} to {}",
                        count(exported.files, "file"),
                        exported.dir
                    );
                }
                if let Some(cached) = &cached {
                    hf_cache_cmd::print_cached(cached);
                }
            })?;
        }
        Command::Jobs => {
            let jobs: Vec<FetchJobSummary> = client.call(Method::GET, &["v1", "jobs"])?;
            print(json, &jobs, || print_jobs(&jobs))?;
        }
        Command::Peers => {
            let peers: Vec<PeerSummary> = client.call(Method::GET, &["v1", "peers"])?;
            print(json, &peers, || {
                let rows: Vec<Vec<String>> = peers
                    .iter()
                    .map(|p| {
                        vec![
                            p.peer.clone(),
                            human_bytes(p.bytes_up),
                            human_bytes(p.bytes_down),
                            p.addresses.join(" "),
                        ]
                    })
                    .collect();
                print_table(&["PEER", "UP", "DOWN", "ADDRESSES"], &rows);
            })?;
        }
        Command::Providers { artifact } => {
            let found: ProvidersResponse =
                client.call(Method::GET, &["v1", "providers", &artifact])?;
            print(json, &found, || {
                if found.providers.is_empty() {
                    outln!("no providers of {} found", found.id);
                }
                for peer in &found.providers {
                    outln!("{peer}");
                }
            })?;
            if found.providers.is_empty() {
                return Ok(Exit::NotFound);
            }
        }
        Command::Gc { dry_run } => {
            let report: GcReport =
                client.call_with_query(Method::POST, &["v1", "gc"], &GcRequest { dry_run })?;
            print(json, &report, || print_gc(&report))?;
        }
        Command::Verify => {
            let mut bars = Bars::new("verifying", quiet);
            let report: VerifyReport = client.stream(&["v1", "verify"], &(), |p| bars.update(p))?;
            bars.finish();
            print(json, &report, || print_verify(&report))?;
            if !report.corrupt.is_empty() {
                return Ok(Exit::Corrupt);
            }
        }
        Command::Status => {
            let status: StatusResponse = client.call(Method::GET, &["v1", "status"])?;
            print(json, &status, || print_status(&status))?;
        }
    }
    Ok(Exit::Ok)
}

fn run_daemon(data_dir: DataDir, overrides: ConfigOverrides, json_logs: bool) -> Result<Exit> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json_logs {
        // One JSON object per line, for log shippers: no colour, fields kept apart.
        logs.json().with_ansi(false).init();
    } else {
        // Colour only for a person at a terminal: files and journald get plain text.
        logs.with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(seedbank_node::daemon::run(data_dir, overrides))?;
    Ok(Exit::Ok)
}

/// Prints the completion script for `shell`.
fn print_completions(shell: clap_complete::Shell) -> Result<Exit> {
    let mut command = Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "seedbank", &mut script);
    write_stdout(&script)
}

/// Prints the man page, in roff.
fn print_man_page() -> Result<Exit> {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .context("rendering the man page")?;
    write_stdout(&page)
}

/// Writes `bytes` to stdout; a closed pipe is left to `main`, which ends quietly.
fn write_stdout(bytes: &[u8]) -> Result<Exit> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(Exit::Ok)
}

/// `seedbank config`: the effective settings and their sources, computed here as the
/// daemon computes them at start (a running daemon may have been started otherwise).
fn show_config(data_dir: &DataDir, overrides: ConfigOverrides, json: bool) -> Result<Exit> {
    let loaded = LoadedConfig::load(&data_dir.config(), &overrides)?;
    let settings = loaded.settings()?;
    print(json, &settings, || {
        let rows: Vec<Vec<String>> = settings
            .iter()
            .map(|s| {
                let value = match &s.value {
                    serde_json::Value::Null => "(not set)".to_owned(),
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                vec![s.key.clone(), value, s.source.clone()]
            })
            .collect();
        outln!("config file: {}", data_dir.config().display());
        print_table(&["SETTING", "VALUE", "FROM"], &rows);
    })?;
    Ok(Exit::Ok)
}

fn pin(client: &DaemonClient, json: bool, artifact: &str, method: Method) -> Result<()> {
    let report: PinReport = client.call(method, &["v1", "pins", artifact])?;
    print(json, &report, || {
        let state = if report.pinned { "pinned" } else { "unpinned" };
        let already = if report.changed { "" } else { " (already)" };
        outln!("{state} {}{already}", report.id)
    })
}

/// Prints `value` as JSON, or runs `human` to print it as text.
pub(crate) fn print<T: Serialize>(json: bool, value: &T, human: impl FnOnce()) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string_pretty(value)?);
    } else {
        human();
    }
    Ok(())
}

/// On Ctrl-C, cancels the fetch of `artifact` in the daemon (as `hf download` and
/// `ollama pull` stop theirs) and exits; verified bytes stay, so fetching again resumes.
fn cancel_on_ctrl_c(client: DaemonClient, artifact: String) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        if runtime.block_on(tokio::signal::ctrl_c()).is_err() {
            return;
        }
        eprintln!("\ncancelling the fetch; verified bytes are kept, fetch again to resume");
        if let Err(e) = client.call::<CancelReport>(Method::DELETE, &["v1", "jobs", &artifact]) {
            eprintln!(
                "error: could not cancel the fetch: {}",
                crate::output::one_line(&e)
            );
        }
        std::process::exit(Exit::Interrupted as i32);
    });
}
