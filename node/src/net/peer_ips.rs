//! The IP address each connected peer reaches us from, shared by the event loop (which
//! writes it) and the services that bound what one address may hold (which read it).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

/// Connected peers' IP addresses; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct PeerIps {
    ips: Arc<RwLock<HashMap<PeerId, IpAddr>>>,
}

impl PeerIps {
    /// Records the address of a new connection of `peer` (the latest one wins).
    pub fn connected(&self, peer: PeerId, address: &Multiaddr) {
        if let Some(ip) = ip_of(address) {
            self.ips
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .insert(peer, ip);
        }
    }

    /// Forgets `peer` once its last connection closed.
    pub fn disconnected(&self, peer: &PeerId) {
        self.ips
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(peer);
    }

    /// The IP address `peer` is connected from, if it is connected over IP.
    pub fn get(&self, peer: &PeerId) -> Option<IpAddr> {
        self.ips
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(peer)
            .copied()
    }
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
}
