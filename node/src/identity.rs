//! The node's persistent ed25519 identity: created on first start, kept in
//! `<data>/node.key` (0600). Its libp2p `PeerId` is the node's id everywhere.

use std::path::Path;

use libp2p::identity::Keypair;
use libp2p::PeerId;

use crate::data_dir::write_private_file;
use crate::error::{NodeError, NodeResult};

/// Loads the node key at `path`, creating one if there is none.
pub fn load_or_create_keypair(path: &Path) -> NodeResult<Keypair> {
    match std::fs::read(path) {
        Ok(bytes) => Keypair::from_protobuf_encoding(&bytes).map_err(|e| {
            NodeError::Corrupt(format!("node key {} is unreadable: {e}", path.display()))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let keypair = Keypair::generate_ed25519();
            let bytes = keypair
                .to_protobuf_encoding()
                .map_err(|e| NodeError::Internal(format!("encoding node key: {e}")))?;
            write_private_file(path, &bytes)?;
            tracing::info!(peer = %PeerId::from(keypair.public()), "created node key");
            Ok(keypair)
        }
        Err(e) => Err(NodeError::io("reading node key", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_stable_across_loads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        let first = load_or_create_keypair(&path).unwrap();
        let second = load_or_create_keypair(&path).unwrap();
        assert_eq!(first.public(), second.public());
    }

    #[test]
    fn garbage_key_is_an_error_not_a_new_identity() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("node.key");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(load_or_create_keypair(&path).is_err());
    }
}
