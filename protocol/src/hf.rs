//! Hugging Face interop, pure: repo ids and how they map to Seedbank names, the hub's
//! ETags and commit ids, and the hub metadata an imported revision keeps in its manifest.
//!
//! A Hugging Face repo `org/name` is published as the Seedbank name `org--name` (a
//! dataset as `datasets--org--name`): the hub never allows `--` inside a repo id, so the
//! mapping is one to one and reads like the client's own cache folders.

use serde::{Deserialize, Serialize};
use sha2::Digest;

use crate::labels::ArtifactKind;
use crate::limits::MAX_NAME_BYTES;
use crate::{ContentId, Manifest};

/// The branch the client loads when it is given none.
pub const DEFAULT_BRANCH: &str = "main";

/// Longest part of a repo id (the hub's own limit).
pub const MAX_REPO_PART_BYTES: usize = 96;

/// Whether a repo holds a model or a dataset (the hub's repo type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HfRepoType {
    /// `/api/models/…`, `/{repo}/resolve/…`.
    Model,
    /// `/api/datasets/…`, `/datasets/{repo}/resolve/…`.
    Dataset,
}

impl HfRepoType {
    /// The plural the hub uses in URLs and cache folders: `models` or `datasets`.
    pub fn plural(self) -> &'static str {
        match self {
            HfRepoType::Model => "models",
            HfRepoType::Dataset => "datasets",
        }
    }

    /// The type named by a URL or cache-folder plural.
    pub fn from_plural(plural: &str) -> Option<Self> {
        match plural {
            "models" => Some(HfRepoType::Model),
            "datasets" => Some(HfRepoType::Dataset),
            _ => None,
        }
    }

    /// The artifact kind a repo of this type is published as.
    pub fn kind(self) -> ArtifactKind {
        match self {
            HfRepoType::Model => ArtifactKind::Model,
            HfRepoType::Dataset => ArtifactKind::Dataset,
        }
    }
}

