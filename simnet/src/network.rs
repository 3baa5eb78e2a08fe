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

/// Idle connections close after this long by default. Short keeps a thousand nodes'
/// connection count, and memory, down; too short and every DHT request pays for a new
/// connection handshake, which is what a 2-core machine runs out of first.
pub const DEFAULT_IDLE_SECS: u64 = 10;

/// Routing-table refreshes in the simulator: one an hour instead of the daemon's every
/// 5 minutes. A big run takes longer than 5 minutes, and a thousand nodes refreshing
/// on the daemon's schedule keep 2 cores busy with nothing else; simulated time is
/// compressed anyway.
pub const SIM_BOOTSTRAP_INTERVAL_SECS: u64 = 3600;

/// One simulated node.
#[derive(Clone)]
pub struct SimNode {
    /// Handle to its network event loop; dropping the last one stops the node.
    pub handle: NetHandle,
    /// Its peer id.
    pub peer: PeerId,
    /// Its address, with `/p2p/<id>`, for others to bootstrap from.
    pub address: Multiaddr,
    /// Its access link; cutting it takes the node off the network.
    pub link: Link,
}

impl SimNode {
    /// Takes the node off the network for good: its link is cut, so peers that ask it
    /// anything get no answer, as when a machine goes away.
    pub fn leave(&self) {
        self.link.cut();
    }
}

impl AsRef<SimNode> for SimNode {
    fn as_ref(&self) -> &SimNode {
        self
    }
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
    /// The node's link, to cut when it leaves.
    pub link: Link,
}

/// How every simulated node is set up.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct NodeProfile {
    /// The node's access link.
    pub link: LinkShape,
    /// Seconds before an idle connection closes.
    pub idle_secs: u64,
}

impl NodeProfile {
    /// Nodes behind `link` with the default idle timeout.
    pub fn new(link: LinkShape) -> Self {
        Self {
            link,
            idle_secs: DEFAULT_IDLE_SECS,
        }
    }
}

/// Prepares a node that bootstraps from `bootstrap` (empty for the first node).
pub fn node_setup(bootstrap: &[Multiaddr], profile: NodeProfile) -> Result<NodeSetup> {
    let keypair = Keypair::generate_ed25519();
    let peer = PeerId::from(keypair.public());
    let port = NEXT_MEMORY_PORT.fetch_add(1, Ordering::Relaxed);
    let listen: Multiaddr = format!("/memory/{port}").parse()?;
    let config = NetConfig {
        listen: vec![listen.clone()],
        bootstrap: bootstrap.to_vec(),
        mdns: false,
        kad_server: true,
        idle_timeout: std::time::Duration::from_secs(profile.idle_secs),
        bootstrap_interval: std::time::Duration::from_secs(SIM_BOOTSTRAP_INTERVAL_SECS),
        ..NetConfig::default()
    };
    let link = Link::new(profile.link);
    let shaping = link.clone();
    let transport = NetTransport::Custom(Box::new(move |key: &Keypair| {
        MemoryTransport::default()
            .map(move |connection, _| shaping.shape(connection))
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
        link,
    })
}

/// Starts a network-only node (DHT, no store) that bootstraps from `bootstrap`.
pub async fn start_node(bootstrap: &[Multiaddr], profile: NodeProfile) -> Result<SimNode> {
    let setup = node_setup(bootstrap, profile)?;
    let handle = start_network(setup.keypair, setup.config, setup.transport)
        .await
        .context("starting a simulated node")?;
    Ok(SimNode {
        handle,
        peer: setup.peer,
        address: setup.address,
        link: setup.link,
    })
}
