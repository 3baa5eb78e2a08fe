//! Taking artifacts off this node: `gc` (every unpinned artifact no fetch is filling)
//! and `rm` (one artifact), each freeing only blobs nothing kept still uses.

use std::collections::{HashMap, HashSet};

use seedbank_protocol::api::{GcReport, RemoveReport, RemovedArtifact};
use seedbank_protocol::{BlobHash, ContentId};

use super::Library;
use crate::error::{NodeError, NodeResult};
use crate::library::meta::ArtifactRecord;
use crate::library::root::read_root;

impl Library {
    /// Removes every unpinned artifact that no fetch is filling, and frees the blobs no
    /// kept artifact or fetch holds. On a `dry_run`, removes nothing and reports what
    /// would go.
    pub async fn collect_garbage(&self, dry_run: bool) -> NodeResult<GcReport> {
        let before = self.store.stored_bytes().await?;
        let fetching: HashSet<ContentId> =
            self.meta.fetch_jobs()?.iter().map(|job| job.root).collect();
        let mut removed = Vec::new();
        let mut kept = Vec::new();
        for record in self.meta.artifacts()? {
            if self.meta.pin_record(record.root)?.is_some() || fetching.contains(&record.root) {
                kept.push(record.root);
            } else {
                removed.push(removed_artifact(&record));
            }
        }
        if dry_run {
            kept.extend(fetching.iter().copied());
            let mut held = HashSet::new();
            for root in kept {
                held.extend(self.blobs_of(root).await);
            }
            let freed: Vec<u64> = before
                .iter()
                .filter(|(hash, _)| !held.contains(*hash))
                .map(|(_, size)| *size)
                .collect();
            return Ok(GcReport {
                dry_run,
                artifacts_removed: removed,
                blobs_removed: freed.len() as u64,
                bytes_freed: freed.iter().sum(),
            });
        }
        for artifact in &removed {
            self.store.release_artifact(artifact.id).await?;
            self.meta.remove_artifact(artifact.id)?;
            self.last_used.forget(artifact.id)?;
        }
        self.meta.flush().await?;
        self.store.collect_garbage().await?;
        let (blobs_removed, bytes_freed) = self.forget_freed(&before).await?;
        tracing::info!(
            artifacts = removed.len(),
            blobs_removed,
            bytes_freed,
            "garbage collected"
        );
        Ok(GcReport {
            dry_run,
            artifacts_removed: removed,
            blobs_removed,
            bytes_freed,
        })
    }

    /// Removes one artifact (a pinned one only with `force`) and frees its blobs that no
    /// other artifact or fetch holds. Nothing else is collected: what cancelled fetches
    /// left waits for `gc`.
    pub async fn remove(&self, reference: &str, force: bool) -> NodeResult<RemoveReport> {
        let record = self.resolve(reference)?;
        let was_pinned = self.meta.pin_record(record.root)?.is_some();
        if was_pinned && !force {
            return Err(NodeError::BadRequest(format!(
                "{}@{} ({}) is pinned; pass --force to remove it anyway, or unpin it first",
                record.name, record.revision, record.root
            )));
        }
        let (blobs_removed, bytes_freed) =
            self.remove_records(std::slice::from_ref(&record)).await?;
        tracing::info!(root = %record.root, blobs_removed, bytes_freed, "removed artifact");
        Ok(RemoveReport {
            artifact: removed_artifact(&record),
            was_pinned,
            blobs_removed,
            bytes_freed,
        })
    }

    /// Removes the artifacts of `records` (pinned or not) and frees their blobs that no
    /// other artifact or fetch holds, in one collection; returns how many blobs went and
    /// their bytes. Used by `rm` and by quota eviction.
    pub(super) async fn remove_records(
        &self,
        records: &[ArtifactRecord],
    ) -> NodeResult<(u64, u64)> {
        let mut own = HashSet::new();
        for record in records {
            own.extend(self.blobs_of(record.root).await);
        }
        let others: Vec<BlobHash> = self
            .store
            .hashes()
            .await?
            .into_iter()
            .filter(|hash| !own.contains(hash))
            .collect();
        let before = self.store.stored_bytes().await?;
        let protection = self.store.protect_blobs(&others).await?;
        for record in records {
            self.meta.remove_artifact(record.root)?;
            self.meta.remove_announce(record.root)?;
            self.last_used.forget(record.root)?;
            self.store.release_artifact(record.root).await?;
            self.store.set_pinned(record.root, false).await?;
        }
        self.meta.flush().await?;
        self.store.collect_garbage().await?;
        drop(protection);
        self.forget_freed(&before).await
    }

    /// After a collection: forgets the references of the blobs of `before` that are gone,
    /// and returns how many went and their bytes.
    async fn forget_freed(&self, before: &HashMap<BlobHash, u64>) -> NodeResult<(u64, u64)> {
        let after = self.store.stored_bytes().await?;
        let mut blobs_removed = 0;
        let mut bytes_freed = 0;
        for (hash, size) in before {
            if !after.contains_key(hash) {
                blobs_removed += 1;
                // A blob served from a file outside the store leaves that file in place.
                if self.meta.references(*hash)?.is_empty() {
                    bytes_freed += size;
                }
                self.meta.remove_references(*hash)?;
            }
        }
        self.meta.flush().await?;
        Ok((blobs_removed, bytes_freed))
    }

    /// The blobs of the artifact `root`: its root, manifest and files, as far as its
    /// root is stored.
    pub(super) async fn blobs_of(&self, root: ContentId) -> HashSet<BlobHash> {
        let mut blobs = HashSet::from([root.hash()]);
        if let Ok(stored) = read_root(&self.store, root).await {
            blobs.insert(stored.root.manifest);
            blobs.extend(stored.root.files);
        }
        blobs
    }
}

/// What `gc` and `rm` say about an artifact they remove.
fn removed_artifact(record: &ArtifactRecord) -> RemovedArtifact {
    RemovedArtifact {
        id: record.root,
        name: record.name.clone(),
        revision: record.revision.clone(),
        size: record.size,
    }
}
