//! Node configuration: one struct with embedded defaults, overridden by
//! `<data>/config.toml`, then `SEEDBANK_*` environment variables, then command-line flags
//! ([`layers`]). Validated at start-up with an error that names the bad field.

pub mod layers;

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

pub use crate::units::{ByteRate, ByteSize};
pub use layers::{ConfigOverrides, ConfigSetting, LoadedConfig};

use crate::error::{NodeError, NodeResult};
use crate::fetch::FetchTimings;
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
    /// Upload limit for all peers together (none: unlimited).
    pub upload_limit: Option<ByteRate>,
    /// Download limit for all peers together (none: unlimited).
    pub download_limit: Option<ByteRate>,
    /// Most bytes the blob store may hold (none: no limit but the disk's). When a fetch
    /// or an add needs room, unpinned artifacts are evicted least recently used first;
    /// what cannot fit even then is refused. Files added in place (`--reference`) do not
    /// count: their bytes stay where they are.
    pub max_storage: Option<ByteSize>,
    /// SPDX licences this node seeds (`["MIT", "Apache-2.0"]`); empty: any. An artifact
    /// under another licence, or none, is still fetched (with a warning) but never
    /// announced, published or served from here.
    #[serde(with = "crate::units::one_or_many")]
    pub seed_licences: Vec<String>,
    /// Serve the Hugging Face gateway (`HF_ENDPOINT=http://HF_GATEWAY_ADDR`).
    pub hf_gateway: bool,
    /// Where the Hugging Face gateway listens.
    pub hf_gateway_addr: SocketAddr,
    /// Allow the gateway on a non-loopback address (it needs no token: anyone who
    /// reaches it can make this node fetch what its publishers published).
    pub hf_gateway_allow_remote: bool,
    /// Publishers (aliases or keys) the gateway resolves repo ids through, in order;
    /// empty: this node's own key, then every trusted publisher.
    #[serde(with = "crate::units::one_or_many")]
    pub hf_publishers: Vec<String>,
    /// Disk that follows may fill with what they keep and repair (none: no budget of
    /// their own; the disk and `max_storage` still bound them).
    pub preserve_budget: Option<ByteSize>,
    /// How often followed publishers are checked for new releases, and under-replicated
    /// collection members for repair.
    #[serde(with = "crate::units::duration_text")]
    pub follow_interval: std::time::Duration,
    /// How often the providers of pins with a replica target and of watched members are
    /// spot-checked.
    #[serde(with = "crate::units::duration_text")]
    pub health_interval: std::time::Duration,
    /// Most under-replicated artifacts one round fetches.
    pub repairs_per_round: usize,
    /// Longest random wait before a repair, so preservers do not all fetch at once.
    #[serde(with = "crate::units::duration_text")]
    pub repair_jitter: std::time::Duration,
    /// Time between two refreshes of each denylist the node subscribes to (`1h`); a
    /// new subscription is read at once.
    #[serde(with = "crate::units::duration_text")]
    pub denylist_refresh: std::time::Duration,
    /// Longest a fetch looks for peers before it says nobody has the artifact (`7s`:
    /// lookups at once, then after 1, 2 and 4 s).
    #[serde(with = "crate::units::duration_text")]
    pub fetch_patience: std::time::Duration,
    /// Wait before a detached or resumed fetch tries again; doubles per try (`5s`).
    #[serde(with = "crate::units::duration_text")]
    pub fetch_retry_delay: std::time::Duration,
    /// How long a fetch the gateway started for its readers runs on once none is left
    /// (it is never resumed after a restart).
    #[serde(with = "crate::units::duration_text")]
    pub fetch_reader_grace: std::time::Duration,
    /// Longest a client of the control API or the gateway may leave a response unread
    /// (taking no byte) before its connection is closed and its request slot freed.
    #[serde(with = "crate::units::duration_text")]
    pub client_stall_timeout: std::time::Duration,
    /// `mirror-hf` drops a download (and resumes it, a few times) when the origin sends
    /// slower than this, averaged over `mirror_low_speed_time` (`1K`).
    pub mirror_low_speed_limit: ByteRate,
    /// The span `mirror_low_speed_limit` is averaged over (`60s`).
    #[serde(with = "crate::units::duration_text")]
    pub mirror_low_speed_time: std::time::Duration,
    /// The peer-to-peer network (`[net]` in config.toml).
    pub net: NetConfig,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let defaults = crate::preserve::PreserveOptions::default();
        let fetch = FetchTimings::default();
        let low_speed = crate::hf::low_speed::LowSpeed::default();
        Self {
            #[allow(clippy::unwrap_used)]
            api_addr: DEFAULT_API_ADDR.parse().unwrap(),
            api_allow_remote: false,
            max_api_requests: DEFAULT_MAX_API_REQUESTS,
            upload_limit: None,
            download_limit: None,
            max_storage: None,
            seed_licences: Vec::new(),
            hf_gateway: true,
            #[allow(clippy::unwrap_used)]
            hf_gateway_addr: crate::gateway::DEFAULT_GATEWAY_ADDR.parse().unwrap(),
            hf_gateway_allow_remote: false,
            hf_publishers: Vec::new(),
            preserve_budget: None,
            follow_interval: defaults.follow_interval,
            health_interval: defaults.health_interval,
            repairs_per_round: defaults.repairs_per_round,
            repair_jitter: defaults.repair_jitter,
            denylist_refresh: crate::denylist::DEFAULT_REFRESH_INTERVAL,
            fetch_patience: fetch.lookup_patience,
            fetch_retry_delay: fetch.retry_delay,
            fetch_reader_grace: fetch.reader_grace,
            client_stall_timeout: crate::api::server::CLIENT_STALL_TIMEOUT,
            #[allow(clippy::unwrap_used)]
            mirror_low_speed_limit: ByteRate::new(low_speed.limit).unwrap(),
            mirror_low_speed_time: low_speed.time,
            net: NetConfig::default(),
        }
    }
}

