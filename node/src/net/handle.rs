//! The caller's side of the network: a cloneable handle that sends commands to the
//! event loop, each with a oneshot reply.

use libp2p::{Multiaddr, PeerId};
use seedbank_protocol::ContentId;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};

use super::relayed_ledger::RelayedLedger;
use super::PeerIps;
use crate::error::{NodeError, NodeResult};

/// A command for the event loop.
#[derive(Debug)]
pub enum NetCommand {
    /// Announce that this node provides `root`.
    StartProviding {
        /// The artifact.
        root: ContentId,
        /// Answered once the first replicas stored the record (or the attempt failed).
        reply: oneshot::Sender<NodeResult<()>>,
    },
    /// Stop announcing `root`.
    StopProviding {
        /// The artifact.
        root: ContentId,
    },
    /// Ask the DHT who provides `root`.
    FindProviders {
        /// The artifact.
        root: ContentId,
        /// Providers other than this node, and how the lookup went.
        reply: oneshot::Sender<ProviderLookup>,
    },
    /// Ask the DHT who provides `root`, reporting providers as they turn up; the lookup
    /// ends early once nobody watches.
    WatchProviders {
        /// The artifact.
        root: ContentId,
        /// Providers other than this node found so far, and whether the lookup ended.
        found: watch::Sender<ProvidersSoFar>,
    },
    /// The providers of `root` this node's own DHT store lists (no network request).
    StoredProviders {
        /// The artifact.
        root: ContentId,
        /// Their peer ids, this node's own record included.
        reply: oneshot::Sender<Vec<PeerId>>,
    },
    /// Store a signed value record in the DHT (and locally).
    PutRecord {
        /// Its DHT key.
        key: [u8; 32],
        /// Its encoded bytes.
        value: Vec<u8>,
        /// Answered with how many peers stored it (0 on a lone node).
        reply: oneshot::Sender<NodeResult<u32>>,
    },
    /// Read every value record the DHT (and this node) holds under `key`.
    GetRecords {
        /// The DHT key.
        key: [u8; 32],
        /// The values found, unchecked, and how many peers answered.
        reply: oneshot::Sender<RecordLookup>,
    },
    /// Connected peers.
    Peers {
        /// Their ids and addresses.
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    /// Stop listening (so the home router's port mappings are removed) before the
    /// daemon exits; answered once that had its chance.
    StopListening {
        /// Answered when done.
        reply: oneshot::Sender<()>,
    },
    /// Listen addresses and DHT state.
    Status {
        /// The status.
        reply: oneshot::Sender<NetStatus>,
    },
}

/// The outcome of a provider lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProviderLookup {
    /// Providers other than this node.
    pub providers: Vec<PeerId>,
    /// DHT peers that had answered when the first provider turned up (0: known locally);
    /// `None` if none did.
    pub requests_to_first: Option<u32>,
    /// DHT peers that answered in all.
    pub requests: u32,
}

/// A provider lookup watched while it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProvidersSoFar {
    /// Providers other than this node found so far.
    pub providers: Vec<PeerId>,
    /// Whether the lookup has ended (nothing more will turn up).
    pub finished: bool,
}

/// The outcome of a value-record lookup. The values are as peers sent them: the
/// caller checks each one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordLookup {
    /// Distinct values found, this node's own copy first if it holds one.
    pub values: Vec<Vec<u8>>,
    /// How many other peers sent each of `values` (this node's own copy not counted).
    pub copies: Vec<u32>,
    /// DHT peers that answered.
    pub peers_answered: u32,
}

/// A connected peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// Its id.
    pub peer: String,
    /// The addresses we are connected to it on.
    pub addresses: Vec<String>,
}

/// The network's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetStatus {
    /// Where this node listens.
    pub listen_addresses: Vec<String>,
    /// Addresses others can reach this node on, as far as it knows.
    pub external_addresses: Vec<String>,
    /// Peers in the DHT routing table.
    pub routing_table_size: u64,
    /// Peers connected now.
    pub connected_peers: u64,
    /// DHT queries this node has under way (lookups, announcements, bootstraps).
    pub dht_queries: u64,
    /// DHT queries since start, counted at their first result.
    pub dht_queries_started: u64,
    /// Whether other nodes can reach this one, and why.
    pub reachability: seedbank_protocol::reachability_api::ReachabilityStatus,
}

