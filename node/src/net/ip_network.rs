//! The unit the DHT stores count peers' records in: the network an address belongs to,
//! an IPv4 /24 or an IPv6 /48, as one party easily holds many addresses of one (a
//! loopback /8, a home's IPv6 /64, a provider's /24).

use std::net::IpAddr;

/// The network `ip` counts in: its IPv4 /24 or IPv6 /48 (an IPv4-mapped IPv6 address
/// counts as its IPv4 address).
pub fn network_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4((u32::from(v4) & 0xffff_ff00).into()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => network_of(IpAddr::V4(v4)),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 80) - 1)).into()),
        },
    }
}

/// The network `ip` counts in, written as a prefix: `203.0.113.0/24`, `2001:db8:1::/48`.
pub fn network_label(ip: IpAddr) -> String {
    let prefix = match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => 48,
        _ => 24,
    };
    format!("{}/{prefix}", network_of(ip))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn networks_are_ipv4_slash_24_and_ipv6_slash_48() {
        let ip = |text: &str| text.parse::<IpAddr>().unwrap();
        assert_eq!(network_of(ip("127.0.0.66")), network_of(ip("127.0.0.99")));
        assert_ne!(network_of(ip("127.0.0.66")), network_of(ip("127.0.1.66")));
        assert_eq!(
            network_of(ip("2001:db8:1:ffff::1")),
            network_of(ip("2001:db8:1::2"))
        );
        assert_ne!(
            network_of(ip("2001:db8:1::1")),
            network_of(ip("2001:db8:2::1"))
        );
        assert_eq!(
            network_of(ip("::ffff:10.1.2.3")),
            network_of(ip("10.1.2.99"))
        );
        assert_eq!(network_label(ip("127.0.3.9")), "127.0.3.0/24");
        assert_eq!(network_label(ip("::ffff:10.1.2.3")), "10.1.2.0/24");
        assert_eq!(network_label(ip("2001:db8:1:ffff::1")), "2001:db8:1::/48");
    }
}
