//! The IP address each connected peer reaches us from, shared by the event loop (which
//! writes it) and the services that bound what one address may hold (which read it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// How one peer is connected.
#[derive(Debug, Clone, Copy, Default)]
struct Link {
    /// The IP of its latest direct connection.
    ip: Option<IpAddr>,
    /// Direct connections open now.
    direct: u32,
    /// Connections through a relay (circuits) open now.
    relayed: u32,
}

/// Connected peers' IP addresses, and which peers are reached only through relays;
/// cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PeerIps {
    links: Arc<RwLock<HashMap<PeerId, Link>>>,
}

impl PeerIps {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<PeerId, Link>> {
        self.links.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<PeerId, Link>> {
        self.links.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a new connection of `peer` to `address` (the latest direct one's IP
    /// wins). A relayed connection's address names the relay's IP, not the peer's, so
    /// it is counted apart and never charged to that IP.
    pub fn connected(&self, peer: PeerId, address: &Multiaddr) {
        let mut links = self.write();
        let link = links.entry(peer).or_default();
        if is_relayed(address) {
            link.relayed += 1;
        } else {
            link.direct += 1;
            link.ip = ip_of(address).or(link.ip);
        }
    }

    /// Records that one connection of `peer` to `address` closed.
    pub fn connection_closed(&self, peer: &PeerId, address: &Multiaddr) {
        if let Some(link) = self.write().get_mut(peer) {
            let count = if is_relayed(address) {
                &mut link.relayed
            } else {
                &mut link.direct
            };
            *count = count.saturating_sub(1);
        }
    }

    /// Forgets `peer` once its last connection closed.
    pub fn disconnected(&self, peer: &PeerId) {
        self.write().remove(peer);
    }

    /// The IP address `peer` is connected from, if it is connected directly over IP.
    pub fn get(&self, peer: &PeerId) -> Option<IpAddr> {
        self.read().get(peer).and_then(|link| link.ip)
    }

    /// Whether `peer` has a connection open (direct or relayed).
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.read()
            .get(peer)
            .is_some_and(|link| link.direct + link.relayed > 0)
    }

    /// Whether `peer` is connected, but only through relays.
    pub fn relayed_only(&self, peer: &PeerId) -> bool {
        self.read()
            .get(peer)
            .is_some_and(|link| link.relayed > 0 && link.direct == 0)
    }
}

/// Whether `address` runs through a relay (`/p2p-circuit`).
pub fn is_relayed(address: &Multiaddr) -> bool {
    address.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

/// The IP address at the start of `address`, if it has one.
pub fn ip_of(address: &Multiaddr) -> Option<IpAddr> {
    address.iter().find_map(|part| match part {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_peer_is_known_by_its_ip_while_connected() {
        let ips = PeerIps::default();
        let peer = PeerId::random();
        ips.connected(peer, &"/ip4/127.0.0.66/tcp/4150".parse().unwrap());
        assert_eq!(ips.get(&peer), Some(IpAddr::from([127, 0, 0, 66])));
        ips.connected(peer, &"/memory/5".parse().unwrap());
        assert_eq!(ips.get(&peer), Some(IpAddr::from([127, 0, 0, 66])));
        ips.disconnected(&peer);
        assert_eq!(ips.get(&peer), None);
    }

    #[test]
    fn a_peer_reached_through_a_relay_is_not_charged_to_the_relays_ip() {
        let ips = PeerIps::default();
        let peer = PeerId::random();
        let relay = PeerId::random();
        let circuit: Multiaddr = format!("/ip4/203.0.113.7/tcp/4150/p2p/{relay}/p2p-circuit")
            .parse()
            .unwrap();
        ips.connected(peer, &circuit);
        assert_eq!(ips.get(&peer), None);
        assert!(ips.relayed_only(&peer));
        let direct: Multiaddr = "/ip4/198.51.100.9/tcp/4150".parse().unwrap();
        ips.connected(peer, &direct);
        assert!(!ips.relayed_only(&peer));
        assert_eq!(ips.get(&peer), Some(IpAddr::from([198, 51, 100, 9])));
        // The direct connection goes, the circuit stays: relayed only again.
        ips.connection_closed(&peer, &direct);
        assert!(ips.relayed_only(&peer));
    }
}
