//! Addresses of providers no routing table holds, kept so they can be dialled.
//!
//! A node behind NAT is a DHT client, so no routing table holds it: only its provider
//! record names its relay, and Kademlia forgets that address when the lookup ends. The
//! event loop copies the addresses a lookup found for such providers into this book
//! (bounded: oldest peers out first, a few addresses each), and a dial that got through
//! a relay adds the address it used; this behaviour offers them whenever the swarm dials
//! that peer, e.g. when a fetch opens its first stream, or again after a relay closed a
//! circuit at its limits.

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
use super::routing_table;

/// Peers whose addresses are kept.
pub const MAX_PEERS: usize = 1024;
/// Addresses kept for one peer.
pub const MAX_ADDRESSES_PER_PEER: usize = 8;

/// The addresses of providers outside the routing table.
#[derive(Debug, Default)]
pub struct ProviderAddresses {
    addresses: HashMap<PeerId, Vec<Multiaddr>>,
    order: VecDeque<PeerId>,
}

impl ProviderAddresses {
    /// Keeps `found` for `peer`, newest first, within the bounds.
    pub fn remember(&mut self, peer: PeerId, found: impl IntoIterator<Item = Multiaddr>) {
        let known = self.addresses.entry(peer).or_insert_with(|| {
            self.order.push_back(peer);
            Vec::new()
        });
        for address in found {
            known.retain(|a| *a != address);
            known.insert(0, address);
        }
        known.truncate(MAX_ADDRESSES_PER_PEER);
        while self.order.len() > MAX_PEERS {
            if let Some(oldest) = self.order.pop_front() {
                self.addresses.remove(&oldest);
            }
        }
    }
}

/// Copies into `book` the addresses a running lookup of `kad` holds for `providers` the
/// routing table lacks; called while the lookup runs, since it forgets them when it ends.
pub(super) fn keep_lookup_addresses(
    kad: &mut routing_table::Kad,
    book: &mut ProviderAddresses,
    providers: impl IntoIterator<Item = PeerId>,
) {
    for provider in providers {
        if routing_table::addresses_of(kad, &provider).is_some() {
            continue;
        }
        // Kademlia answers this from its routing table and its running lookups; the
        // connection id is not looked at.
        let found = kad.handle_pending_outbound_connection(
            ConnectionId::new_unchecked(0),
            Some(provider),
            &[],
            Endpoint::Dialer,
        );
        if let Ok(found) = found {
            book.remember(provider, found);
        }
    }
}

impl NetworkBehaviour for ProviderAddresses {
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
            .unwrap_or_default())
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
                self.remember(peer_id, [endpoint.get_remote_address().clone()]);
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
    fn the_book_keeps_the_newest_peers_and_addresses_within_its_bounds() {
        let mut book = ProviderAddresses::default();
        let address: Multiaddr = "/ip4/203.0.113.7/tcp/4150/p2p-circuit".parse().unwrap();
        let first = PeerId::random();
        book.remember(first, [address.clone()]);
        for _ in 0..MAX_PEERS {
            book.remember(PeerId::random(), [address.clone()]);
        }
        assert_eq!(book.addresses.len(), MAX_PEERS);
        assert!(!book.addresses.contains_key(&first));

        let peer = PeerId::random();
        let many = (0..20u16).map(|port| format!("/ip4/203.0.113.7/tcp/{port}").parse().unwrap());
        book.remember(peer, many);
        book.remember(peer, [address.clone()]);
        let kept = &book.addresses[&peer];
        assert_eq!(kept.len(), MAX_ADDRESSES_PER_PEER);
        assert_eq!(kept[0], address, "the newest address is tried first");
    }
}
