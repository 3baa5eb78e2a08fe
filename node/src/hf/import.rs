//! `import-hf`: publish the repos of a local Hugging Face cache, one revision per
//! snapshot, referencing the cache's files in place, keeping the hub's commit id and each
//! file's ETag in the manifest so the gateway serves what the hub serves.
//!
//! Every file is checked against the ETag its blob is named by before anything is
//! published: a damaged cache is reported, never passed on under the hub's ETag.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use seedbank_protocol::hf::{is_lfs_etag, HubHasher, DEFAULT_BRANCH};
use seedbank_protocol::hf_api::{HfImportReport, HfImportRequest, HfImported, HfSkipped};
use seedbank_protocol::names_api::PublishRequest;
use seedbank_protocol::{BlobHash, HfRepo};

use super::cache::{cached_repos, RepoCache, SnapshotFile};
use super::hub_hashes::{HubHashBook, HubHashes};
use super::HfBridge;
use crate::error::{NodeError, NodeResult};
use crate::library::import::{AddOptions, CheckedEtag, HfSnapshotMeta};
use crate::progress::ProgressReporter;

/// Files at least this large that the cache does not name by ETag are taken as LFS
/// files (sha256 ETag), as the hub's default `.gitattributes` would store them.
const LFS_THRESHOLD_BYTES: u64 = 10 * 1024 * 1024;

/// Bytes read at a time while checking ETags.
const HASH_BUFFER_BYTES: usize = 1024 * 1024;

