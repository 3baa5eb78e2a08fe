//! How results read in a terminal: tables and one-line summaries of what the daemon
//! answered, apart from the commands that ask; a printer two commands share lives here
//! (`import-hf` and `mirror-hf` both show an import). `--json` output does not come
//! through here.

use seedbank_protocol::api::{
    ArtifactDetail, ArtifactSummary, Completeness, FetchJobState, FetchJobSummary, GcReport,
    RemoveReport, RemovedArtifact, StatusResponse, VerifyReport,
};
use seedbank_protocol::escape_path;
use seedbank_protocol::hf_api::HfImportReport;

use crate::output::{count, human_bytes, human_duration, outln, print_table};

fn state_text(state: Completeness) -> &'static str {
    match state {
        Completeness::Complete => "complete",
        Completeness::Partial => "partial",
        Completeness::Modified => "modified",
        Completeness::Damaged => "damaged (fetch it to repair)",
    }
}

pub(crate) fn print_artifacts(list: &[ArtifactSummary]) {
    if list.is_empty() {
        outln!("no artifacts yet (add one with `seedbank add PATH`)");
        return;
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|a| {
            vec![
                a.name.clone(),
                a.kind.to_string(),
                a.revision.clone(),
                human_bytes(a.size),
                a.files.to_string(),
                if a.pinned { "yes" } else { "no" }.into(),
                if a.denied.is_empty() {
                    state_text(a.state).into()
                } else {
                    format!("{}, denied", state_text(a.state))
                },
                a.origin.map_or("-", |o| o.as_str()).into(),
                a.id.to_string(),
            ]
        })
        .collect();
    print_table(
        &[
            "NAME", "KIND", "REVISION", "SIZE", "FILES", "PINNED", "STATE", "ORIGIN", "ID",
        ],
        &rows,
    );
}

pub(crate) fn print_detail(detail: &ArtifactDetail) {
    let m = &detail.manifest;
    let s = &detail.summary;
    outln!("id:       {}", s.id);
    if s.name.is_empty() {
        outln!("name:     - ({})", s.kind);
    } else {
        outln!("name:     {}@{} ({})", s.name, s.revision, s.kind);
    }
    outln!("licence:  {}", detail.licence.as_deref().unwrap_or("-"));
    outln!("card:     {}", detail.card.as_deref().unwrap_or("-"));
    outln!(
        "size:     {} in {}",
        human_bytes(s.size),
        count(s.files, "file")
    );
    outln!(
        "state:    {}{}{}",
        state_text(s.state),
        if s.pinned { ", pinned" } else { "" },
        if detail.seeding {
            ""
        } else if s.denied.is_empty() {
            ", not seeded (licence not in this node's allowlist)"
        } else {
            ", not seeded (denied)"
        }
    );
    for denial in &s.denied {
        outln!(
            "denied:   by the denylist {} ({}){}; kept on disk, never served or announced \
             (`seedbank rm` removes it)",
            denial.list,
            denial.publisher,
            denial
                .reason
                .as_deref()
                .map(|reason| format!(": {}", escape_path(reason)))
                .unwrap_or_default()
        );
    }
    for info in &detail.releases {
        let release = &info.release;
        outln!(
            "release:  {}/{}@{} signed by {}{}",
            info.alias.as_deref().unwrap_or("?"),
            release.name,
            release.revision,
            info.publisher,
            if info.trusted { "" } else { " (untrusted)" }
        );
        if let Some(parent) = &release.parent {
            outln!("parent:   {parent}");
        }
    }
    outln!();
    let rows: Vec<Vec<String>> = m
        .files
        .iter()
        .map(|f| vec![f.path.clone(), f.size.to_string(), f.hash.to_hex()])
        .collect();
    print_table(&["PATH", "BYTES", "BLAKE3"], &rows);
    if let Some(text) = &detail.card_text {
        outln!();
        outln!("{}", text.trim_end());
    }
}

/// `name@revision  id  size`, leaving out the labels an artifact does not have (one
/// fetched by content id has none) rather than printing a bare `@`.
fn removed_line(artifact: &RemovedArtifact) -> String {
    let label = match (artifact.name.as_str(), artifact.revision.as_str()) {
        ("", _) => String::new(),
        (name, "") => format!("{name}  "),
        (name, revision) => format!("{name}@{revision}  "),
    };
    format!("{label}{}  {}", artifact.id, human_bytes(artifact.size))
}

pub(crate) fn print_gc(report: &GcReport) {
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    for artifact in &report.artifacts_removed {
        outln!("{verb} {}", removed_line(artifact));
    }
    let freed = if report.dry_run {
        "would free"
    } else {
        "freed"
    };
    outln!(
        "{verb} {}, {freed} {} in {}",
        count(report.artifacts_removed.len() as u64, "unpinned artifact"),
        human_bytes(report.bytes_freed),
        count(report.blobs_removed, "blob")
    );
    if report.dry_run {
        outln!("nothing was removed (dry run); pin what you want to keep with `seedbank pin`");
    }
}

