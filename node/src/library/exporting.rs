//! Writing a library's artifacts out into a plain directory, and the check every export
//! (the Hugging Face cache's too) makes first.

use std::collections::HashSet;
use std::path::PathBuf;

use seedbank_protocol::api::{ExportReport, ExportRequest};
use seedbank_protocol::{BlobHash, FileEntry};

use super::Library;
use crate::error::{NodeError, NodeResult};
use crate::library::export::{export_files, select_files};
use crate::library::meta::{ArtifactRecord, ReferenceRecord};
use crate::progress::ProgressReporter;

impl Library {
    /// Exports an artifact (or the files matching the request's globs) into a directory.
    pub async fn export(
        &self,
        reference: &str,
        request: &ExportRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<ExportReport> {
        let record = self.resolve(reference)?;
        let manifest = self.manifest(&record).await?;
        let files = select_files(&manifest.files, &request.include)?;
        self.check_exportable(&record, &files).await?;
        let dir = PathBuf::from(&request.dir);
        let movable = if request.hand_over {
            self.movable_blobs(&record).await?
        } else {
            HashSet::new()
        };
        let exported =
            export_files(&self.store, &files, &dir, request.force, &movable, progress).await;
        // Files moved before a failure are served from where they went: record them.
        let moved = match &exported {
            Ok(exported) => exported.moved.as_slice(),
            Err(_) => &[],
        };
        self.record_moved(&record, moved).await?;
        let exported = exported?;
        self.note_used(record.root);
        Ok(ExportReport {
            files: files.len() as u64,
            bytes: exported.bytes,
            dir: request.dir.clone(),
            moved: exported.moved.len() as u64,
        })
    }

    /// The blobs of `record` whose store file may move out to the user: none when it is
    /// pinned (a pin, or a follow, keeps its own copy), else those no other artifact
    /// here holds.
    async fn movable_blobs(&self, record: &ArtifactRecord) -> NodeResult<HashSet<BlobHash>> {
        if self.meta.pin_record(record.root)?.is_some() {
            return Ok(HashSet::new());
        }
        let mut others = HashSet::new();
        for other in self.meta.artifacts()? {
            if other.root != record.root {
                others.extend(self.blobs_of(other.root).await);
            }
        }
        let mut own = self.blobs_of(record.root).await;
        own.retain(|hash| !others.contains(hash));
        Ok(own)
    }

    /// Records that the blobs `moved` are now served from the files they moved to.
    async fn record_moved(
        &self,
        record: &ArtifactRecord,
        moved: &[(BlobHash, ReferenceRecord)],
    ) -> NodeResult<()> {
        if moved.is_empty() {
            return Ok(());
        }
        for (hash, reference) in moved {
            self.meta.put_reference(*hash, reference)?;
        }
        if !record.referenced {
            let mut record = record.clone();
            record.referenced = true;
            self.meta.put_artifact(&record)?;
        }
        tracing::info!(root = %record.root, files = moved.len(), "moved files out of the store");
        self.meta.flush().await
    }

    /// Fails unless every one of `files` is complete here and, if referenced in place,
    /// unchanged.
    pub async fn check_exportable(
        &self,
        record: &ArtifactRecord,
        files: &[&FileEntry],
    ) -> NodeResult<()> {
        for file in files {
            self.check_references(file.hash)?;
            if self.store.size(file.hash).await?.is_none() {
                return Err(NodeError::BadRequest(format!(
                    "{} of {} is not complete in this node",
                    file.path, record.name
                )));
            }
        }
        Ok(())
    }
}
