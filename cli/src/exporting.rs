//! Writing an artifact's files into a directory through the daemon, with progress bars:
//! what `seedbank export` and `seedbank fetch --out` share. The directory is made
//! absolute here, so the daemon finds it whatever its working directory.

use std::path::Path;

use anyhow::{Context, Result};
use seedbank_protocol::api::{ExportReport, ExportRequest};

use crate::client::DaemonClient;
use crate::progress::Bars;

/// Exports `artifact` (an id, prefix or name) into `dir`, only the files `include`
/// matches when it is not empty, overwriting existing files if `force`, moving the
/// store's own files there rather than copying them if `hand_over`.
pub(crate) fn export_files(
    client: &DaemonClient,
    quiet: bool,
    artifact: &str,
    dir: &Path,
    include: Vec<String>,
    force: bool,
    hand_over: bool,
) -> Result<ExportReport> {
    let dir = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let request = ExportRequest {
        dir: dir.display().to_string(),
        include,
        force,
        hand_over,
    };
    let mut bars = Bars::new("exporting", quiet);
    let report: ExportReport =
        client.stream(&["v1", "artifacts", artifact, "export"], &request, |p| {
            bars.update(p)
        })?;
    bars.finish();
    Ok(report)
}
