//! Whole simulated nodes: the node crate's [`Node`] (iroh-blobs store and sled metadata
//! in a directory of their own, blob provider, fetch scheduler) over a shaped in-memory
//! link, as the daemon runs it.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use libp2p::Multiaddr;
use rand::{RngExt, SeedableRng};
use seedbank_node::clock::Clock;
use seedbank_node::library::import::AddOptions;
use seedbank_node::node::{Node, NodeOptions};
use seedbank_node::progress::ProgressReporter;
use seedbank_node::{DataDir, Library};
use seedbank_protocol::{ArtifactKind, ContentId};

use crate::network::{node_setup, NodeProfile, SimNode};

/// A whole node and its network view.
#[derive(Clone)]
pub struct FullNode {
    /// The node.
    pub node: Node,
    /// Its network handle, peer id and address.
    pub sim: SimNode,
}

impl FullNode {
    /// Shuts the node down and takes it off the network for good.
    pub async fn leave(&self) -> Result<()> {
        self.node.shutdown().await?;
        self.sim.leave();
        Ok(())
    }
}

impl AsRef<SimNode> for FullNode {
    fn as_ref(&self) -> &SimNode {
        &self.sim
    }
}

/// Starts a whole node keeping its data in `dir`, bootstrapping from `bootstrap`;
/// `seed: false` makes it a node that only downloads.
pub async fn start_full_node(
    dir: &Path,
    bootstrap: &[Multiaddr],
    profile: NodeProfile,
    seed: bool,
) -> Result<FullNode> {
    let options = NodeOptions {
        seed,
        ..NodeOptions::default()
    };
    start_full_node_with(dir, bootstrap, profile, options).await
}

/// Starts a whole node as [`start_full_node`] does, with `options` of its own (a
/// preserver's budget and rounds, say).
pub async fn start_full_node_with(
    dir: &Path,
    bootstrap: &[Multiaddr],
    profile: NodeProfile,
    options: NodeOptions,
) -> Result<FullNode> {
    let setup = node_setup(bootstrap, profile)?;
    let data_dir = DataDir::new(dir);
    data_dir.create()?;
    let library = Library::open(data_dir, setup.peer.to_string(), Clock::system()).await?;
    let node = Node::start(
        library,
        setup.keypair,
        setup.config,
        setup.transport,
        options,
    )
    .await?;
    let sim = SimNode {
        handle: node.net().clone(),
        peer: setup.peer,
        address: setup.address,
        link: setup.link,
    };
    Ok(FullNode { node, sim })
}

/// Adds the file at `path` to `node` as a pinned artifact named `name`, copied into the
/// store or, with `reference`, kept in place; returns its root.
pub async fn add_pinned(
    node: &Node,
    path: &Path,
    kind: ArtifactKind,
    name: String,
    reference: bool,
) -> Result<ContentId> {
    let options = AddOptions {
        path: path.to_path_buf(),
        kind,
        name: Some(name),
        revision: None,
        licence: None,
        pin: true,
        reference,
        follow_symlinks: false,
        hf: None,
    };
    let summary = node.add(options, &mut ProgressReporter::silent()).await?;
    Ok(summary.id)
}

/// Writes `size` pseudo-random bytes (from `seed`) to `path`, a MiB at a time.
pub fn write_random_file(path: &Path, size: u64, seed: u64) -> Result<()> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
    );
    let mut block = vec![0u8; 1024 * 1024];
    let mut left = size;
    while left > 0 {
        rng.fill(&mut block[..]);
        let n = left.min(block.len() as u64) as usize;
        file.write_all(&block[..n])?;
        left -= n as u64;
    }
    file.flush()?;
    Ok(())
}
