//! The task that owns the libp2p `Swarm`. It serves commands from [`NetHandle`]s and
//! reacts to swarm events; it never touches file bytes.
//!
//! Invariants: every pending DHT query has exactly one entry in a pending map keyed by
//! its `QueryId`, removed when the query finishes; identify results of peers speaking
//! our Kademlia protocol are added to the routing table; listen addresses with a
//! specific IP are this node's external addresses (provider records carry only those).
//!
//! [`NetHandle`]: super::NetHandle

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::kad::store::RecordStore;
use libp2p::kad::{self, QueryId, QueryResult, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{identify, mdns, PeerId, Swarm};
use seedbank_protocol::ContentId;
use tokio::sync::{mpsc, oneshot};

use super::address_policy::AddressPolicy;
use super::behaviour::{NodeBehaviour, NodeBehaviourEvent};
use super::connection_view::{is_dialable, shown_address};
use super::handle::{split_peer_address, NetCommand, NetStatus, PeerInfo, RecordLookup};
use super::nat::Nat;
use super::nat_config::NatFeatures;
use super::pending_lookup::{LookupReply, PendingLookup};
use super::provider_addresses;
use super::redial::BootstrapPeer;
use super::routing_table;
use super::{NetConfig, PeerIps, KAD_PROTOCOL};
use crate::error::{NodeError, NodeResult};

/// How often the loop looks for lost bootstrap peers that are due a dial (see `redial`).
const BOOTSTRAP_REDIAL_CHECK: Duration = Duration::from_secs(1);

/// A node whose routing table holds fewer peers than this bootstraps again when it
/// connects to a bootstrap peer (Kademlia's bucket size).
const WELL_CONNECTED_PEERS: usize = 20;
/// Least time between two bootstraps started by new connections. Without it, every
/// reconnection to a bootstrap peer after idle connections closed started a full
/// bootstrap; with hundreds of nodes sharing a bootstrap peer that fed itself and
/// saturated the CPU.
const MIN_BOOTSTRAP_GAP: Duration = Duration::from_secs(30);

/// Most distinct values one record lookup collects (each is checked by the caller).
const MAX_VALUES_PER_LOOKUP: usize = 32;

/// How often expired provider records of other peers are dropped.
const RECORD_EXPIRY_INTERVAL: Duration = Duration::from_secs(60);

/// How often reachability work runs (relay lookups, relay announcements).
const NAT_TICK: Duration = Duration::from_secs(2);

/// The DHT key of an artifact: its root hash.
pub fn provider_key(root: ContentId) -> RecordKey {
    RecordKey::new(root.hash().as_bytes())
}

/// A value-record lookup under way.
struct PendingGet {
    reply: oneshot::Sender<RecordLookup>,
    values: Vec<Vec<u8>>,
    /// How many other peers sent each of `values`.
    copies: Vec<u32>,
}

/// Owns the swarm.
pub struct EventLoop {
    swarm: Swarm<NodeBehaviour>,
    commands: mpsc::Receiver<NetCommand>,
    bootstrap_peers: Vec<BootstrapPeer>,
    pending_provide: HashMap<QueryId, oneshot::Sender<NodeResult<()>>>,
    pending_providers: HashMap<QueryId, PendingLookup>,
    pending_puts: HashMap<QueryId, oneshot::Sender<NodeResult<u32>>>,
    pending_gets: HashMap<QueryId, PendingGet>,
    /// Connected peers and how each connection is shown (see [`shown_address`]).
    connected: HashMap<PeerId, HashSet<String>>,
    last_bootstrap: Option<Instant>,
    bootstrap_interval: Duration,
    peer_ips: PeerIps,
    address_policy: AddressPolicy,
    /// DHT queries since start, counted at their first result (libp2p says nothing when
    /// one starts, and starts some on its own).
    dht_queries_started: u64,
    /// Reachability, relays and external addresses.
    nat: Nat,
    /// Listening stopped: answered at this time, once the router had its chance.
    stopping: Option<(Instant, oneshot::Sender<()>)>,
}

impl EventLoop {
    /// Prepares the loop; dials bootstrap peers.
    pub fn new(
        mut swarm: Swarm<NodeBehaviour>,
        commands: mpsc::Receiver<NetCommand>,
        config: &NetConfig,
        peer_ips: PeerIps,
        real_network: bool,
    ) -> NodeResult<Self> {
        let mut bootstrap_peers = Vec::new();
        let now = Instant::now();
        for address in &config.bootstrap {
            let (peer, address) = split_peer_address(address)?;
            swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, address.clone());
            bootstrap_peers.push(BootstrapPeer::new(peer, address, now));
        }
        let mut event_loop = Self {
            swarm,
            commands,
            bootstrap_peers,
            pending_provide: HashMap::new(),
            pending_providers: HashMap::new(),
            pending_puts: HashMap::new(),
            pending_gets: HashMap::new(),
            connected: HashMap::new(),
            last_bootstrap: None,
            bootstrap_interval: config.bootstrap_interval.max(Duration::from_secs(1)),
            peer_ips,
            address_policy: AddressPolicy::from_listen(&config.listen),
            dht_queries_started: 0,
            nat: Nat::new(config, NatFeatures::of(config, real_network)),
            stopping: None,
        };
        event_loop.dial_due_bootstrap_peers();
        Ok(event_loop)
    }

    /// The listeners started with the node, stopped by [`NetCommand::StopListening`].
    pub fn own_listeners(&mut self, listeners: Vec<libp2p::core::transport::ListenerId>) {
        for listener in listeners {
            self.nat.add_listener(listener);
        }
    }

    /// When a stop of listening is answered (far away when none is under way).
    fn stop_at(&self) -> tokio::time::Instant {
        let now = Instant::now();
        let at = self
            .stopping
            .as_ref()
            .map_or(now + Duration::from_secs(3600), |s| s.0);
        tokio::time::Instant::from_std(at)
    }

    /// Runs until every handle is dropped.
    pub async fn run(mut self) {
        let mut bootstrap = tokio::time::interval(self.bootstrap_interval);
        bootstrap.tick().await;
        let mut redial = tokio::time::interval(BOOTSTRAP_REDIAL_CHECK);
        redial.tick().await;
        let mut expiry = tokio::time::interval(RECORD_EXPIRY_INTERVAL);
        expiry.tick().await;
        let mut nat_tick = tokio::time::interval(NAT_TICK);
        loop {
            let stop_at = self.stop_at();
            tokio::select! {
                // Local work first: commands before new remote events.
                biased;
                command = self.commands.recv() => match command {
                    Some(command) => self.handle_command(command),
                    None => break,
                },
                event = self.swarm.select_next_some() => self.handle_event(event),
                _ = bootstrap.tick() => self.bootstrap(),
                _ = redial.tick() => self.redial_bootstrap_peers(),
                _ = nat_tick.tick() => self.nat.tick(&mut self.swarm),
                _ = tokio::time::sleep_until(stop_at), if self.stopping.is_some() => {
                    if let Some((_, reply)) = self.stopping.take() {
                        let _ = reply.send(());
                    }
                }
                _ = expiry.tick() => {
                    let removed = self.swarm.behaviour_mut().kad.store_mut().remove_expired(Instant::now());
                    if removed > 0 {
                        tracing::debug!(removed, "dropped expired provider records");
                    }
                }
            }
        }
        tracing::debug!("network event loop stopped");
    }

    /// Dials the bootstrap peers this node is not connected to and that are due (see
    /// [`BootstrapPeer`]), while its routing table is thin: a node whose only way in
    /// restarted (on the same address) gets back in within seconds instead of at the next
    /// refresh. A well-connected node leaves bootstrap peers alone, so they are not dialled
    /// by every node of a large network. The address is given again, since Kademlia forgets
    /// addresses that failed to dial.
    fn redial_bootstrap_peers(&mut self) {
        if self.bootstrap_peers.is_empty()
            || routing_table::size(&mut self.swarm.behaviour_mut().kad) >= WELL_CONNECTED_PEERS
        {
            return;
        }
        self.dial_due_bootstrap_peers();
    }

    /// Dials the bootstrap peers that are not connected and due a dial; at start, all.
    fn dial_due_bootstrap_peers(&mut self) {
        let now = Instant::now();
        for index in 0..self.bootstrap_peers.len() {
            let bootstrap = &mut self.bootstrap_peers[index];
            if self.connected.contains_key(&bootstrap.peer) || !bootstrap.take_due_dial(now) {
                continue;
            }
            let (peer, address) = (bootstrap.peer, bootstrap.address.clone());
            self.swarm
                .behaviour_mut()
                .kad
                .add_address(&peer, address.clone());
            if let Err(e) = self.swarm.dial(address.clone().with(Protocol::P2p(peer))) {
                tracing::debug!(%peer, %address, error = %e, "cannot dial bootstrap peer");
            }
        }
    }

    fn bootstrap(&mut self) {
        match self.swarm.behaviour_mut().kad.bootstrap() {
            Ok(_) => self.last_bootstrap = Some(Instant::now()),
            Err(e) => tracing::debug!(error = %e, "DHT bootstrap skipped"),
        }
    }

    /// Bootstraps after a new connection to a bootstrap peer, but only while the routing
    /// table is thin and not again within [`MIN_BOOTSTRAP_GAP`].
    fn bootstrap_if_thin(&mut self) {
        let recent = self
            .last_bootstrap
            .is_some_and(|at| at.elapsed() < MIN_BOOTSTRAP_GAP);
        if !recent
            && routing_table::size(&mut self.swarm.behaviour_mut().kad) < WELL_CONNECTED_PEERS
        {
            self.bootstrap();
        }
    }

    /// Whether `peer` can go into the routing table without displacing anyone: it is in
    /// it already, or its bucket has room. Offered a peer for a full bucket, libp2p dials
    /// the bucket's oldest peer to see whether it is still alive; done for every new peer
    /// that identified itself, those liveness dials (each a new connection, which makes
    /// more peers identify) kept hundreds of nodes busy dialing one another.
    fn handle_command(&mut self, command: NetCommand) {
        let kad = &mut self.swarm.behaviour_mut().kad;
        match command {
            NetCommand::StartProviding { root, reply } => {
                match kad.start_providing(provider_key(root)) {
                    Ok(id) => {
                        self.pending_provide.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::Internal(format!(
                            "cannot announce {root}: {e}"
                        ))));
                    }
                }
            }
            NetCommand::StopProviding { root } => kad.stop_providing(&provider_key(root)),
            NetCommand::FindProviders { root, reply } => {
                let id = kad.get_providers(provider_key(root));
                self.pending_providers
                    .insert(id, PendingLookup::new(LookupReply::Once(reply)));
            }
            NetCommand::WatchProviders { root, found } => {
                let id = kad.get_providers(provider_key(root));
                self.pending_providers
                    .insert(id, PendingLookup::new(LookupReply::Watch(found)));
            }
            NetCommand::StoredProviders { root, reply } => {
                let stored = kad.store_mut().providers(&provider_key(root));
                let _ = reply.send(stored.into_iter().map(|r| r.provider).collect());
            }
            NetCommand::PutRecord { key, value, reply } => {
                let mut record = kad::Record::new(RecordKey::new(&key), value);
                record.expires = Some(Instant::now() + super::behaviour::VALUE_RECORD_TTL);
                match kad.put_record(record, kad::Quorum::One) {
                    Ok(id) => {
                        self.pending_puts.insert(id, reply);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(NodeError::BadRequest(format!(
                            "this node refused to keep the record: {e:?}"
                        ))));
                    }
                }
            }
            NetCommand::GetRecords { key, reply } => {
                let id = kad.get_record(RecordKey::new(&key));
                self.pending_gets.insert(
                    id,
                    PendingGet {
                        reply,
                        values: Vec::new(),
                        copies: Vec::new(),
                    },
                );
            }
            NetCommand::Peers { reply } => {
                let peers = self
                    .connected
                    .iter()
                    .map(|(peer, addresses)| PeerInfo {
                        peer: peer.to_string(),
                        addresses: addresses.iter().cloned().collect(),
                    })
                    .collect();
                let _ = reply.send(peers);
            }
            NetCommand::StopListening { reply } => {
                let release = self.nat.stop_listening(&mut self.swarm);
                self.stopping = Some((Instant::now() + release, reply));
            }
            NetCommand::Status { reply } => {
                let routing_table_size = routing_table::size(kad) as u64;
                let dht_queries = kad.iter_queries().count() as u64;
                let status = NetStatus {
                    listen_addresses: self.swarm.listeners().map(ToString::to_string).collect(),
                    external_addresses: self
                        .swarm
                        .external_addresses()
                        .map(ToString::to_string)
                        .collect(),
                    routing_table_size,
                    connected_peers: self.connected.len() as u64,
                    dht_queries,
                    dht_queries_started: self.dht_queries_started,
                    reachability: self.nat.status(),
                };
                let _ = reply.send(status);
            }
        }
    }

    fn handle_event(&mut self, event: SwarmEvent<NodeBehaviourEvent>) {
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::debug!(%address, "listening");
                if address.iter().any(|p| matches!(p, Protocol::Memory(_))) {
                    self.swarm.add_external_address(address);
                } else {
                    self.nat.on_listen_address(&mut self.swarm, &address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.nat
                    .on_listen_address_expired(&mut self.swarm, &address);
            }
            SwarmEvent::ListenerClosed { listener_id, .. } => {
                self.nat.on_listener_closed(&mut self.swarm, listener_id);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                self.nat
                    .on_connection(&mut self.swarm, peer_id, connection_id, &endpoint);
                self.connected
                    .entry(peer_id)
                    .or_default()
                    .insert(shown_address(&endpoint));
                self.peer_ips
                    .connected(peer_id, endpoint.get_remote_address());
                if let Some(bootstrap) = self.bootstrap_peers.iter_mut().find(|b| b.peer == peer_id)
                {
                    bootstrap.connected(Instant::now());
                    self.bootstrap_if_thin();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                connection_id,
                endpoint,
                ..
            } => {
                tracing::debug!(peer = %peer_id, ?cause, "connection closed");
                self.nat.on_connection_closed(&peer_id, connection_id);
                self.peer_ips
                    .connection_closed(&peer_id, endpoint.get_remote_address());
                if num_established == 0 {
                    self.connected.remove(&peer_id);
                    self.peer_ips.disconnected(&peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(?peer_id, %error, "outgoing connection failed");
            }
            SwarmEvent::Behaviour(NodeBehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) if info.protocols.contains(&KAD_PROTOCOL) => {
                if !routing_table::has_room_for(&mut self.swarm.behaviour_mut().kad, &peer_id) {
                    return;
                }
                for address in info.listen_addrs {
                    if is_dialable(&address) && self.address_policy.allows(&address) {
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer_id, address);
                    }
                }
            }
            SwarmEvent::Behaviour(NodeBehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, address) in found {
                    tracing::debug!(%peer, %address, "found peer on the local network");
                    self.swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer, address.clone());
                    let _ = self.swarm.dial(address.with(Protocol::P2p(peer)));
                }
            }
            SwarmEvent::Behaviour(NodeBehaviourEvent::Kad(event)) => self.handle_kad(event),
            SwarmEvent::Behaviour(event) => self.nat.on_behaviour_event(&mut self.swarm, event),
            _ => {}
        }
    }

    fn handle_kad(&mut self, event: kad::Event) {
        if let kad::Event::InboundRequest { request } = event {
            let connected = &self.connected;
            self.swarm.behaviour_mut().kad.store_mut().keep_inbound(
                request,
                &self.peer_ips,
                &self.address_policy,
                |peer| connected.contains_key(peer),
            );
            return;
        }
        let kad::Event::OutboundQueryProgressed {
            id,
            result,
            step,
            stats,
        } = event
        else {
            return;
        };
        if step.count.get() == 1 {
            self.dht_queries_started += 1;
        }
        if step.last {
            tracing::debug!(
                query = query_kind(&result),
                requests = stats.num_requests(),
                failures = stats.num_failures(),
                millis = stats.duration().map_or(0, |d| d.as_millis() as u64),
                "DHT query finished"
            );
        }
        match result {
            QueryResult::StartProviding(result) => {
                if let Some(reply) = self.pending_provide.remove(&id) {
                    // A lone node has nobody to store the record; it still provides locally.
                    let outcome = match result {
                        Ok(_) | Err(kad::AddProviderError::Timeout { .. }) => Ok(()),
                    };
                    let _ = reply.send(outcome);
                }
            }
            QueryResult::PutRecord(result) if step.last => {
                if let Some(reply) = self.pending_puts.remove(&id) {
                    if let Err(e) = &result {
                        tracing::debug!(error = %e, "record put reached no peer");
                    }
                    let _ = reply.send(Ok(stats.num_successes()));
                }
            }
            QueryResult::GetRecord(result) => {
                let finished = match result {
                    Ok(kad::GetRecordOk::FoundRecord(found)) => {
                        if let Some(get) = self.pending_gets.get_mut(&id) {
                            let value = found.record.value;
                            let remote = u32::from(found.peer.is_some());
                            match get.values.iter().position(|v| *v == value) {
                                Some(i) => get.copies[i] += remote,
                                None if get.values.len() < MAX_VALUES_PER_LOOKUP => {
                                    get.values.push(value);
                                    get.copies.push(remote);
                                }
                                None => {}
                            }
                        }
                        step.last
                    }
                    Ok(kad::GetRecordOk::FinishedWithNoAdditionalRecord { .. }) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, "record lookup ended");
                        true
                    }
                };
                if finished {
                    if let Some(get) = self.pending_gets.remove(&id) {
                        let _ = get.reply.send(RecordLookup {
                            values: get.values,
                            copies: get.copies,
                            peers_answered: stats.num_successes(),
                        });
                    }
                }
            }
            QueryResult::GetProviders(result) if self.nat.owns_lookup(id) => {
                let relays = match result {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => providers,
                    _ => HashSet::new(),
                };
                self.nat.on_relays_found(&mut self.swarm, relays, step.last);
            }
            QueryResult::GetProviders(result) => {
                let local = *self.swarm.local_peer_id();
                let finished = match result {
                    Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) => {
                        let behaviour = self.swarm.behaviour_mut();
                        provider_addresses::keep_lookup_addresses(
                            &mut behaviour.kad,
                            &mut behaviour.provider_addresses,
                            providers.iter().filter(|p| **p != local).copied(),
                        );
                        if let Some(lookup) = self.pending_providers.get_mut(&id) {
                            let before = lookup.found.len();
                            lookup
                                .found
                                .extend(providers.into_iter().filter(|p| *p != local));
                            if before == 0 && !lookup.found.is_empty() {
                                lookup.requests_to_first = Some(stats.num_successes());
                            }
                        }
                        step.last
                    }
                    Ok(kad::GetProvidersOk::FinishedWithNoAdditionalRecord { .. }) => true,
                    Err(e) => {
                        tracing::debug!(error = %e, "provider lookup ended");
                        true
                    }
                };
                let unwatched = match self.pending_providers.get(&id) {
                    Some(lookup) => lookup.report_progress(finished),
                    None => false,
                };
                if finished || unwatched {
                    if let Some(lookup) = self.pending_providers.remove(&id) {
                        lookup.finish(stats.num_successes());
                    }
                }
                if unwatched && !finished {
                    if let Some(mut query) = self.swarm.behaviour_mut().kad.query_mut(&id) {
                        query.finish();
                    }
                }
            }
            _ => {}
        }
    }
}

/// A short name for a DHT query's kind, for logs.
fn query_kind(result: &QueryResult) -> &'static str {
    match result {
        QueryResult::Bootstrap(_) => "bootstrap",
        QueryResult::GetClosestPeers(_) => "closest peers",
        QueryResult::GetProviders(_) => "providers",
        QueryResult::StartProviding(_) => "start providing",
        QueryResult::RepublishProvider(_) => "republish provider",
        QueryResult::GetRecord(_) => "get record",
        QueryResult::PutRecord(_) => "put record",
        QueryResult::RepublishRecord(_) => "republish record",
    }
}