impl NodeConfig {
    /// How this node preserves, from the settings.
    pub fn preserve_options(&self) -> crate::preserve::PreserveOptions {
        crate::preserve::PreserveOptions {
            budget: self.preserve_budget.map(ByteSize::bytes),
            follow_interval: self.follow_interval,
            health_interval: self.health_interval,
            repairs_per_round: self.repairs_per_round,
            repair_jitter: self.repair_jitter,
            keeper: true,
        }
    }

    /// How patient this node's fetches are, from the settings.
    pub fn fetch_timings(&self) -> FetchTimings {
        FetchTimings {
            lookup_patience: self.fetch_patience,
            retry_delay: self.fetch_retry_delay,
            reader_grace: self.fetch_reader_grace,
            ..FetchTimings::default()
        }
    }

    /// How slow an origin may be before a mirror download is dropped, from the settings.
    pub fn mirror_low_speed(&self) -> crate::hf::low_speed::LowSpeed {
        crate::hf::low_speed::LowSpeed {
            limit: self.mirror_low_speed_limit.bytes_per_second(),
            time: self.mirror_low_speed_time,
        }
    }

    /// Checks the values, naming the first bad field.
    pub fn validate(&self) -> NodeResult<()> {
        if !self.api_addr.ip().is_loopback() && !self.api_allow_remote {
            return Err(NodeError::BadRequest(format!(
                "api_addr {} is not a loopback address; the control API stays on this machine unless api_allow_remote = true",
                self.api_addr
            )));
        }
        if self.hf_gateway
            && !self.hf_gateway_addr.ip().is_loopback()
            && !self.hf_gateway_allow_remote
        {
            return Err(NodeError::BadRequest(format!(
                "hf_gateway_addr {} is not a loopback address; the gateway stays on this machine unless hf_gateway_allow_remote = true",
                self.hf_gateway_addr
            )));
        }
        if self.hf_gateway && self.hf_gateway_addr == self.api_addr && self.api_addr.port() != 0 {
            return Err(NodeError::BadRequest(format!(
                "hf_gateway_addr and api_addr are both {}; give them different ports",
                self.api_addr
            )));
        }
        if self.net.listen.is_empty() {
            return Err(NodeError::BadRequest(
                "net.listen needs at least one address".into(),
            ));
        }
        for address in &self.net.bootstrap {
            crate::net::split_peer_address(address)?;
        }
        for licence in &self.seed_licences {
            seedbank_protocol::labels::validate_licence(licence)
                .map_err(|e| NodeError::BadRequest(format!("seed_licences: {e}")))?;
        }
        if self.follow_interval.is_zero() || self.health_interval.is_zero() {
            return Err(NodeError::BadRequest(
                "follow_interval and health_interval must be longer than 0s".into(),
            ));
        }
        if self.mirror_low_speed_time < std::time::Duration::from_secs(1) {
            return Err(NodeError::BadRequest(
                "mirror_low_speed_time must be at least 1s".into(),
            ));
        }
        if self.denylist_refresh < crate::denylist::MIN_REFRESH_INTERVAL {
            return Err(NodeError::BadRequest(format!(
                "denylist_refresh must be at least {}s",
                crate::denylist::MIN_REFRESH_INTERVAL.as_secs()
            )));
        }
        if self.max_storage.is_some_and(|size| size.bytes() == 0) {
            return Err(NodeError::BadRequest(
                "max_storage must be more than 0; leave it out for no limit".into(),
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
    use std::path::Path;

    use super::*;

    fn load(
        file: &Path,
        env: &[(&str, &str)],
        flags: &ConfigOverrides,
    ) -> NodeResult<LoadedConfig> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        LoadedConfig::load_with_env(file, env, flags)
    }

    fn source_of(loaded: &LoadedConfig, key: &str) -> String {
        let settings = loaded.settings().unwrap();
        let setting = settings.iter().find(|s| s.key == key).unwrap();
        setting.source.clone()
    }

    #[test]
    fn missing_file_gives_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let loaded = load(
            &dir.path().join("config.toml"),
            &[],
            &ConfigOverrides::default(),
        )
        .unwrap();
        assert_eq!(loaded.config, NodeConfig::default());
        assert_eq!(source_of(&loaded, "net.mdns"), "default");
    }

    #[test]
    fn file_overrides_defaults_and_unknown_fields_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "api_addr = \"127.0.0.1:6000\"\n").unwrap();
        let loaded = load(&path, &[], &ConfigOverrides::default()).unwrap();
        assert_eq!(loaded.config.api_addr.port(), 6000);
        assert!(source_of(&loaded, "api_addr").starts_with("config.toml ("));
        std::fs::write(&path, "api_adr = \"127.0.0.1:6000\"\n").unwrap();
        let error = load(&path, &[], &ConfigOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(error.contains("api_adr"), "{error}");
    }

    #[test]
    fn rates_and_durations_read_the_same_in_every_layer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(
            &path,
            "upload_limit = \"5M\"\n[net]\nmdns = false\nidle_timeout = \"2m\"\n",
        )
        .unwrap();
        let loaded = load(
            &path,
            &[
                ("SEEDBANK_DOWNLOAD_LIMIT", "512K"),
                ("SEEDBANK_NET_BOOTSTRAP_INTERVAL", "30s"),
            ],
            &ConfigOverrides::default(),
        )
        .unwrap();
        let config = &loaded.config;
        assert_eq!(config.upload_limit, ByteRate::new(5 << 20));
        assert_eq!(config.download_limit, ByteRate::new(512 << 10));
        assert!(!config.net.mdns);
        assert_eq!(config.net.idle_timeout, std::time::Duration::from_secs(120));
        assert_eq!(
            config.net.bootstrap_interval,
            std::time::Duration::from_secs(30)
        );
        assert_eq!(
            source_of(&loaded, "download_limit"),
            "SEEDBANK_DOWNLOAD_LIMIT"
        );
        assert_eq!(
            source_of(&loaded, "net.bootstrap_interval"),
            "SEEDBANK_NET_BOOTSTRAP_INTERVAL"
        );
    }

