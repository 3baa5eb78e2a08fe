//! Sizing and emptying a folder the node owns (the blob store's temp folder), without
//! ever following a link out of it.

use std::path::Path;

use crate::error::{NodeError, NodeResult};

/// Removes everything inside `folder` (links themselves, never what they point to);
/// returns the bytes of the files removed.
pub fn empty_folder(folder: &Path) -> NodeResult<u64> {
    let mut freed = 0;
    let entries = match std::fs::read_dir(folder) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(NodeError::io("reading", folder, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| NodeError::io("reading", folder, e))?;
        let path = entry.path();
        let metadata = entry
            .metadata()
            .map_err(|e| NodeError::io("reading", &path, e))?;
        let removed = if metadata.is_dir() {
            freed += folder_bytes(&path)?;
            std::fs::remove_dir_all(&path)
        } else {
            freed += metadata.len();
            std::fs::remove_file(&path)
        };
        removed.map_err(|e| NodeError::io("removing", &path, e))?;
    }
    Ok(freed)
}

/// Bytes of the files in `folder` and below, links not followed (0 if it is missing).
pub fn folder_bytes(folder: &Path) -> NodeResult<u64> {
    let mut total = 0;
    for entry in walkdir::WalkDir::new(folder).min_depth(1) {
        match entry {
            Ok(entry) if entry.file_type().is_file() => {
                // A file finishing its import may be renamed away between listing and stat.
                total += entry.metadata().map(|m| m.len()).unwrap_or(0);
            }
            Ok(_) => {}
            Err(e)
                if e.io_error()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::NotFound) => {}
            Err(e) => {
                let path = e.path().unwrap_or(folder).to_owned();
                return Err(NodeError::io("reading", &path, e.into()));
            }
        }
    }
    Ok(total)
}
