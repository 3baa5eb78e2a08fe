//! Incoming connections still shaking hands, bounded per IP address.
//!
//! The swarm's pending-connection cap is global: one address opening silent TCP
//! connections and renewing them before the handshake timeout could take every pending
//! slot and keep new peers from joining through this node. This behaviour refuses an
//! incoming connection when [`MAX_PENDING_PER_IP`] from the same address are already
//! pending, so one address can hold only a small part of the global budget.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};

use libp2p::core::transport::PortUse;
use libp2p::core::Endpoint;
use libp2p::swarm::behaviour::ListenFailure;
use libp2p::swarm::{
    dummy, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler, THandlerInEvent,
    THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use super::peer_ips::ip_of;
use super::tally::decrement;

/// Most incoming connections one IP address may have in the handshake at once.
pub const MAX_PENDING_PER_IP: usize = 8;

/// The refusal reported for a connection over the per-address budget.
#[derive(Debug, thiserror::Error)]
#[error("{ip} already has {MAX_PENDING_PER_IP} connections in the handshake")]
pub struct TooManyPending {
    ip: IpAddr,
}

/// Counts pending incoming connections per IP address.
#[derive(Debug, Default)]
pub struct PendingGuard {
    pending: HashMap<ConnectionId, IpAddr>,
    per_ip: HashMap<IpAddr, usize>,
}

impl PendingGuard {
    fn admit(
        &mut self,
        connection: ConnectionId,
        remote: &Multiaddr,
    ) -> Result<(), TooManyPending> {
        let Some(ip) = ip_of(remote) else {
            return Ok(());
        };
        let count = self.per_ip.entry(ip).or_default();
        if *count >= MAX_PENDING_PER_IP {
            return Err(TooManyPending { ip });
        }
        *count += 1;
        self.pending.insert(connection, ip);
        Ok(())
    }

    fn finish(&mut self, connection: ConnectionId) {
        let Some(ip) = self.pending.remove(&connection) else {
            return;
        };
        decrement(&mut self.per_ip, &ip);
    }
}

impl NetworkBehaviour for PendingGuard {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.admit(connection_id, remote_addr).map_err(|e| {
            tracing::debug!(error = %e, "refusing incoming connection");
            ConnectionDenied::new(e)
        })
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _peer: PeerId,
        _local_addr: &Multiaddr,
        _remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.finish(connection_id);
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
        if let FromSwarm::ListenFailure(ListenFailure { connection_id, .. }) = event {
            self.finish(connection_id);
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
    fn one_address_holds_only_its_share_of_pending_handshakes() {
        let mut guard = PendingGuard::default();
        let attacker: Multiaddr = "/ip4/127.0.0.66/tcp/5000".parse().unwrap();
        let honest: Multiaddr = "/ip4/127.0.0.1/tcp/5001".parse().unwrap();
        let ids: Vec<ConnectionId> = (0..MAX_PENDING_PER_IP)
            .map(|_| ConnectionId::new_unchecked(rand_id()))
            .collect();
        for id in &ids {
            guard.admit(*id, &attacker).unwrap();
        }
        assert!(guard
            .admit(ConnectionId::new_unchecked(rand_id()), &attacker)
            .is_err());
        guard
            .admit(ConnectionId::new_unchecked(rand_id()), &honest)
            .unwrap();
        // A handshake that ends (either way) frees its place.
        guard.finish(ids[0]);
        guard.finish(ids[0]);
        guard
            .admit(ConnectionId::new_unchecked(rand_id()), &attacker)
            .unwrap();
        assert_eq!(guard.per_ip[&ip_of(&attacker).unwrap()], MAX_PENDING_PER_IP);
    }

    fn rand_id() -> usize {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static NEXT: AtomicUsize = AtomicUsize::new(1_000_000);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }
}
