//! Writing a library's artifacts out: into a plain directory, or laid out as a Hugging
//! Face client cache.

use std::path::{Path, PathBuf};

use seedbank_protocol::api::{ExportReport, ExportRequest};
use seedbank_protocol::hf_api::{HfCacheReport, HfCacheRequest};
use seedbank_protocol::FileEntry;

use super::Library;
use crate::error::{NodeError, NodeResult};
use crate::export::{export_files, select_files};
use crate::hf::cache_export::{repo_for, write_cache, CachePlan};
use crate::meta::ArtifactRecord;
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

    /// Lays an artifact (or the files matching the request's globs) out in a Hugging
    /// Face client cache: blobs, snapshot links and a ref.
    pub async fn export_hf_cache(
        &self,
        reference: &str,
        request: &HfCacheRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<HfCacheReport> {
        let record = self.resolve(reference)?;
        let manifest = self.manifest(&record).await?;
        let repo = repo_for(request.repo.clone(), &record.name, record.kind)?;
        let plan = CachePlan::new(
            &record.root,
            &manifest,
            repo,
            &request.include,
            request.ref_name.clone(),
        )?;
        let files: Vec<&FileEntry> = plan.files.iter().map(|f| f.file).collect();
        self.check_exportable(&record, &files).await?;
        let report = write_cache(&self.store, Path::new(&request.hub_dir), &plan, progress).await?;
        self.note_used(record.root);
        Ok(report)
    }

    /// Fails unless every one of `files` is complete here and, if referenced in place,
    /// unchanged.
    async fn check_exportable(
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
