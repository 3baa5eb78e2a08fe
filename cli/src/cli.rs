//! The command line: global options and one subcommand per operation.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node in the foreground until Ctrl-C or SIGTERM
    Daemon {
        /// Address of the control API (loopback unless config.toml allows otherwise)
        #[arg(long, value_name = "ADDR")]
        api_addr: Option<SocketAddr>,
    },
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
    /// Remove unpinned artifacts and free their blobs
    Gc,
    /// Re-hash every stored blob; exits non-zero if any is corrupt
    Verify,
    /// Show the node's id, version, data dir, store size and uptime
    Status,
}
