//! The commands on what this node holds: `add`, `ls`, `show`, `export`, `unpin`, `rm`,
//! `gc` and `verify`. Each asks the daemon, then prints its answer.

use anyhow::{Context, Result};
use reqwest::Method;
use seedbank_protocol::api::{
    AddRequest, ArtifactDetail, ArtifactSummary, GcReport, GcRequest, PinReport, RemoveReport,
    RemoveRequest, VerifyReport,
};

use crate::args::{AddArgs, ExportArgs};
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::exporting::export_files;
use crate::output::{count, human_bytes, outln, print};
use crate::progress::Bars;
use crate::render::{print_artifacts, print_detail, print_gc, print_removed, print_verify};

/// `seedbank add PATH …`
pub(crate) fn add(client: &DaemonClient, json: bool, quiet: bool, args: AddArgs) -> Result<Exit> {
    // Absolute, but not canonical: resolving symlinks here would hide them from the daemon.
    let path = std::path::absolute(&args.path)
        .with_context(|| format!("resolving {}", args.path.display()))?;
    let request = AddRequest {
        path: path.display().to_string(),
        kind: args.kind.into(),
        name: args.name,
        revision: args.revision,
        licence: args.licence,
        pin: args.pin,
        reference: args.reference,
        follow_symlinks: args.follow_symlinks,
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
    Ok(Exit::Ok)
}

/// `seedbank ls`
pub(crate) fn ls(client: &DaemonClient, json: bool) -> Result<Exit> {
    let list: Vec<ArtifactSummary> = client.call(Method::GET, &["v1", "artifacts"])?;
    print(json, &list, || print_artifacts(&list))?;
    Ok(Exit::Ok)
}

/// `seedbank show ARTIFACT`
pub(crate) fn show(client: &DaemonClient, json: bool, artifact: &str) -> Result<Exit> {
    let detail: ArtifactDetail = client.call(Method::GET, &["v1", "artifacts", artifact])?;
    print(json, &detail, || print_detail(&detail))?;
    Ok(Exit::Ok)
}

/// `seedbank export ARTIFACT DIR …`
pub(crate) fn export(
    client: &DaemonClient,
    json: bool,
    quiet: bool,
    args: ExportArgs,
) -> Result<Exit> {
    let report = export_files(
        client,
        quiet,
        &args.artifact,
        &args.dir,
        args.include,
        args.force,
        false,
    )?;
    print(json, &report, || {
        outln!(
            "exported {} ({}) to {}",
            count(report.files, "file"),
            human_bytes(report.bytes),
            report.dir
        )
    })?;
    Ok(Exit::Ok)
}

/// `seedbank unpin ARTIFACT`
pub(crate) fn unpin(client: &DaemonClient, json: bool, artifact: &str) -> Result<Exit> {
    let report: PinReport = client.call(Method::DELETE, &["v1", "pins", artifact])?;
    print(json, &report, || {
        let state = if report.pinned { "pinned" } else { "unpinned" };
        let already = if report.changed { "" } else { " (already)" };
        outln!("{state} {}{already}", report.id)
    })?;
    Ok(Exit::Ok)
}

/// `seedbank rm ARTIFACT [--force]`
pub(crate) fn rm(client: &DaemonClient, json: bool, artifact: &str, force: bool) -> Result<Exit> {
    let report: RemoveReport = client.call_with_query(
        Method::DELETE,
        &["v1", "artifacts", artifact],
        &RemoveRequest { force },
    )?;
    print(json, &report, || print_removed(&report))?;
    Ok(Exit::Ok)
}

/// `seedbank gc [--dry-run]`
pub(crate) fn gc(client: &DaemonClient, json: bool, dry_run: bool) -> Result<Exit> {
    let report: GcReport =
        client.call_with_query(Method::POST, &["v1", "gc"], &GcRequest { dry_run })?;
    print(json, &report, || print_gc(&report))?;
    Ok(Exit::Ok)
}

/// `seedbank verify`; a corrupt blob ends as [`Exit::Corrupt`].
pub(crate) fn verify(client: &DaemonClient, json: bool, quiet: bool) -> Result<Exit> {
    let mut bars = Bars::new("verifying", quiet);
    let report: VerifyReport = client.stream(&["v1", "verify"], &(), |p| bars.update(p))?;
    bars.finish();
    print(json, &report, || print_verify(&report))?;
    if !report.corrupt.is_empty() {
        return Ok(Exit::Corrupt);
    }
    Ok(Exit::Ok)
}
