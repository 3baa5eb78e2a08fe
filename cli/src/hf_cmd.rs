//! The Hugging Face subcommands: `import-hf`.

use anyhow::{bail, Context, Result};
use seedbank_node::hf::cache::default_hub_dir;
use seedbank_protocol::hf_api::{HfImportReport, HfImportRequest};
use seedbank_protocol::HfRepo;

use crate::cli::Command;
use crate::client::DaemonClient;
use crate::commands::print;
use crate::exit::Exit;
use crate::output::{count, human_bytes, outln};
use crate::progress::Bars;

/// Runs one of the Hugging Face subcommands.
pub(crate) fn run(
    command: Command,
    client: &DaemonClient,
    json: bool,
    quiet: bool,
) -> Result<Exit> {
    match command {
        Command::ImportHf { repos, cache, key } => {
            let cache = match cache {
                Some(dir) => dir,
                None => default_hub_dir()
                    .context("no home directory: give the cache with --cache DIR")?,
            };
            let cache = std::path::absolute(&cache)
                .with_context(|| format!("resolving {}", cache.display()))?;
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
        }
        _ => unreachable!("not a Hugging Face command"),
    }
    Ok(Exit::Ok)
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
