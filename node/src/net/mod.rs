//! The peer-to-peer network: one task owns the libp2p `Swarm` ([`event_loop`]); everyone
//! else talks to it through a cloneable [`NetHandle`]. File bytes never pass through
//! that task: they move over `libp2p-stream` substreams opened with the handle's
//! [`libp2p_stream::Control`] (see `crate::transfer`).
//!
//! The transport is chosen by the caller ([`NetTransport`]), so the simulator can run
//! this same code over an in-memory transport.

mod address_policy;
mod behaviour;
mod event_loop;
mod handle;
mod peer_ips;
mod pending_guard;
pub mod provider_store;
mod tally;

use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::identity::Keypair;
use libp2p::{noise, yamux, Multiaddr, PeerId, StreamProtocol, SwarmBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use address_policy::AddressPolicy;
pub use handle::{NetHandle, NetStatus, PeerInfo, ProviderLookup};
pub use peer_ips::{ip_of, PeerIps};

use crate::error::{NodeError, NodeResult};

/// The Kademlia protocol name: a private DHT, never the public IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/seedbank/kad/1.0.0");
/// The blob transfer protocol (iroh-blobs get/provide over a libp2p substream).
pub const BLOB_PROTOCOL: StreamProtocol = StreamProtocol::new("/seedbank/blobs/1");
/// The identify protocol version string.
pub const IDENTIFY_PROTOCOL_VERSION: &str = "/seedbank/id/1.0.0";

/// Default port for TCP and QUIC listeners.
pub const DEFAULT_P2P_PORT: u16 = 4150;
/// Longest a connection may take from dial or accept to an established, authenticated
/// and multiplexed connection: handshakes on real links take well under a second, and a
/// silent connection holds a pending slot no longer than this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// Commands queued for the event loop before callers wait: enough for bursts of
/// announcements, small enough that a stuck loop is noticed.
const COMMAND_BUFFER: usize = 256;

/// Network settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetConfig {
    /// Addresses to listen on.
    pub listen: Vec<Multiaddr>,
    /// Peers to join the network through (each with a `/p2p/<peer id>` suffix).
    pub bootstrap: Vec<Multiaddr>,
    /// Find peers on the local network with mDNS.
    pub mdns: bool,
    /// Answer DHT queries even before an external address is confirmed (test networks, servers).
    pub kad_server: bool,
    /// Close connections idle this long, in seconds.
    pub idle_timeout_secs: u64,
    /// Refresh the routing table from the network this often, in seconds.
    pub bootstrap_interval_secs: u64,
    /// Most established connections in all.
    pub max_connections: u32,
    /// Most established connections with one peer.
    pub max_connections_per_peer: u32,
    /// Most connections being set up by remote peers at once.
    pub max_pending_incoming: u32,
}

impl Default for NetConfig {
    fn default() -> Self {
        #[allow(clippy::unwrap_used)]
        let listen = vec![
            format!("/ip4/0.0.0.0/tcp/{DEFAULT_P2P_PORT}")
                .parse()
                .unwrap(),
            format!("/ip4/0.0.0.0/udp/{DEFAULT_P2P_PORT}/quic-v1")
                .parse()
                .unwrap(),
        ];
        Self {
            listen,
            bootstrap: Vec::new(),
            mdns: true,
            kad_server: false,
            idle_timeout_secs: 60,
            bootstrap_interval_secs: 5 * 60,
            max_connections: 512,
            max_connections_per_peer: 4,
            max_pending_incoming: 64,
        }
    }
}

/// Builds a transport from the node key.
pub type TransportBuilder = Box<dyn FnOnce(&Keypair) -> Boxed<(PeerId, StreamMuxerBox)> + Send>;

/// How the swarm reaches other peers.
pub enum NetTransport {
    /// TCP (noise, yamux), QUIC, and the relay client: what the daemon uses.
    Default,
    /// A transport built by the caller from the node key, e.g. in-memory for the simulator.
    Custom(TransportBuilder),
}

impl std::fmt::Debug for NetTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetTransport::Default => f.write_str("NetTransport::Default"),
            NetTransport::Custom(_) => f.write_str("NetTransport::Custom"),
        }
    }
}

/// Starts the network: builds the swarm, listens, dials bootstrap peers, and spawns the
/// event loop. Returns the handle to it.
pub async fn start_network(
    keypair: Keypair,
    config: NetConfig,
    transport: NetTransport,
) -> NodeResult<NetHandle> {
    let local_peer = PeerId::from(keypair.public());
    let swarm_config = |c: libp2p::swarm::Config| {
        c.with_idle_connection_timeout(Duration::from_secs(config.idle_timeout_secs))
    };
    let net_error =
        |what: &str, e: &dyn std::fmt::Display| NodeError::BadRequest(format!("{what}: {e}"));
    let mut swarm = match transport {
        NetTransport::Default => SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                libp2p::tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| net_error("setting up TCP", &e))?
            .with_quic()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| net_error("setting up the relay client", &e))?
            .with_behaviour(|key, relay| behaviour::NodeBehaviour::new(key, &config, Some(relay)))
            .map_err(|e| net_error("setting up behaviours", &e))?
            .with_swarm_config(swarm_config)
            .with_connection_timeout(HANDSHAKE_TIMEOUT)
            .build(),
        NetTransport::Custom(build) => SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_other_transport(|key| build(key))
            .map_err(|e| net_error("setting up the transport", &e))?
            .with_behaviour(|key| behaviour::NodeBehaviour::new(key, &config, None))
            .map_err(|e| net_error("setting up behaviours", &e))?
            .with_swarm_config(swarm_config)
            .with_connection_timeout(HANDSHAKE_TIMEOUT)
            .build(),
    };
    for address in &config.listen {
        swarm
            .listen_on(address.clone())
            .map_err(|e| net_error(&format!("listening on {address}"), &e))?;
    }
    let control = swarm.behaviour().stream.new_control();
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_BUFFER);
    let peer_ips = PeerIps::default();
    let event_loop = event_loop::EventLoop::new(swarm, commands_rx, &config, peer_ips.clone())?;
    tokio::spawn(event_loop.run());
    Ok(NetHandle::new(local_peer, commands_tx, control, peer_ips))
}
