//! One daemon per data directory: an exclusive lock on `<data dir>/daemon.lock`, which
//! holds the pid of the daemon that has it. The operating system releases the lock when
//! the process ends, however it ends, so a killed daemon never leaves a stale lock.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::data_dir::DataDir;
use crate::error::{NodeError, NodeResult};

/// Held for as long as the daemon runs.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

impl DaemonLock {
    /// Takes the data directory for this process, or says which daemon holds it.
    /// Creates nothing but the lock file (and the directory, if it is new).
    pub fn acquire(data_dir: &DataDir) -> NodeResult<Self> {
        let root = data_dir.root();
        if !root.exists() {
            std::fs::create_dir_all(root)
                .map_err(|e| NodeError::io("creating data directory", root, e))?;
        }
        let path = data_dir.lock();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| NodeError::io("opening the lock file", &path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(NodeError::InUse(in_use_message(root, &mut file)));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(NodeError::io("locking", &path, e));
            }
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|_| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .and_then(|_| file.sync_data())
            .map_err(|e| NodeError::io("writing the pid to", &path, e))?;
        Ok(Self { _file: file })
    }
}

fn in_use_message(root: &Path, file: &mut File) -> String {
    let mut pid = String::new();
    let _ = file.read_to_string(&mut pid);
    let holder = match pid.trim() {
        "" => "another seedbank daemon".to_owned(),
        pid => format!("another seedbank daemon (pid {pid})"),
    };
    format!(
        "data dir {} is in use by {holder}; stop that daemon first, or start this one with another --data-dir",
        root.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_data_dir_names_the_holder_and_a_released_one_is_taken() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = DataDir::new(dir.path().join("node"));
        let first = DaemonLock::acquire(&data_dir).unwrap();
        let error = DaemonLock::acquire(&data_dir).unwrap_err().to_string();
        assert!(error.contains("in use"), "{error}");
        assert!(
            error.contains(&format!("pid {}", std::process::id())),
            "{error}"
        );
        drop(first);
        DaemonLock::acquire(&data_dir).unwrap();
    }
}
