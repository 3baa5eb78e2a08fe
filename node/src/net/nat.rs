//! Reachability: whether other nodes can reach this one, on what evidence, and what the
//! node does about it: relay for others once it is public, reserve slots on relays found
//! through the DHT while it is behind NAT, and keep its DHT server mode and external
//! addresses to what others can use.
//!
//! The event loop hands every NAT-related swarm event here; this module decides, and
//! acts on the swarm it is given. Invariants: an address enters the swarm's external
//! addresses only with evidence (a public or loopback listen address, a local-network one
//! on an mDNS node, a router's mapping, a dial-back by another node, or a relay
//! reservation); a relayed-only node is a DHT client, so nobody routes queries through
//! relays.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::core::ConnectedPoint;
use libp2p::kad::{self, QueryId};
use libp2p::swarm::ConnectionId;
use libp2p::{autonat, relay, upnp, Multiaddr, PeerId, Swarm};
use seedbank_protocol::reachability_api::{Reachability, ReachabilityStatus};

use super::address_policy::{scope, Scope};
use super::behaviour::{NodeBehaviour, NodeBehaviourEvent};
use super::nat_config::{NatFeatures, RelayService};
use super::peer_ips::{ip_of, is_relayed};
use super::relay_slots::{relay_service_key, RelaySlots};
use super::NetConfig;

/// A relaying node announces itself again this often (provider records last 48 h).
const RELAY_ANNOUNCE_INTERVAL: Duration = Duration::from_secs(6 * 3600);
/// How long a stopping node keeps running so the router removes its port mappings.
const MAPPING_RELEASE_WAIT: Duration = Duration::from_secs(1);
/// Failed address checks remembered as evidence.
const MAX_FAILED_CHECKS: usize = 8;

/// Why an address is one of this node's external addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Evidence {
    /// A listen address on a public IP.
    PublicListen,
    /// A loopback listen address on a loopback-only node (a test network).
    Loopback,
    /// A local-network listen address on a node that finds peers with mDNS.
    LocalNetwork,
    /// The home router mapped it (UPnP).
    PortMapped,
    /// Another node dialled it back (AutoNAT v2).
    DialedBack(PeerId),
}

/// The router's answer to port mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PortMapping {
    Off,
    Searching,
    Mapped(Vec<String>),
    NoGateway,
    GatewayNotPublic,
}

/// What this node knows about its own reachability, and the relay work that follows.
pub(super) struct Nat {
    local_only: bool,
    mdns: bool,
    kad_server: bool,
    relay_service: RelayService,
    use_relays: bool,
    external: BTreeMap<Multiaddr, Evidence>,
    failed_checks: BTreeMap<Multiaddr, String>,
    port_mapping: PortMapping,
    relays: RelaySlots,
    serving: bool,
    announced: Option<Instant>,
    kad_client: bool,
    /// Circuits to each peer, closed once a direct connection to it exists.
    circuits: HashMap<PeerId, HashSet<ConnectionId>>,
    /// The node's own listeners (relay listeners are in `relays`).
    listeners: Vec<ListenerId>,
}

impl Nat {
    /// The state of a node that has not heard from anyone yet.
    pub fn new(config: &NetConfig, features: NatFeatures) -> Self {
        Self {
            local_only: features.local_only,
            mdns: config.mdns,
            kad_server: config.kad_server,
            relay_service: features.relay_service,
            use_relays: features.use_relays,
            external: BTreeMap::new(),
            failed_checks: BTreeMap::new(),
            port_mapping: if features.port_mapping {
                PortMapping::Searching
            } else {
                PortMapping::Off
            },
            relays: RelaySlots::default(),
            serving: features.relay_service == RelayService::On,
            announced: None,
            kad_client: false,
            circuits: HashMap::new(),
            listeners: Vec::new(),
        }
    }

    /// The reachability state, from the evidence so far.
    pub fn state(&self) -> Reachability {
        let direct = |wanted: fn(&Evidence) -> bool| self.external.values().any(wanted);
        if direct(|e| matches!(e, Evidence::PublicListen | Evidence::DialedBack(_))) {
            Reachability::Public
        } else if direct(|e| *e == Evidence::PortMapped) {
            Reachability::Mapped
        } else if self.local_only {
            Reachability::LocalOnly
        } else if self.relays.any_reserved() {
            Reachability::Relayed
        } else if !self.failed_checks.is_empty()
            || self.port_mapping == PortMapping::GatewayNotPublic
        {
            Reachability::BehindNat
        } else {
            Reachability::Unknown
        }
    }

