//! `seedbank import-hf`: publish the repos of a local Hugging Face cache.

use anyhow::{bail, Context, Result};
use seedbank_node::hf::cache::default_hub_dir;
use seedbank_protocol::hf_api::{HfImportReport, HfImportRequest};
use seedbank_protocol::HfRepo;

use crate::args::ImportHfArgs;
use crate::client::DaemonClient;
use crate::exit::Exit;
use crate::output::print;
use crate::progress::Bars;
use crate::render::print_import;

/// `seedbank import-hf [REPO…] [--cache DIR] [--key ALIAS]`; nothing imported ends as
/// not found.
pub(crate) fn import(
    client: &DaemonClient,
    json: bool,
    quiet: bool,
    args: ImportHfArgs,
) -> Result<Exit> {
    let ImportHfArgs { repos, cache, key } = args;
    let cache = match cache {
        Some(dir) => dir,
        None => default_hub_dir().context("no home directory: give the cache with --cache DIR")?,
    };
    let cache =
        std::path::absolute(&cache).with_context(|| format!("resolving {}", cache.display()))?;
    if !cache.is_dir() {
        bail!(
            "{} is not a Hugging Face cache (no such folder); give one with --cache DIR",
            cache.display()
        );
    }
    let repos = repos
        .iter()
        .map(|repo| HfRepo::parse_cli(repo))
        .collect::<Result<Vec<_>, _>>()?;
    let request = HfImportRequest {
        cache_dir: cache.display().to_string(),
        repos,
        key,
    };
    let mut bars = Bars::new("importing", quiet);
    let report: HfImportReport =
        client.stream(&["v1", "hf", "import"], &request, |p| bars.update(p))?;
    bars.finish();
    print(json, &report, || print_import(&report))?;
    if report.imported.is_empty() {
        return Ok(Exit::NotFound);
    }
    Ok(Exit::Ok)
}
