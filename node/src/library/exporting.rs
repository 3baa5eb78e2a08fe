//! Writing a library's artifacts out into a plain directory, and the check every export
//! (the Hugging Face cache's too) makes first.

use std::path::PathBuf;

use seedbank_protocol::api::{ExportReport, ExportRequest};
use seedbank_protocol::FileEntry;

use super::Library;
use crate::error::{NodeError, NodeResult};
use crate::library::export::{export_files, select_files};
use crate::library::meta::ArtifactRecord;
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
        let bytes = export_files(&self.store, &files, &dir, request.force, progress).await?;
        self.note_used(record.root);
        Ok(ExportReport {
            files: files.len() as u64,
            bytes,
            dir: request.dir.clone(),
        })
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
