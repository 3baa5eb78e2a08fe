//! `seedbank fetch … --hf-cache [DIR]`: after the fetch, the daemon lays the files out in
//! the Hugging Face client's cache, so `HF_HUB_OFFLINE=1` loading works without a gateway.
//! Here: which cache, which repo, which ref, and how the result is shown; the fetch
//! itself is `fetch_cmd.rs`'s, the only caller.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use seedbank_protocol::api::FetchReport;
use seedbank_protocol::hf::is_commit_id;
use seedbank_protocol::hf_api::{HfCacheReport, HfCacheRequest};
use seedbank_protocol::{HfRepo, NameRef};
use serde::Serialize;

use crate::client::DaemonClient;
use crate::output::{count, human_bytes, outln};
use crate::progress::Bars;

/// Before fetching: fails when no `--hf-repo` is given and `artifact` is a published
/// name that no repo id can be derived from (a content id is checked after the fetch,
/// by the daemon, once its name is known).
pub(crate) fn check_repo(artifact: &str, repo: Option<&HfRepo>) -> Result<()> {
    if repo.is_some() {
        return Ok(());
    }
    match artifact.parse::<NameRef>() {
        Ok(name) if HfRepo::from_seedbank_name(&name.name).is_none() => bail!(
            "the name {:?} does not name a Hugging Face repo (names published from one look \
             like org--name); pass --hf-repo ORG/NAME or datasets/ORG/NAME",
            name.name
        ),
        _ => Ok(()),
    }
}

/// The ref the cache points at the fetched commit: `main` for the latest release (a
/// content id, or a name without `@REV`), `REV` for `NAME@REV`, none when REV is itself
/// a commit id (the client writes no ref for those either).
pub(crate) fn ref_for(artifact: &str) -> Option<String> {
    match artifact.rsplit_once('@') {
        Some((_, rev)) if is_commit_id(rev) => None,
        Some((_, rev)) => Some(rev.to_owned()),
        None => Some("main".to_owned()),
    }
}

/// What `fetch --hf-cache` asks of the daemon once the fetch is done.
#[derive(Debug)]
pub(crate) struct CacheArgs {
    /// `--hf-cache DIR`; the client's default cache when `None`.
    pub dir: Option<PathBuf>,
    /// `--hf-repo`.
    pub repo: Option<HfRepo>,
    /// `--include`.
    pub include: Vec<String>,
}

/// Asks the daemon to write the fetched artifact `report.id` into the cache.
pub(crate) fn write_cache(
    client: &DaemonClient,
    artifact: &str,
    report: &FetchReport,
    args: CacheArgs,
    quiet: bool,
) -> Result<HfCacheReport> {
    let hub = match args.dir {
        Some(dir) => dir,
        None => seedbank_node::hf::cache::default_hub_dir()
            .context("no home directory to find the Hugging Face cache in; pass --hf-cache DIR")?,
    };
    let hub = std::path::absolute(&hub).with_context(|| format!("resolving {}", hub.display()))?;
    let request = HfCacheRequest {
        hub_dir: hub.display().to_string(),
        repo: args.repo,
        include: args.include,
        ref_name: ref_for(artifact),
    };
    let id = report.id.to_string();
    let mut bars = Bars::new("caching", quiet);
    let cached: HfCacheReport =
        client.stream(&["v1", "artifacts", &id, "hf-cache"], &request, |p| {
            bars.update(p)
        })?;
    bars.finish();
    Ok(cached)
}

/// The JSON `fetch --hf-cache --json` prints: the fetch report with the cache's.
#[derive(Debug, Serialize)]
pub(crate) struct FetchedIntoCache<'a> {
    /// The fetch.
    #[serde(flatten)]
    pub fetch: &'a FetchReport,
    /// Where it went in the cache.
    pub hf_cache: &'a HfCacheReport,
}

/// The human line saying where the snapshot is.
pub(crate) fn print_cached(cached: &HfCacheReport) {
    outln!(
        "cached as {} (commit {}{}) in the Hugging Face cache: {}",
        cached.repo,
        cached.commit,
        cached
            .ref_name
            .as_deref()
            .map(|r| format!(", refs/{r}"))
            .unwrap_or_default(),
        cached.snapshot_dir
    );
    outln!(
        "  {}: {} written ({}), {} already there",
        count(cached.files, "file"),
        count(cached.blobs_written, "blob"),
        human_bytes(cached.bytes_written),
        cached.blobs_reused
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_follow_what_was_fetched() {
        assert_eq!(ref_for("sb1abc").as_deref(), Some("main"));
        assert_eq!(ref_for("alice/org--tiny").as_deref(), Some("main"));
        assert_eq!(ref_for("alice/org--tiny@v2").as_deref(), Some("v2"));
        assert_eq!(
            ref_for(&format!("alice/org--tiny@{}", "a".repeat(40))),
            None
        );
    }

    #[test]
    fn names_that_are_not_repo_ids_need_hf_repo() {
        let error = check_repo("alice/my model", None);
        assert!(error.is_ok(), "not a name at all: left to the fetch");
        let error = check_repo("alice/toy--", None).unwrap_err().to_string();
        assert!(error.contains("--hf-repo"), "{error}");
        assert!(check_repo("alice/org--tiny", None).is_ok());
        assert!(check_repo("sb1abc", None).is_ok());
        let repo = HfRepo::parse_cli("org/tiny").unwrap();
        assert!(check_repo("alice/toy--", Some(&repo)).is_ok());
    }
}
