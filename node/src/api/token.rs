//! The control API's bearer token: 32 random bytes as hex in `<data>/api.token` (0600),
//! created on first start and kept across restarts so scripts keep working.

use std::path::Path;

use crate::data_dir::write_private_file;
use crate::error::{NodeError, NodeResult};

/// Loads the token at `path`, creating one if there is none.
pub fn load_or_create_token(path: &Path) -> NodeResult<String> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => Ok(text.trim().to_owned()),
        Ok(_) => create(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(NodeError::io("reading API token", path, e)),
    }
}

fn create(path: &Path) -> NodeResult<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| NodeError::Internal(format!("no randomness for the API token: {e}")))?;
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private_file(path, token.as_bytes())?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_random_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create_token(&dir.path().join("a")).unwrap();
        let other = load_or_create_token(&dir.path().join("b")).unwrap();
        assert_eq!(first.len(), 64);
        assert_ne!(first, other);
        assert_eq!(load_or_create_token(&dir.path().join("a")).unwrap(), first);
    }
}
