//! The node's publisher keys: the node key (alias `node`, the default publisher) and
//! keys made with `key new` or brought with `key import`, each in
//! `<data>/keys/<alias>.key` (0600, the `sbsecret1…` text).

use std::path::PathBuf;

use seedbank_protocol::labels::validate_name;
use seedbank_protocol::names_api::KeyInfo;
use seedbank_protocol::{PublisherKey, PublisherSecret};

use crate::data_dir::write_private_file;
use crate::error::{NodeError, NodeResult};

/// Alias of the node key.
pub const NODE_KEY_ALIAS: &str = "node";

/// The keys this node can sign with.
#[derive(Debug, Clone)]
pub struct KeyRing {
    dir: PathBuf,
    node: PublisherSecret,
}

impl KeyRing {
    /// Keys in `dir` (created when the first key is stored), and the node key.
    pub fn new(dir: PathBuf, node: PublisherSecret) -> Self {
        Self { dir, node }
    }

    fn path(&self, alias: &str) -> PathBuf {
        self.dir.join(format!("{alias}.key"))
    }

    /// The secret key named `alias` (`None` or `node`: the node key).
    pub fn secret(&self, alias: Option<&str>) -> NodeResult<PublisherSecret> {
        let alias = alias.unwrap_or(NODE_KEY_ALIAS);
        if alias == NODE_KEY_ALIAS {
            return Ok(self.node.clone());
        }
        check_alias(alias)?;
        let path = self.path(alias);
        match std::fs::read_to_string(&path) {
            Ok(text) => PublisherSecret::from_export_text(&text).map_err(|e| {
                NodeError::Corrupt(format!("key file {} is unreadable: {e}", path.display()))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(NodeError::NotFound(
                format!("no key {alias:?}: `seedbank key list` shows the keys this node holds"),
            )),
            Err(e) => Err(NodeError::io("reading key", &path, e)),
        }
    }

    /// Every key, the node key first.
    pub fn list(&self) -> NodeResult<Vec<KeyInfo>> {
        let mut keys = vec![KeyInfo {
            alias: NODE_KEY_ALIAS.into(),
            public_key: self.node.public(),
            default: true,
        }];
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
            Err(e) => return Err(NodeError::io("listing keys", &self.dir, e)),
        };
        let mut others = Vec::new();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(alias) = name.to_str().and_then(|n| n.strip_suffix(".key")) else {
                continue;
            };
            match self.secret(Some(alias)) {
                Ok(secret) => others.push(KeyInfo {
                    alias: alias.to_owned(),
                    public_key: secret.public(),
                    default: false,
                }),
                Err(e) => tracing::warn!(alias, error = %e, "skipping unreadable key file"),
            }
        }
        others.sort_by(|a, b| a.alias.cmp(&b.alias));
        keys.extend(others);
        Ok(keys)
    }

    /// The alias of `key` if this node holds it.
    pub fn alias_of(&self, key: &PublisherKey) -> NodeResult<Option<String>> {
        Ok(self
            .list()?
            .into_iter()
            .find(|k| k.public_key == *key)
            .map(|k| k.alias))
    }

    /// The public key named `alias`, if this node holds it.
    pub fn public(&self, alias: &str) -> NodeResult<Option<PublisherKey>> {
        match self.secret(Some(alias)) {
            Ok(secret) => Ok(Some(secret.public())),
            Err(NodeError::NotFound(_)) | Err(NodeError::BadRequest(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Stores `secret` as `alias`; refuses an alias in use.
    pub fn store(&self, alias: &str, secret: &PublisherSecret) -> NodeResult<KeyInfo> {
        check_alias(alias)?;
        if alias == NODE_KEY_ALIAS || self.path(alias).exists() {
            return Err(NodeError::AlreadyExists(self.path(alias)));
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| NodeError::io("creating key directory", &self.dir, e))?;
        write_private_file(&self.path(alias), secret.to_export_text().as_bytes())?;
        tracing::info!(alias, key = %secret.public(), "stored publisher key");
        Ok(KeyInfo {
            alias: alias.to_owned(),
            public_key: secret.public(),
            default: false,
        })
    }
}

/// Checks an alias (of a key or of a trusted publisher): the rules of a name, and not
/// the look of a publisher key.
pub fn check_alias(alias: &str) -> NodeResult<()> {
    validate_name(alias)
        .map_err(|e| NodeError::BadRequest(format!("invalid alias {alias:?}: {}", e.reason)))?;
    if PublisherKey::looks_like_key(alias) {
        return Err(NodeError::BadRequest(format!(
            "alias {alias:?} starts like a publisher key; choose another"
        )));
    }
    Ok(())
}

/// A fresh random key.
pub fn generate_secret() -> NodeResult<PublisherSecret> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| NodeError::Internal(format!("no randomness for a new key: {e}")))?;
    Ok(PublisherSecret::from_seed(seed))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_are_stored_private_listed_and_refused_twice() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::new(dir.path().join("keys"), generate_secret().unwrap());
        let secret = generate_secret().unwrap();
        ring.store("alice", &secret).unwrap();
        assert!(matches!(
            ring.store("alice", &secret),
            Err(NodeError::AlreadyExists(_))
        ));
        assert!(ring.store("node", &secret).is_err());
        assert!(ring.store("bad/alias", &secret).is_err());
        let listed: Vec<_> = ring.list().unwrap().into_iter().map(|k| k.alias).collect();
        assert_eq!(listed, ["node", "alice"]);
        assert_eq!(ring.public("alice").unwrap(), Some(secret.public()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join("keys/alice.key");
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
