//! A seeding node on a hostile network: attackers written with libp2p in this test
//! process, from their own loopback address (127.0.0.66), against real daemons on
//! 127.0.0.1. Every attack is bounded in count and time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use seedbank_tests::attacker::{
    flood_provider_records, tcp_socket_address, SilentConnections, StreamHoarder,
};
use seedbank_tests::{rss_bytes, start_joined, tree_hashes, write_random_file, Daemon};

const MIB: u64 = 1024 * 1024;
const ATTACKER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 66));

#[test]
fn sixteen_identities_holding_idle_blob_streams_do_not_keep_an_honest_fetch_out() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 8 * MIB, "hoarded");
    let seeder = Daemon::start();
    let id = seeder.add_artifact(&model);

    let attack = StreamHoarder::start(&seeder.peer_address(), ATTACKER_IP, 16, 8);
    attack.wait_until_opened(128, Duration::from_secs(60));
    // Let the attack settle: every slot the seeder would give is taken.
    std::thread::sleep(Duration::from_secs(1));

    let fetcher = start_joined(&seeder, &[]);
    fetcher.wait_for_providers(&id, &[seeder.peer_id()]);
    let out = work.path().join("out");
    let started = Instant::now();
    fetcher.ok(&["fetch", &id, "--out", out.to_str().unwrap()]);
    let took = started.elapsed();
    eprintln!(
        "fetch under attack took {took:?}; the attacker opened {} streams and heard busy {} times",
        attack.opened(),
        attack.busy_answers()
    );
    assert_eq!(tree_hashes(&out), tree_hashes(&model));
    assert!(
        took < Duration::from_secs(20),
        "an honest 8 MiB fetch took {took:?} beside 128 idle streams"
    );
    assert!(
        attack.busy_answers() > 0,
        "16 identities on one address got every stream they asked for"
    );
}

#[test]
fn a_flood_of_provider_records_neither_bloats_the_node_nor_stops_its_announcements() {
    let work = tempfile::tempdir().unwrap();
    let victim = Daemon::start();
    let pid = victim.pid().unwrap();
    std::thread::sleep(Duration::from_secs(2));
    let idle = rss_bytes(pid).unwrap();

    let started = Instant::now();
    let many_keys = flood_provider_records(
        &victim.peer_address(),
        ATTACKER_IP,
        65_536,
        1,
        Duration::from_secs(240),
    );
    let many_addresses = flood_provider_records(
        &victim.peer_address(),
        ATTACKER_IP,
        5_000,
        5_000,
        Duration::from_secs(240),
    );
    let flooded = rss_bytes(pid).unwrap();
    eprintln!(
        "idle RSS {} MiB, after the floods {} MiB ({:?}; {many_keys:?}, {many_addresses:?})",
        idle / MIB,
        flooded / MIB,
        started.elapsed()
    );
    assert!(
        many_keys.acknowledged > 8_192,
        "the flood barely reached the victim: {many_keys:?}"
    );
    assert!(
        flooded < 100 * MIB,
        "the victim grew from {} to {} MiB",
        idle / MIB,
        flooded / MIB
    );

    // The victim still announces what it adds, and another node finds and fetches it.
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 2 * MIB, "after the flood");
    let step = Instant::now();
    let id = victim.add_artifact(&model);
    eprintln!("add took {:?}", step.elapsed());
    let fetcher = start_joined(&victim, &[]);
    eprintln!("join took {:?}", step.elapsed());
    fetcher.wait_for_providers(&id, &[victim.peer_id()]);
    eprintln!("providers found after {:?}", step.elapsed());
    let out = work.path().join("out");
    fetcher.ok(&["fetch", &id, "--out", out.to_str().unwrap()]);
    eprintln!("fetched after {:?}", step.elapsed());
    assert_eq!(tree_hashes(&out), tree_hashes(&model));
}

#[test]
fn silent_tcp_connections_from_one_address_do_not_keep_new_peers_out() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 2 * MIB, "behind the wall");
    let victim = Daemon::start();
    let id = victim.add_artifact(&model);

    let attack =
        SilentConnections::start(tcp_socket_address(&victim.peer_address()), ATTACKER_IP, 64);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        attack.opened() >= 64,
        "the attacker opened {}",
        attack.opened()
    );

    // A new node bootstraps through the victim (over TCP) and fetches from it while the
    // silent connections are held and renewed.
    let started = Instant::now();
    let fetcher = start_joined(&victim, &[]);
    fetcher.wait_for_providers(&id, &[victim.peer_id()]);
    let out = work.path().join("out");
    fetcher.ok(&["fetch", &id, "--out", out.to_str().unwrap()]);
    let took = started.elapsed();
    eprintln!(
        "joined and fetched in {took:?} beside {} silent connections opened",
        attack.opened()
    );
    assert_eq!(tree_hashes(&out), tree_hashes(&model));
    assert!(
        took < Duration::from_secs(30),
        "joining and fetching took {took:?}"
    );
}
