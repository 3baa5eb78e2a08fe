//! Writing an artifact into the Hugging Face client's cache, so `HF_HUB_OFFLINE=1`
//! loading works with no gateway running (`seedbank fetch --hf-cache`).
//!
//! Each selected file's bytes go to `blobs/<etag>` through [`ExportDir`], the same
//! descriptor-based writing `export` uses: nothing below the repo's folder is written
//! through a link, a symbolic link where a blob goes fails the write with its name
//! (unless it leads to the blob's right bytes: a client's cache may link its blobs into
//! another cache, and such a blob is kept), and a blob lands under its real name only
//! once its bytes hash to the manifest's hash. A blob already there with the right bytes
//! is kept. Then each file is linked into
//! `snapshots/<commit>/` as the client links it, and the ref is written last, so a
//! client never follows a ref to a snapshot still being made. Links planted on the way
//! to a snapshot link or at the ref are refused before anything is written (those two
//! are written by path, through [`RepoCache`], so this check is what guards them).

use std::collections::{HashMap, HashSet};
use std::path::Path;

use seedbank_protocol::hf::{commit_for, etag_for};
use seedbank_protocol::hf_api::{HfCacheReport, HfCacheRequest};
use seedbank_protocol::{
    validate_artifact_path, ArtifactKind, ContentId, FileEntry, HfRepo, HfRepoType, Manifest,
};

use super::cache::RepoCache;
use super::hub_hashes::HubHashBook;
use super::HfBridge;
use crate::error::{NodeError, NodeResult};
use crate::library::export::{select_files, ExportDir};
use crate::library::store::BlobStore;
use crate::library::Library;
use crate::progress::ProgressReporter;

impl HfBridge {
    /// Lays a held artifact (or the files matching the request's globs) out in a
    /// Hugging Face client cache: blobs, snapshot links and a ref.
    pub async fn export_to_cache(
        &self,
        reference: &str,
        request: &HfCacheRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<HfCacheReport> {
        export_to_cache(
            &self.library,
            &self.hub_hashes,
            reference,
            request,
            progress,
        )
        .await
    }
}

/// [`HfBridge::export_to_cache`], with the hub ETags of the plan checked against the
/// bytes (through `book`) before any blob is written under one.
async fn export_to_cache(
    library: &Library,
    book: &HubHashBook,
    reference: &str,
    request: &HfCacheRequest,
    progress: &mut ProgressReporter,
) -> NodeResult<HfCacheReport> {
    let record = library.resolve(reference)?;
    let manifest = library.manifest(&record).await?;
    let repo = repo_for(request.repo.clone(), &record.name, record.kind)?;
    let plan = CachePlan::new(
        &record.root,
        &manifest,
        repo,
        &request.include,
        request.ref_name.clone(),
    )?;
    let files: Vec<&FileEntry> = plan.files.iter().map(|f| f.file).collect();
    library.check_exportable(&record, &files).await?;
    if manifest.hf.is_some() {
        check_hub_etags(&library.transfer_store(), book, &plan).await?;
    }
    let report = write_cache(
        &library.transfer_store(),
        Path::new(&request.hub_dir),
        &plan,
        progress,
    )
    .await?;
    library.note_used(record.root);
    Ok(report)
}

/// One file to cache: its manifest entry and the ETag its blob is named by.
#[derive(Debug, Clone)]
pub struct CacheFile<'a> {
    /// The file.
    pub file: &'a FileEntry,
    /// The blob's name in `blobs/`: the hub's ETag, or one derived from the hash.
    pub etag: String,
}

/// What one artifact is cached as: the repo, the commit, the ref and the files.
#[derive(Debug, Clone)]
pub struct CachePlan<'a> {
    /// The repo whose folder receives it.
    pub repo: HfRepo,
    /// The snapshot's commit id.
    pub commit: String,
    /// The ref to point at the commit, if any.
    pub ref_name: Option<String>,
    /// The files, in manifest order.
    pub files: Vec<CacheFile<'a>>,
}

