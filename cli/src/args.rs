//! The arguments of the subcommands that take more than a few: one struct or
//! subcommand enum each, and the value parsers clap calls on them.
//!
//! The clap tree (`cli.rs`) is assembled from these; the dispatcher hands each to its
//! command module, which reads it. Nothing here imports from this crate, so every one
//! of them can depend on it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use libp2p::Multiaddr;
use seedbank_node::config::{ByteRate, ByteSize};
use seedbank_protocol::{ArtifactKind, HfRepo};

/// Parses a `--bootstrap` address, which must name the peer it reaches.
fn parse_bootstrap(text: &str) -> Result<Multiaddr, String> {
    let example =
        "/ip4/192.0.2.1/tcp/4150/p2p/12D3KooW… (the other node prints one when it starts)";
    let address: Multiaddr = text.trim().parse().map_err(|e| {
        format!("{text:?} is not a multiaddr ({e}); a bootstrap address looks like {example}")
    })?;
    seedbank_node::net::split_peer_address(&address).map_err(|e| e.to_string())?;
    Ok(address)
}

/// Parses a Hugging Face repo: `org/name` (a model) or `datasets/org/name`.
fn parse_hf_repo(text: &str) -> Result<HfRepo, String> {
    HfRepo::parse_cli(text).map_err(|e| e.to_string())
}

/// Parses a `--listen` address.
fn parse_listen(text: &str) -> Result<Multiaddr, String> {
    text.trim().parse().map_err(|e| {
        format!("{text:?} is not a multiaddr ({e}); listen addresses look like /ip4/0.0.0.0/tcp/4150 or /ip4/0.0.0.0/udp/4150/quic-v1")
    })
}

/// Artifact kinds on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Model weights, configs, tokenizers
    Model,
    /// A dataset
    Dataset,
}

impl From<KindArg> for ArtifactKind {
    fn from(kind: KindArg) -> Self {
        match kind {
            KindArg::Model => ArtifactKind::Model,
            KindArg::Dataset => ArtifactKind::Dataset,
        }
    }
}

/// `--relay-service`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum RelayServiceArg {
    /// On once this node is known to be public.
    Auto,
    /// Always on.
    On,
    /// Never.
    Off,
}

impl From<RelayServiceArg> for seedbank_node::net::nat_config::RelayService {
    fn from(mode: RelayServiceArg) -> Self {
        match mode {
            RelayServiceArg::Auto => Self::Auto,
            RelayServiceArg::On => Self::On,
            RelayServiceArg::Off => Self::Off,
        }
    }
}

/// Flags of `seedbank daemon`; each wins over config.toml and `SEEDBANK_*` variables.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Address of the control API (loopback unless config.toml allows otherwise)
    #[arg(long, value_name = "ADDR")]
    pub api_addr: Option<SocketAddr>,
    /// Listen for peers here (repeatable) [default: TCP and QUIC on port 4150, all interfaces]
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_listen)]
    pub listen: Vec<Multiaddr>,
    /// Join the network through this peer, e.g. /ip4/192.0.2.1/tcp/4150/p2p/12D3Koo… (repeatable)
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_bootstrap)]
    pub bootstrap: Vec<Multiaddr>,
    /// Do not look for peers on the local network with mDNS
    #[arg(long)]
    pub no_mdns: bool,
    /// Answer DHT queries even before this node knows it is reachable (servers, test networks)
    #[arg(long)]
    pub kad_server: bool,
    /// Do not map the listen ports on the home router (UPnP) [default: mapped when listening beyond loopback]
    #[arg(long)]
    pub no_port_mapping: bool,
    /// Relay for nodes behind NAT: auto (once this node is public), on, off [default: auto]
    #[arg(long, value_name = "MODE")]
    pub relay_service: Option<RelayServiceArg>,
    /// Upload limit for all peers together, bytes per second (suffixes K, M, G: 1024-based)
    #[arg(long, value_name = "RATE")]
    pub upload_limit: Option<ByteRate>,
    /// Download limit for all peers together, bytes per second (suffixes K, M, G: 1024-based)
    #[arg(long, value_name = "RATE")]
    pub download_limit: Option<ByteRate>,
    /// Most bytes the store may hold, e.g. 500GB or 200GiB; unpinned artifacts are evicted least recently used first to make room
    #[arg(long, value_name = "SIZE")]
    pub max_storage: Option<ByteSize>,
    /// Address of the Hugging Face gateway, the value for HF_ENDPOINT [default: 127.0.0.1:5180]
    #[arg(long, value_name = "ADDR")]
    pub hf_gateway_addr: Option<SocketAddr>,
    /// Do not serve the Hugging Face gateway
    #[arg(long, conflicts_with = "hf_gateway_addr")]
    pub no_hf_gateway: bool,
}