    #[test]
    fn flags_win_over_the_environment_which_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "upload_limit = 1000\ndownload_limit = 1000\n").unwrap();
        let flags = ConfigOverrides {
            upload_limit: ByteRate::new(3000),
            ..Default::default()
        };
        let env = [
            ("SEEDBANK_UPLOAD_LIMIT", "2000"),
            ("SEEDBANK_DOWNLOAD_LIMIT", "2000"),
            ("SEEDBANK_DATA_DIR", "/elsewhere"),
        ];
        let loaded = load(&path, &env, &flags).unwrap();
        assert_eq!(loaded.config.upload_limit, ByteRate::new(3000));
        assert_eq!(loaded.config.download_limit, ByteRate::new(2000));
        assert_eq!(source_of(&loaded, "upload_limit"), "command line");
    }

    #[test]
    fn a_bad_value_names_the_variable_or_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        let error = load(
            &path,
            &[("SEEDBANK_UPLOAD_LIMIT", "fast")],
            &ConfigOverrides::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("SEEDBANK_UPLOAD_LIMIT") && error.contains("fast"),
            "{error}"
        );
        std::fs::write(&path, "[net]\nidle_timeout = \"soon\"\n").unwrap();
        let error = load(&path, &[], &ConfigOverrides::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("net.idle_timeout") && error.contains("soon"),
            "{error}"
        );
    }

    #[test]
    fn address_lists_take_one_value_or_a_list_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let peer = libp2p::PeerId::random();
        let one = format!("/ip4/192.0.2.1/tcp/4150/p2p/{peer}");
        let two = format!("[{one}, /ip4/192.0.2.2/tcp/4150/p2p/{peer}]");
        let file = dir.path().join("config.toml");
        let flags = ConfigOverrides::default();
        let loaded = load(&file, &[("SEEDBANK_NET_BOOTSTRAP", &one)], &flags).unwrap();
        assert_eq!(loaded.config.net.bootstrap, vec![one.parse().unwrap()]);
        let loaded = load(&file, &[("SEEDBANK_NET_BOOTSTRAP", &two)], &flags).unwrap();
        assert_eq!(loaded.config.net.bootstrap.len(), 2);
        let loaded = load(&file, &[("SEEDBANK_API_ADDR", "127.0.0.1:6000")], &flags).unwrap();
        assert_eq!(loaded.config.api_addr.port(), 6000);
    }

    #[test]
    fn bootstrap_flags_add_to_an_address_written_as_one_value() {
        let dir = tempfile::tempdir().unwrap();
        let peer = libp2p::PeerId::random();
        let from_env = format!("/ip4/192.0.2.1/tcp/4150/p2p/{peer}");
        let from_flag: libp2p::Multiaddr = format!("/ip4/192.0.2.2/tcp/4150/p2p/{peer}")
            .parse()
            .unwrap();
        let flags = ConfigOverrides {
            bootstrap: vec![from_flag.clone()],
            ..Default::default()
        };
        let file = dir.path().join("config.toml");
        let loaded = load(&file, &[("SEEDBANK_NET_BOOTSTRAP", &from_env)], &flags).unwrap();
        assert_eq!(
            loaded.config.net.bootstrap,
            vec![from_env.parse().unwrap(), from_flag]
        );
        assert_eq!(
            source_of(&loaded, "net.bootstrap"),
            "SEEDBANK_NET_BOOTSTRAP + command line"
        );
    }

    #[test]
    fn a_bootstrap_address_without_a_peer_id_is_shown_whole() {
        let dir = tempfile::tempdir().unwrap();
        let flags = ConfigOverrides {
            bootstrap: vec!["/ip4/192.0.2.1/tcp/4150".parse().unwrap()],
            ..Default::default()
        };
        let error = load(&dir.path().join("config.toml"), &[], &flags)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("/ip4/192.0.2.1/tcp/4150") && error.contains("/p2p/"),
            "{error}"
        );
    }

    #[test]
    fn max_storage_reads_sizes_from_every_layer_and_refuses_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "max_storage = \"20GB\"\n").unwrap();
        let none = ConfigOverrides::default();
        let loaded = load(&path, &[], &none).unwrap();
        assert_eq!(
            loaded.config.max_storage,
            Some(ByteSize::new(20_000_000_000))
        );
        let loaded = load(&path, &[("SEEDBANK_MAX_STORAGE", "500MiB")], &none).unwrap();
        assert_eq!(loaded.config.max_storage, Some(ByteSize::new(500 << 20)));
        assert_eq!(source_of(&loaded, "max_storage"), "SEEDBANK_MAX_STORAGE");
        let flags = ConfigOverrides {
            max_storage: Some(ByteSize::new(4 << 20)),
            ..Default::default()
        };
        let loaded = load(&path, &[("SEEDBANK_MAX_STORAGE", "500MiB")], &flags).unwrap();
        assert_eq!(loaded.config.max_storage, Some(ByteSize::new(4 << 20)));
        std::fs::write(&path, "max_storage = 0\n").unwrap();
        let error = load(&path, &[], &none).unwrap_err().to_string();
        assert!(error.contains("max_storage"), "{error}");
        let error = load(
            &dir.path().join("none.toml"),
            &[("SEEDBANK_MAX_STORAGE", "lots")],
            &none,
        )
        .unwrap_err()
        .to_string();
        assert!(
            error.contains("SEEDBANK_MAX_STORAGE") && error.contains("lots"),
            "{error}"
        );
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
