//! A seeding node on a hostile network: attackers written with libp2p in this test
//! process, from their own loopback address (127.0.0.66), against real daemons on
//! 127.0.0.1. Every attack is bounded in count and time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use seedbank_tests::attacker::StreamHoarder;
use seedbank_tests::{tree_hashes, write_random_file, Daemon};

const MIB: u64 = 1024 * 1024;
const ATTACKER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 66));

fn join(seed: &str) -> Daemon {
    let daemon = Daemon::start_with(&["--bootstrap", seed]);
    daemon.wait_for_routing_table(1);
    daemon
}

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

    let fetcher = join(&seeder.peer_address());
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
