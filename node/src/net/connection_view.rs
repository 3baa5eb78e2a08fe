//! How connections and addresses look from this node: what `seedbank peers` shows for a
//! connection, and which listen addresses others can dial.

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

/// How a connection is shown in `seedbank peers`: the address dialled, without the
/// `/p2p/<id>` the peer column already gives; for an inbound connection, the peer's IP,
/// since its source port is ephemeral and not an address anyone can dial.
pub(super) fn shown_address(endpoint: &libp2p::core::ConnectedPoint) -> String {
    match endpoint {
        libp2p::core::ConnectedPoint::Dialer { address, .. } => {
            super::without_peer_id(address).to_string()
        }
        libp2p::core::ConnectedPoint::Listener { send_back_addr, .. } => {
            match super::ip_of(send_back_addr) {
                Some(ip) => format!("{ip} (inbound)"),
                None => "inbound".to_owned(),
            }
        }
    }
}

/// An address with a concrete IP (not 0.0.0.0 or ::).
pub(super) fn has_specific_ip(address: &Multiaddr) -> bool {
    address.iter().any(|p| match p {
        Protocol::Ip4(ip) => !ip.is_unspecified(),
        Protocol::Ip6(ip) => !ip.is_unspecified(),
        _ => false,
    })
}

/// Whether others can dial this address as it is: a concrete IP (not 0.0.0.0 or ::), or
/// an in-memory address of the simulator.
pub(super) fn is_dialable(address: &Multiaddr) -> bool {
    has_specific_ip(address) || address.iter().any(|p| matches!(p, Protocol::Memory(_)))
}

#[cfg(test)]
mod tests {
    use libp2p::PeerId;

    use super::*;

    #[test]
    fn peers_are_shown_without_a_repeated_id_or_an_ephemeral_port() {
        let peer = PeerId::random();
        let dialled = libp2p::core::ConnectedPoint::Dialer {
            address: format!("/ip4/192.168.1.20/tcp/4150/p2p/{peer}")
                .parse()
                .unwrap(),
            role_override: libp2p::core::Endpoint::Dialer,
            port_use: libp2p::core::transport::PortUse::New,
        };
        assert_eq!(shown_address(&dialled), "/ip4/192.168.1.20/tcp/4150");
        let inbound = libp2p::core::ConnectedPoint::Listener {
            local_addr: "/ip4/127.0.0.1/tcp/4150".parse().unwrap(),
            send_back_addr: "/ip4/127.0.0.9/tcp/53122".parse().unwrap(),
        };
        assert_eq!(shown_address(&inbound), "127.0.0.9 (inbound)");
    }

    #[test]
    fn only_concrete_addresses_are_dialable() {
        let parse = |a: &str| a.parse::<Multiaddr>().unwrap();
        assert!(is_dialable(&parse("/ip4/127.0.0.1/tcp/4150")));
        assert!(is_dialable(&parse("/memory/42")));
        assert!(!is_dialable(&parse("/ip4/0.0.0.0/tcp/4150")));
        assert!(!is_dialable(&parse("/ip6/::/udp/4150/quic-v1")));
    }
}
