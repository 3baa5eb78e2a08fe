//! The libp2p behaviours a node runs, and their limits.

use std::num::NonZeroUsize;
use std::time::Duration;

use libp2p::identity::Keypair;
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{autonat, connection_limits, dcutr, identify, kad, mdns, ping, relay, upnp, PeerId};

use super::nat_config::{NatFeatures, RelayService};
use super::pending_guard::PendingGuard;
use super::provider_addresses::ProviderAddresses;
use super::provider_store::ProviderStore;
use super::{NetConfig, IDENTIFY_PROTOCOL_VERSION, KAD_PROTOCOL};

/// Largest DHT message accepted, in bytes. Provider lists and small records fit easily;
/// a peer sending more is trying to make us allocate.
pub const MAX_DHT_PACKET_BYTES: usize = 64 * 1024;
/// Provider records live this long on other nodes, unless re-announced.
pub const PROVIDER_RECORD_TTL: Duration = Duration::from_secs(48 * 3600);
/// Value records (name records, catalogs, directories) live this long on other nodes
/// unless put again; publishers and pinners re-put them well before.
pub const VALUE_RECORD_TTL: Duration = Duration::from_secs(48 * 3600);
/// A DHT query gives up after this long.
pub const DHT_QUERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Everything the swarm runs.
#[derive(NetworkBehaviour)]
pub struct NodeBehaviour {
    /// Caps handshakes per IP address before anything else sees a connection.
    pub pending: PendingGuard,
    /// Caps connections before any other behaviour sees them.
    pub limits: connection_limits::Behaviour,
    /// The DHT: peers and provider records.
    pub kad: kad::Behaviour<ProviderStore>,
    /// Learns peers' listen addresses and protocols (fed into Kademlia).
    pub identify: identify::Behaviour,
    /// Keeps connections alive and measures round trips.
    pub ping: ping::Behaviour,
    /// Finds peers on the local network.
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    /// Asks other nodes to dial this node's address candidates back (AutoNAT v2).
    pub autonat: Toggle<autonat::v2::client::Behaviour>,
    /// Dials other nodes' address candidates back for them (AutoNAT v2).
    pub autonat_server: Toggle<autonat::v2::server::Behaviour>,
    /// Maps listen ports on a home router (UPnP IGD).
    pub upnp: Toggle<upnp::tokio::Behaviour>,
    /// Relays for nodes behind NAT (circuit relay v2), within [`super::nat_config::RelayLimits`].
    pub relay_server: Toggle<relay::Behaviour>,
    /// Reaches peers behind NAT through relays.
    pub relay: Toggle<relay::client::Behaviour>,
    /// Upgrades relayed connections to direct ones.
    pub dcutr: Toggle<dcutr::Behaviour>,
    /// Raw substreams for the blob protocol.
    pub stream: libp2p_stream::Behaviour,
    /// Addresses of providers no routing table holds (behind NAT), for dialling them.
    pub provider_addresses: ProviderAddresses,
}

impl NodeBehaviour {
    /// Builds the behaviours from the node key and config.
    pub fn new(
        key: &Keypair,
        config: &NetConfig,
        relay: Option<relay::client::Behaviour>,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let peer_id = PeerId::from(key.public());
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(config.max_connections_per_peer))
            .with_max_pending_incoming(Some(config.max_pending_incoming));

        let mut kad_config = kad::Config::new(KAD_PROTOCOL);
        kad_config
            .set_query_timeout(DHT_QUERY_TIMEOUT)
            .set_max_packet_size(MAX_DHT_PACKET_BYTES)
            .set_provider_record_ttl(Some(PROVIDER_RECORD_TTL))
            .set_record_ttl(Some(VALUE_RECORD_TTL))
            // Publishers and pinners re-put their records on a schedule kept in sled.
            .set_publication_interval(None)
            // Re-announcing is scheduled by the node itself and survives restarts.
            .set_provider_publication_interval(None)
            // The event loop bootstraps on first connection and on its own timer.
            .set_periodic_bootstrap_interval(None)
            // Records peers send are checked and counted by the event loop before they
            // are stored (see `provider_store`).
            .set_record_filtering(kad::StoreInserts::FilterBoth);
        let mut kad = kad::Behaviour::with_config(peer_id, ProviderStore::new(peer_id), kad_config);
        if config.kad_server {
            kad.set_mode(Some(kad::Mode::Server));
        }

        // Peers learn only the addresses this node knows others can use (its external
        // addresses), never every interface it listens on.
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_PROTOCOL_VERSION.into(), key.public())
                .with_cache_size(NonZeroUsize::new(256).map_or(0, NonZeroUsize::get))
                .with_hide_listen_addrs(true),
        );
        let mdns = if config.mdns {
            Some(mdns::tokio::Behaviour::new(
                mdns::Config::default(),
                peer_id,
            )?)
        } else {
            None
        };
        // Address checks, port mapping and relaying are for real networks: the simulator's
        // in-memory transport (no relay client) has none of them.
        let features = NatFeatures::of(config, relay.is_some());
        let dcutr = relay.as_ref().map(|_| dcutr::Behaviour::new(peer_id));
        let upnp = features.port_mapping.then(upnp::tokio::Behaviour::default);
        let relay_server = (features.relay_service != RelayService::Off).then(|| {
            let mut server = relay::Behaviour::new(peer_id, config.relay_limits.to_relay_config());
            // `auto` is decided by this node's reachability (see `nat`), not by libp2p's
            // rule that any confirmed address (loopback included) turns it on.
            server.set_status(Some(match features.relay_service {
                RelayService::On => relay::Status::Enable,
                _ => relay::Status::Disable,
            }));
            server
        });
        let autonat = features
            .real_network
            .then(autonat::v2::client::Behaviour::default);
        let autonat_server = features
            .real_network
            .then(autonat::v2::server::Behaviour::default);
        Ok(Self {
            pending: PendingGuard::default(),
            limits: connection_limits::Behaviour::new(limits),
            kad,
            identify,
            ping: ping::Behaviour::default(),
            mdns: mdns.into(),
            autonat: autonat.into(),
            autonat_server: autonat_server.into(),
            upnp: upnp.into(),
            relay_server: relay_server.into(),
            relay: relay.into(),
            dcutr: dcutr.into(),
            stream: libp2p_stream::Behaviour::new(),
            provider_addresses: ProviderAddresses::default(),
        })
    }
}