impl HfBridge {
    /// Imports and publishes the repos of a local Hugging Face cache.
    pub async fn import(
        &self,
        request: HfImportRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<HfImportReport> {
        let hub = PathBuf::from(&request.cache_dir);
        if !hub.is_absolute() {
            return Err(NodeError::BadRequest(format!(
                "the cache directory {:?} must be an absolute path",
                request.cache_dir
            )));
        }
        if !hub.is_dir() {
            return Err(NodeError::BadRequest(format!(
                "{} is not a Hugging Face cache directory (no such folder)",
                hub.display()
            )));
        }
        let repos = if request.repos.is_empty() {
            cached_repos(&hub)?
        } else {
            request.repos.clone()
        };
        let mut report = HfImportReport::default();
        for repo in repos {
            let cache = RepoCache::new(&hub, &repo);
            if !cache.dir().is_dir() {
                report
                    .skipped
                    .push(skipped(&repo, None, "not in the cache".into()));
                continue;
            }
            let refs = cache.refs();
            let snapshots = match cache.snapshots() {
                Ok(snapshots) if !snapshots.is_empty() => snapshots,
                Ok(_) => {
                    report.skipped.push(skipped(
                        &repo,
                        None,
                        "the cache holds no snapshot of it".into(),
                    ));
                    continue;
                }
                Err(e) => {
                    report.skipped.push(skipped(&repo, None, e.to_string()));
                    continue;
                }
            };
            for commit in publication_order(snapshots, &refs) {
                match self
                    .import_snapshot(&repo, &cache, &commit, &refs, request.key.clone(), progress)
                    .await
                {
                    Ok(imported) => report.imported.push(imported),
                    Err(e) => {
                        tracing::warn!(repo = %repo, %commit, error = %e, "snapshot not imported");
                        report
                            .skipped
                            .push(skipped(&repo, Some(commit), e.to_string()));
                    }
                }
            }
        }
        Ok(report)
    }

    /// Imports and publishes the one snapshot of `repo` at `commit` in the cache `hub`.
    pub async fn import_commit(
        &self,
        hub: &Path,
        repo: &HfRepo,
        commit: &str,
        key: Option<String>,
        progress: &mut ProgressReporter,
    ) -> NodeResult<HfImported> {
        let cache = RepoCache::new(hub, repo);
        let refs = cache.refs();
        self.import_snapshot(repo, &cache, commit, &refs, key, progress)
            .await
    }

    /// Adds one snapshot in place with its hub metadata and publishes it under the
    /// repo's Seedbank name, with the commit id as its revision.
    async fn import_snapshot(
        &self,
        repo: &HfRepo,
        cache: &RepoCache,
        commit: &str,
        refs: &[(String, String)],
        key: Option<String>,
        progress: &mut ProgressReporter,
    ) -> NodeResult<HfImported> {
        let files = cache.snapshot_files(commit)?;
        if files.is_empty() {
            return Err(NodeError::BadRequest("the snapshot holds no files".into()));
        }
        let book = self.hub_hashes.clone();
        let etags = tokio::task::spawn_blocking(move || check_etags(&files, &book))
            .await
            .map_err(|e| NodeError::Internal(format!("ETag check task failed: {e}")))??;
        let name = repo.seedbank_name();
        let record = self
            .seeding
            .add(
                AddOptions {
                    path: cache.snapshot_dir(commit),
                    kind: repo.repo_type.kind(),
                    name: Some(name.clone()),
                    revision: Some(commit.to_owned()),
                    licence: None,
                    pin: false,
                    reference: true,
                    follow_symlinks: true,
                    hf: Some(HfSnapshotMeta {
                        commit: commit.to_owned(),
                        files: etags,
                    }),
                },
                progress,
            )
            .await?;
        let publish = PublishRequest {
            target: record.id.to_string(),
            name,
            revision: Some(commit.to_owned()),
            kind: Some(repo.repo_type.kind()),
            licence: None,
            card: None,
            tags: Vec::new(),
            key,
            reference: true,
        };
        let published = self
            .seeding
            .publish(&self.names, &publish, progress)
            .await?;
        tracing::info!(repo = %repo, %commit, root = %record.id, "imported from the Hugging Face cache");
        Ok(HfImported {
            repo: repo.clone(),
            commit: commit.to_owned(),
            refs: refs
                .iter()
                .filter(|(_, c)| c == commit)
                .map(|(name, _)| name.clone())
                .collect(),
            files: record.files,
            bytes: record.size,
            release: published.release,
        })
    }
}

/// Snapshots oldest first, with the one `main` points at last, so it is published as
/// the latest revision.
fn publication_order(mut snapshots: Vec<String>, refs: &[(String, String)]) -> Vec<String> {
    if let Some((_, main)) = refs.iter().find(|(name, _)| name == DEFAULT_BRANCH) {
        if let Some(at) = snapshots.iter().position(|c| c == main) {
            let main = snapshots.remove(at);
            snapshots.push(main);
        }
    }
    snapshots
}

/// Checks each file's bytes against the ETag its blob is named by, and derives an ETag
/// for a file that is not a link into `blobs/`; returns the ETags by path, each with the
/// BLAKE3 hash of the bytes it was checked against (the same read), which the import
/// must then find.
/// The hub hashes read are recorded in `book` (keyed by the BLAKE3 hash, so they hold
/// whatever becomes of the file).
fn check_etags(
    files: &[SnapshotFile],
    book: &HubHashBook,
) -> NodeResult<HashMap<String, CheckedEtag>> {
    let mut etags = HashMap::with_capacity(files.len());
    for file in files {
        let (hashes, hash) = hub_hashes(&file.absolute, file.size)?;
        let HubHashes { git_sha1, sha256 } = &hashes;
        let derived = || {
            if file.size >= LFS_THRESHOLD_BYTES {
                sha256.clone()
            } else {
                git_sha1.clone()
            }
        };
        let etag = match &file.etag {
            Some(etag) if hashes.names(etag) => etag.clone(),
            // A cache a Seedbank gateway or `fetch --hf-cache` wrote names a file that did
            // not come from the hub by its BLAKE3 hash: the bytes are checked against that,
            // and the release gets the hub ETag they would have there.
            Some(etag) if *etag == hash.to_hex() => derived(),
            Some(etag) => {
                return Err(NodeError::Corrupt(format!(
                    "{} does not match its hub ETag {etag} (git sha1 {git_sha1}, sha256 {sha256}); \
                     the cache is damaged, download it again",
                    file.path
                )))
            }
            None => derived(),
        };
        debug_assert!(is_lfs_etag(&etag) || etag.len() == 40);
        book.record(hash, &hashes)?;
        etags.insert(file.path.clone(), CheckedEtag { etag, hash });
    }
    Ok(etags)
}

/// The git blob sha1, sha256 and BLAKE3 hash of a file, in one streamed read.
fn hub_hashes(path: &Path, size: u64) -> NodeResult<(HubHashes, BlobHash)> {
    let mut file = std::fs::File::open(path).map_err(|e| NodeError::io("opening", path, e))?;
    let mut hasher = HubHasher::new(size);
    let mut blake3 = blake3::Hasher::new();
    let mut buffer = vec![0u8; HASH_BUFFER_BYTES];
    let mut read_total = 0u64;
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| NodeError::io("reading", path, e))?;
        if read == 0 {
            break;
        }
        read_total += read as u64;
        hasher.update(&buffer[..read]);
        blake3.update(&buffer[..read]);
    }
    if read_total != size {
        return Err(NodeError::BadRequest(format!(
            "{} changed size while being checked; import it again once it is finished",
            path.display()
        )));
    }
    let (git_sha1, sha256) = hasher.finish();
    Ok((
        HubHashes { git_sha1, sha256 },
        BlobHash(*blake3.finalize().as_bytes()),
    ))
}

