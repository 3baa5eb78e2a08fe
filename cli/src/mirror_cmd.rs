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

/// The origin when neither `--origin` nor `HF_ENDPOINT` names one: the public hub.
pub const DEFAULT_HF_ORIGIN: &str = "https://huggingface.co";

/// The request for the command line's arguments; the origin defaults to the
/// `HF_ENDPOINT` of this shell (as the Hugging Face tools read it), else the public hub.
pub(crate) fn request(
    repo: HfRepo,
    revision: Option<String>,
    origin: Option<String>,
    limit_rate: Option<ByteRate>,
    key: Option<String>,
) -> HfMirrorRequest {
    let origin = origin
        .or_else(|| {
            std::env::var("HF_ENDPOINT")
                .ok()
                .filter(|e| !e.trim().is_empty())
        })
        .unwrap_or_else(|| DEFAULT_HF_ORIGIN.to_owned());
    HfMirrorRequest {
        repo,
        revision,
        origin: origin.trim().trim_end_matches('/').to_owned(),
        rate_limit: limit_rate.map(ByteRate::bytes_per_second),
        key,
    }
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