/// How transfers treat a peer reached only through relays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayedTransfers {
    /// How long to wait for hole punching to bring a direct connection.
    pub direct_wait: std::time::Duration,
    /// Most bytes fetched from one peer over relays in an hour, whatever the circuits.
    pub cap: u64,
}

/// How a stream to a peer will run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Directly (or the peer is not connected yet).
    Direct,
    /// Through a relay, within [`RelayedTransfers::cap`].
    Relayed,
}

/// Cloneable handle to the network event loop.
#[derive(Clone)]
pub struct NetHandle {
    local_peer: PeerId,
    commands: mpsc::Sender<NetCommand>,
    control: libp2p_stream::Control,
    peer_ips: PeerIps,
    relayed: RelayedTransfers,
    relayed_bytes: RelayedLedger,
}

impl std::fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetHandle")
            .field("local_peer", &self.local_peer)
            .finish()
    }
}

fn stopped() -> NodeError {
    NodeError::NetworkStopped
}

impl NetHandle {
    pub(super) fn new(
        local_peer: PeerId,
        commands: mpsc::Sender<NetCommand>,
        control: libp2p_stream::Control,
        peer_ips: PeerIps,
        relayed: RelayedTransfers,
    ) -> Self {
        Self {
            local_peer,
            commands,
            control,
            peer_ips,
            relayed,
            relayed_bytes: RelayedLedger::default(),
        }
    }