fn skipped(repo: &HfRepo, commit: Option<String>, reason: String) -> HfSkipped {
    HfSkipped {
        repo: repo.to_string(),
        commit,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn main_is_published_last() {
        let (a, b, c) = ("a".repeat(40), "b".repeat(40), "c".repeat(40));
        let refs = vec![("main".to_owned(), a.clone()), ("v2".to_owned(), c.clone())];
        assert_eq!(
            publication_order(vec![a.clone(), b.clone(), c.clone()], &refs),
            vec![b, c, a]
        );
    }

    #[test]
    fn a_damaged_blob_is_refused_and_unnamed_files_get_their_git_etag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").unwrap();
        let file = |etag: Option<&str>| SnapshotFile {
            path: "f".into(),
            absolute: path.clone(),
            size: 6,
            etag: etag.map(str::to_owned),
        };
        let meta = crate::library::meta::Meta::open(&dir.path().join("meta")).unwrap();
        let book = HubHashBook::open(&meta).unwrap();
        let etags = check_etags(&[file(None)], &book).unwrap();
        assert_eq!(etags["f"].etag, "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(etags["f"].hash.0, *blake3::hash(b"hello\n").as_bytes());
        assert!(book
            .get(etags["f"].hash)
            .unwrap()
            .is_some_and(|hashes| hashes.names(&etags["f"].etag)));
        let err = check_etags(&[file(Some(&"0".repeat(64)))], &book).unwrap_err();
        assert!(
            err.to_string().contains("does not match its hub ETag"),
            "{err}"
        );
    }

    #[test]
    fn a_blob_named_by_its_blake3_hash_is_taken_with_its_git_etag() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").unwrap();
        let meta = crate::library::meta::Meta::open(&dir.path().join("meta")).unwrap();
        let book = HubHashBook::open(&meta).unwrap();
        let named = blake3::hash(b"hello\n").to_hex().to_string();
        let file = SnapshotFile {
            path: "f".into(),
            absolute: path.clone(),
            size: 6,
            etag: Some(named),
        };
        let etags = check_etags(std::slice::from_ref(&file), &book).unwrap();
        assert_eq!(etags["f"].etag, "ce013625030ba8dba906f756967f9e9ca394464a");
        // Bytes that are not what their BLAKE3 name says are still refused.
        std::fs::write(&path, b"hellO\n").unwrap();
        assert!(check_etags(&[file], &book).is_err());
    }
}
