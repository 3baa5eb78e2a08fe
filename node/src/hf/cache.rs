//! The Hugging Face client's cache layout, read and written:
//! `hub/{models|datasets}--org--name/{blobs/ETAG, snapshots/COMMIT/PATH -> ../../blobs/ETAG, refs/REV}`.
//!
//! Reading follows the cache's own links (a blob may itself link into another cache);
//! writing makes the same relative links the client makes, so a cache written here loads
//! with `HF_HUB_OFFLINE=1`.

use std::path::{Path, PathBuf};

use seedbank_protocol::hf::{is_commit_id, is_etag};
use seedbank_protocol::{validate_artifact_path, HfRepo};

use crate::error::{NodeError, NodeResult};

/// The client's default cache: `$HF_HUB_CACHE`, else `$HF_HOME/hub`, else
/// `~/.cache/huggingface/hub` (`None` when there is no home directory).
pub fn default_hub_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("HF_HUB_CACHE").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    if let Some(home) = std::env::var_os("HF_HOME").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(home).join("hub"));
    }
    dirs::home_dir().map(|home| home.join(".cache").join("huggingface").join("hub"))
}

/// One file of a cached snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotFile {
    /// Its path in the repo, with `/` separators.
    pub path: String,
    /// The file the cache's links lead to.
    pub absolute: PathBuf,
    /// Its size.
    pub size: u64,
    /// The hub ETag, from the name of the blob the snapshot links to (`None` for a file
    /// that is not a link into `blobs/`).
    pub etag: Option<String>,
}

/// One repo's folder in a hub cache.
#[derive(Debug, Clone)]
pub struct RepoCache {
    dir: PathBuf,
}

impl RepoCache {
    /// The folder of `repo` under the hub directory `hub`.
    pub fn new(hub: &Path, repo: &HfRepo) -> Self {
        Self {
            dir: hub.join(repo.cache_folder()),
        }
    }

    /// The repo's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the blob with `etag` lives.
    pub fn blob_path(&self, etag: &str) -> PathBuf {
        self.dir.join("blobs").join(etag)
    }

    /// The folder of the snapshot of `commit`.
    pub fn snapshot_dir(&self, commit: &str) -> PathBuf {
        self.dir.join("snapshots").join(commit)
    }

