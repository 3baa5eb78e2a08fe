//! Which artifact a Hugging Face repo id and revision stand for: the repo's Seedbank name
//! (`org--name`) resolved through the gateway's publishers in order, then `org/name`
//! itself when `org` is one of those publishers (by alias or key); never through a
//! publisher the gateway does not resolve through. Commit-addressed answers never
//! change and are remembered; branch answers are remembered briefly.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use seedbank_protocol::hf::{commit_for, is_commit_id, DEFAULT_BRANCH};
use seedbank_protocol::labels::validate_revision;
use seedbank_protocol::{ContentId, HfRepo, Manifest};

use super::errors::HfError;
use crate::error::NodeError;
use crate::node::Node;

/// How long a branch's answer is reused before the name is resolved again.
const BRANCH_TTL: Duration = Duration::from_secs(30);
/// Most answers remembered; the maps start afresh when full.
const MAX_REMEMBERED: usize = 1024;
/// Most memory the remembered manifests take (estimated from their entries); the
/// oldest are forgotten first, and a bigger manifest is served but not remembered.
const MAX_MANIFEST_MEMORY: usize = 64 * 1024 * 1024;

/// One revision of a repo, ready to answer from.
#[derive(Debug, Clone)]
pub struct Target {
    /// The artifact.
    pub root: ContentId,
    /// Its manifest.
    pub manifest: Arc<Manifest>,
    /// The commit id served for it.
    pub commit: String,
}

/// Resolves repo ids and revisions to artifacts, with the memory described above.
#[derive(Debug, Clone)]
pub struct Resolver {
    node: Node,
    publishers: Arc<Vec<String>>,
    memory: Arc<Mutex<Memory>>,
}

#[derive(Debug, Default)]
struct Memory {
    by_commit: HashMap<(HfRepo, String), ContentId>,
    by_branch: HashMap<(HfRepo, String), (ContentId, Instant)>,
    manifests: Manifests,
}

/// Manifests remembered, bounded by the memory they take, oldest forgotten first.
#[derive(Debug, Default)]
struct Manifests {
    by_root: HashMap<ContentId, (Arc<Manifest>, usize)>,
    order: VecDeque<ContentId>,
    bytes: usize,
}

impl Manifests {
    fn get(&self, root: &ContentId) -> Option<Arc<Manifest>> {
        self.by_root.get(root).map(|(manifest, _)| manifest.clone())
    }

    fn insert(&mut self, root: ContentId, manifest: Arc<Manifest>) {
        let weight = manifest_memory(&manifest);
        if weight > MAX_MANIFEST_MEMORY || self.by_root.contains_key(&root) {
            return;
        }
        while self.bytes + weight > MAX_MANIFEST_MEMORY {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some((_, freed)) = self.by_root.remove(&oldest) {
                self.bytes -= freed;
            }
        }
        self.bytes += weight;
        self.order.push_back(root);
        self.by_root.insert(root, (manifest, weight));
    }
}

/// About how many bytes of memory `manifest` takes.
fn manifest_memory(manifest: &Manifest) -> usize {
    let files: usize = manifest
        .files
        .iter()
        .map(|file| std::mem::size_of_val(file) + file.path.len())
        .sum();
    let etags: usize = manifest.hf.as_ref().map_or(0, |hf| {
        hf.etags
            .iter()
            .map(|etag| std::mem::size_of_val(etag) + etag.len())
            .sum()
    });
    std::mem::size_of::<Manifest>() + files + etags
}

impl Resolver {
    /// A resolver going through `publishers` (aliases or keys) in order; through this
    /// node's own key and then every trusted publisher when empty.
    pub fn new(node: Node, publishers: Vec<String>) -> Self {
        Self {
            node,
            publishers: Arc::new(publishers),
            memory: Arc::default(),
        }
    }

    /// The publishers repo ids are resolved through, in order.
    pub fn publishers(&self) -> Vec<String> {
        if !self.publishers.is_empty() {
            return self.publishers.as_ref().clone();
        }
        let mut publishers = vec!["node".to_owned()];
        if let Ok(trusted) = self.node.names().trusted() {
            publishers.extend(trusted.into_iter().map(|entry| entry.alias));
        }
        publishers
    }

    /// The artifact `repo` at `revision` (the default branch when `None`).
    pub async fn resolve(&self, repo: &HfRepo, revision: Option<&str>) -> Result<Target, HfError> {
        let revision = revision.unwrap_or(DEFAULT_BRANCH);
        let key = (repo.clone(), revision.to_owned());
        if let Some(root) = self.remembered(&key) {
            return self.target(repo, root).await;
        }
        let mut repo_found = false;
        let mut failure: Option<NodeError> = None;
        for name in self.candidate_names(repo) {
            let latest = match self.node.names().resolve(&name).await {
                Ok(latest) => latest,
                Err(NodeError::NotFound(_)) => continue,
                Err(e) => {
                    failure.get_or_insert(e);
                    continue;
                }
            };
            repo_found = true;
            let latest_matches = revision == DEFAULT_BRANCH
                || (is_commit_id(revision)
                    && self
                        .manifest(latest.root)
                        .await
                        .is_ok_and(|manifest| commit_for(&latest.root, &manifest) == revision));
            let root = if latest_matches {
                Some(latest.root)
            } else if validate_revision(revision).is_ok() {
                match self
                    .node
                    .names()
                    .resolve(&format!("{name}@{revision}"))
                    .await
                {
                    Ok(found) => Some(found.root),
                    Err(NodeError::NotFound(_)) => None,
                    Err(e) => return Err(HfError::Upstream(e.to_string())),
                }
            } else {
                None
            };
            if let Some(root) = root {
                let target = self.target(repo, root).await?;
                self.remember(key, &target);
                return Ok(target);
            }
        }
        match (repo_found, failure) {
            (true, _) => Err(HfError::RevisionNotFound(format!(
                "{repo} has no revision {revision:?} on the network"
            ))),
            (false, Some(e)) => Err(HfError::Upstream(e.to_string())),
            (false, None) => Err(HfError::RepoNotFound(format!(
                "{repo} is not published under the name {} by any of the gateway's publishers ({})",
                repo.seedbank_name(),
                self.publishers().join(", ")
            ))),
        }
    }

