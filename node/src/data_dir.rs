//! The layout of a node's data directory and how it is chosen.
//!
//! `--data-dir`, else `SEEDBANK_DATA_DIR`, else the platform data dir
//! (`~/.local/share/seedbank` on Linux). Everything the node keeps lives below it.

use std::path::{Path, PathBuf};

use crate::error::{NodeError, NodeResult};

/// Environment variable naming the data directory.
pub const DATA_DIR_ENV: &str = "SEEDBANK_DATA_DIR";

/// A node's data directory and the files in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    /// A data directory at `root` (not created yet).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// Chooses the data directory: the flag, else the environment, else the platform default.
    pub fn resolve(flag: Option<&Path>) -> NodeResult<Self> {
        if let Some(path) = flag {
            return Ok(Self::new(path));
        }
        if let Some(path) = std::env::var_os(DATA_DIR_ENV).filter(|p| !p.is_empty()) {
            return Ok(Self::new(path));
        }
        dirs::data_dir()
            .map(|base| Self::new(base.join("seedbank")))
            .ok_or_else(|| {
                NodeError::BadRequest(format!(
                    "cannot find a home data directory; pass --data-dir or set {DATA_DIR_ENV}"
                ))
            })
    }

    /// Creates the directory (mode 0700) and its subdirectories if missing.
    pub fn create(&self) -> NodeResult<()> {
        for dir in [&self.root, &self.blobs(), &self.meta()] {
            std::fs::create_dir_all(dir)
                .map_err(|e| NodeError::io("creating data directory", dir, e))?;
        }
        set_private_dir(&self.root)
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The iroh-blobs store.
    pub fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    /// The sled metadata database.
    pub fn meta(&self) -> PathBuf {
        self.root.join("meta")
    }

    /// The node's secret key (0600).
    pub fn key(&self) -> PathBuf {
        self.root.join("node.key")
    }

    /// The control API's bearer token (0600).
    pub fn api_token(&self) -> PathBuf {
        self.root.join("api.token")
    }

    /// The address the control API is listening on, written at start-up.
    pub fn api_addr(&self) -> PathBuf {
        self.root.join("api.addr")
    }

    /// The Hugging Face gateway's endpoint (`http://ADDR:PORT`), written while it serves.
    pub fn hf_endpoint(&self) -> PathBuf {
        self.root.join("hf-endpoint")
    }

    /// The lock that keeps a second daemon off this directory; holds the daemon's pid.
    pub fn lock(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }

    /// The optional configuration file.
    pub fn config(&self) -> PathBuf {
        self.root.join("config.toml")
    }
}

#[cfg(unix)]
fn set_private_dir(path: &Path) -> NodeResult<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| NodeError::io("securing data directory", path, e))
}

#[cfg(not(unix))]
fn set_private_dir(_path: &Path) -> NodeResult<()> {
    Ok(())
}

/// Writes `bytes` to `path` readable by the owner only (0600), atomically: a reader
/// never sees a half-written secret.
pub fn write_private_file(path: &Path, bytes: &[u8]) -> NodeResult<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .map_err(|e| NodeError::io("creating temporary file", dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| NodeError::io("setting permissions", path, e))?;
    }
    file.write_all(bytes)
        .and_then(|_| file.as_file().sync_all())
        .map_err(|e| NodeError::io("writing", path, e))?;
    file.persist(path)
        .map_err(|e| NodeError::io("writing", path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_environment() {
        let flag = PathBuf::from("/tmp/from-flag");
        assert_eq!(DataDir::resolve(Some(&flag)).unwrap().root(), flag);
    }

    #[test]
    fn private_files_are_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        write_private_file(&path, b"hello").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
