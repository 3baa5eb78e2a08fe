//! `seedbank mirror-hf`: asks the daemon to mirror a repo from an HF-compatible origin,
//! shows its progress, then what was checked and published.

use anyhow::Result;
use seedbank_node::config::ByteRate;
use seedbank_protocol::hf_api::{HfMirrorReport, HfMirrorRequest};

use crate::args::MirrorHfArgs;
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::output::{count, human_bytes, outln, print};
use crate::progress::Bars;
use crate::render::print_import;

/// `seedbank mirror-hf REPO …`: mirrors, showing progress, then prints the report.
/// `own_gateway` is the URL this node's own Hugging Face gateway serves, if it runs.
pub(crate) fn mirror(
    client: &DaemonClient,
    json: bool,
    quiet: bool,
    args: MirrorHfArgs,
    own_gateway: Option<String>,
) -> Result<Exit> {
    let request = request(args, own_gateway)?;
    let mut bars = Bars::new("downloading", quiet);
    let report: HfMirrorReport =
        client.stream(&["v1", "hf", "mirror"], &request, |p| bars.update(p))?;
    bars.finish();
    print(json, &report, || print_report(&request, &report))?;
    Ok(Exit::Ok)
}

/// The request for the command line's arguments; the origin defaults to the
/// `HF_ENDPOINT` of this shell (as the Hugging Face tools read it). This node's own
/// gateway is refused as an origin: it serves only what is already published.
fn request(args: MirrorHfArgs, own_gateway: Option<String>) -> Result<HfMirrorRequest> {
    let origin = args
        .origin
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
        repo: args.repo,
        revision: args.revision,
        origin,
        rate_limit: args.limit_rate.map(ByteRate::bytes_per_second),
        key: args.key,
    })
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
    print_import(&report.import);
}