    /// `PUBLISHER/NAME` texts to try, in order.
    fn candidate_names(&self, repo: &HfRepo) -> Vec<String> {
        let publishers = self.publishers();
        let mapped = repo.seedbank_name();
        let mut names: Vec<String> = publishers.iter().map(|p| format!("{p}/{mapped}")).collect();
        if let Some((org, name)) = repo.id.split_once('/') {
            if self.is_gateway_publisher(org, &publishers) {
                names.push(format!("{org}/{name}"));
            }
        }
        names
    }

    /// Whether `org` (an alias or a key) is one of `publishers`: any key text parses as
    /// a publisher, but the gateway serves only the publishers it resolves through.
    fn is_gateway_publisher(&self, org: &str, publishers: &[String]) -> bool {
        if publishers.iter().any(|p| p == org) {
            return true;
        }
        let names = self.node.names();
        let Ok(key) = names.publisher(org) else {
            return false;
        };
        publishers
            .iter()
            .any(|p| names.publisher(p).is_ok_and(|known| known == key))
    }

    async fn target(&self, repo: &HfRepo, root: ContentId) -> Result<Target, HfError> {
        let manifest = self.manifest(root).await?;
        let commit = commit_for(&root, &manifest);
        let mut memory = lock(&self.memory);
        bounded(&mut memory.by_commit);
        memory
            .by_commit
            .insert((repo.clone(), commit.clone()), root);
        Ok(Target {
            root,
            manifest,
            commit,
        })
    }

    /// The manifest of `root`, remembered; got from peers when not stored.
    pub async fn manifest(&self, root: ContentId) -> Result<Arc<Manifest>, HfError> {
        // Every answer about an artifact needs its manifest first: a denied one gets none.
        if let Some(refusal) = self.node.denied().refusal(root) {
            return Err(HfError::Denied(refusal.to_string()));
        }
        if let Some(manifest) = lock(&self.memory).manifests.get(&root) {
            return Ok(manifest);
        }
        let manifest = Arc::new(
            self.node
                .fetcher()
                .fetch_manifest(root)
                .await
                .map_err(|e| {
                    HfError::Upstream(format!("cannot get the file list of {root}: {e}"))
                })?,
        );
        lock(&self.memory).manifests.insert(root, manifest.clone());
        Ok(manifest)
    }

    fn remembered(&self, key: &(HfRepo, String)) -> Option<ContentId> {
        let memory = lock(&self.memory);
        if let Some(root) = memory.by_commit.get(key) {
            return Some(*root);
        }
        memory
            .by_branch
            .get(key)
            .filter(|(_, at)| at.elapsed() < BRANCH_TTL)
            .map(|(root, _)| *root)
    }

    fn remember(&self, key: (HfRepo, String), target: &Target) {
        if is_commit_id(&key.1) {
            return;
        }
        let mut memory = lock(&self.memory);
        bounded(&mut memory.by_branch);
        memory.by_branch.insert(key, (target.root, Instant::now()));
    }
}

fn bounded<K, V>(map: &mut HashMap<K, V>) {
    if map.len() >= MAX_REMEMBERED {
        map.clear();
    }
}

fn lock(memory: &Mutex<Memory>) -> std::sync::MutexGuard<'_, Memory> {
    memory
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::{BlobHash, FileEntry};

    use super::*;

    fn manifest_of(files: usize, seed: u8) -> Arc<Manifest> {
        Arc::new(Manifest {
            files: (0..files)
                .map(|i| FileEntry {
                    path: format!("shard-{seed}-{i:08}.bin"),
                    size: 1,
                    hash: BlobHash([seed; 32]),
                })
                .collect(),
            hf: None,
        })
    }

    #[test]
    fn remembered_manifests_stay_within_their_memory_bound_oldest_forgotten_first() {
        let mut manifests = Manifests::default();
        let big = manifest_of(100_000, 1);
        let weight = manifest_memory(&big);
        assert!(weight > 5 * 1024 * 1024, "{weight}");
        let root = |i: u8| ContentId::from_hash(BlobHash([i; 32]));
        let fits = MAX_MANIFEST_MEMORY / weight;
        for i in 0..20u8 {
            manifests.insert(root(i), manifest_of(100_000, i));
            assert!(manifests.bytes <= MAX_MANIFEST_MEMORY);
        }
        assert_eq!(manifests.by_root.len(), fits);
        assert!(manifests.get(&root(19)).is_some());
        assert!(manifests.get(&root(0)).is_none(), "the oldest went first");
    }
}
