//! Hugging Face caches made the way the client makes them, for tests: blobs named by
//! the hub's ETags (git blob sha1, or sha256 for LFS files), relative snapshot links,
//! and `refs/main`.

use std::path::Path;

use seedbank_node::hf::cache::RepoCache;
use seedbank_protocol::hf::HubHasher;
use seedbank_protocol::HfRepo;

/// One file of a cached snapshot.
#[derive(Debug, Clone)]
pub struct CachedFile {
    /// Path in the repo.
    pub path: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Stored with LFS on the hub (its ETag is the sha256).
    pub lfs: bool,
}

impl CachedFile {
    /// A file kept in git.
    pub fn git(path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.to_owned(),
            bytes: bytes.into(),
            lfs: false,
        }
    }

    /// A file kept with LFS.
    pub fn lfs(path: &str, bytes: impl Into<Vec<u8>>) -> Self {
        Self {
            path: path.to_owned(),
            bytes: bytes.into(),
            lfs: true,
        }
    }

    /// The hub's ETag for this file.
    pub fn etag(&self) -> String {
        let mut hasher = HubHasher::new(self.bytes.len() as u64);
        hasher.update(&self.bytes);
        let (git, sha256) = hasher.finish();
        if self.lfs {
            sha256
        } else {
            git
        }
    }
}

/// Writes a snapshot of `repo` at `commit` into the hub cache `hub`, and points
/// `refs/main` at it when `main`.
pub fn write_snapshot(hub: &Path, repo: &HfRepo, commit: &str, files: &[CachedFile], main: bool) {
    let cache = RepoCache::new(hub, repo);
    for file in files {
        let etag = file.etag();
        let blob = cache.blob_path(&etag);
        std::fs::create_dir_all(blob.parent().expect("blobs folder")).expect("creating blobs/");
        std::fs::write(&blob, &file.bytes).expect("writing a blob");
        cache
            .link_snapshot_file(commit, &file.path, &etag)
            .expect("linking a snapshot file");
    }
    if main {
        cache.write_ref("main", commit).expect("writing refs/main");
    }
}

/// The tiny model the Hugging Face tests use: a config, a tokenizer, a card, a file in a
/// sub-folder and `weights_bytes` of LFS weights.
pub fn tiny_model(weights_bytes: usize, seed: u64) -> Vec<CachedFile> {
    vec![
        CachedFile::git("config.json", r#"{"model_type": "bert", "hidden_size": 8}"#),
        CachedFile::git(
            "tokenizer.json",
            r#"{"version": "1.0", "model": {"type": "WordLevel"}}"#,
        ),
        CachedFile::git(
            "README.md",
            "---\nlicense: apache-2.0\ntags: [tiny, testing]\n---\n# A tiny model\n",
        ),
        CachedFile::git("extra/notes.txt", "a file in a sub-folder\n"),
        CachedFile::lfs("model.safetensors", pseudo_random(weights_bytes, seed)),
    ]
}

/// `len` reproducible pseudo-random bytes.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}
