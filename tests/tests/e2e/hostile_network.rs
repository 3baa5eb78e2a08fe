//! A seeding node on a hostile network: attackers written with libp2p in this test
//! process, from their own loopback address (127.0.0.66), against real daemons on
//! 127.0.0.1. Every attack is bounded in count and time.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use seedbank_node::net::provider_store::{
    MAX_KEYS_PER_PROVIDER, MAX_RECORDS_PER_NETWORK, MAX_REMOTE_RECORDS,
};
use seedbank_node::transfer::provider_slots::{MAX_STREAMS_PER_IP, MAX_STREAMS_PER_PEER};
use seedbank_tests::attacker::{
    flood_provider_records, tcp_socket_address, SilentConnections, StreamHoarder,
};
use seedbank_tests::fixtures::MIB;
use seedbank_tests::{rss_bytes, start_joined, tree_hashes, wait_until, write_random_file, Daemon};

/// Where the attackers connect from: a loopback address of their own.
const ATTACKER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 66));
/// Addresses each record of the address flood lists: 250 times what a node keeps
/// (`MAX_PROVIDER_ADDRESSES`, 4), in a message well inside the DHT's 64 KiB limit.
const FLOOD_ADDRESSES: usize = 1_000;

#[test]
fn identities_of_one_address_holding_idle_blob_streams_do_not_keep_an_honest_fetch_out() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 8 * MIB, "hoarded");
    let seeder = Daemon::start();
    let id = seeder.add_artifact(&model);

    // Enough identities of one address to fill the seeder's slots for an address, and
    // more than that: each holds as many streams as one peer may.
    let identities = MAX_STREAMS_PER_IP / MAX_STREAMS_PER_PEER + 1;
    let streams = identities * MAX_STREAMS_PER_PEER;
    let attack = StreamHoarder::start(
        &seeder.peer_address(),
        ATTACKER_IP,
        identities,
        MAX_STREAMS_PER_PEER,
    );
    attack.wait_until_opened(streams as u64, Duration::from_secs(60));
    // The attack has settled once every slot the seeder would give it is taken.
    attack.wait_until_refused(Duration::from_secs(60));

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
        "an honest 8 MiB fetch took {took:?} beside {streams} idle streams"
    );
    assert!(
        attack.busy_answers() > 0,
        "{identities} identities on one address got every stream they asked for"
    );
}

#[test]
fn a_flood_of_provider_records_neither_bloats_the_node_nor_keeps_honest_records_out() {
    let work = tempfile::tempdir().unwrap();
    let victim = Daemon::start();
    let pid = victim.pid().unwrap();
    let idle = rss_bytes(pid).unwrap();

    // As many records as the whole store holds, from 16 identities (each up to its cap
    // per provider) on 8 addresses of one network, all at once.
    let started = Instant::now();
    let identities = MAX_REMOTE_RECORDS / MAX_KEYS_PER_PROVIDER;
    let floods: Vec<_> = (0..identities)
        .map(|i| {
            let address = victim.peer_address();
            let source = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 66 + (i % 8) as u8));
            std::thread::spawn(move || {
                flood_provider_records(
                    &address,
                    source,
                    MAX_KEYS_PER_PROVIDER,
                    1,
                    Duration::from_secs(240),
                )
            })
        })
        .collect();
    let reports: Vec<_> = floods.into_iter().map(|f| f.join().unwrap()).collect();
    let acknowledged: u64 = reports.iter().map(|r| r.acknowledged).sum();
    // Records each listing far more addresses than are kept, in DHT messages the node
    // still reads: as many records as one provider may have stored, so that a node
    // keeping every address would pass the memory bound below.
    let many_addresses = flood_provider_records(
        &victim.peer_address(),
        ATTACKER_IP,
        MAX_KEYS_PER_PROVIDER,
        FLOOD_ADDRESSES,
        Duration::from_secs(240),
    );
    let flooded = rss_bytes(pid).unwrap();
    eprintln!(
        "idle RSS {} MiB, after the floods {} MiB ({:?}; {acknowledged} of {} acknowledged, {many_addresses:?})",
        idle / MIB,
        flooded / MIB,
        started.elapsed(),
        identities * MAX_KEYS_PER_PROVIDER,
    );
    assert!(
        acknowledged > MAX_RECORDS_PER_NETWORK as u64,
        "the flood barely reached the victim: {reports:?}"
    );
    assert!(
        flooded < 100 * MIB,
        "the victim grew from {} to {} MiB",
        idle / MIB,
        flooded / MIB
    );

    // The attackers have left. An honest node announces through the victim alone and
    // stops; a newcomer that knows only the victim finds it there: its record was kept.
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 2 * MIB, "after the flood");
    let mut announcer = start_joined(&victim, &[]);
    let step = Instant::now();
    let id = announcer.add_artifact(&model);
    victim.wait_for_providers(&id, &[announcer.peer_id()]);
    let announcer_id = announcer.peer_id();
    announcer.stop();
    let newcomer = start_joined(&victim, &[]);
    newcomer.wait_for_providers(&id, &[announcer_id]);
    eprintln!(
        "an honest record was kept and found {:?} after the flood",
        step.elapsed()
    );

    // The victim still announces what it adds, and another node finds and fetches it.
    let own = work.path().join("own");
    write_random_file(&own.join("weights.bin"), 2 * MIB, "the victim's own");
    let own_id = victim.add_artifact(&own);
    newcomer.wait_for_providers(&own_id, &[victim.peer_id()]);
    let out = work.path().join("out");
    newcomer.ok(&["fetch", &own_id, "--out", out.to_str().unwrap()]);
    assert_eq!(tree_hashes(&out), tree_hashes(&own));
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
    wait_until(
        "64 silent connections",
        Duration::from_secs(30),
        || match attack.opened() {
            opened if opened >= 64 => Ok(()),
            opened => Err(format!("{opened} opened")),
        },
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
