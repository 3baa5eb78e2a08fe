//! `seedbank fetch` (with `--detach`, `--cancel`, `--out` and `--hf-cache`) and
//! `seedbank jobs`, the fetches the daemon runs in the background.
//!
//! A fetch in the foreground is the daemon's, streamed here: Ctrl-C cancels it in the
//! daemon (verified bytes stay, so fetching again resumes) before this process exits.

use anyhow::Result;
use reqwest::Method;
use seedbank_protocol::api::{CancelReport, FetchJobSummary, FetchReport, FetchRequest};

use crate::args::FetchArgs;
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::exporting::export_files;
use crate::hf_cache;
use crate::output::{count, human_bytes, one_line, outln, print};
use crate::progress::Bars;
use crate::render::print_jobs;

/// How the daemon's error begins when it stops while a fetch runs.
const DAEMON_STOPPING: &str = "the daemon is stopping";

/// `seedbank fetch ARTIFACT …`
pub(crate) fn fetch(
    client: &DaemonClient,
    json: bool,
    quiet: bool,
    args: FetchArgs,
) -> Result<Exit> {
    let FetchArgs {
        artifact,
        allow_unsigned,
        detach,
        cancel,
        include,
        out,
        force,
        copy,
        hf_cache: hf_cache_dir,
        hf_repo,
        pin,
    } = args;
    if cancel {
        let report: CancelReport = client.call(Method::DELETE, &["v1", "jobs", &artifact])?;
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
        let job: FetchJobSummary = client.send_json(Method::POST, &["v1", "jobs"], &request)?;
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
    if hf_cache_dir.is_some() {
        hf_cache::check_repo(&artifact, hf_repo.as_ref())?;
    }
    cancel_on_ctrl_c(client.clone(), artifact.clone());
    let mut bars = Bars::new("fetching", quiet);
    let fetched = client.stream(&["v1", "fetch"], &request, |p| bars.update(p));
    bars.finish();
    let report: FetchReport = match fetched {
        Err(e) if e.to_string().contains(DAEMON_STOPPING) => {
            // The daemon resumes the fetch when it starts again; writing the files
            // where the user asked is this command's part, which then never runs.
            let written_by_us = match (&out, &hf_cache_dir) {
                (Some(dir), _) => format!(" --out {}", dir.display()),
                (None, Some(Some(dir))) => format!(" --hf-cache {}", dir.display()),
                (None, Some(None)) => " --hf-cache".to_owned(),
                (None, None) => return Err(e),
            };
            return Err(e.context(format!(
                "the daemon stopped mid-fetch; it resumes the fetch when it starts again, but only this command writes the files: run `seedbank fetch {artifact}{written_by_us}` again then"
            )));
        }
        other => other?,
    };
    if !json {
        for warning in &report.warnings {
            eprintln!("warning: {warning}");
        }
    }
    let exported = match out {
        Some(dir) => {
            let id = report.id.to_string();
            Some(export_files(
                client,
                quiet,
                &id,
                &dir,
                include.clone(),
                force,
                !copy,
            )?)
        }
        None => None,
    };
    let cached = match hf_cache_dir {
        Some(dir) => {
            let args = hf_cache::CacheArgs {
                dir,
                repo: hf_repo,
                include: include.clone(),
            };
            Some(hf_cache::write_cache(
                client, &artifact, &report, args, quiet,
            )?)
        }
        None => None,
    };
    if let (true, Some(cached)) = (json, &cached) {
        let both = hf_cache::FetchedIntoCache {
            fetch: &report,
            hf_cache: cached,
        };
        return print(json, &both, || {}).map(|()| Exit::Ok);
    }
    if let (true, Some(exported)) = (json, &exported) {
        // The fetch report as always, with what the export did beside it.
        let mut both = serde_json::to_value(&report)?;
        both["export"] = serde_json::to_value(exported)?;
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
            if exported.moved > 0 {
                outln!(
                    "{} moved there from the store and seeded from there; changing or removing one stops its seeding (--copy keeps the store's copy)",
                    count(exported.moved, "file")
                );
            }
        }
        if let Some(cached) = &cached {
            hf_cache::print_cached(cached);
        }
    })?;
    Ok(Exit::Ok)
}

/// `seedbank jobs`
pub(crate) fn jobs(client: &DaemonClient, json: bool) -> Result<Exit> {
    let jobs: Vec<FetchJobSummary> = client.call(Method::GET, &["v1", "jobs"])?;
    print(json, &jobs, || print_jobs(&jobs))?;
    Ok(Exit::Ok)
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
            eprintln!("error: could not cancel the fetch: {}", one_line(&e));
        }
        std::process::exit(Exit::Interrupted as i32);
    });
}
