//! Where settings come from, lowest first: embedded defaults, `<data dir>/config.toml`,
//! `SEEDBANK_*` environment variables, command-line flags. figment merges the layers and
//! remembers which one gave each value, so `seedbank config` can say so.

use std::net::SocketAddr;
use std::path::Path;

use figment::value::{Dict, Value};
use figment::{Figment, Metadata, Profile, Provider};
use libp2p::Multiaddr;
use serde::Serialize;

use super::NodeConfig;
use crate::error::{NodeError, NodeResult};
use crate::units::{ByteRate, ByteSize};

/// Prefix of environment variables that set configuration values.
pub const ENV_PREFIX: &str = "SEEDBANK_";

/// `SEEDBANK_*` variables that are not settings of `config.toml`.
const ENV_NOT_SETTINGS: [&str; 4] = ["DATA_DIR", "TEST_LOG", "SIMNET_LOG", "LOG"];

const DEFAULTS: &str = "default";
const CONFIG_FILE: &str = "config.toml";
const ENVIRONMENT: &str = "environment";
const COMMAND_LINE: &str = "command line";

/// Settings given on the command line, which win over every other layer.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// `--api-addr`.
    pub api_addr: Option<SocketAddr>,
    /// `--listen` (replaces the configured list when given).
    pub listen: Vec<Multiaddr>,
    /// `--bootstrap` (added to the list of the lower layers).
    pub bootstrap: Vec<Multiaddr>,
    /// `--no-mdns`.
    pub no_mdns: bool,
    /// `--kad-server`.
    pub kad_server: bool,
    /// `--no-port-mapping`.
    pub no_port_mapping: bool,
    /// `--relay-service`.
    pub relay_service: Option<crate::net::nat_config::RelayService>,
    /// `--upload-limit`.
    pub upload_limit: Option<ByteRate>,
    /// `--download-limit`.
    pub download_limit: Option<ByteRate>,
    /// `--max-storage`.
    pub max_storage: Option<ByteSize>,
    /// `--hf-gateway-addr`.
    pub hf_gateway_addr: Option<SocketAddr>,
    /// `--no-hf-gateway`.
    pub no_hf_gateway: bool,
}

/// One effective setting and the layer it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigSetting {
    /// Dotted key as in `config.toml`, e.g. `net.mdns`.
    pub key: String,
    /// The value (`null` when unset).
    pub value: serde_json::Value,
    /// `default`, `config.toml (PATH)`, the environment variable's name, or `command line`.
    pub source: String,
}

/// The merged configuration and the layers it was merged from.
#[derive(Debug)]
pub struct LoadedConfig {
    /// The effective, validated configuration.
    pub config: NodeConfig,
    figment: Figment,
    /// Whether `--bootstrap` added to `net.bootstrap`.
    bootstrap_flags: bool,
}

impl LoadedConfig {
    /// Loads every layer, reading the environment of this process.
    pub fn load(config_file: &Path, overrides: &ConfigOverrides) -> NodeResult<Self> {
        Self::load_with_env(config_file, settings_from_env()?, overrides)
    }

    /// Loads every layer with `env` as the environment.
    pub fn load_with_env(
        config_file: &Path,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &ConfigOverrides,
    ) -> NodeResult<Self> {
        let figment = Figment::new()
            .merge(Layer::new(DEFAULTS, serialize(&NodeConfig::default())?))
            .merge(toml_layer(config_file)?)
            .merge(env_layer(env)?)
            .merge(Layer::new(COMMAND_LINE, flag_values(overrides)?));
        let mut config: NodeConfig = figment.extract().map_err(|e| {
            NodeError::BadRequest(format!("invalid configuration: {}", one_line(e)))
        })?;
        // `--bootstrap` adds to the list of the lower layers (figment's own list merge
        // would let it replace a list written as one value).
        for address in &overrides.bootstrap {
            if !config.net.bootstrap.contains(address) {
                config.net.bootstrap.push(address.clone());
            }
        }
        config.validate()?;
        Ok(Self {
            config,
            figment,
            bootstrap_flags: !overrides.bootstrap.is_empty(),
        })
    }

    /// Every setting with its effective value and where it came from.
    pub fn settings(&self) -> NodeResult<Vec<ConfigSetting>> {
        let mut flat = Vec::new();
        flatten("", &serialize(&NodeConfig::default())?, &mut flat);
        let effective = serde_json::to_value(&self.config)
            .map_err(|e| NodeError::Internal(format!("encoding the configuration: {e}")))?;
        let mut settings = Vec::new();
        for key in flat {
            let value = key
                .split('.')
                .try_fold(&effective, |value, part| value.get(part))
                .cloned()
                .unwrap_or(serde_json::Value::Null);
            let mut source = match self.figment.find_metadata(&key) {
                Some(metadata) => describe_source(metadata, &key),
                None => DEFAULTS.to_owned(),
            };
            if key == "net.bootstrap" && self.bootstrap_flags {
                source = format!("{source} + {COMMAND_LINE}");
            }
            settings.push(ConfigSetting { key, value, source });
        }
        Ok(settings)
    }
}

/// One layer of settings with its name, for figment.
struct Layer {
    metadata: Metadata,
    values: Dict,
}

impl Layer {
    fn new(name: &'static str, values: Dict) -> Self {
        Self {
            metadata: Metadata::named(name).interpolater(|_, keys| keys.join(".")),
            values,
        }
    }
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        self.metadata.clone()
    }

    fn data(&self) -> Result<figment::value::Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