/// Why a repo id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid Hugging Face repo id {id:?}: {reason}")]
pub struct RepoIdError {
    /// The id as given.
    pub id: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A Hugging Face repo: its type and its id (`org/name`, or a legacy `name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HfRepo {
    /// Model or dataset.
    pub repo_type: HfRepoType,
    /// `org/name` or `name`.
    pub id: String,
}

impl HfRepo {
    /// Checks `id` against the hub's rules for repo ids.
    pub fn new(repo_type: HfRepoType, id: &str) -> Result<Self, RepoIdError> {
        let bad = |reason: &str| {
            Err(RepoIdError {
                id: id.to_owned(),
                reason: reason.to_owned(),
            })
        };
        let parts: Vec<&str> = id.split('/').collect();
        if parts.len() > 2 {
            return bad("has more than one '/'");
        }
        for part in parts {
            if part.is_empty() || part.len() > MAX_REPO_PART_BYTES {
                return bad("each part must be 1 to 96 characters");
            }
            if !part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            {
                return bad("only letters, digits, '-', '_' and '.' are allowed");
            }
            if part.contains("--") || part.contains("..") {
                return bad("'--' and '..' are not allowed");
            }
            if part.starts_with(['-', '.']) || part.ends_with(['-', '.']) {
                return bad("a part must not start or end with '-' or '.'");
            }
        }
        Ok(Self {
            repo_type,
            id: id.to_owned(),
        })
    }

    /// Parses the command-line form: `org/name` for a model, `datasets/org/name` for a
    /// dataset (`models/org/name` is accepted too).
    pub fn parse_cli(text: &str) -> Result<Self, RepoIdError> {
        match text.split_once('/') {
            Some((prefix, rest))
                if rest.contains('/') || HfRepoType::from_plural(prefix).is_some() =>
            {
                match HfRepoType::from_plural(prefix) {
                    Some(repo_type) => Self::new(repo_type, rest),
                    None => Self::new(HfRepoType::Model, text),
                }
            }
            _ => Self::new(HfRepoType::Model, text),
        }
    }

    /// The Seedbank name this repo is published under: `org--name`, or
    /// `datasets--org--name` for a dataset.
    pub fn seedbank_name(&self) -> String {
        let flat = self.id.replace('/', "--");
        match self.repo_type {
            HfRepoType::Model => flat,
            HfRepoType::Dataset => format!("datasets--{flat}"),
        }
    }

    /// The repo a Seedbank name published by [`Self::seedbank_name`] stands for.
    pub fn from_seedbank_name(name: &str) -> Option<Self> {
        if name.len() > MAX_NAME_BYTES {
            return None;
        }
        let (repo_type, flat) = match name.strip_prefix("datasets--") {
            Some(rest) => (HfRepoType::Dataset, rest),
            None => (HfRepoType::Model, name),
        };
        let id = match flat.split_once("--") {
            Some((org, rest)) => format!("{org}/{rest}"),
            None => flat.to_owned(),
        };
        Self::new(repo_type, &id).ok()
    }

    /// The repo's folder in the client's cache: `models--org--name`.
    pub fn cache_folder(&self) -> String {
        format!(
            "{}--{}",
            self.repo_type.plural(),
            self.id.replace('/', "--")
        )
    }

    /// The repo a cache folder name stands for.
    pub fn from_cache_folder(folder: &str) -> Option<Self> {
        let (plural, flat) = folder.split_once("--")?;
        let repo_type = HfRepoType::from_plural(plural)?;
        let id = match flat.split_once("--") {
            Some((org, rest)) => format!("{org}/{rest}"),
            None => flat.to_owned(),
        };
        Self::new(repo_type, &id).ok()
    }
}

impl std::fmt::Display for HfRepo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.repo_type {
            HfRepoType::Model => f.write_str(&self.id),
            HfRepoType::Dataset => write!(f, "datasets/{}", self.id),
        }
    }
}

/// The hub metadata of one imported revision: its commit id and each file's ETag, in the
/// manifest's file order. Serving these lets a client's existing cache be reused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HfRevision {
    /// The hub's commit id: 40 lowercase hex digits.
    pub commit: String,
    /// Each file's hub ETag (git blob sha1 or LFS sha256, lowercase hex), one per file.
    pub etags: Vec<String>,
}

/// Why hub metadata was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HfRevisionError {
    /// The commit id is not 40 lowercase hex digits.
    #[error("hub commit id {0:?} is not 40 lowercase hex digits")]
    BadCommit(String),
    /// An ETag is not 40 or 64 lowercase hex digits.
    #[error("hub ETag {0:?} is not 40 or 64 lowercase hex digits")]
    BadEtag(String),
    /// There is not one ETag per file.
    #[error("{etags} hub ETags for {files} files")]
    CountMismatch {
        /// ETags listed.
        etags: usize,
        /// Files in the manifest.
        files: usize,
    },
}

impl HfRevision {
    /// Checks the commit id, every ETag, and that there is one ETag per file.
    pub fn validate(&self, files: usize) -> Result<(), HfRevisionError> {
        if !is_commit_id(&self.commit) {
            return Err(HfRevisionError::BadCommit(self.commit.clone()));
        }
        if self.etags.len() != files {
            return Err(HfRevisionError::CountMismatch {
                etags: self.etags.len(),
                files,
            });
        }
        match self.etags.iter().find(|etag| !is_etag(etag)) {
            Some(etag) => Err(HfRevisionError::BadEtag(etag.clone())),
            None => Ok(()),
        }
    }
}

/// Whether `text` is a commit id as the hub writes them: 40 lowercase hex digits.
pub fn is_commit_id(text: &str) -> bool {
    text.len() == 40 && is_lower_hex(text)
}

/// Whether `text` is an ETag as the hub writes them: a git blob sha1 (40 lowercase hex)
/// or an LFS sha256 (64 lowercase hex).
pub fn is_etag(text: &str) -> bool {
    (text.len() == 40 || text.len() == 64) && is_lower_hex(text)
}

/// Whether an ETag is an LFS file's sha256 (rather than a git blob sha1).
pub fn is_lfs_etag(etag: &str) -> bool {
    etag.len() == 64
}

fn is_lower_hex(text: &str) -> bool {
    text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The commit id served for `root`: the hub's commit for an imported revision, else the
/// first 40 hex digits of the root hash (stable, and distinct per artifact).
pub fn commit_for(root: &ContentId, manifest: &Manifest) -> String {
    match &manifest.hf {
        Some(hf) => hf.commit.clone(),
        None => root.hash().to_hex()[..40].to_owned(),
    }
}

/// The ETag served for the manifest's file at `index`: the hub's for an imported
/// revision, else the file's BLAKE3 hash in hex (stable, and names its content).
pub fn etag_for(manifest: &Manifest, index: usize) -> Option<String> {
    let file = manifest.files.get(index)?;
    Some(match &manifest.hf {
        Some(hf) => hf.etags.get(index)?.clone(),
        None => file.hash.to_hex(),
    })
}

/// Computes both hub hashes of a file as its bytes stream past: the git blob sha1
/// (the ETag of a small file) and the sha256 (the ETag of an LFS file).
#[derive(Clone)]
pub struct HubHasher {
    git: sha1_smol::Sha1,
    sha256: sha2::Sha256,
}

impl HubHasher {
    /// A hasher for a file of `size` bytes (git's blob header includes the size).
    pub fn new(size: u64) -> Self {
        let mut git = sha1_smol::Sha1::new();
        git.update(format!("blob {size}\0").as_bytes());
        Self {
            git,
            sha256: sha2::Sha256::new(),
        }
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.git.update(bytes);
        self.sha256.update(bytes);
    }

    /// The git blob sha1 and the sha256, lowercase hex.
    pub fn finish(self) -> (String, String) {
        let sha256: [u8; 32] = self.sha256.finalize().into();
        (self.git.digest().to_string(), hex_lower(&sha256))
    }
}

impl std::fmt::Debug for HubHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HubHasher")
    }
}

/// Whether `etag` names the content whose hub hashes are `git_sha1` and `sha256`.
pub fn etag_matches(etag: &str, git_sha1: &str, sha256: &str) -> bool {
    etag == git_sha1 || etag == sha256
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_ids_map_to_names_and_back() {
        let model = HfRepo::new(HfRepoType::Model, "meta-llama/Llama-3.1-8B").unwrap();
        assert_eq!(model.seedbank_name(), "meta-llama--Llama-3.1-8B");
        assert_eq!(
            HfRepo::from_seedbank_name("meta-llama--Llama-3.1-8B"),
            Some(model.clone())
        );
        assert_eq!(model.cache_folder(), "models--meta-llama--Llama-3.1-8B");
        assert_eq!(
            HfRepo::from_cache_folder(&model.cache_folder()),
            Some(model)
        );
        let data = HfRepo::parse_cli("datasets/org/squad_v2").unwrap();
        assert_eq!(data.repo_type, HfRepoType::Dataset);
        assert_eq!(data.seedbank_name(), "datasets--org--squad_v2");
        assert_eq!(
            HfRepo::from_seedbank_name("datasets--org--squad_v2"),
            Some(data.clone())
        );
        assert_eq!(data.to_string(), "datasets/org/squad_v2");
        let legacy = HfRepo::parse_cli("gpt2").unwrap();
        assert_eq!(legacy.seedbank_name(), "gpt2");
        assert_eq!(
            HfRepo::parse_cli("org/name").unwrap().repo_type,
            HfRepoType::Model
        );
    }

    #[test]
    fn bad_repo_ids_are_refused_with_the_reason() {
        for id in [
            "a/b/c", "a--b/c", "", "org/", "-x/y", "a/b.", "a b/c", "a/..",
        ] {
            assert!(HfRepo::new(HfRepoType::Model, id).is_err(), "{id:?}");
        }
        let long = "x".repeat(97);
        assert!(HfRepo::new(HfRepoType::Model, &long).is_err());
    }

    #[test]
    fn hub_hashes_match_git_and_sha256() {
        // `git hash-object` of "hello\n" and the sha256 of the same bytes.
        let mut hasher = HubHasher::new(6);
        hasher.update(b"hel");
        hasher.update(b"lo\n");
        let (git, sha256) = hasher.finish();
        assert_eq!(git, "ce013625030ba8dba906f756967f9e9ca394464a");
        assert_eq!(
            sha256,
            "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
        );
        assert!(etag_matches(&git, &git, &sha256));
        assert!(!etag_matches("00", &git, &sha256));
    }

    #[test]
    fn revision_metadata_is_checked() {
        let good = HfRevision {
            commit: "a".repeat(40),
            etags: vec!["b".repeat(40), "c".repeat(64)],
        };
        assert!(good.validate(2).is_ok());
        assert!(matches!(
            good.validate(3),
            Err(HfRevisionError::CountMismatch { .. })
        ));
        let mut bad = good.clone();
        bad.commit = "A".repeat(40);
        assert!(matches!(
            bad.validate(2),
            Err(HfRevisionError::BadCommit(_))
        ));
        let mut bad = good;
        bad.etags[1] = "../../etc".into();
        assert!(matches!(bad.validate(2), Err(HfRevisionError::BadEtag(_))));
    }
}