    /// The state with its evidence, for `status`.
    pub fn status(&self) -> ReachabilityStatus {
        let mut evidence: Vec<String> = self
            .external
            .iter()
            .map(|(address, why)| match why {
                Evidence::PublicListen => format!("{address}: listening on a public address"),
                Evidence::Loopback => format!("{address}: loopback, this machine only"),
                Evidence::LocalNetwork => format!("{address}: local network (mDNS)"),
                Evidence::PortMapped => format!("{address}: mapped by the router (UPnP)"),
                Evidence::DialedBack(peer) => format!("{address}: dialled back by {peer}"),
            })
            .collect();
        evidence.extend(
            self.failed_checks
                .iter()
                .map(|(address, why)| format!("{address}: not reachable from outside ({why})")),
        );
        let port_mapping = match &self.port_mapping {
            PortMapping::Off => "off".to_owned(),
            PortMapping::Searching => "searching for a UPnP router".to_owned(),
            PortMapping::Mapped(addresses) => format!("mapped {}", addresses.join(" ")),
            PortMapping::NoGateway => "no UPnP router found".to_owned(),
            PortMapping::GatewayNotPublic => {
                "the UPnP router has no public address (another NAT beyond it)".to_owned()
            }
        };
        let relay_service = match (self.relay_service, self.serving) {
            (RelayService::Off, _) => "off",
            (_, true) => "on: relaying for nodes behind NAT",
            (_, false) => "waiting: starts once this node is known to be public",
        };
        ReachabilityStatus {
            state: self.state(),
            evidence,
            port_mapping,
            relay_service: relay_service.to_owned(),
            relays: self.relays.addresses().map(ToString::to_string).collect(),
        }
    }

    /// A new listen address: kept as external when it has evidence of its own.
    pub fn on_listen_address(&mut self, swarm: &mut Swarm<NodeBehaviour>, address: &Multiaddr) {
        if is_relayed(address) {
            self.relays.reserved(address);
            swarm.add_external_address(address.clone());
            self.update(swarm);
            return;
        }
        let Some(ip) = ip_of(address).filter(|ip| !ip.is_unspecified()) else {
            return;
        };
        let evidence = match scope(ip) {
            Scope::Public => Some(Evidence::PublicListen),
            Scope::Loopback if self.local_only => Some(Evidence::Loopback),
            Scope::Private if self.mdns => Some(Evidence::LocalNetwork),
            _ => None,
        };
        if let Some(evidence) = evidence {
            self.confirm(swarm, address.clone(), evidence);
        }
    }

    /// A listen address went away (a relay listener among them).
    pub fn on_listen_address_expired(
        &mut self,
        swarm: &mut Swarm<NodeBehaviour>,
        address: &Multiaddr,
    ) {
        if self.external.remove(address).is_some() || is_relayed(address) {
            swarm.remove_external_address(address);
        }
        self.relays.address_expired(address);
        self.update(swarm);
    }

    /// A listener closed: a relay listener means the reservation is gone.
    pub fn on_listener_closed(&mut self, swarm: &mut Swarm<NodeBehaviour>, listener: ListenerId) {
        if let Some(address) = self.relays.closed(listener) {
            swarm.remove_external_address(&address);
        }
        self.update(swarm);
    }

    fn confirm(
        &mut self,
        swarm: &mut Swarm<NodeBehaviour>,
        address: Multiaddr,
        evidence: Evidence,
    ) {
        self.failed_checks.remove(&address);
        if self.external.insert(address.clone(), evidence).is_none() {
            tracing::info!(%address, "external address confirmed");
        }
        swarm.add_external_address(address);
        self.update(swarm);
    }

    /// A behaviour's event about reachability: AutoNAT, UPnP, relays, hole punching.
    pub fn on_behaviour_event(
        &mut self,
        swarm: &mut Swarm<NodeBehaviour>,
        event: NodeBehaviourEvent,
    ) {
        match event {
            NodeBehaviourEvent::Autonat(event) => self.on_autonat(swarm, event),
            NodeBehaviourEvent::Upnp(event) => self.on_upnp(swarm, event),
            NodeBehaviourEvent::Relay(event) => self.on_relay_client(swarm, event),
            NodeBehaviourEvent::Dcutr(event) => match event.result {
                Ok(_) => {
                    tracing::info!(peer = %event.remote_peer_id, "hole punched: direct connection")
                }
                Err(error) => {
                    tracing::info!(peer = %event.remote_peer_id, %error, "hole punching failed")
                }
            },
            NodeBehaviourEvent::RelayServer(event) => tracing::debug!(?event, "relay service"),
            _ => {}
        }
    }