    /// Links `path` in the snapshot of `commit` to the blob `etag`, relatively, as the
    /// client does (`../../blobs/ETAG`, one more `../` per sub-folder), replacing a link
    /// already there.
    pub fn link_snapshot_file(&self, commit: &str, path: &str, etag: &str) -> NodeResult<()> {
        check_commit(commit)?;
        check_etag(etag)?;
        validate_artifact_path(path)
            .map_err(|e| NodeError::BadRequest(format!("cannot cache {path:?}: {e}")))?;
        let link = self.snapshot_dir(commit).join(path);
        let depth = path.matches('/').count();
        let target = format!("{}../../blobs/{etag}", "../".repeat(depth));
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(|e| NodeError::io("creating", parent, e))?;
        }
        match std::fs::symlink_metadata(&link) {
            Ok(meta) if meta.is_dir() => {
                return Err(NodeError::BadRequest(format!(
                    "{} is a folder where the cache needs a file",
                    link.display()
                )))
            }
            Ok(_) => {
                std::fs::remove_file(&link).map_err(|e| NodeError::io("replacing", &link, e))?
            }
            Err(_) => {}
        }
        std::os::unix::fs::symlink(&target, &link).map_err(|e| NodeError::io("linking", &link, e))
    }

    /// Points the ref `revision` (a branch such as `main`) at `commit`; written without
    /// a trailing newline, as the client writes it.
    pub fn write_ref(&self, revision: &str, commit: &str) -> NodeResult<()> {
        check_commit(commit)?;
        validate_artifact_path(revision)
            .map_err(|e| NodeError::BadRequest(format!("bad ref {revision:?}: {e}")))?;
        let path = self.dir.join("refs").join(revision);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| NodeError::io("creating", parent, e))?;
        }
        std::fs::write(&path, commit).map_err(|e| NodeError::io("writing", &path, e))
    }

    /// The refs in the cache and the commits they point at (refs that are not commits
    /// are left out), sorted by name.
    pub fn refs(&self) -> Vec<(String, String)> {
        let refs_dir = self.dir.join("refs");
        let mut refs: Vec<(String, String)> = walkdir::WalkDir::new(&refs_dir)
            .min_depth(1)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_file())
            .filter_map(|entry| {
                let name = entry
                    .path()
                    .strip_prefix(&refs_dir)
                    .ok()?
                    .to_str()?
                    .to_owned();
                let commit = std::fs::read_to_string(entry.path()).ok()?;
                let commit = commit.trim().to_owned();
                is_commit_id(&commit).then_some((name, commit))
            })
            .collect();
        refs.sort();
        refs
    }

    /// The commits that have a snapshot folder, oldest first by the folder's time.
    pub fn snapshots(&self) -> NodeResult<Vec<String>> {
        let dir = self.dir.join("snapshots");
        let entries = std::fs::read_dir(&dir).map_err(|e| NodeError::io("reading", &dir, e))?;
        let mut snapshots = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| NodeError::io("reading", &dir, e))?;
            let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if !is_commit_id(&name) || !entry.path().is_dir() {
                continue;
            }
            let modified = entry
                .metadata()
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            snapshots.push((modified, name));
        }
        snapshots.sort();
        Ok(snapshots.into_iter().map(|(_, name)| name).collect())
    }

    /// The files of the snapshot of `commit`, sorted by path, each with the file its
    /// links lead to and the ETag its blob is named by. A link must lead into this
    /// repo's `blobs/` (where the blob may link on, e.g. into a Xet cache: its bytes are
    /// checked against its name); any other link, or a linked folder, is refused, so a
    /// link planted in a shared cache cannot publish a file from elsewhere.
    pub fn snapshot_files(&self, commit: &str) -> NodeResult<Vec<SnapshotFile>> {
        let root = self.snapshot_dir(commit);
        let blobs = self.dir.join("blobs");
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(&root).min_depth(1) {
            let entry = entry.map_err(|e| {
                NodeError::BadRequest(format!("cannot read the snapshot {}: {e}", root.display()))
            })?;
            if entry.file_type().is_dir() {
                continue;
            }
            let path = entry
                .path()
                .strip_prefix(&root)
                .ok()
                .and_then(Path::to_str)
                .map(str::to_owned)
                .ok_or_else(|| {
                    NodeError::BadRequest(format!("{} is not UTF-8", entry.path().display()))
                })?;
            validate_artifact_path(&path)
                .map_err(|e| NodeError::BadRequest(format!("cannot import {path:?}: {e}")))?;
            let etag = if entry.file_type().is_symlink() {
                let etag = blob_etag(entry.path(), &blobs).ok_or_else(|| {
                    NodeError::BadRequest(format!(
                        "{} links outside the repo's blobs/ folder; refusing to publish it",
                        entry.path().display()
                    ))
                })?;
                Some(etag)
            } else {
                None
            };
            let meta = std::fs::metadata(entry.path())
                .map_err(|e| NodeError::io("reading", entry.path(), e))?;
            if !meta.is_file() {
                return Err(NodeError::NotAFile(entry.path().to_owned()));
            }
            let absolute = std::fs::canonicalize(entry.path())
                .map_err(|e| NodeError::io("resolving", entry.path(), e))?;
            files.push(SnapshotFile {
                path,
                absolute,
                size: meta.len(),
                etag,
            });
        }
        files.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
        Ok(files)
    }
}

/// The repos in a hub cache folder (folders that are not repos are left out).
pub fn cached_repos(hub: &Path) -> NodeResult<Vec<HfRepo>> {
    let entries = std::fs::read_dir(hub).map_err(|e| NodeError::io("reading", hub, e))?;
    let mut repos: Vec<HfRepo> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| HfRepo::from_cache_folder(entry.file_name().to_str()?))
        .collect();
    repos.sort_by_key(HfRepo::cache_folder);
    Ok(repos)
}

/// The ETag a snapshot entry's link names: the first link target's file name, when it
/// lies in the repo's `blobs/` folder and looks like an ETag.
fn blob_etag(entry: &Path, blobs: &Path) -> Option<String> {
    let target = std::fs::read_link(entry).ok()?;
    let target = entry.parent()?.join(target);
    let name = target.file_name()?.to_str()?.to_owned();
    let parent = std::fs::canonicalize(target.parent()?).ok()?;
    (parent == std::fs::canonicalize(blobs).ok()? && is_etag(&name)).then_some(name)
}