impl<'a> CachePlan<'a> {
    /// The plan for the files of `manifest` (under `root`) matching `include` (all when
    /// empty), cached as `repo`.
    pub fn new(
        root: &ContentId,
        manifest: &'a Manifest,
        repo: HfRepo,
        include: &[String],
        ref_name: Option<String>,
    ) -> NodeResult<Self> {
        if let Some(ref_name) = &ref_name {
            validate_artifact_path(ref_name)
                .map_err(|e| NodeError::BadRequest(format!("bad ref {ref_name:?}: {e}")))?;
        }
        let index: HashMap<&str, usize> = manifest
            .files
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.as_str(), i))
            .collect();
        let files = select_files(&manifest.files, include)?
            .into_iter()
            .map(|file| {
                index
                    .get(file.path.as_str())
                    .and_then(|&i| etag_for(manifest, i))
                    .map(|etag| CacheFile { file, etag })
                    .ok_or_else(|| {
                        NodeError::Corrupt(format!("the manifest has no ETag for {}", file.path))
                    })
            })
            .collect::<NodeResult<_>>()?;
        Ok(Self {
            repo,
            commit: commit_for(root, manifest),
            ref_name,
            files,
        })
    }
}

/// Refuses the plan unless each file's bytes hash to the hub ETag its blob is to be
/// named by (hashing each blob once; the book keeps what it found).
async fn check_hub_etags(
    store: &BlobStore,
    book: &HubHashBook,
    plan: &CachePlan<'_>,
) -> NodeResult<()> {
    for file in &plan.files {
        let hashes = book
            .of_stored(store, file.file.hash, file.file.size)
            .await?;
        if !hashes.names(&file.etag) {
            return Err(hashes.mismatch(&file.file.path, &file.etag));
        }
    }
    Ok(())
}

/// The repo an artifact is cached as: `requested` when given, else the repo its name
/// stands for (`org--name`, `datasets--org--name`), a dataset when its kind says so.
pub fn repo_for(requested: Option<HfRepo>, name: &str, kind: ArtifactKind) -> NodeResult<HfRepo> {
    if let Some(repo) = requested {
        return Ok(repo);
    }
    let mut repo = HfRepo::from_seedbank_name(name).ok_or_else(|| {
        let why = if name.is_empty() {
            "the artifact has no name to take a Hugging Face repo id from (fetched by content \
             id)"
            .to_owned()
        } else {
            format!(
                "the artifact's name {name:?} does not name a Hugging Face repo (names \
                 published from one look like org--name)"
            )
        };
        NodeError::BadRequest(format!(
            "{why}; pass --hf-repo ORG/NAME or datasets/ORG/NAME"
        ))
    })?;
    if kind == ArtifactKind::Dataset {
        repo.repo_type = HfRepoType::Dataset;
    }
    Ok(repo)
}

