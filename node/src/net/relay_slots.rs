//! The relays a node behind NAT holds reservations on: found through the DHT, asked by
//! listening on a circuit address through them, given up when the relay drops them
//! (and not asked again for a while).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::core::transport::ListenerId;
use libp2p::kad::{QueryId, RecordKey};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, Swarm};

use super::behaviour::NodeBehaviour;
use super::peer_ips::{ip_of, is_relayed};
use super::{routing_table, without_peer_id};

/// Relays a node behind NAT keeps a reservation on.
const WANTED_RELAYS: usize = 2;
/// Least time between two DHT lookups for relays.
const RELAY_LOOKUP_GAP: Duration = Duration::from_secs(30);
/// A relay that refused or dropped a reservation is not asked again for this long.
const RELAY_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The DHT key under which relaying nodes announce themselves.
pub fn relay_service_key() -> RecordKey {
    RecordKey::new(blake3::hash(b"seedbank relay service v1").as_bytes())
}

/// A relay this node holds or asks for a reservation on.
#[derive(Debug)]
struct RelaySlot {
    listener: ListenerId,
    /// The relayed address, once the relay accepted.
    address: Option<Multiaddr>,
}

/// This node's relay reservations and the lookup that finds relays.
#[derive(Debug, Default)]
pub(super) struct RelaySlots {
    slots: HashMap<PeerId, RelaySlot>,
    refused: HashMap<PeerId, Instant>,
    lookup: Option<QueryId>,
    last_lookup: Option<Instant>,
}

impl RelaySlots {
    /// Whether some relay accepted a reservation.
    pub fn any_reserved(&self) -> bool {
        self.slots.values().any(|slot| slot.address.is_some())
    }

    /// The relayed addresses this node is reachable on.
    pub fn addresses(&self) -> impl Iterator<Item = &Multiaddr> {
        self.slots.values().filter_map(|slot| slot.address.as_ref())
    }

    /// The listeners through relays, to stop at shutdown.
    pub fn listeners(&self) -> impl Iterator<Item = ListenerId> + '_ {
        self.slots.values().map(|slot| slot.listener)
    }

    /// A circuit listen address came up: its relay accepted the reservation.
    pub fn reserved(&mut self, address: &Multiaddr) {
        if let Some(slot) = relay_of(address).and_then(|relay| self.slots.get_mut(&relay)) {
            slot.address = Some(address.clone());
        }
    }

    /// A circuit listen address went away.
    pub fn address_expired(&mut self, address: &Multiaddr) {
        for slot in self.slots.values_mut() {
            if slot.address.as_ref() == Some(address) {
                slot.address = None;
            }
        }
    }

    /// A listener closed; if it was a relay's, the reservation is gone and that relay
    /// rests. Returns the relayed address it had, for the caller to withdraw.
    pub fn closed(&mut self, listener: ListenerId) -> Option<Multiaddr> {
        let relay = *self
            .slots
            .iter()
            .find(|(_, slot)| slot.listener == listener)?
            .0;
        tracing::info!(%relay, "relay reservation ended");
        self.refused.insert(relay, Instant::now());
        self.slots.remove(&relay)?.address
    }

    /// Whether `id` is the lookup for relays.
    pub fn owns_lookup(&self, id: QueryId) -> bool {
        self.lookup == Some(id)
    }

    /// Starts a DHT lookup for relays, unless enough are held, one runs, or the last
    /// one was too recent.
    pub fn look_up_if_due(&mut self, swarm: &mut Swarm<NodeBehaviour>) {
        let due = self
            .last_lookup
            .is_none_or(|at| at.elapsed() >= RELAY_LOOKUP_GAP);
        if self.slots.len() < WANTED_RELAYS && self.lookup.is_none() && due {
            tracing::debug!("looking for relays in the DHT");
            self.last_lookup = Some(Instant::now());
            self.lookup = Some(swarm.behaviour_mut().kad.get_providers(relay_service_key()));
        }
    }

    /// Relays the DHT listed: the lookup is over when `finished`; if `wanted`, the first
    /// untried ones are asked for a reservation.
    pub fn found(
        &mut self,
        swarm: &mut Swarm<NodeBehaviour>,
        relays: impl IntoIterator<Item = PeerId>,
        finished: bool,
        wanted: bool,
    ) {
        if finished {
            self.lookup = None;
        }
        if !wanted {
            return;
        }
        let local = *swarm.local_peer_id();
        for relay in relays {
            if self.slots.len() >= WANTED_RELAYS {
                return;
            }
            let resting = self
                .refused
                .get(&relay)
                .is_some_and(|at| at.elapsed() < RELAY_RETRY_AFTER);
            if relay == local || self.slots.contains_key(&relay) || resting {
                continue;
            }
            self.ask(swarm, relay);
        }
    }

    /// Listens through `relay`, which makes the reservation.
    fn ask(&mut self, swarm: &mut Swarm<NodeBehaviour>, relay: PeerId) {
        // Relays are public nodes, so the routing table holds a direct address of theirs.
        let direct = routing_table::addresses_of(&mut swarm.behaviour_mut().kad, &relay)
            .unwrap_or_default()
            .into_iter()
            .find(|address| !is_relayed(address) && ip_of(address).is_some());
        let Some(address) = direct else {
            tracing::debug!(%relay, "relay found without a usable address");
            return;
        };
        let circuit = without_peer_id(&address)
            .with(Protocol::P2p(relay))
            .with(Protocol::P2pCircuit);
        match swarm.listen_on(circuit.clone()) {
            Ok(listener) => {
                tracing::info!(%relay, address = %circuit, "asking a relay for a reservation");
                let slot = RelaySlot {
                    listener,
                    address: None,
                };
                self.slots.insert(relay, slot);
            }
            Err(error) => {
                tracing::debug!(%relay, address = %circuit, ?error, "cannot listen through relay");
                self.refused.insert(relay, Instant::now());
            }
        }
    }
}

/// The relay a circuit address goes through: the peer id before `/p2p-circuit`.
fn relay_of(address: &Multiaddr) -> Option<PeerId> {
    let mut relay = None;
    for part in address.iter() {
        match part {
            Protocol::P2p(peer) => relay = Some(peer),
            Protocol::P2pCircuit => return relay,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_circuit_address_names_its_relay() {
        let relay = PeerId::random();
        let me = PeerId::random();
        let address: Multiaddr =
            format!("/ip4/203.0.113.7/tcp/4150/p2p/{relay}/p2p-circuit/p2p/{me}")
                .parse()
                .unwrap();
        assert_eq!(relay_of(&address), Some(relay));
        assert_eq!(
            relay_of(&"/ip4/203.0.113.7/tcp/4150".parse().unwrap()),
            None
        );
    }
}
