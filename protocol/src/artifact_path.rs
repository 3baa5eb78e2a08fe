//! Validation of the relative paths of files inside an artifact.
//!
//! A path comes from a peer's manifest and is later joined onto a directory the user
//! chose for export, so anything that could escape that directory is refused here.

use crate::limits::MAX_PATH_BYTES;

/// Why a path cannot name a file inside an artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactPathError {
    /// The path is empty.
    #[error("empty file path")]
    Empty,
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("file path of {0} bytes is longer than the limit of {MAX_PATH_BYTES}")]
    TooLong(usize),
    /// The path starts with `/`.
    #[error("file path {0:?} is absolute; artifact paths are relative")]
    Absolute(String),
    /// The path has an empty, `.` or `..` component.
    #[error("file path {0:?} has an empty, '.' or '..' component")]
    BadComponent(String),
    /// The path contains a backslash, NUL or another control character.
    #[error("file path {0:?} contains a backslash or control character")]
    BadCharacter(String),
}

/// Checks that `path` is a clean relative path with `/` separators: no absolute paths,
/// no `..`, no empty components, no backslashes or control characters, within length.
pub fn validate_artifact_path(path: &str) -> Result<(), ArtifactPathError> {
    if path.is_empty() {
        return Err(ArtifactPathError::Empty);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(ArtifactPathError::TooLong(path.len()));
    }
    if path.starts_with('/') {
        return Err(ArtifactPathError::Absolute(path.to_owned()));
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(ArtifactPathError::BadCharacter(path.to_owned()));
    }
    if path
        .split('/')
        .any(|component| component.is_empty() || component == "." || component == "..")
    {
        return Err(ArtifactPathError::BadComponent(path.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_relative_paths() {
        for path in ["a", "config.json", "shards/00001.safetensors", "a/b/c.d"] {
            assert_eq!(validate_artifact_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn refuses_escapes_and_junk() {
        for path in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            "./a",
            "a\\b",
            "a\0b",
            "a\nb",
        ] {
            assert!(validate_artifact_path(path).is_err(), "{path:?}");
        }
    }

    #[test]
    fn length_limit_is_enforced() {
        let at_limit = "a".repeat(MAX_PATH_BYTES);
        assert_eq!(validate_artifact_path(&at_limit), Ok(()));
        let over = "a".repeat(MAX_PATH_BYTES + 1);
        assert_eq!(
            validate_artifact_path(&over),
            Err(ArtifactPathError::TooLong(MAX_PATH_BYTES + 1))
        );
    }
}
