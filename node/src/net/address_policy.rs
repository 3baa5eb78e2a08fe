//! Which addresses learned from peers this node will store and dial.
//!
//! A peer can claim any address: pointing a node at loopback or private addresses makes
//! it dial services on its own machine or network. Addresses learned from peers
//! (identify, provider records) are kept only if they are public, or in a kind of
//! network this node itself listens on: a node listening on loopback (a test network)
//! accepts loopback addresses, one listening on a private or unspecified address (a
//! LAN, where mDNS works) accepts private ones. Addresses without an IP (in-memory
//! transports) are accepted.

use std::net::IpAddr;

use libp2p::Multiaddr;

use super::peer_ips::ip_of;

/// The kind of network an IP address belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// This machine.
    Loopback,
    /// A private, link-local or shared (carrier-grade NAT) network.
    Private,
    /// Anything else.
    Public,
}

/// Whether `ip` is link-local (169.254.0.0/16, fe80::/10): reachable on one link only.
pub fn is_link_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => ip.is_link_local(),
        IpAddr::V6(ip) => (ip.segments()[0] & 0xffc0) == 0xfe80,
    }
}

/// The scope of `ip`.
pub fn scope(ip: IpAddr) -> Scope {
    match ip {
        IpAddr::V4(ip) => {
            let [a, b, ..] = ip.octets();
            if ip.is_loopback() {
                Scope::Loopback
            } else if ip.is_private()
                || ip.is_link_local()
                || ip.is_unspecified()
                || (a == 100 && (64..128).contains(&b))
            {
                Scope::Private
            } else {
                Scope::Public
            }
        }
        IpAddr::V6(ip) => {
            let first = ip.segments()[0];
            if ip.is_loopback() {
                Scope::Loopback
            } else if ip.is_unspecified()
                || (first & 0xfe00) == 0xfc00
                || is_link_local(IpAddr::V6(ip))
            {
                Scope::Private
            } else if let Some(v4) = ip.to_ipv4_mapped() {
                scope(IpAddr::V4(v4))
            } else {
                Scope::Public
            }
        }
    }
}

/// Which scopes of peer-supplied addresses this node accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    loopback: bool,
    private: bool,
}

impl AddressPolicy {
    /// The policy of a node listening on `listen`.
    pub fn from_listen(listen: &[Multiaddr]) -> Self {
        let mut policy = Self {
            loopback: false,
            private: false,
        };
        for address in listen {
            match ip_of(address).map(scope) {
                Some(Scope::Loopback) => policy.loopback = true,
                Some(Scope::Private) => policy.private = true,
                Some(Scope::Public) => {}
                // In-memory and other transports: a test world, trust its addresses.
                None => {
                    policy.loopback = true;
                    policy.private = true;
                }
            }
        }
        policy
    }

    /// Whether an address a peer gave us may be kept and dialled.
    pub fn allows(&self, address: &Multiaddr) -> bool {
        match ip_of(address) {
            None => true,
            Some(ip) if ip.is_unspecified() || ip.is_multicast() => false,
            Some(ip) => match scope(ip) {
                Scope::Loopback => self.loopback,
                Scope::Private => self.private,
                Scope::Public => true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(address: &str) -> Multiaddr {
        address.parse().unwrap()
    }

    #[test]
    fn a_public_node_keeps_only_public_addresses() {
        let policy = AddressPolicy::from_listen(&[parse("/ip4/203.0.113.7/tcp/4150")]);
        assert!(policy.allows(&parse("/ip4/198.51.100.2/tcp/4150")));
        for bad in [
            "/ip4/127.0.0.1/tcp/22",
            "/ip4/10.1.2.3/tcp/4150",
            "/ip4/192.168.1.1/tcp/80",
            "/ip4/172.20.0.1/tcp/80",
            "/ip4/169.254.169.254/tcp/80",
            "/ip4/100.64.0.1/tcp/80",
            "/ip4/0.0.0.0/tcp/80",
            "/ip6/::1/tcp/80",
            "/ip6/fd00::1/tcp/80",
            "/ip6/fe80::1/tcp/80",
            "/ip6/::ffff:127.0.0.1/tcp/80",
            "/ip4/224.0.0.251/udp/5353",
        ] {
            assert!(!policy.allows(&parse(bad)), "{bad}");
        }
    }

    #[test]
    fn a_lan_node_keeps_private_addresses_and_a_loopback_node_loopback_ones() {
        let lan = AddressPolicy::from_listen(&[parse("/ip4/0.0.0.0/tcp/4150")]);
        assert!(lan.allows(&parse("/ip4/192.168.1.20/tcp/4150")));
        assert!(!lan.allows(&parse("/ip4/127.0.0.1/tcp/4150")));
        let local = AddressPolicy::from_listen(&[parse("/ip4/127.0.0.1/tcp/0")]);
        assert!(local.allows(&parse("/ip4/127.0.0.5/tcp/4150")));
        assert!(!local.allows(&parse("/ip4/10.0.0.1/tcp/4150")));
        let memory = AddressPolicy::from_listen(&[parse("/memory/1")]);
        assert!(memory.allows(&parse("/memory/7")));
        assert!(memory.allows(&parse("/ip4/127.0.0.1/tcp/1")));
    }
}
