//! The peer-to-peer network: one task owns the libp2p `Swarm` ([`event_loop`]); everyone
//! else talks to it through a cloneable [`NetHandle`]. File bytes never pass through
//! that task: they move over `libp2p-stream` substreams opened with the handle's
//! [`libp2p_stream::Control`] (see the transfer module).
//!
//! The transport is chosen by the caller ([`NetTransport`]), so the simulator can run
//! this same code over an in-memory transport.

mod address_policy;
mod behaviour;
mod connection_view;
mod event_loop;
mod handle;
pub mod ip_network;
mod make_way;
mod nat;
pub mod nat_config;
mod peer_ips;
mod pending_guard;
mod pending_lookup;
mod provider_addresses;
pub mod provider_store;
mod redial;
mod relay_slots;
mod relayed_ledger;
mod routing_table;
mod tally;
pub mod value_store;

use std::time::Duration;

use libp2p::core::muxing::StreamMuxerBox;
use libp2p::core::transport::Boxed;
use libp2p::identity::Keypair;
use libp2p::{noise, yamux, Multiaddr, PeerId, StreamProtocol, SwarmBuilder};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

pub use address_policy::{is_link_local, AddressPolicy};
pub use event_loop::provider_key;
pub use handle::{
    split_peer_address, without_peer_id, NetHandle, NetStatus, PeerInfo, ProviderLookup,
    ProvidersSoFar, RecordLookup, RelayedTransfers, Route,
};
pub use peer_ips::{ip_of, is_relayed, PeerIps};

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
    #[serde(with = "crate::units::one_or_many")]
    pub listen: Vec<Multiaddr>,
    /// Peers to join the network through (each with a `/p2p/<peer id>` suffix).
    #[serde(with = "crate::units::one_or_many")]
    pub bootstrap: Vec<Multiaddr>,
    /// Find peers on the local network with mDNS.
    pub mdns: bool,
    /// Answer DHT queries even before an external address is confirmed (test networks, servers).
    pub kad_server: bool,
    /// Close connections idle this long (`60s`).
    #[serde(with = "crate::units::duration_text")]
    pub idle_timeout: Duration,
    /// Refresh the routing table from the network this often (`5m`).
    #[serde(with = "crate::units::duration_text")]
    pub bootstrap_interval: Duration,
    /// Most established connections in all.
    pub max_connections: u32,
    /// Most established connections with one peer.
    pub max_connections_per_peer: u32,
    /// Most connections being set up by remote peers at once.
    pub max_pending_incoming: u32,
    /// Map the listen ports on the home router (UPnP IGD) when listening beyond
    /// loopback; never on a loopback-only node.
    pub port_mapping: bool,
    /// Relay for nodes behind NAT: `auto` (once this node is public), `on` or `off`.
    pub relay_service: nat_config::RelayService,
    /// What the relay service gives others.
    pub relay_limits: nat_config::RelayLimits,
    /// Reserve slots on relays found through the DHT while this node is behind NAT.
    pub use_relays: bool,
    /// How long a transfer waits for a direct connection (hole punching) to a peer it
    /// reaches only through a relay (`5s`).
    #[serde(with = "crate::units::duration_text")]
    pub direct_connection_wait: Duration,
    /// Most bytes fetched from one peer over relays in an hour when no direct connection came
    /// (`0`: none); relays cut circuits at their own limit too.
    pub relayed_transfer_cap: crate::units::ByteSize,
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
            idle_timeout: Duration::from_secs(60),
            bootstrap_interval: Duration::from_secs(5 * 60),
            max_connections: 512,
            max_connections_per_peer: 4,
            max_pending_incoming: 64,
            port_mapping: true,
            relay_service: nat_config::RelayService::Auto,
            relay_limits: nat_config::RelayLimits::default(),
            use_relays: true,
            direct_connection_wait: Duration::from_secs(5),
            relayed_transfer_cap: crate::units::ByteSize::new(1 << 20),
        }
    }
}

/// Whether any of `listen` reaches beyond this machine (a wildcard address does).
pub fn listens_beyond_loopback(listen: &[Multiaddr]) -> bool {
    listen
        .iter()
        .any(|address| ip_of(address).is_some_and(|ip| !ip.is_loopback()))
}

