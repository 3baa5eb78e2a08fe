//! Starting simulated nodes: the real network event loop over `/memory/N` addresses.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use libp2p::core::transport::{MemoryTransport, Transport};
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::{noise, yamux, Multiaddr, PeerId};
use seedbank_node::net::{start_network, NetConfig, NetHandle, NetTransport};

use crate::link::{Link, LinkShape};

/// Memory "ports" are process-wide; every node takes a fresh one.
static NEXT_MEMORY_PORT: AtomicU64 = AtomicU64::new(1);

/// Idle connections close after this long: keeps a thousand nodes' connection count,
/// and memory, down (about 3 MB a node with many open connections).
pub const SIM_IDLE_TIMEOUT_SECS: u64 = 5;

/// One simulated node.
pub struct SimNode {
    /// Handle to its network event loop; dropping the last one stops the node.
    pub handle: NetHandle,
    /// Its peer id.
    pub peer: PeerId,
    /// Its address, with `/p2p/<id>`, for others to bootstrap from.
    pub address: Multiaddr,
}

/// What a simulated node is started with: its key, a fresh memory address, its network
/// settings and its shaped in-memory transport.
pub struct NodeSetup {
    /// The node's key.
    pub keypair: Keypair,
    /// Its peer id.
    pub peer: PeerId,
    /// Its address, with `/p2p/<id>`.
    pub address: Multiaddr,
    /// Network settings: memory listener, bootstrap peers, no mDNS, server mode, short idle.
    pub config: NetConfig,
    /// The in-memory transport behind the node's link, with noise and yamux on top.
    pub transport: NetTransport,
}

/// Prepares a node that bootstraps from `bootstrap` (empty for the first node) behind a
/// link of the given shape.
pub fn node_setup(bootstrap: &[Multiaddr], shape: LinkShape) -> Result<NodeSetup> {
    let keypair = Keypair::generate_ed25519();
    let peer = PeerId::from(keypair.public());
    let port = NEXT_MEMORY_PORT.fetch_add(1, Ordering::Relaxed);
    let listen: Multiaddr = format!("/memory/{port}").parse()?;
    let config = NetConfig {
        listen: vec![listen.clone()],
        bootstrap: bootstrap.to_vec(),
        mdns: false,
        kad_server: true,
        idle_timeout_secs: SIM_IDLE_TIMEOUT_SECS,
        ..NetConfig::default()
    };
    let link = Link::new(shape);
    let transport = NetTransport::Custom(Box::new(move |key: &Keypair| {
        MemoryTransport::default()
            .map(move |connection, _| link.shape(connection))
            .upgrade(Version::V1)
            .authenticate(noise::Config::new(key).expect("ed25519 keys always make a noise config"))
            .multiplex(yamux::Config::default())
            .timeout(Duration::from_secs(20))
            .boxed()
    }));
    Ok(NodeSetup {
        keypair,
        peer,
        address: listen.with(libp2p::multiaddr::Protocol::P2p(peer)),
        config,
        transport,
    })
}

/// Starts a network-only node (DHT, no store) that bootstraps from `bootstrap`.
pub async fn start_node(bootstrap: &[Multiaddr], shape: LinkShape) -> Result<SimNode> {
    let setup = node_setup(bootstrap, shape)?;
    let handle = start_network(setup.keypair, setup.config, setup.transport)
        .await
        .context("starting a simulated node")?;
    Ok(SimNode {
        handle,
        peer: setup.peer,
        address: setup.address,
    })
}

/// Starts `count` nodes, each bootstrapping from the first and from one random earlier
/// node, `batch` at a time with a pause between batches (joining all at once swamps 2 cores).
pub async fn start_nodes(
    count: usize,
    shape: LinkShape,
    batch: usize,
    pause: Duration,
    rng: &mut impl rand::RngExt,
) -> Result<Vec<SimNode>> {
    let mut nodes: Vec<SimNode> = Vec::with_capacity(count);
    for i in 0..count {
        let mut bootstrap = Vec::new();
        if let Some(first) = nodes.first() {
            bootstrap.push(first.address.clone());
            let other = &nodes[rng.random_range(0..nodes.len())];
            if other.peer != first.peer {
                bootstrap.push(other.address.clone());
            }
        }
        nodes.push(start_node(&bootstrap, shape).await?);
        if (i + 1) % batch.max(1) == 0 {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(nodes)
}
