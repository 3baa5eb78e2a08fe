//! Mirroring a repo from an HF-compatible origin: find the revision's commit, list its
//! files, download each into the node's own HF-layout cache (`<data_dir>/hf-mirror/hub`),
//! checked against the listing, lay out the snapshot and ref, then import and publish it.
//!
//! Invariants: nothing is linked into a snapshot, and nothing is published, unless every
//! file of the commit passed its check; one mirror of a repo runs at a time (a lock file
//! in the repo's folder), so two runs never write the same partial file. Called by the
//! control API's `POST /v1/hf/mirror`.

use std::path::{Path, PathBuf};

use async_speed_limit::Limiter;
use fs2::FileExt;
use seedbank_protocol::hf::{is_commit_id, DEFAULT_BRANCH};
use seedbank_protocol::hf_api::{HfImportReport, HfMirrorReport, HfMirrorRequest, HfMirroredFile};
use seedbank_protocol::HfRepo;

use super::cache::RepoCache;
use super::download::Downloader;
use super::listing::ListedFile;
use super::origin::Origin;
use super::HfBridge;
use crate::error::{NodeError, NodeResult};
use crate::progress::ProgressReporter;

/// The mirror's cache folder (`hub`, as the client names it) in the data dir `root`.
pub fn mirror_hub_dir(root: &Path) -> PathBuf {
    root.join("hf-mirror").join("hub")
}

impl HfBridge {
    /// Downloads `request.repo` at `request.revision` from `request.origin`, checks every
    /// file against the origin's listing, and imports and publishes the snapshot.
    pub async fn mirror(
        &self,
        request: HfMirrorRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<HfMirrorReport> {
        let hub = mirror_hub_dir(self.library.data_root());
        let (mut report, _lock) = self.download_hf(&request, &hub, progress).await?;
        let commit = report.commit.clone();
        report.import = self
            .import_mirrored(&request, &hub, &commit, progress)
            .await?;
        Ok(report)
    }

    /// The download half of [`HfBridge::mirror`]: the repo's snapshot, checked and laid
    /// out in `hub`. Returns the report (without the import) and the repo's lock.
    async fn download_hf(
        &self,
        request: &HfMirrorRequest,
        hub: &Path,
        progress: &mut ProgressReporter,
    ) -> NodeResult<(HfMirrorReport, std::fs::File)> {
        let revision = request.revision.as_deref().unwrap_or(DEFAULT_BRANCH);
        if revision.is_empty() || revision.len() > 256 {
            return Err(NodeError::BadRequest(format!("bad revision {revision:?}")));
        }
        let origin = Origin::new(&request.origin, request.repo.clone())?;
        let cache = RepoCache::new(hub, &request.repo);
        let lock = lock_repo(hub, &request.repo)?;
        let commit = origin.commit(revision).await?;
        let files = origin.files(&commit).await?;
        tracing::info!(repo = %request.repo, %revision, %commit, files = files.len(), "mirroring");

        let limiters = [
            Limiter::new(request.rate_limit.map_or(f64::INFINITY, |rate| rate as f64)),
            self.traffic.download_limiter(),
        ];
        let slowest_limit = limiters
            .iter()
            .map(Limiter::speed_limit)
            .filter(|rate| rate.is_finite())
            .map(|rate| rate as u64)
            .min();
        let downloader = Downloader {
            origin: &origin,
            cache: &cache,
            commit: &commit,
            limiters: &limiters,
            low_speed: self.low_speed.under_cap(slowest_limit),
        };
        let total: u64 = files.iter().map(|f| f.size).sum();
        let present: u64 = files.iter().map(|f| downloader.present_bytes(f)).sum();
        self.library.ensure_space_to_fetch(total - present)?;
        progress.set_total(total);

        let mut report = HfMirrorReport {
            downloaded_bytes: 0,
            verified_files: 0,
            import: HfImportReport::default(),
            commit: commit.clone(),
            files: Vec::with_capacity(files.len()),
        };
        let mut done = 0u64;
        for file in &files {
            let downloaded = downloader.fetch(file, done, progress).await?;
            done += file.size;
            report.downloaded_bytes += downloaded;
            report.verified_files += 1;
            report.files.push(mirrored(file, downloaded));
        }
        for file in &files {
            cache.link_snapshot_file(&commit, &file.path, &file.etag)?;
        }
        if !is_commit_id(revision) {
            cache.write_ref(revision, &commit)?;
        }
        tracing::info!(repo = %request.repo, %commit, bytes = report.downloaded_bytes, "mirrored");
        Ok((report, lock))
    }

    /// Imports and publishes the commit just mirrored (only that one: earlier mirrors
    /// were published when they were made) from `hub`.
    async fn import_mirrored(
        &self,
        request: &HfMirrorRequest,
        hub: &Path,
        commit: &str,
        progress: &mut ProgressReporter,
    ) -> NodeResult<HfImportReport> {
        match self
            .import_commit(hub, &request.repo, commit, request.key.clone(), progress)
            .await
        {
            Ok(imported) => Ok(HfImportReport {
                imported: vec![imported],
                skipped: Vec::new(),
            }),
            Err(e) => Err(NodeError::BadRequest(format!(
                "{}@{commit} was downloaded and checked but not published: {e}",
                request.repo
            ))),
        }
    }
}

fn mirrored(file: &ListedFile, downloaded: u64) -> HfMirroredFile {
    HfMirroredFile {
        path: file.path.clone(),
        size: file.size,
        etag: file.etag.clone(),
        downloaded_bytes: downloaded,
    }
}

/// Takes the repo's mirror lock (beside the cache, so the client's own tools never see
/// it), failing at once when another mirror of the repo runs.
fn lock_repo(hub: &Path, repo: &HfRepo) -> NodeResult<std::fs::File> {
    let dir = hub.with_file_name("locks");
    std::fs::create_dir_all(&dir).map_err(|e| NodeError::io("creating", &dir, e))?;
    let path = dir.join(format!("{}.lock", repo.cache_folder()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| NodeError::io("opening", &path, e))?;
    file.try_lock_exclusive().map_err(|_| {
        NodeError::InUse(format!("another mirror of {repo} is running on this node"))
    })?;
    Ok(file)
}