    /// An AutoNAT v2 check of one of our addresses ended.
    fn on_autonat(&mut self, swarm: &mut Swarm<NodeBehaviour>, event: autonat::v2::client::Event) {
        match event.result {
            Ok(()) => {
                let evidence = match self.external.get(&event.tested_addr) {
                    Some(Evidence::PortMapped) => Evidence::PortMapped,
                    _ => Evidence::DialedBack(event.server),
                };
                self.confirm(swarm, event.tested_addr, evidence);
            }
            Err(error) => {
                tracing::debug!(address = %event.tested_addr, server = %event.server, %error, "address check failed");
                if self.external.contains_key(&event.tested_addr) {
                    return;
                }
                if self.failed_checks.len() >= MAX_FAILED_CHECKS {
                    self.failed_checks.pop_first();
                }
                self.failed_checks.insert(
                    event.tested_addr,
                    format!("{} could not dial it back", event.server),
                );
                self.update(swarm);
            }
        }
    }

    /// The router answered a port-mapping request.
    fn on_upnp(&mut self, swarm: &mut Swarm<NodeBehaviour>, event: upnp::Event) {
        match event {
            upnp::Event::NewExternalAddr { external_addr, .. } => {
                if let PortMapping::Mapped(addresses) = &mut self.port_mapping {
                    addresses.push(external_addr.to_string());
                } else {
                    self.port_mapping = PortMapping::Mapped(vec![external_addr.to_string()]);
                }
                self.confirm(swarm, external_addr, Evidence::PortMapped);
            }
            upnp::Event::ExpiredExternalAddr { external_addr, .. } => {
                if let PortMapping::Mapped(addresses) = &mut self.port_mapping {
                    addresses.retain(|a| *a != external_addr.to_string());
                }
                self.external.remove(&external_addr);
                swarm.remove_external_address(&external_addr);
                self.update(swarm);
            }
            upnp::Event::GatewayNotFound => {
                self.port_mapping = PortMapping::NoGateway;
                self.update(swarm);
            }
            upnp::Event::NonRoutableGateway => {
                self.port_mapping = PortMapping::GatewayNotPublic;
                self.update(swarm);
            }
        }
    }

    /// What the relay client reported.
    fn on_relay_client(&mut self, swarm: &mut Swarm<NodeBehaviour>, event: relay::client::Event) {
        if let relay::client::Event::ReservationReqAccepted {
            relay_peer_id,
            renewal,
            ..
        } = event
        {
            if !renewal {
                tracing::info!(relay = %relay_peer_id, "relay reservation accepted");
            }
            self.update(swarm);
        }
    }

    /// A connection opened: remembers circuits, and closes them once a direct
    /// connection to the same peer exists (hole punching succeeded), so no transfer
    /// picks the relay.
    pub fn on_connection(
        &mut self,
        swarm: &mut Swarm<NodeBehaviour>,
        peer: PeerId,
        id: ConnectionId,
        endpoint: &ConnectedPoint,
    ) {
        if is_relayed(endpoint.get_remote_address()) {
            self.circuits.entry(peer).or_default().insert(id);
            return;
        }
        if let Some(circuits) = self.circuits.remove(&peer) {
            tracing::debug!(%peer, circuits = circuits.len(), "direct connection up; closing relayed ones");
            for circuit in circuits {
                swarm.close_connection(circuit);
            }
        }
    }

    /// A connection closed.
    pub fn on_connection_closed(&mut self, peer: &PeerId, id: ConnectionId) {
        if let Some(circuits) = self.circuits.get_mut(peer) {
            circuits.remove(&id);
            if circuits.is_empty() {
                self.circuits.remove(peer);
            }
        }
    }

    /// Stops every listener (the port-mapping behaviour removes a mapping when its
    /// listener goes); returns how long to keep the swarm running for the router to hear.
    pub fn stop_listening(&mut self, swarm: &mut Swarm<NodeBehaviour>) -> Duration {
        let relays: Vec<ListenerId> = self.relays.listeners().collect();
        for listener in std::mem::take(&mut self.listeners)
            .into_iter()
            .chain(relays)
        {
            swarm.remove_listener(listener);
        }
        if matches!(self.port_mapping, PortMapping::Mapped(_)) {
            MAPPING_RELEASE_WAIT
        } else {
            Duration::ZERO
        }
    }

    /// Remembers a listener, to stop it at shutdown.
    pub fn add_listener(&mut self, listener: ListenerId) {
        self.listeners.push(listener);
    }

    /// Whether `id` is this module's lookup for relays.
    pub fn owns_lookup(&self, id: QueryId) -> bool {
        self.relays.owns_lookup(id)
    }