/// Arguments of `seedbank daemon`: its settings, and a hook for end-to-end tests that
/// `seedbank config` does not take.
#[derive(Debug, clap::Args)]
pub struct DaemonRunArgs {
    /// The settings, as `seedbank config` takes them.
    #[command(flatten)]
    pub settings: DaemonArgs,
    /// Let the control API move this node's clock forward (`POST /v1/test/clock/advance`),
    /// so end-to-end tests need not sleep until the wall clock does; `=SECS` starts it that
    /// far ahead (a restarted test daemon keeps the time it had). Never for real use.
    #[arg(
        long,
        hide = true,
        value_name = "SECS",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "0"
    )]
    pub test_clock: Option<u64>,
}

impl From<DaemonArgs> for seedbank_node::daemon::ConfigOverrides {
    fn from(args: DaemonArgs) -> Self {
        Self {
            api_addr: args.api_addr,
            listen: args.listen,
            bootstrap: args.bootstrap,
            no_mdns: args.no_mdns,
            kad_server: args.kad_server,
            no_port_mapping: args.no_port_mapping,
            relay_service: args.relay_service.map(Into::into),
            upload_limit: args.upload_limit,
            download_limit: args.download_limit,
            max_storage: args.max_storage,
            hf_gateway_addr: args.hf_gateway_addr,
            no_hf_gateway: args.no_hf_gateway,
        }
    }
}

/// Arguments of `seedbank add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The file or directory
    pub path: PathBuf,
    /// Model or dataset
    #[arg(long, value_enum, default_value = "model")]
    pub kind: KindArg,
    /// Name [default: the file or directory name]
    #[arg(long)]
    pub name: Option<String>,
    /// Revision label [default: main]
    #[arg(long)]
    pub revision: Option<String>,
    /// SPDX licence id, e.g. Apache-2.0
    #[arg(long)]
    pub licence: Option<String>,
    /// Pin it: keep it through `seedbank gc`
    #[arg(long)]
    pub pin: bool,
    /// Serve the files from where they are instead of copying them into the store
    #[arg(long)]
    pub reference: bool,
    /// Import what symbolic links point to instead of refusing them
    #[arg(long)]
    pub follow_symlinks: bool,
}

/// Arguments of `seedbank export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Content id, unique id prefix, name or name@revision
    pub artifact: String,
    /// Target directory (created if missing)
    pub dir: PathBuf,
    /// Only files whose path matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Overwrite files that already exist
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `seedbank fetch`.
#[derive(Debug, clap::Args)]
pub struct FetchArgs {
    /// Content id (sb1…) or published name PUBLISHER/NAME[@REVISION], where PUBLISHER
    /// is a key (sbp1…) or a trusted alias
    pub artifact: String,
    /// Accept a local label (a name without publisher), which no signature backs
    #[arg(long)]
    pub allow_unsigned: bool,
    /// Hand the fetch to the daemon and return at once (see `seedbank jobs`)
    #[arg(long, conflicts_with_all = ["cancel", "out", "hf_cache"])]
    pub detach: bool,
    /// Cancel the running (or saved) fetch of this artifact
    #[arg(long, conflicts_with_all = ["include", "out", "hf_cache"])]
    pub cancel: bool,
    /// Only files whose path matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub include: Vec<String>,
    /// Put the fetched files in this directory when done: the store's own files move
    /// there and are seeded from there (changing or removing one stops that), unless
    /// --copy, pinned, or another artifact here shares them
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// With --out: overwrite files that already exist
    #[arg(long)]
    pub force: bool,
    /// With --out: keep the store's own copy and write a second one into DIR
    #[arg(long, requires = "out")]
    pub copy: bool,
    /// Lay the files out in a Hugging Face cache when done, so HF_HUB_OFFLINE=1 loads
    /// them [default DIR: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub]
    #[arg(long, value_name = "DIR", num_args = 0..=1, conflicts_with = "out")]
    pub hf_cache: Option<Option<PathBuf>>,
    /// With --hf-cache: the repo to cache it as, ORG/NAME or datasets/ORG/NAME
    /// [default: from the artifact's name, org--name]
    #[arg(long, value_name = "REPO", requires = "hf_cache", value_parser = parse_hf_repo)]
    pub hf_repo: Option<HfRepo>,
    /// Pin it once fetched (with --detach, when the background fetch completes)
    #[arg(long, conflicts_with = "cancel")]
    pub pin: bool,
}

/// Arguments of `seedbank publish`.
#[derive(Debug, clap::Args)]
pub struct PublishArgs {
    /// A file or directory to add, or an artifact this node holds (id or local name)
    pub target: String,
    /// The name to publish under
    #[arg(long)]
    pub name: String,
    /// Revision label [default: the artifact's own, else main]
    #[arg(long)]
    pub revision: Option<String>,
    /// Model or dataset [default: the artifact's own, else model]
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// SPDX licence [default: the artifact's own, else the card's `license:`]
    #[arg(long)]
    pub licence: Option<String>,
    /// The card among the artifact's files [default: README.md if there is one]
    #[arg(long, value_name = "FILE")]
    pub card: Option<String>,
    /// A word to be found by, besides the name and the card's tags (repeatable)
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// Alias of the key to sign with [default: node]
    #[arg(long, value_name = "ALIAS")]
    pub key: Option<String>,
    /// Serve the files from where they are instead of copying them into the store
    #[arg(long)]
    pub reference: bool,
}

