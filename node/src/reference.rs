//! Files imported with `--reference` stay where the user keeps them. The node records
//! each one's size and modification time at import; before it exports, verifies or
//! serves such a file it checks them again, and treats a changed file as gone.

use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::error::{NodeError, NodeResult};
use crate::meta::ReferenceRecord;

/// What a referenced file looks like now.
pub fn snapshot(path: &Path) -> NodeResult<ReferenceRecord> {
    let metadata =
        std::fs::metadata(path).map_err(|e| NodeError::io("reading metadata of", path, e))?;
    let modified_ns = metadata
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    Ok(ReferenceRecord {
        path: path.to_string_lossy().into_owned(),
        size: metadata.len(),
        modified_ns,
    })
}

/// Checks that a referenced file is unchanged since import; the error says what changed.
pub fn check_unchanged(record: &ReferenceRecord) -> NodeResult<()> {
    let path = Path::new(&record.path);
    let now = match snapshot(path) {
        Ok(now) => now,
        Err(NodeError::PathNotFound(_)) => {
            return Err(NodeError::Corrupt(format!(
                "referenced file {} was removed; it is no longer served",
                record.path
            )))
        }
        Err(e) => return Err(e),
    };
    if now.size != record.size || now.modified_ns != record.modified_ns {
        return Err(NodeError::Corrupt(format!(
            "referenced file {} changed since it was added; it is no longer served (add it again to serve the new content)",
            record.path
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_changed_and_removed_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        std::fs::write(&path, b"original").unwrap();
        let record = snapshot(&path).unwrap();
        check_unchanged(&record).unwrap();
        std::fs::write(&path, b"changed!!").unwrap();
        assert!(matches!(
            check_unchanged(&record),
            Err(NodeError::Corrupt(_))
        ));
        std::fs::remove_file(&path).unwrap();
        let error = check_unchanged(&record).unwrap_err().to_string();
        assert!(error.contains("removed"), "{error}");
    }
}
