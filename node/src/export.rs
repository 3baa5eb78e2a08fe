//! Writing an artifact's files out of the store into a directory, verified.
//!
//! Each file streams from the store into a hidden partial file beside its target while
//! being hashed; only a file whose bytes hash to the manifest's hash is renamed into
//! place. A failed or interrupted export never leaves a wrong file under a real name.

use std::path::Path;

use seedbank_protocol::FileEntry;
use tokio::io::BufWriter;

use crate::error::{NodeError, NodeResult};
use crate::progress::ProgressReporter;
use crate::store::BlobStore;

/// Bytes buffered before each write to the target file: large enough for few system
/// calls, small enough that memory stays flat for any file size.
const EXPORT_BUFFER_BYTES: usize = 1024 * 1024;

/// Selects the files whose paths match any of `globs` (all files when `globs` is empty).
pub fn select_files<'a>(
    files: &'a [FileEntry],
    globs: &[String],
) -> NodeResult<Vec<&'a FileEntry>> {
    if globs.is_empty() {
        return Ok(files.iter().collect());
    }
    let mut builder = globset::GlobSetBuilder::new();
    for glob in globs {
        let glob = globset::GlobBuilder::new(glob)
            .literal_separator(false)
            .build()
            .map_err(|e| {
                NodeError::BadRequest(format!("invalid --include pattern {glob:?}: {e}"))
            })?;
        builder.add(glob);
    }
    let set = builder
        .build()
        .map_err(|e| NodeError::BadRequest(format!("invalid --include patterns: {e}")))?;
    let selected: Vec<_> = files.iter().filter(|f| set.is_match(&f.path)).collect();
    if selected.is_empty() {
        return Err(NodeError::NothingMatches(globs.join(", ")));
    }
    Ok(selected)
}

/// Writes `files` under `dir`, refusing to overwrite existing files unless `force`.
/// Returns the bytes written.
pub async fn export_files(
    store: &BlobStore,
    files: &[&FileEntry],
    dir: &Path,
    force: bool,
    progress: &mut ProgressReporter,
) -> NodeResult<u64> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| NodeError::io("creating", dir, e))?;
    if !force {
        for file in files {
            let target = dir.join(&file.path);
            if tokio::fs::symlink_metadata(&target).await.is_ok() {
                return Err(NodeError::AlreadyExists(target));
            }
        }
    }
    progress.set_total(files.iter().map(|f| f.size).sum());
    let mut done = 0;
    let mut written = Vec::with_capacity(files.len());
    for file in files {
        let target = dir.join(&file.path);
        let existed = tokio::fs::symlink_metadata(&target).await.is_ok();
        if let Err(e) = export_one(store, file, &target, done, progress).await {
            remove_written(dir, &written).await;
            return Err(e);
        }
        if !existed {
            written.push(target);
        }
        done += file.size;
        progress.report(done, &file.path);
    }
    Ok(done)
}

/// Removes the files an export wrote before it failed, and the folders that left empty,
/// so a failed export leaves no partial output behind.
async fn remove_written(dir: &Path, written: &[std::path::PathBuf]) {
    for path in written.iter().rev() {
        let _ = tokio::fs::remove_file(path).await;
        let mut parent = path.parent();
        while let Some(folder) = parent.filter(|p| p.starts_with(dir) && *p != dir) {
            if tokio::fs::remove_dir(folder).await.is_err() {
                break;
            }
            parent = folder.parent();
        }
    }
}

async fn export_one(
    store: &BlobStore,
    file: &FileEntry,
    target: &Path,
    done_before: u64,
    progress: &mut ProgressReporter,
) -> NodeResult<()> {
    let parent = target.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|e| NodeError::io("creating", parent, e))?;
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let partial = parent.join(format!(".{file_name}.seedbank-partial"));
    let result = write_verified(store, file, &partial, done_before, progress).await;
    let result = match result {
        Ok(()) => tokio::fs::rename(&partial, target)
            .await
            .map_err(|e| NodeError::io("moving export into place at", target, e)),
        Err(e) => Err(e),
    };
    if result.is_err() {
        let _ = tokio::fs::remove_file(&partial).await;
    }
    result
}

async fn write_verified(
    store: &BlobStore,
    file: &FileEntry,
    partial: &Path,
    done_before: u64,
    progress: &mut ProgressReporter,
) -> NodeResult<()> {
    let output = tokio::fs::File::create(partial)
        .await
        .map_err(|e| NodeError::io("creating", partial, e))?;
    let mut output = BufWriter::with_capacity(EXPORT_BUFFER_BYTES, output);
    let (written, actual) = store
        .copy_and_hash(file.hash, &mut output, |bytes| {
            progress.report(done_before + bytes, &file.path)
        })
        .await
        .map_err(|e| match e {
            NodeError::Io { source, .. } => NodeError::io("writing", partial, source),
            other => other,
        })?;
    output
        .into_inner()
        .sync_all()
        .await
        .map_err(|e| NodeError::io("writing", partial, e))?;
    if written != file.size || actual != file.hash {
        return Err(NodeError::Corrupt(format!(
            "stored bytes of {} do not match its hash {}; run `seedbank verify`",
            file.path, file.hash
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::BlobHash;

    use super::*;

    fn entry(path: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            size: 0,
            hash: BlobHash([0; 32]),
        }
    }

    #[test]
    fn globs_select_files_and_bad_globs_are_named() {
        let files = vec![
            entry("config.json"),
            entry("weights/a.safetensors"),
            entry("weights/b.bin"),
        ];
        let picked = select_files(&files, &["*.safetensors".into()]).unwrap();
        assert_eq!(picked.len(), 1);
        let picked = select_files(&files, &["weights/*".into(), "*.json".into()]).unwrap();
        assert_eq!(picked.len(), 3);
        assert_eq!(select_files(&files, &[]).unwrap().len(), 3);
        assert!(matches!(
            select_files(&files, &["*.gguf".into()]),
            Err(NodeError::NothingMatches(_))
        ));
        let error = select_files(&files, &["[".into()]).unwrap_err().to_string();
        assert!(error.contains("--include"), "{error}");
    }
}