/// Serializes `value` into figment's dictionary form.
fn serialize(value: &impl Serialize) -> NodeResult<Dict> {
    match Value::serialize(value) {
        Ok(Value::Dict(_, dict)) => Ok(dict),
        Ok(_) => Ok(Dict::new()),
        Err(e) => Err(NodeError::Internal(format!("encoding settings: {e}"))),
    }
}

fn toml_layer(path: &Path) -> NodeResult<Layer> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(NodeError::io("reading config", path, e)),
    };
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        NodeError::BadRequest(format!(
            "invalid config file {}: {}",
            path.display(),
            e.to_string().trim()
        ))
    })?;
    let mut layer = Layer::new(CONFIG_FILE, serialize(&table)?);
    layer.metadata = layer.metadata.source(path);
    Ok(layer)
}

/// `SEEDBANK_UPLOAD_LIMIT` sets `upload_limit`, `SEEDBANK_NET_MDNS` sets `net.mdns`.
fn env_layer(env: impl IntoIterator<Item = (String, String)>) -> NodeResult<Layer> {
    let mut values = Dict::new();
    for (name, text) in env {
        let Some(setting) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if setting.is_empty() || ENV_NOT_SETTINGS.contains(&setting) {
            continue;
        }
        let key = setting_key(setting);
        let value: Value = text.parse().unwrap_or_else(|_| Value::from(text.clone()));
        match key.split_once('.') {
            Some((table, inner)) => {
                if let Value::Dict(_, dict) = values
                    .entry(table.to_owned())
                    .or_insert_with(|| Dict::new().into())
                {
                    dict.insert(inner.to_owned(), value);
                }
            }
            None => {
                values.insert(key, value);
            }
        }
    }
    let mut layer = Layer::new(ENVIRONMENT, values);
    layer.metadata = layer
        .metadata
        .interpolater(|_, keys| env_name(&keys.join(".")));
    Ok(layer)
}

/// The dotted key an environment variable's name (after the prefix) sets.
fn setting_key(setting: &str) -> String {
    let lower = setting.to_ascii_lowercase();
    match lower.strip_prefix("net_") {
        Some(rest) => format!("net.{rest}"),
        None => lower,
    }
}

/// The environment variable that sets a dotted key.
fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "_").to_ascii_uppercase())
}

/// Flags that replace what lower layers set.
fn flag_values(overrides: &ConfigOverrides) -> NodeResult<Dict> {
    let mut values = Dict::new();
    let mut net = Dict::new();
    if let Some(addr) = &overrides.api_addr {
        insert(&mut values, "api_addr", addr)?;
    }
    if let Some(rate) = &overrides.upload_limit {
        insert(&mut values, "upload_limit", rate)?;
    }
    if let Some(rate) = &overrides.download_limit {
        insert(&mut values, "download_limit", rate)?;
    }
    if let Some(size) = &overrides.max_storage {
        insert(&mut values, "max_storage", size)?;
    }
    if let Some(addr) = &overrides.hf_gateway_addr {
        insert(&mut values, "hf_gateway_addr", addr)?;
    }
    if overrides.no_hf_gateway {
        insert(&mut values, "hf_gateway", &false)?;
    }
    if !overrides.listen.is_empty() {
        insert(&mut net, "listen", &overrides.listen)?;
    }
    if overrides.no_mdns {
        insert(&mut net, "mdns", &false)?;
    }
    if overrides.kad_server {
        insert(&mut net, "kad_server", &true)?;
    }
    if overrides.no_port_mapping {
        insert(&mut net, "port_mapping", &false)?;
    }
    if let Some(mode) = &overrides.relay_service {
        insert(&mut net, "relay_service", mode)?;
    }
    if !net.is_empty() {
        values.insert("net".into(), net.into());
    }
    Ok(values)
}

/// The `SEEDBANK_*` variables of this process. Others are skipped unread, so a variable
/// that is not UTF-8 matters only when it is one of ours (and is then named).
fn settings_from_env() -> NodeResult<Vec<(String, String)>> {
    let mut settings = Vec::new();
    for (name, value) in std::env::vars_os() {
        let Some(name) = name.to_str().filter(|n| n.starts_with(ENV_PREFIX)) else {
            continue;
        };
        let value = value.into_string().map_err(|_| {
            NodeError::BadRequest(format!("environment variable {name} is not valid UTF-8"))
        })?;
        settings.push((name.to_owned(), value));
    }
    Ok(settings)
}

fn insert(dict: &mut Dict, key: &str, value: &impl Serialize) -> NodeResult<()> {
    let value =
        Value::serialize(value).map_err(|e| NodeError::Internal(format!("encoding {key}: {e}")))?;
    dict.insert(key.to_owned(), value);
    Ok(())
}

/// The keys of every setting, dotted, in declaration order.
fn flatten(prefix: &str, dict: &Dict, out: &mut Vec<String>) {
    for (key, value) in dict {
        let key = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            Value::Dict(_, inner) => flatten(&key, inner, out),
            _ => out.push(key),
        }
    }
}

fn describe_source(metadata: &Metadata, key: &str) -> String {
    match metadata.name.as_ref() {
        ENVIRONMENT => env_name(key),
        CONFIG_FILE => match &metadata.source {
            Some(source) => format!("{CONFIG_FILE} ({source})"),
            None => CONFIG_FILE.to_owned(),
        },
        other => other.to_owned(),
    }
}

/// A figment error (which may chain several) on one line.
fn one_line(error: figment::Error) -> String {
    error
        .into_iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
