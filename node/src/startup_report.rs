//! The block a daemon prints once it is ready: who it is, where it keeps data, where its
//! API and peers reach it, a `--bootstrap` line others can paste, and the limits in force.

use std::fmt::Write;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId};

use crate::config::NodeConfig;
use crate::net::nat_config::RelayService;
use crate::net::{ip_of, is_link_local, listens_beyond_loopback, without_peer_id};

/// What the start-up block shows.
#[derive(Debug)]
pub struct StartupFacts<'a> {
    /// The node's peer id.
    pub node_id: PeerId,
    /// The data directory.
    pub data_dir: &'a Path,
    /// Where the control API listens.
    pub api_addr: SocketAddr,
    /// Addresses the swarm listens on, with concrete IPs where known.
    pub listen_addresses: &'a [Multiaddr],
    /// The effective configuration.
    pub config: &'a NodeConfig,
}

/// The start-up block, one fact per line.
pub fn startup_block(facts: &StartupFacts<'_>) -> String {
    let mut block = String::new();
    let config = facts.config;
    let _ = writeln!(block, "node id:    {}", facts.node_id);
    let _ = writeln!(block, "data dir:   {}", facts.data_dir.display());
    let _ = writeln!(block, "api:        http://{}", facts.api_addr);
    for address in facts.listen_addresses {
        let _ = writeln!(block, "listening:  {address}");
    }
    let (shareable, local_only) = bootstrap_addresses(facts.listen_addresses);
    if local_only {
        let _ = writeln!(
            block,
            "join from this machine only (no address beyond loopback) with:"
        );
    } else if !shareable.is_empty() {
        let _ = writeln!(block, "others join through this node with:");
    }
    for address in shareable {
        let _ = writeln!(
            block,
            "  --bootstrap {}",
            address.with(Protocol::P2p(facts.node_id))
        );
    }
    let _ = writeln!(
        block,
        "mdns:       {}",
        if config.net.mdns {
            "on (finds peers on the local network)"
        } else {
            "off"
        }
    );
    let beyond_loopback = listens_beyond_loopback(&config.net.listen);
    let _ = writeln!(
        block,
        "port map:   {}",
        match (config.net.port_mapping, beyond_loopback) {
            (true, true) => "on: asks the home router (UPnP) to open the listen ports",
            (true, false) => "off (listening on loopback only)",
            (false, _) => "off (port_mapping = false)",
        }
    );
    let _ = writeln!(
        block,
        "relaying:   {}",
        match config.net.relay_service {
            RelayService::Auto =>
                "auto: relays for nodes behind NAT once this node is known to be public",
            RelayService::On => "on: relays for nodes behind NAT",
            RelayService::Off => "off",
        }
    );
    if beyond_loopback {
        let _ = writeln!(
            block,
            "reachable:  checking; `seedbank status` says whether others can fetch from this node"
        );
    }
    let _ = writeln!(
        block,
        "bootstrap:  {}",
        match config.net.bootstrap.len() {
            0 => "none configured".to_owned(),
            1 => "1 peer".to_owned(),
            n => format!("{n} peers"),
        }
    );
    let rate = |limit: Option<crate::config::ByteRate>| {
        limit.map_or("unlimited".to_owned(), |r| format!("{r}/s"))
    };
    let _ = writeln!(
        block,
        "limits:     upload {}, download {}, {} connections ({} per peer)",
        rate(config.upload_limit),
        rate(config.download_limit),
        config.net.max_connections,
        config.net.max_connections_per_peer
    );
    let _ = writeln!(
        block,
        "storage:    {}",
        config
            .max_storage
            .map_or("no limit (max_storage)".to_owned(), |max| format!(
                "at most {max}; unpinned artifacts are evicted least recently used first"
            ))
    );
    block.trim_end().to_owned()
}

/// Listen addresses worth handing to other people: concrete, not link-local; loopback
/// ones only when there is nothing else (then the flag is true).
fn bootstrap_addresses(listen: &[Multiaddr]) -> (Vec<Multiaddr>, bool) {
    let concrete: Vec<(&Multiaddr, IpAddr)> = listen
        .iter()
        .filter_map(|address| ip_of(address).map(|ip| (address, ip)))
        .filter(|(_, ip)| !ip.is_unspecified() && !is_link_local(*ip))
        .collect();
    let beyond_loopback: Vec<Multiaddr> = concrete
        .iter()
        .filter(|(_, ip)| !ip.is_loopback())
        .map(|(address, _)| without_peer_id(address))
        .collect();
    if !beyond_loopback.is_empty() {
        return (beyond_loopback, false);
    }
    let loopback: Vec<Multiaddr> = concrete
        .iter()
        .map(|(address, _)| without_peer_id(address))
        .collect();
    let local_only = !loopback.is_empty();
    (loopback, local_only)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses(list: &[&str]) -> Vec<Multiaddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn lan_addresses_are_offered_and_loopback_only_without_them() {
        let listen = addresses(&[
            "/ip4/127.0.0.1/tcp/4150",
            "/ip4/192.168.1.20/tcp/4150",
            "/ip6/fe80::1/tcp/4150",
            "/ip4/0.0.0.0/udp/4150/quic-v1",
        ]);
        let (offered, local_only) = bootstrap_addresses(&listen);
        assert_eq!(offered, addresses(&["/ip4/192.168.1.20/tcp/4150"]));
        assert!(!local_only);
        let (offered, local_only) = bootstrap_addresses(&addresses(&["/ip4/127.0.0.1/tcp/4150"]));
        assert_eq!(offered, addresses(&["/ip4/127.0.0.1/tcp/4150"]));
        assert!(local_only);
    }

    #[test]
    fn the_block_gives_a_pasteable_bootstrap_line() {
        let peer = PeerId::random();
        let id = peer.to_string();
        let listen = addresses(&["/ip4/192.168.1.20/tcp/4150"]);
        let config = NodeConfig::default();
        let block = startup_block(&StartupFacts {
            node_id: peer,
            data_dir: Path::new("/var/lib/seedbank"),
            api_addr: "127.0.0.1:5150".parse().unwrap(),
            listen_addresses: &listen,
            config: &config,
        });
        assert!(
            block.contains(&format!("--bootstrap /ip4/192.168.1.20/tcp/4150/p2p/{id}")),
            "{block}"
        );
        assert_eq!(block.matches(&id).count(), 2, "{block}");
        assert!(block.contains("upload unlimited"), "{block}");
    }
}
