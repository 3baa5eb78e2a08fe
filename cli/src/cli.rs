//! The command line: global options and one subcommand per operation.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use libp2p::Multiaddr;
use seedbank_node::config::{ByteRate, ByteSize};
use seedbank_protocol::HfRepo;

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

/// Seedbank: share open AI models and datasets peer to peer, verified byte for byte.
#[derive(Debug, Parser)]
#[command(name = "seedbank", version, about)]
pub struct Cli {
    /// Data directory of the node [default: ~/.local/share/seedbank]
    #[arg(long, global = true, env = "SEEDBANK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of text, errors included; with `daemon`, log
    /// one JSON object per line
    #[arg(long, global = true)]
    pub json: bool,

    /// No progress bars or notes: print only results and errors
    #[arg(long, short, global = true)]
    pub quiet: bool,

    /// What to do
    #[command(subcommand)]
    pub command: Command,
}

/// Artifact kinds on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    /// Model weights, configs, tokenizers
    Model,
    /// A dataset
    Dataset,
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

impl From<DaemonArgs> for seedbank_node::daemon::ConfigOverrides {
    fn from(args: DaemonArgs) -> Self {
        Self {
            api_addr: args.api_addr,
            listen: args.listen,
            bootstrap: args.bootstrap,
            no_mdns: args.no_mdns,
            kad_server: args.kad_server,
            upload_limit: args.upload_limit,
            download_limit: args.download_limit,
            max_storage: args.max_storage,
            hf_gateway_addr: args.hf_gateway_addr,
            no_hf_gateway: args.no_hf_gateway,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node in the foreground until Ctrl-C or SIGTERM
    Daemon(DaemonArgs),
    /// Print the settings a daemon started now (with these flags) would use, and where
    /// each comes from: default, config.toml, a SEEDBANK_* variable or the command line
    Config(DaemonArgs),
    /// Add a file or directory as an artifact
    Add {
        /// The file or directory
        path: PathBuf,
        /// Model or dataset
        #[arg(long, value_enum, default_value = "model")]
        kind: KindArg,
        /// Name [default: the file or directory name]
        #[arg(long)]
        name: Option<String>,
        /// Revision label [default: main]
        #[arg(long)]
        revision: Option<String>,
        /// SPDX licence id, e.g. Apache-2.0
        #[arg(long)]
        licence: Option<String>,
        /// Pin it: keep it through `seedbank gc`
        #[arg(long)]
        pin: bool,
        /// Serve the files from where they are instead of copying them into the store
        #[arg(long)]
        reference: bool,
        /// Import what symbolic links point to instead of refusing them
        #[arg(long)]
        follow_symlinks: bool,
    },
    /// List the artifacts this node holds
    Ls,
    /// Show an artifact's manifest: files, sizes, hashes, licence
    Show {
        /// Content id, unique id prefix, name or name@revision
        artifact: String,
    },
    /// Write an artifact's files into a directory, verified
    Export {
        /// Content id, unique id prefix, name or name@revision
        artifact: String,
        /// Target directory (created if missing)
        dir: PathBuf,
        /// Only files whose path matches this glob (repeatable)
        #[arg(long, value_name = "GLOB")]
        include: Vec<String>,
        /// Overwrite files that already exist
        #[arg(long)]
        force: bool,
    },
    /// Pin an artifact: keep it on disk through `seedbank gc` and the storage quota,
    /// announced. An artifact not here (content id or published name) is fetched first
    Pin {
        /// Content id, unique id prefix, name or name@revision
        artifact: String,
        /// Copies wanted on the network, this one included; `seedbank health` shows how
        /// many exist
        #[arg(long, value_name = "N")]
        replicas: Option<u32>,
        /// A note on why it is kept
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
    },
    /// Show every pin and watched artifact with its copies: providers the DHT lists, and
    /// how many proved they hold it by answering a random 16 KiB range that verified
    Health {
        /// Spot-check the providers now instead of showing the last checks
        #[arg(long)]
        refresh: bool,
    },
    /// Follow a publisher (every name) or one of its names: fetch and pin each new
    /// release; a followed collection's members are fetched when copies run low
    Follow {
        /// PUBLISHER or PUBLISHER/NAME; PUBLISHER is a key (sbp1…) or a trusted alias
        target: String,
        /// Copies wanted on the network of what it keeps
        #[arg(long, value_name = "N")]
        replicas: Option<u32>,
    },
    /// Stop following; what the follow kept is unpinned
    Unfollow {
        /// PUBLISHER or PUBLISHER/NAME, as given to `follow`
        target: String,
    },
    /// List follows, what each keeps and watches, and the preservation budget
    Following,
    /// Collections: signed lists of artifacts to preserve
    #[command(subcommand)]
    Collection(crate::preserve_cmd::CollectionCommand),
    /// Unpin an artifact: the next `seedbank gc` may remove it
    Unpin {
        /// Content id, unique id prefix, name or name@revision
        artifact: String,
    },
    /// Remove an artifact from this node: stop announcing it and free the blobs no other
    /// artifact uses
    Rm {
        /// Content id, unique id prefix, name or name@revision
        artifact: String,
        /// Remove it even if it is pinned
        #[arg(long)]
        force: bool,
    },
    /// Get an artifact from the network, verified, from every peer that has it.
    /// Ctrl-C cancels the fetch; verified bytes stay, so fetching again resumes
    Fetch {
        /// Content id (sb1…) or published name PUBLISHER/NAME[@REVISION], where PUBLISHER
        /// is a key (sbp1…) or a trusted alias
        artifact: String,
        /// Accept a local label (a name without publisher), which no signature backs
        #[arg(long)]
        allow_unsigned: bool,
        /// Hand the fetch to the daemon and return at once (see `seedbank jobs`)
        #[arg(long, conflicts_with_all = ["cancel", "out", "hf_cache"])]
        detach: bool,
        /// Cancel the running (or saved) fetch of this artifact
        #[arg(long, conflicts_with_all = ["include", "out", "hf_cache"])]
        cancel: bool,
        /// Only files whose path matches this glob (repeatable)
        #[arg(long, value_name = "GLOB")]
        include: Vec<String>,
        /// Export the fetched files into this directory when done
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// With --out: overwrite files that already exist
        #[arg(long)]
        force: bool,
        /// Lay the files out in a Hugging Face cache when done, so HF_HUB_OFFLINE=1 loads
        /// them [default DIR: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub]
        #[arg(long, value_name = "DIR", num_args = 0..=1, conflicts_with = "out")]
        hf_cache: Option<Option<PathBuf>>,
        /// With --hf-cache: the repo to cache it as, ORG/NAME or datasets/ORG/NAME
        /// [default: from the artifact's name, org--name]
        #[arg(long, value_name = "REPO", requires = "hf_cache", value_parser = crate::hf_cache_cmd::parse_hf_repo)]
        hf_repo: Option<seedbank_protocol::HfRepo>,
        /// Pin it once fetched (with --detach, when the background fetch completes)
        #[arg(long, conflicts_with = "cancel")]
        pin: bool,
    },
    /// List fetches running, waiting or saved to resume
    Jobs,
    /// List connected peers, their addresses and bytes exchanged
    Peers,
    /// Ask the DHT which peers provide an artifact
    Providers {
        /// Content id (sb1…)
        artifact: String,
    },
    /// Remove unpinned artifacts and free their blobs
    Gc {
        /// List what would be removed, and remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Re-hash every stored blob; exits non-zero if any is corrupt
    Verify,
    /// Show the node's id, version, data dir, store size and uptime
    Status,
    /// Publisher keys: the node key (alias `node`) and keys you make or import
    #[command(subcommand)]
    Key(KeyCommand),
    /// Publishers you trust, by alias, so `ALIAS/NAME` works
    #[command(subcommand)]
    Trust(TrustCommand),
    /// Denylists: signed lists of artifacts a node never fetches, serves or announces
    #[command(subcommand)]
    Denylist(crate::denylist_cmd::DenylistCommand),
    /// Sign an artifact under a name and announce it: `PUBLISHER/NAME` then resolves to
    /// it on every node, and a bare name to its latest revision
    Publish {
        /// A file or directory to add, or an artifact this node holds (id or local name)
        target: String,
        /// The name to publish under
        #[arg(long)]
        name: String,
        /// Revision label [default: the artifact's own, else main]
        #[arg(long)]
        revision: Option<String>,
        /// Model or dataset [default: the artifact's own, else model]
        #[arg(long, value_enum)]
        kind: Option<KindArg>,
        /// SPDX licence [default: the artifact's own, else the card's `license:`]
        #[arg(long)]
        licence: Option<String>,
        /// The card among the artifact's files [default: README.md if there is one]
        #[arg(long, value_name = "FILE")]
        card: Option<String>,
        /// A word to be found by, besides the name and the card's tags (repeatable)
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Alias of the key to sign with [default: node]
        #[arg(long, value_name = "ALIAS")]
        key: Option<String>,
        /// Serve the files from where they are instead of copying them into the store
        #[arg(long)]
        reference: bool,
    },
    /// List what a publisher offers: its signed catalog
    LsRemote {
        /// Publisher key (sbp1…) or trusted alias
        publisher: String,
    },
    /// Find published models and datasets by the words of their names and tags
    Search {
        /// Words that must all match
        #[arg(required = true)]
        words: Vec<String>,
        /// Most results
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Resolve PUBLISHER/NAME[@REVISION] to a content id, from its signed name record
    Resolve {
        /// PUBLISHER/NAME[@REVISION]
        name: String,
    },
    /// List the revisions of PUBLISHER/NAME, newest first
    History {
        /// PUBLISHER/NAME
        name: String,
    },
    /// Download a repo from a Hugging Face-compatible origin, check every file against
    /// the origin's listing, and import and publish it (resumes an interrupted run)
    MirrorHf {
        /// `org/name` for a model, `datasets/org/name` for a dataset
        #[arg(value_parser = parse_hf_repo)]
        repo: HfRepo,
        /// Branch, tag or commit id [default: main]
        #[arg(long)]
        revision: Option<String>,
        /// The origin's base URL, http://HOST:PORT [default: $HF_ENDPOINT]
        #[arg(long, value_name = "URL")]
        origin: Option<String>,
        /// Most bytes per second to download, e.g. 10M or 512K [default: unlimited]
        #[arg(long, value_name = "RATE")]
        limit_rate: Option<ByteRate>,
        /// Alias of the key to sign with [default: node]
        #[arg(long, value_name = "ALIAS")]
        key: Option<String>,
    },
    /// Publish the repos of a local Hugging Face cache, one revision per snapshot, keeping
    /// the hub's commit ids and ETags; files are served from the cache, not copied
    ImportHf {
        /// Repos to import: `org/name` for a model, `datasets/org/name` for a dataset
        /// [default: every repo in the cache]
        repos: Vec<String>,
        /// The cache's hub folder [default: $HF_HUB_CACHE, else $HF_HOME/hub, else
        /// ~/.cache/huggingface/hub]
        #[arg(long, value_name = "DIR")]
        cache: Option<PathBuf>,
        /// Alias of the key to sign with [default: node]
        #[arg(long, value_name = "ALIAS")]
        key: Option<String>,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `seedbank man | man -l -`
    Man,
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
