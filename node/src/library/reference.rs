//! Files imported with `--reference` stay where the user keeps them. The node records
//! each one's size, modification time, device, inode and status-change time (ctime) at
//! import; before it exports, verifies or serves such a file it checks them again, and
//! treats a changed file as gone. Size and modification time alone miss a file rewritten
//! in place with both restored (`touch -d` sets the modification time back); the ctime
//! changes on every write and cannot be set back, and the inode tells a file replaced
//! under the same name.

use std::path::Path;
use std::time::UNIX_EPOCH;

use crate::error::{NodeError, NodeResult};
use crate::library::meta::{FileIdentity, ReferenceRecord};

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
        identity: Some(identity(&metadata)),
    })
}

fn identity(metadata: &std::fs::Metadata) -> FileIdentity {
    use std::os::unix::fs::MetadataExt;
    FileIdentity {
        device: metadata.dev(),
        inode: metadata.ino(),
        changed_ns: i128::from(metadata.ctime()) * 1_000_000_000
            + i128::from(metadata.ctime_nsec()),
    }
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
    // A record from before identities were kept cannot be checked for them.
    let same_identity = record.identity.is_none() || now.identity == record.identity;
    if now.size != record.size || now.modified_ns != record.modified_ns || !same_identity {
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

    /// Rewrites `path` with `bytes` (same length) and sets its modification time back.
    fn rewrite_keeping_size_and_mtime(path: &Path, bytes: &[u8]) {
        let modified = std::fs::metadata(path).unwrap().modified().unwrap();
        // The kernel stamps ctime from a clock that ticks every few milliseconds; wait
        // past a tick so the rewrite cannot share the import's stamp.
        std::thread::sleep(std::time::Duration::from_millis(50));
        std::fs::write(path, bytes).unwrap();
        std::fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(modified)
            .unwrap();
    }

    #[test]
    fn notices_a_rewrite_that_kept_size_and_modification_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        std::fs::write(&path, b"original").unwrap();
        let record = snapshot(&path).unwrap();
        rewrite_keeping_size_and_mtime(&path, b"tampered");
        let now = snapshot(&path).unwrap();
        assert_eq!(
            (now.size, now.modified_ns),
            (record.size, record.modified_ns)
        );
        assert!(matches!(
            check_unchanged(&record),
            Err(NodeError::Corrupt(_))
        ));
    }

    #[test]
    fn notices_a_file_replaced_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        std::fs::write(&path, b"original").unwrap();
        let record = snapshot(&path).unwrap();
        let other = dir.path().join("other.bin");
        std::fs::write(&other, b"replaced").unwrap();
        std::fs::rename(&other, &path).unwrap();
        let now = snapshot(&path).unwrap();
        assert_ne!(now.identity.unwrap().inode, record.identity.unwrap().inode);
        assert!(check_unchanged(&record).is_err());
    }

    #[test]
    fn records_without_an_identity_are_checked_by_size_and_time() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("weights.bin");
        std::fs::write(&path, b"original").unwrap();
        let mut record = snapshot(&path).unwrap();
        record.identity = None;
        check_unchanged(&record).unwrap();
    }
}
