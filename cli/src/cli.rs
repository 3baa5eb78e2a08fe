//! The command line: global options and one subcommand per operation.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use libp2p::Multiaddr;

/// Parses a rate like `500000`, `512K`, `10M` or `1G` (1024-based) into bytes per second.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (number, multiplier) = match text.char_indices().last() {
        Some((i, 'K' | 'k')) => (&text[..i], 1u64 << 10),
        Some((i, 'M' | 'm')) => (&text[..i], 1 << 20),
        Some((i, 'G' | 'g')) => (&text[..i], 1 << 30),
        _ => (text, 1),
    };
    let value: u64 = number.parse().map_err(|_| {
        format!("{text:?} is not a rate: use bytes per second, e.g. 500000, 512K, 10M")
    })?;
    match value.checked_mul(multiplier) {
        Some(0) => Err("a rate must be at least 1 byte per second".into()),
        Some(rate) => Ok(rate),
        None => Err(format!("{text:?} is too large")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_rate;

    #[test]
    fn rates_take_binary_suffixes_and_refuse_junk() {
        assert_eq!(parse_rate("1000"), Ok(1000));
        assert_eq!(parse_rate("10M"), Ok(10 << 20));
        assert_eq!(parse_rate("2k"), Ok(2048));
        assert!(parse_rate("fast").is_err());
        assert!(parse_rate("0").is_err());
    }
}

/// Seedbank: share open AI models and datasets peer to peer, verified byte for byte.
#[derive(Debug, Parser)]
#[command(name = "seedbank", version, about)]
pub struct Cli {
    /// Data directory of the node [default: ~/.local/share/seedbank]
    #[arg(long, global = true, env = "SEEDBANK_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Print machine-readable JSON instead of text
    #[arg(long, global = true)]
    pub json: bool,

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

/// Flags of `seedbank daemon`; each wins over config.toml.
#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Address of the control API (loopback unless config.toml allows otherwise)
    #[arg(long, value_name = "ADDR")]
    pub api_addr: Option<SocketAddr>,
    /// Listen for peers here (repeatable) [default: TCP and QUIC on port 4150, all interfaces]
    #[arg(long, value_name = "MULTIADDR")]
    pub listen: Vec<Multiaddr>,
    /// Join the network through this peer, e.g. /ip4/192.0.2.1/tcp/4150/p2p/12D3Koo… (repeatable)
    #[arg(long, value_name = "MULTIADDR")]
    pub bootstrap: Vec<Multiaddr>,
    /// Do not look for peers on the local network with mDNS
    #[arg(long)]
    pub no_mdns: bool,
    /// Answer DHT queries even before this node knows it is reachable (servers, test networks)
    #[arg(long)]
    pub kad_server: bool,
    /// Upload limit for all peers together, bytes per second (suffixes K, M, G: 1024-based)
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub upload_limit: Option<u64>,
    /// Download limit for all peers together, bytes per second (suffixes K, M, G: 1024-based)
    #[arg(long, value_name = "RATE", value_parser = parse_rate)]
    pub download_limit: Option<u64>,
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
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node in the foreground until Ctrl-C or SIGTERM
    Daemon(DaemonArgs),
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
    /// Pin an artifact: keep it on disk through `seedbank gc`
    Pin {
        /// Content id, unique id prefix, name or name@revision
        artifact: String,
    },
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
        /// Content id (sb1…)
        artifact: String,
        /// Hand the fetch to the daemon and return at once (see `seedbank jobs`)
        #[arg(long, conflicts_with_all = ["cancel", "out"])]
        detach: bool,
        /// Cancel the running (or saved) fetch of this artifact
        #[arg(long, conflicts_with_all = ["include", "out"])]
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
}