/// Why listening on `address` failed, in words that say what to do.
fn listen_error(address: &Multiaddr, error: &libp2p::TransportError<std::io::Error>) -> NodeError {
    use libp2p::multiaddr::Protocol;
    let port = address.iter().find_map(|p| match p {
        Protocol::Tcp(port) => Some(format!("TCP port {port}")),
        Protocol::Udp(port) => Some(format!("UDP port {port}")),
        _ => None,
    });
    let in_use = match error {
        libp2p::TransportError::Other(e) => is_address_in_use(e),
        libp2p::TransportError::MultiaddrNotSupported(_) => false,
    };
    if in_use {
        let port = port.unwrap_or_else(|| "the port".into());
        return NodeError::InUse(format!(
            "cannot listen on {address}: {port} is already in use, probably by another seedbank daemon; \
             stop it, or listen elsewhere with --listen (e.g. --listen /ip4/0.0.0.0/tcp/4151 --listen /ip4/0.0.0.0/udp/4151/quic-v1) or [net] listen in config.toml"
        ));
    }
    let mut reason = crate::error::with_causes(error);
    if reason.trim().is_empty() {
        reason = "the transport refused it".into();
    }
    NodeError::BadRequest(format!(
        "cannot listen on {address}: {reason} (listen addresses look like /ip4/0.0.0.0/tcp/4150 or /ip4/0.0.0.0/udp/4150/quic-v1)"
    ))
}

/// Whether an I/O error, or any error it wraps, says the address is taken. An
/// `io::Error` made from another error hides that error from `source()`, so the wrapped
/// error is looked at through `get_ref()` too.
fn is_address_in_use(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut pending = vec![error];
    let mut looked_at = 0;
    while let Some(error) = pending.pop() {
        looked_at += 1;
        if looked_at > 32 {
            break;
        }
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::AddrInUse {
                return true;
            }
            if let Some(inner) = io.get_ref() {
                pending.push(inner);
            }
        }
        if let Some(source) = error.source() {
            pending.push(source);
        }
    }
    false
}

/// Refuses a TCP listen address whose port another process listens on. libp2p's TCP
/// listeners set `SO_REUSEPORT`, so a second daemon of the same user would otherwise
/// share the port silently and receive half of the first one's connections.
fn check_tcp_port_free(address: &Multiaddr) -> NodeResult<()> {
    use libp2p::multiaddr::Protocol;
    let mut parts = address.iter();
    let ip: std::net::IpAddr = match parts.next() {
        Some(Protocol::Ip4(ip)) => ip.into(),
        Some(Protocol::Ip6(ip)) => ip.into(),
        _ => return Ok(()),
    };
    let (Some(Protocol::Tcp(port)), None) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    if port == 0 {
        return Ok(());
    }
    match std::net::TcpListener::bind((ip, port)) {
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(listen_error(address, &libp2p::TransportError::Other(e)))
        }
        _ => Ok(()),
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
    let swarm_config =
        |c: libp2p::swarm::Config| c.with_idle_connection_timeout(config.idle_timeout);
    let net_error =
        |what: &str, e: &dyn std::fmt::Display| NodeError::BadRequest(format!("{what}: {e}"));
    let real_network = matches!(transport, NetTransport::Default);
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
        check_tcp_port_free(address)?;
    }
    let mut listeners = Vec::new();
    for address in &config.listen {
        let listener = swarm
            .listen_on(address.clone())
            .map_err(|e| listen_error(address, &e))?;
        listeners.push(listener);
    }
    let control = swarm.behaviour().stream.new_control();
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_BUFFER);
    let peer_ips = PeerIps::default();
    let mut event_loop =
        event_loop::EventLoop::new(swarm, commands_rx, &config, peer_ips.clone(), real_network)?;
    event_loop.own_listeners(listeners);
    tokio::spawn(tracing::Instrument::instrument(
        event_loop.run(),
        tracing::debug_span!("net"),
    ));
    let relayed = handle::RelayedTransfers {
        direct_wait: config.direct_connection_wait,
        cap: config.relayed_transfer_cap.bytes(),
    };
    Ok(NetHandle::new(
        local_peer,
        commands_tx,
        control,
        peer_ips,
        relayed,
    ))
}