/// Arguments of `seedbank mirror-hf`.
#[derive(Debug, clap::Args)]
pub struct MirrorHfArgs {
    /// `org/name` for a model, `datasets/org/name` for a dataset
    #[arg(value_parser = parse_hf_repo)]
    pub repo: HfRepo,
    /// Branch, tag or commit id [default: main]
    #[arg(long)]
    pub revision: Option<String>,
    /// The origin's base URL, http://HOST:PORT [default: $HF_ENDPOINT]
    #[arg(long, value_name = "URL")]
    pub origin: Option<String>,
    /// Most bytes per second to download, e.g. 10M or 512K [default: unlimited]
    #[arg(long, value_name = "RATE")]
    pub limit_rate: Option<ByteRate>,
    /// Alias of the key to sign with [default: node]
    #[arg(long, value_name = "ALIAS")]
    pub key: Option<String>,
}

/// Arguments of `seedbank import-hf`.
#[derive(Debug, clap::Args)]
pub struct ImportHfArgs {
    /// Repos to import: `org/name` for a model, `datasets/org/name` for a dataset
    /// [default: every repo in the cache]
    pub repos: Vec<String>,
    /// The cache's hub folder [default: $HF_HUB_CACHE, else $HF_HOME/hub, else
    /// ~/.cache/huggingface/hub]
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Alias of the key to sign with [default: node]
    #[arg(long, value_name = "ALIAS")]
    pub key: Option<String>,
}

/// `seedbank key …`
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a new publisher key
    New {
        /// Alias for it
        alias: String,
    },
    /// List this node's keys and their public halves
    List,
    /// Print a key's secret (sbsecret1…), to back it up or move it to another node
    Export {
        /// Alias of the key
        alias: String,
    },
    /// Store a key exported elsewhere, read from FILE or standard input
    Import {
        /// Alias for it here
        alias: String,
        /// File holding the sbsecret1… text [default: standard input]
        file: Option<PathBuf>,
    },
}

/// `seedbank trust …`
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Trust a publisher key under an alias
    Add {
        /// The alias
        alias: String,
        /// The publisher key (sbp1…)
        public_key: String,
    },
    /// List trusted publishers
    List,
    /// Stop trusting an alias
    Remove {
        /// The alias
        alias: String,
    },
}

/// `seedbank denylist …`
#[derive(Debug, Subcommand)]
pub enum DenylistCommand {
    /// Publish the next revision of a denylist signed by one of this node's keys: the
    /// latest revision's entries plus those given (a revision holds the whole list)
    Publish {
        /// The list's name
        name: String,
        /// Content ids (sb1…) to list
        ids: Vec<String>,
        /// Why they are listed (shown to users whose fetch is refused)
        #[arg(long)]
        reason: Option<String>,
        /// Read entries from FILE: one `ID [REASON…]` per line (`#` starts a comment),
        /// or a denylist.json
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// Take this id off the list (repeatable)
        #[arg(long, value_name = "ID")]
        remove: Vec<String>,
        /// Publish the given entries alone, dropping the earlier ones
        #[arg(long)]
        replace: bool,
        /// Alias of the key to sign with [default: node]
        #[arg(long, value_name = "ALIAS")]
        key: Option<String>,
    },
    /// Follow a denylist: what it lists is never fetched, served or announced by this
    /// node. Only lists of publishers you trust (`seedbank trust add`) or your own keys
    Subscribe {
        /// PUBLISHER/NAME
        list: String,
    },
    /// Stop following a denylist
    Unsubscribe {
        /// PUBLISHER/NAME, as `denylist list` shows it
        list: String,
    },
    /// List the denylists this node follows
    List,
    /// Read every followed denylist again now
    Refresh,
}

/// `seedbank collection …`
#[derive(Debug, Subcommand)]
pub enum CollectionCommand {
    /// Publish a signed list of artifacts to preserve; nodes that follow it fetch its
    /// members when too few copies are left
    Publish {
        /// The name to publish it under
        name: String,
        /// Members: content ids (sb1…) or published names PUBLISHER/NAME[@REVISION]
        #[arg(required = true)]
        members: Vec<String>,
        /// Copies each member should have on the network
        #[arg(long, default_value_t = 3)]
        replicas: u32,
        /// Revision label [default: t<unix time>]
        #[arg(long)]
        revision: Option<String>,
        /// Alias of the key to sign with [default: node]
        #[arg(long, value_name = "ALIAS")]
        key: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_addresses_need_a_peer_id_and_errors_show_the_whole_address() {
        let error = parse_bootstrap("/ip4/192.0.2.1/tcp/4150").unwrap_err();
        assert!(
            error.contains("/ip4/192.0.2.1/tcp/4150 has no peer id"),
            "{error}"
        );
        let error = parse_bootstrap("192.0.2.1:4150").unwrap_err();
        assert!(
            error.contains("192.0.2.1:4150") && error.contains("/p2p/"),
            "{error}"
        );
        let peer = libp2p::PeerId::random();
        assert!(parse_bootstrap(&format!("/ip4/192.0.2.1/tcp/4150/p2p/{peer}")).is_ok());
    }
}