    /// How a transfer from `peer` may run now. A peer reached only through relays is
    /// given [`RelayedTransfers::direct_wait`] for hole punching to bring a direct
    /// connection; without one, it is used through the relay only while the bytes
    /// fetched from it that way stay under [`RelayedTransfers::cap`]. The error says why
    /// not, in words for the user.
    pub async fn route_to(&self, peer: &PeerId) -> Result<Route, String> {
        if !self.peer_ips.relayed_only(peer) {
            return Ok(Route::Direct);
        }
        let deadline = tokio::time::Instant::now() + self.relayed.direct_wait;
        while tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if !self.peer_ips.relayed_only(peer) {
                return Ok(Route::Direct);
            }
        }
        if self.relayed_bytes.bytes(peer, std::time::Instant::now()) < self.relayed.cap {
            return Ok(Route::Relayed);
        }
        Err(format!(
            "reachable only through a relay: hole punching brought no direct connection within {} s, \
             and transfers over relays stop at {} bytes per peer an hour (net.relayed_transfer_cap)",
            self.relayed.direct_wait.as_secs_f32(),
            self.relayed.cap
        ))
    }

    /// Counts `bytes` fetched from `peer` through a relay.
    pub fn add_relayed_bytes(&self, peer: &PeerId, bytes: u64) {
        self.relayed_bytes
            .add(*peer, bytes, std::time::Instant::now());
    }

    /// Whether `peer` is connected only through relays.
    pub fn relayed_only(&self, peer: &PeerId) -> bool {
        self.peer_ips.relayed_only(peer)
    }

    /// Waits (up to a second) until the event loop has recorded a connection to `peer`:
    /// a stream can open on a new connection before the loop has seen it. Returns
    /// whether it did.
    pub async fn settled_connection(&self, peer: &PeerId) -> bool {
        for _ in 0..100 {
            if self.peer_ips.is_connected(peer) {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        false
    }

    /// Whether `peer` has a connection open.
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peer_ips.is_connected(peer)
    }

    /// The IP address a connected peer reaches us from.
    pub fn peer_ip(&self, peer: &PeerId) -> Option<std::net::IpAddr> {
        self.peer_ips.get(peer)
    }

    /// This node's peer id.
    pub fn local_peer(&self) -> PeerId {
        self.local_peer
    }

    /// A control for opening and accepting blob-protocol streams.
    pub fn stream_control(&self) -> libp2p_stream::Control {
        self.control.clone()
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> NetCommand) -> NodeResult<T> {
        let (tx, rx) = oneshot::channel();
        self.commands.send(make(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())
    }

    /// Announces `root` on the DHT.
    pub async fn start_providing(&self, root: ContentId) -> NodeResult<()> {
        self.ask(|reply| NetCommand::StartProviding { root, reply })
            .await?
    }

    /// Stops announcing `root`.
    pub async fn stop_providing(&self, root: ContentId) -> NodeResult<()> {
        self.commands
            .send(NetCommand::StopProviding { root })
            .await
            .map_err(|_| stopped())
    }

    /// Peers the DHT says provide `root` (this node excluded).
    pub async fn find_providers(&self, root: ContentId) -> NodeResult<Vec<PeerId>> {
        Ok(self.lookup_providers(root).await?.providers)
    }

    /// Starts a provider lookup for `root` whose findings arrive as they turn up; drop
    /// the receiver to end it.
    pub async fn watch_providers(
        &self,
        root: ContentId,
    ) -> NodeResult<watch::Receiver<ProvidersSoFar>> {
        let (found, watching) = watch::channel(ProvidersSoFar::default());
        self.commands
            .send(NetCommand::WatchProviders { root, found })
            .await
            .map_err(|_| stopped())?;
        Ok(watching)
    }

    /// Like [`Self::find_providers`], with how many DHT peers the lookup asked.
    pub async fn lookup_providers(&self, root: ContentId) -> NodeResult<ProviderLookup> {
        self.ask(|reply| NetCommand::FindProviders { root, reply })
            .await
    }

    /// The providers of `root` this node's DHT store lists, without asking the network:
    /// what this node answers when others look `root` up.
    pub async fn stored_providers(&self, root: ContentId) -> NodeResult<Vec<PeerId>> {
        self.ask(|reply| NetCommand::StoredProviders { root, reply })
            .await
    }

    /// Stores a signed value record under `key` here and on the peers closest to it;
    /// returns how many peers stored it.
    pub async fn put_record(&self, key: [u8; 32], value: Vec<u8>) -> NodeResult<u32> {
        self.ask(|reply| NetCommand::PutRecord { key, value, reply })
            .await?
    }

    /// Every value the DHT holds under `key`, unchecked.
    pub async fn get_records(&self, key: [u8; 32]) -> NodeResult<RecordLookup> {
        self.ask(|reply| NetCommand::GetRecords { key, reply })
            .await
    }

    /// Connected peers.
    pub async fn peers(&self) -> NodeResult<Vec<PeerInfo>> {
        self.ask(|reply| NetCommand::Peers { reply }).await
    }

    /// Listen addresses and DHT state.
    pub async fn status(&self) -> NodeResult<NetStatus> {
        self.ask(|reply| NetCommand::Status { reply }).await
    }

    /// Stops listening and gives the router a moment to drop this node's port mappings.
    pub async fn stop_listening(&self) -> NodeResult<()> {
        self.ask(|reply| NetCommand::StopListening { reply }).await
    }
}

/// `address` without its `/p2p/<peer id>` parts, as shown next to a peer id.
pub fn without_peer_id(address: &Multiaddr) -> Multiaddr {
    address
        .iter()
        .filter(|p| !matches!(p, libp2p::multiaddr::Protocol::P2p(_)))
        .collect()
}

/// Splits `/…/p2p/<id>` into the peer id and the address without it.
pub fn split_peer_address(address: &Multiaddr) -> NodeResult<(PeerId, Multiaddr)> {
    let mut transport = address.clone();
    match transport.pop() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) => Ok((peer, transport)),
        _ => Err(NodeError::BadRequest(format!(
            "bootstrap address {address} has no peer id: it must end with /p2p/<peer id>, e.g. \
             {address}/p2p/12D3KooW… (the other node prints complete --bootstrap lines when it starts)"
        ))),
    }
}