pub(crate) fn print_removed(report: &RemoveReport) {
    outln!(
        "removed {}{}; freed {} in {} (blobs other artifacts use stay)",
        removed_line(&report.artifact),
        if report.was_pinned {
            " (was pinned)"
        } else {
            ""
        },
        human_bytes(report.bytes_freed),
        count(report.blobs_removed, "blob")
    );
}

pub(crate) fn print_verify(report: &VerifyReport) {
    for bad in &report.corrupt {
        outln!(
            "CORRUPT {} ({}): {}",
            bad.hash,
            bad.used_by.join(", "),
            bad.reason
        );
    }
    outln!(
        "checked {} ({}): {} corrupt",
        count(report.blobs_checked, "blob"),
        human_bytes(report.bytes_checked),
        report.corrupt.len()
    );
}

fn job_state_text(state: FetchJobState) -> &'static str {
    match state {
        FetchJobState::Running => "running",
        FetchJobState::Waiting => "waiting",
        FetchJobState::PausedDiskFull => "paused: disk full",
        FetchJobState::Saved => "saved",
    }
}

pub(crate) fn print_jobs(jobs: &[FetchJobSummary]) {
    if jobs.is_empty() {
        outln!("no fetches running or saved");
        return;
    }
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|job| {
            vec![
                job.id.to_string(),
                if job.include.is_empty() {
                    "all files".into()
                } else {
                    job.include.join(" ")
                },
                job_state_text(job.state).into(),
                if job.total_bytes > 0 {
                    format!(
                        "{}/{}",
                        human_bytes(job.done_bytes),
                        human_bytes(job.total_bytes)
                    )
                } else {
                    "-".into()
                },
                job.activity
                    .clone()
                    .or_else(|| job.last_error.clone())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    print_table(&["ID", "SELECTION", "STATE", "PROGRESS", "DETAIL"], &rows);
}

pub(crate) fn print_status(status: &StatusResponse) {
    outln!("node id:    {}", status.node_id);
    outln!("version:    {}", status.version);
    outln!("data dir:   {}", status.data_dir);
    outln!("store:      {}", human_bytes(status.store_bytes));
    if let Some(max) = status.max_storage {
        outln!(
            "storage:    {} of max_storage {}",
            human_bytes(status.storage_used.unwrap_or(status.store_bytes)),
            human_bytes(max)
        );
    }
    if status.temp_bytes > 0 {
        outln!("importing:  {}", human_bytes(status.temp_bytes));
    }
    outln!("artifacts:  {} ({} pinned)", status.artifacts, status.pins);
    outln!(
        "uptime:     {}",
        human_duration(std::time::Duration::from_secs(status.uptime_secs))
    );
    if let Some(net) = &status.network {
        outln!("listening:  {}", net.listen_addresses.join(" "));
        outln!(
            "peers:      {} connected, {} in the DHT routing table",
            net.connected_peers,
            net.routing_table_size
        );
        let reach = &net.reachability;
        outln!("reachable:  {}", reach.state.describe());
        for fact in &reach.evidence {
            outln!("            {fact}");
        }
        for relay in &reach.relays {
            outln!("relayed:    {relay}");
        }
        outln!("port map:   {}", reach.port_mapping);
        outln!("relaying:   {}", reach.relay_service);
    }
    for job in &status.fetches {
        outln!(
            "fetching:   {} {} ({}/{})",
            job.id,
            job_state_text(job.state),
            human_bytes(job.done_bytes),
            human_bytes(job.total_bytes)
        );
    }
}

/// Prints what an import (or the import step of a mirror) published and skipped.
pub(crate) fn print_import(report: &HfImportReport) {
    for imported in &report.imported {
        let info = &imported.release;
        let refs = if imported.refs.is_empty() {
            String::new()
        } else {
            format!(" ({})", imported.refs.join(", "))
        };
        outln!(
            "imported {} at {}{refs}: {}, {} = {}/{}",
            imported.repo,
            imported.commit,
            count(imported.files, "file"),
            human_bytes(imported.bytes),
            info.publisher,
            info.release.name,
        );
    }
    for skipped in &report.skipped {
        match &skipped.commit {
            Some(commit) => outln!("skipped {} at {commit}: {}", skipped.repo, skipped.reason),
            None => outln!("skipped {}: {}", skipped.repo, skipped.reason),
        }
    }
    if report.imported.is_empty() {
        outln!("nothing was imported");
    }
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::{BlobHash, ContentId};

    use super::*;

    #[test]
    fn a_removed_artifact_is_shown_with_the_labels_it_has_and_no_bare_at() {
        let id = ContentId::from_hash(BlobHash([7; 32]));
        let removed = |name: &str, revision: &str| {
            removed_line(&RemovedArtifact {
                id,
                name: name.into(),
                revision: revision.into(),
                size: 1024,
            })
        };
        assert_eq!(removed("tiny", "v1"), format!("tiny@v1  {id}  1.00 KiB"));
        assert_eq!(removed("tiny", ""), format!("tiny  {id}  1.00 KiB"));
        assert_eq!(removed("", ""), format!("{id}  1.00 KiB"));
    }
}
