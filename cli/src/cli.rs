//! The command line: global options and one subcommand per operation.
//!
//! This is the whole clap tree; the arguments of the larger subcommands are in
//! [`crate::args`], where the command modules read them. The dispatcher (`dispatch.rs`)
//! matches the parsed [`Command`].

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::args::{
    AddArgs, CollectionCommand, DaemonArgs, DaemonRunArgs, DenylistCommand, ExportArgs, FetchArgs,
    ImportHfArgs, KeyCommand, MirrorHfArgs, PublishArgs, TrustCommand,
};

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

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node in the foreground until Ctrl-C or SIGTERM
    Daemon(DaemonRunArgs),
    /// Print the settings a daemon started now (with these flags) would use, and where
    /// each comes from: default, config.toml, a SEEDBANK_* variable or the command line
    Config(DaemonArgs),
    /// Add a file or directory as an artifact
    Add(AddArgs),
    /// List the artifacts this node holds
    Ls,
    /// Show an artifact's manifest: files, sizes, hashes, licence
    Show {
        /// Content id, unique id prefix, name or name@revision
        artifact: String,
    },
    /// Write an artifact's files into a directory, verified
    Export(ExportArgs),
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
    /// how many proved they hold it by answering a random 16 KiB range that verified,
    /// counted once per network (IPv4 /24, IPv6 /48) with the peers beside
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
    Collection(CollectionCommand),
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
    Fetch(FetchArgs),
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
    Denylist(DenylistCommand),
    /// Sign an artifact under a name and announce it: `PUBLISHER/NAME` then resolves to
    /// it on every node, and a bare name to its latest revision
    Publish(PublishArgs),
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
    MirrorHf(MirrorHfArgs),
    /// Publish the repos of a local Hugging Face cache, one revision per snapshot, keeping
    /// the hub's commit ids and ETags; files are served from the cache, not copied
    ImportHf(ImportHfArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), e.g. `seedbank man | man -l -`
    Man,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_clap_tree_is_consistent() {
        // Names in `conflicts_with`, `requires` and the like are checked here, not at
        // compile time: one left behind by a moved argument would fail only when used.
        super::Cli::command().debug_assert();
    }
}
