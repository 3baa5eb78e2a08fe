//! Node configuration: one struct with embedded defaults, optionally overridden by
//! `<data>/config.toml`, then by command-line flags. Validated at start-up with an
//! error that names the bad field.

use std::net::SocketAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{NodeError, NodeResult};
use crate::net::NetConfig;

/// Default control-API address: loopback only, so no other machine can reach it.
pub const DEFAULT_API_ADDR: &str = "127.0.0.1:5150";

/// Most control-API requests served at once. The API is for one local user and their
/// scripts; more than this in flight means something is looping.
pub const DEFAULT_MAX_API_REQUESTS: usize = 64;

/// Everything a node can be configured with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Where the control API listens.
    pub api_addr: SocketAddr,
    /// Allow the control API on a non-loopback address (it is token-protected, but
    /// reachable by every machine on the network).
    pub api_allow_remote: bool,
    /// Most control-API requests in flight at once.
    pub max_api_requests: usize,
    /// Upload limit for all peers together, bytes per second (none: unlimited).
    pub upload_limit: Option<u64>,
    /// Download limit for all peers together, bytes per second (none: unlimited).
    pub download_limit: Option<u64>,
    /// The peer-to-peer network (`[net]` in config.toml).
    pub net: NetConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            #[allow(clippy::unwrap_used)]
            api_addr: DEFAULT_API_ADDR.parse().unwrap(),
            api_allow_remote: false,
            max_api_requests: DEFAULT_MAX_API_REQUESTS,
            upload_limit: None,
            download_limit: None,
            net: NetConfig::default(),
        }
    }
}

impl NodeConfig {
    /// Loads `path` if it exists, else the defaults.
    pub fn load(path: &Path) -> NodeResult<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(NodeError::io("reading config", path, e)),
        };
        let config: Self = toml::from_str(&text).map_err(|e| {
            NodeError::BadRequest(format!("invalid config file {}: {e}", path.display()))
        })?;
        Ok(config)
    }

    /// Checks the values, naming the first bad field.
    pub fn validate(&self) -> NodeResult<()> {
        if !self.api_addr.ip().is_loopback() && !self.api_allow_remote {
            return Err(NodeError::BadRequest(format!(
                "api_addr {} is not a loopback address; the control API stays on this machine unless api_allow_remote = true",
                self.api_addr
            )));
        }
        for (field, limit) in [
            ("upload_limit", self.upload_limit),
            ("download_limit", self.download_limit),
        ] {
            if limit == Some(0) {
                return Err(NodeError::BadRequest(format!(
                    "{field} must be at least 1 byte per second (leave it out for no limit)"
                )));
            }
        }
        if self.net.listen.is_empty() {
            return Err(NodeError::BadRequest(
                "net.listen needs at least one address".into(),
            ));
        }
        if self.max_api_requests == 0 {
            return Err(NodeError::BadRequest(
                "max_api_requests must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig::load(&dir.path().join("config.toml")).unwrap();
        assert_eq!(config, NodeConfig::default());
        config.validate().unwrap();
    }

    #[test]
    fn file_overrides_defaults_and_unknown_fields_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "api_addr = \"127.0.0.1:6000\"\n").unwrap();
        assert_eq!(NodeConfig::load(&path).unwrap().api_addr.port(), 6000);
        std::fs::write(&path, "api_adr = \"127.0.0.1:6000\"\n").unwrap();
        let error = NodeConfig::load(&path).unwrap_err().to_string();
        assert!(error.contains("api_adr"), "{error}");
    }

    #[test]
    fn network_settings_load_from_their_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "upload_limit = 1000\n[net]\nmdns = false\n").unwrap();
        let config = NodeConfig::load(&path).unwrap();
        assert_eq!(config.upload_limit, Some(1000));
        assert!(!config.net.mdns);
        let zero = NodeConfig {
            download_limit: Some(0),
            ..config
        };
        assert!(zero
            .validate()
            .unwrap_err()
            .to_string()
            .contains("download_limit"));
    }

    #[test]
    fn remote_api_needs_explicit_consent() {
        let config = NodeConfig {
            api_addr: "0.0.0.0:5150".parse().unwrap(),
            ..NodeConfig::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("api_addr"), "{error}");
    }
}
