//! `seedbank mirror-hf`: asks the daemon to mirror a repo from an HF-compatible origin,
//! shows its progress, then what was checked and published.

use anyhow::Result;
use seedbank_node::config::ByteRate;
use seedbank_protocol::hf_api::{HfMirrorReport, HfMirrorRequest};
use seedbank_protocol::HfRepo;

use crate::client::DaemonClient;
use crate::commands::print;
use crate::exit::Exit;
use crate::output::{count, human_bytes, outln};
use crate::progress::Bars;

/// The request for the command line's arguments; the origin defaults to the
/// `HF_ENDPOINT` of this shell (as the Hugging Face tools read it). This node's own
/// gateway is refused as an origin: it serves only what is already published.
pub(crate) fn request(
    repo: HfRepo,
    revision: Option<String>,
    origin: Option<String>,
    limit_rate: Option<ByteRate>,
    key: Option<String>,
    own_gateway: Option<String>,
) -> anyhow::Result<HfMirrorRequest> {
    let origin = origin
        .or_else(|| {
            std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "no origin to mirror from: give --origin URL (an HF-compatible endpoint) or set HF_ENDPOINT"
            )
        })?;
    let origin = origin.trim().trim_end_matches('/').to_owned();
    if own_gateway.is_some_and(|own| own.trim().trim_end_matches('/') == origin) {
        anyhow::bail!(
            "{origin} is this node's own Hugging Face gateway, which serves only what is already \
             published; give the origin to mirror from with --origin URL"
        );
    }
    Ok(HfMirrorRequest {
        repo,
        revision,
        origin,
        rate_limit: limit_rate.map(ByteRate::bytes_per_second),
        key,
    })
}

/// Runs the mirror and prints its report.
pub(crate) fn run(
    request: &HfMirrorRequest,
    client: &DaemonClient,
    json: bool,
    quiet: bool,
) -> Result<Exit> {
    let mut bars = Bars::new("downloading", quiet);
    let report: HfMirrorReport =
        client.stream(&["v1", "hf", "mirror"], request, |p| bars.update(p))?;
    bars.finish();
    print(json, &report, || print_report(request, &report))?;
    Ok(Exit::Ok)
}

fn print_report(request: &HfMirrorRequest, report: &HfMirrorReport) {
    outln!(
        "mirrored {}@{} (commit {}) from {}",
        request.repo,
        request.revision.as_deref().unwrap_or("main"),
        report.commit,
        request.origin
    );
    outln!(
        "  {} checked against the origin's listing, {} downloaded",
        count(report.verified_files, "file"),
        human_bytes(report.downloaded_bytes)
    );
    for file in &report.files {
        outln!(
            "  {:<40} {:>10}  {}{}",
            file.path,
            human_bytes(file.size),
            file.etag,
            if file.downloaded_bytes == 0 {
                " (already here)"
            } else {
                ""
            }
        );
    }
    crate::hf_cmd::print_import(&report.import);
}