    /// Relays the DHT listed: asks the first untried ones for a reservation.
    pub fn on_relays_found(
        &mut self,
        swarm: &mut Swarm<NodeBehaviour>,
        relays: impl IntoIterator<Item = PeerId>,
        finished: bool,
    ) {
        let wanted = self.wants_relays();
        self.relays.found(swarm, relays, finished, wanted);
    }

    fn wants_relays(&self) -> bool {
        self.use_relays
            && matches!(
                self.state(),
                Reachability::BehindNat | Reachability::Relayed
            )
    }

    /// Periodic work: looks for relays while behind NAT, re-announces the relay service.
    pub fn tick(&mut self, swarm: &mut Swarm<NodeBehaviour>) {
        if self.wants_relays() {
            self.relays.look_up_if_due(swarm);
        }
        let announce_due = self
            .announced
            .is_none_or(|at| at.elapsed() >= RELAY_ANNOUNCE_INTERVAL);
        if self.serving && announce_due {
            self.announced = Some(Instant::now());
            if let Err(error) = swarm
                .behaviour_mut()
                .kad
                .start_providing(relay_service_key())
            {
                tracing::debug!(%error, "cannot announce the relay service");
            }
        }
    }

    /// Brings the relay service and DHT mode in line with the state.
    fn update(&mut self, swarm: &mut Swarm<NodeBehaviour>) {
        let state = self.state();
        let serve = match self.relay_service {
            RelayService::Off => false,
            RelayService::On => true,
            RelayService::Auto => state == Reachability::Public,
        };
        if serve != self.serving {
            self.serving = serve;
            tracing::info!(on = serve, "relay service");
            if let Some(server) = swarm.behaviour_mut().relay_server.as_mut() {
                server.set_status(Some(if serve {
                    relay::Status::Enable
                } else {
                    relay::Status::Disable
                }));
            }
            if serve {
                self.announced = None;
                self.tick(swarm);
            } else {
                swarm
                    .behaviour_mut()
                    .kad
                    .stop_providing(&relay_service_key());
            }
        }
        // Reached only through relays (or not at all): answer no DHT queries, so nobody
        // routes lookups through a relay's small circuits.
        let client =
            !self.kad_server && matches!(state, Reachability::Relayed | Reachability::BehindNat);
        if client != self.kad_client {
            self.kad_client = client;
            swarm
                .behaviour_mut()
                .kad
                .set_mode(client.then_some(kad::Mode::Client));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn node_listening_on(address: &str) -> Nat {
        let config = NetConfig {
            listen: vec![address.parse().unwrap()],
            mdns: false,
            ..NetConfig::default()
        };
        Nat::new(&config, NatFeatures::of(&config, true))
    }

    fn address(text: &str) -> Multiaddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_loopback_node_is_local_and_never_looks_for_relays() {
        let nat = node_listening_on("/ip4/127.0.0.1/tcp/0");
        assert_eq!(nat.state(), Reachability::LocalOnly);
        assert!(!nat.wants_relays());
        assert_eq!(nat.port_mapping, PortMapping::Off);
    }

    #[test]
    fn a_home_node_is_unknown_until_a_check_fails_then_behind_nat_and_wants_relays() {
        let mut nat = node_listening_on("/ip4/0.0.0.0/tcp/4150");
        assert_eq!(nat.state(), Reachability::Unknown);
        assert!(!nat.wants_relays());
        nat.failed_checks.insert(
            address("/ip4/198.51.100.4/tcp/4150"),
            "could not dial it back".into(),
        );
        assert_eq!(nat.state(), Reachability::BehindNat);
        assert!(nat.wants_relays());
        assert!(nat.status().evidence[0].contains("not reachable from outside"));
    }

    #[test]
    fn a_mapped_port_beats_a_failed_check_and_a_dial_back_beats_both() {
        let mut nat = node_listening_on("/ip4/0.0.0.0/tcp/4150");
        nat.failed_checks.insert(
            address("/ip4/198.51.100.4/tcp/51000"),
            "could not dial it back".into(),
        );
        let mapped = address("/ip4/198.51.100.4/tcp/4150");
        nat.external.insert(mapped.clone(), Evidence::PortMapped);
        assert_eq!(nat.state(), Reachability::Mapped);
        assert!(!nat.wants_relays());
        nat.external
            .insert(mapped, Evidence::DialedBack(PeerId::random()));
        assert_eq!(nat.state(), Reachability::Public);
    }

    #[test]
    fn a_router_without_a_public_address_is_evidence_of_nat_behind_nat() {
        let mut nat = node_listening_on("/ip4/0.0.0.0/tcp/4150");
        nat.port_mapping = PortMapping::GatewayNotPublic;
        assert_eq!(nat.state(), Reachability::BehindNat);
        assert!(nat.status().port_mapping.contains("no public address"));
    }
}
