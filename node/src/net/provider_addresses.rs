//! Relayed addresses of peers behind NAT, remembered so they can be dialled again.
//!
//! A node behind NAT is a DHT client, so no routing table holds it: only its provider
//! record names its relay, and Kademlia forgets that address when the lookup ends. Once
//! a dial through a relay succeeds, the address is kept here (bounded, oldest out first),
//! and this behaviour offers it when the swarm dials that peer again, e.g. after the
//! relay closed a circuit at its limits.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::behaviour::ConnectionEstablished;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use super::peer_ips::is_relayed;

/// Peers whose relayed address is kept.
pub const MAX_RELAYED_PEERS: usize = 1024;

/// The relayed address each peer was last reached on.
#[derive(Debug, Default)]
pub struct RelayedAddresses {
    addresses: HashMap<PeerId, Multiaddr>,
    order: VecDeque<PeerId>,
}

impl RelayedAddresses {
    fn remember(&mut self, peer: PeerId, address: Multiaddr) {
        if self.addresses.insert(peer, address).is_none() {
            self.order.push_back(peer);
        }
        while self.order.len() > MAX_RELAYED_PEERS {
            if let Some(oldest) = self.order.pop_front() {
                self.addresses.remove(&oldest);
            }
        }
    }
}

impl NetworkBehaviour for RelayedAddresses {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        peer: Option<PeerId>,
        _addresses: &[Multiaddr],
        _effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        Ok(peer
            .and_then(|peer| self.addresses.get(&peer).cloned())
            .into_iter()
            .collect())
    }

    fn handle_established_inbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn handle_established_outbound_connection(
        &mut self,
        _connection_id: ConnectionId,
        _peer: PeerId,
        _addr: &Multiaddr,
        _role_override: Endpoint,
        _port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        if let FromSwarm::ConnectionEstablished(ConnectionEstablished {
            peer_id, endpoint, ..
        }) = event
        {
            if endpoint.is_dialer() && is_relayed(endpoint.get_remote_address()) {
                self.remember(peer_id, endpoint.get_remote_address().clone());
            }
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _peer: PeerId,
        _connection: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(
        &mut self,
        _cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_book_keeps_the_newest_peers_within_its_bound() {
        let mut book = RelayedAddresses::default();
        let address: Multiaddr = "/ip4/203.0.113.7/tcp/4150/p2p-circuit".parse().unwrap();
        let first = PeerId::random();
        book.remember(first, address.clone());
        for _ in 0..MAX_RELAYED_PEERS {
            book.remember(PeerId::random(), address.clone());
        }
        assert_eq!(book.addresses.len(), MAX_RELAYED_PEERS);
        assert!(!book.addresses.contains_key(&first));
    }
}