/// Writes `plan` into the hub cache `hub`: blobs (kept when already right), snapshot
/// links, then the ref. On a failed blob write, the blobs this call created are removed.
pub async fn write_cache(
    store: &BlobStore,
    hub: &Path,
    plan: &CachePlan<'_>,
    progress: &mut ProgressReporter,
) -> NodeResult<HfCacheReport> {
    let cache = RepoCache::new(hub, &plan.repo);
    let mut blobs = ExportDir::create(cache.dir()).await?;
    // Files with the same bytes share one blob: write each blob once.
    let mut seen = HashSet::new();
    let unique: Vec<&CacheFile<'_>> = plan
        .files
        .iter()
        .filter(|f| seen.insert(f.etag.as_str()))
        .collect();
    // Before anything is written: no link on the way to a snapshot link or at the ref
    // (the snapshot links themselves are replaced, never followed), and which blobs are
    // already right; a link where a blob goes that does not lead to its bytes fails here.
    for file in &plan.files {
        blobs.check_folders(&format!("snapshots/{}/{}", plan.commit, file.file.path))?;
    }
    if let Some(ref_name) = &plan.ref_name {
        blobs.check_target(&format!("refs/{ref_name}"), true)?;
    }
    let mut present = Vec::with_capacity(unique.len());
    for blob in &unique {
        present.push(blobs.holds_copy(&blob_name(&blob.etag), blob.file).await?);
    }
    progress.set_total(unique.iter().map(|b| b.file.size).sum());
    let (mut done, mut written, mut bytes_written, mut reused) = (0, 0, 0, 0);
    for (blob, present) in unique.iter().zip(present) {
        let name = blob_name(&blob.etag);
        progress.start_file(&blob.file.path, blob.file.size, done);
        if present {
            reused += 1;
        } else if let Err(e) = blobs
            .write_file(store, blob.file, &name, true, done, progress)
            .await
        {
            blobs.remove_written();
            return Err(e);
        } else {
            written += 1;
            bytes_written += blob.file.size;
        }
        done += blob.file.size;
        progress.report(done, &blob.file.path);
    }
    for file in &plan.files {
        cache.link_snapshot_file(&plan.commit, &file.file.path, &file.etag)?;
    }
    if let Some(ref_name) = &plan.ref_name {
        cache.write_ref(ref_name, &plan.commit)?;
    }
    tracing::info!(repo = %plan.repo, commit = %plan.commit, written, reused, "wrote the Hugging Face cache");
    Ok(HfCacheReport {
        repo: plan.repo.clone(),
        commit: plan.commit.clone(),
        ref_name: plan.ref_name.clone(),
        repo_dir: cache.dir().display().to_string(),
        snapshot_dir: cache.snapshot_dir(&plan.commit).display().to_string(),
        files: plan.files.len() as u64,
        blobs_written: written,
        bytes_written,
        blobs_reused: reused,
    })
}

/// Where a blob goes, relative to the repo's folder.
fn blob_name(etag: &str) -> String {
    format!("blobs/{etag}")
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::BlobHash;

    use super::*;

    #[test]
    fn the_repo_comes_from_the_flag_else_the_name_and_kind() {
        let given = HfRepo::parse_cli("org/other").unwrap();
        assert_eq!(
            repo_for(Some(given.clone()), "x", ArtifactKind::Model).unwrap(),
            given
        );
        let model = repo_for(None, "org--tiny", ArtifactKind::Model).unwrap();
        assert_eq!(model.to_string(), "org/tiny");
        let data = repo_for(None, "org--set", ArtifactKind::Dataset).unwrap();
        assert_eq!(data.to_string(), "datasets/org/set");
        let prefixed = repo_for(None, "datasets--org--set", ArtifactKind::Dataset).unwrap();
        assert_eq!(prefixed, data);
        for bad in ["", "my model", "a--b--c--"] {
            let error = repo_for(None, bad, ArtifactKind::Model).unwrap_err();
            assert!(error.to_string().contains("--hf-repo"), "{error}");
        }
    }

    #[test]
    fn plans_name_blobs_by_etag_and_keep_the_selection() {
        let entry = |path: &str, byte: u8| FileEntry {
            path: path.into(),
            size: 1,
            hash: BlobHash([byte; 32]),
        };
        let manifest = Manifest {
            files: vec![entry("config.json", 1), entry("sub/w.bin", 2)],
            hf: None,
        };
        let root = ContentId::from_hash(BlobHash([9; 32]));
        let repo = HfRepo::parse_cli("org/tiny").unwrap();
        let plan = CachePlan::new(&root, &manifest, repo, &["*.bin".into()], None).unwrap();
        assert_eq!(plan.files.len(), 1);
        assert_eq!(plan.files[0].file.path, "sub/w.bin");
        assert_eq!(plan.files[0].etag, BlobHash([2; 32]).to_hex());
        assert_eq!(plan.commit, commit_for(&root, &manifest));
        assert_eq!(plan.commit.len(), 40);
        let repo = HfRepo::parse_cli("org/tiny").unwrap();
        let bad_ref = CachePlan::new(&root, &manifest, repo, &[], Some("../../x".into()));
        assert!(matches!(bad_ref, Err(NodeError::BadRequest(_))));
    }
}