fn check_commit(commit: &str) -> NodeResult<()> {
    if is_commit_id(commit) {
        Ok(())
    } else {
        Err(NodeError::BadRequest(format!(
            "{commit:?} is not a commit id (40 lowercase hex digits)"
        )))
    }
}

fn check_etag(etag: &str) -> NodeResult<()> {
    if is_etag(etag) {
        Ok(())
    } else {
        Err(NodeError::BadRequest(format!(
            "{etag:?} is not a hub ETag (40 or 64 lowercase hex digits)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::HfRepoType;

    use super::*;

    #[test]
    fn written_snapshots_read_back_with_their_etags_and_refs() {
        let hub = tempfile::tempdir().unwrap();
        let repo = HfRepo::new(HfRepoType::Model, "org/tiny").unwrap();
        let cache = RepoCache::new(hub.path(), &repo);
        let commit = "1".repeat(40);
        let (small, large) = ("a".repeat(40), "b".repeat(64));
        std::fs::create_dir_all(cache.blob_path("x").parent().unwrap()).unwrap();
        std::fs::write(cache.blob_path(&small), b"{}").unwrap();
        std::fs::write(cache.blob_path(&large), vec![7u8; 1000]).unwrap();
        cache
            .link_snapshot_file(&commit, "config.json", &small)
            .unwrap();
        cache
            .link_snapshot_file(&commit, "sub/dir/w.bin", &large)
            .unwrap();
        // Linking again replaces the link.
        cache
            .link_snapshot_file(&commit, "config.json", &small)
            .unwrap();
        cache.write_ref("main", &commit).unwrap();

        let link = std::fs::read_link(cache.snapshot_dir(&commit).join("sub/dir/w.bin")).unwrap();
        assert_eq!(link, PathBuf::from(format!("../../../../blobs/{large}")));
        assert_eq!(
            std::fs::read_to_string(cache.dir().join("refs/main")).unwrap(),
            commit
        );
        assert_eq!(cached_repos(hub.path()).unwrap(), vec![repo]);
        assert_eq!(cache.refs(), vec![("main".to_owned(), commit.clone())]);
        assert_eq!(cache.snapshots().unwrap(), vec![commit.clone()]);
        let files = cache.snapshot_files(&commit).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!((files[0].path.as_str(), files[0].size), ("config.json", 2));
        assert_eq!(files[0].etag.as_deref(), Some(small.as_str()));
        assert_eq!(
            (files[1].path.as_str(), files[1].size),
            ("sub/dir/w.bin", 1000)
        );
        assert_eq!(files[1].etag.as_deref(), Some(large.as_str()));
    }

    #[test]
    fn a_snapshot_link_leading_outside_the_blobs_folder_is_refused() {
        let hub = tempfile::tempdir().unwrap();
        let repo = HfRepo::new(HfRepoType::Model, "org/tiny").unwrap();
        let cache = RepoCache::new(hub.path(), &repo);
        let commit = "2".repeat(40);
        let secret = hub.path().join("id_ed25519");
        std::fs::write(&secret, b"secret").unwrap();
        let snapshot = cache.snapshot_dir(&commit);
        std::fs::create_dir_all(&snapshot).unwrap();
        std::os::unix::fs::symlink(&secret, snapshot.join("notes.txt")).unwrap();
        let error = cache.snapshot_files(&commit).unwrap_err().to_string();
        assert!(
            error.contains("links outside the repo's blobs/ folder"),
            "{error}"
        );
        std::fs::remove_file(snapshot.join("notes.txt")).unwrap();
        std::os::unix::fs::symlink(hub.path(), snapshot.join("folder")).unwrap();
        assert!(
            cache.snapshot_files(&commit).is_err(),
            "a linked folder is refused"
        );
    }

    #[test]
    fn bad_commits_etags_and_paths_are_refused() {
        let hub = tempfile::tempdir().unwrap();
        let repo = HfRepo::new(HfRepoType::Dataset, "org/set").unwrap();
        let cache = RepoCache::new(hub.path(), &repo);
        assert!(cache
            .link_snapshot_file("main", "a", &"a".repeat(40))
            .is_err());
        assert!(cache
            .link_snapshot_file(&"1".repeat(40), "a", "../x")
            .is_err());
        assert!(cache
            .link_snapshot_file(&"1".repeat(40), "../a", &"a".repeat(40))
            .is_err());
        assert!(cache.write_ref("../../x", &"1".repeat(40)).is_err());
    }
}
