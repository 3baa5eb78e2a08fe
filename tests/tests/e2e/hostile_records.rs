//! DHT records and search on a hostile network: floods of signed value records, cheap
//! identities that announce a word and sign directories, and catalogs that claim more
//! pages than they have, written with libp2p in this test process from loopback
//! addresses of their own, against real daemons.

use std::net::IpAddr;
use std::time::Duration;

use seedbank_node::names::{MAX_SEARCH_EXTRA_PAGES, MAX_SEARCH_LOOKUPS};
use seedbank_node::net::value_store::{MAX_REMOTE_VALUE_BYTES, MAX_VALUES_PER_NETWORK};
use seedbank_protocol::PublisherSecret;
use seedbank_tests::attacker::flood_value_records;
use seedbank_tests::fixtures::MIB;
use seedbank_tests::records::RecordPeer;
use seedbank_tests::search_poison::{
    announce_word, big_catalog_page, catalog_claiming_pages, directory, identity_sorting_before,
    node_secret,
};
use seedbank_tests::{model_dir, rss_bytes, start_joined, Daemon};

/// Where the attackers connect from: a loopback address of their own.
const ATTACKER_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 66));
/// Identities announcing the word: more than the 32 nodes a search used to read.
const ANNOUNCERS: usize = 40;
/// Publishers whose catalogs each claim the most pages a catalog may have.
const FAKE_PUBLISHERS: u8 = 8;

#[test]
fn cheap_announcers_and_catalogs_claiming_many_pages_neither_blind_nor_flood_a_search() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    model_dir(&model, "honest llama", MIB);
    let p = Daemon::start();
    let q = start_joined(&p, &[]);
    p.publish(&model, "llama-base", "v1");
    let honest = p.publisher_key();

    // Eight publishers whose first catalog pages list a llama and claim 64 pages each.
    let fakes: Vec<PublisherSecret> = (0..FAKE_PUBLISHERS)
        .map(|i| PublisherSecret::from_seed([i + 1; 32]))
        .collect();
    let records = RecordPeer::start();
    let victim = q.peer_address();
    for (i, fake) in fakes.iter().enumerate() {
        let (key, value) = catalog_claiming_pages(fake, &format!("llama-fake-{i}"), 64);
        assert!(records.put_to(&victim, key, value));
    }
    // Forty identities whose ids sort before the honest node's, each announcing the
    // word and signing a directory that names the eight.
    let p_peer = p.peer_id().parse().unwrap();
    let identities: Vec<_> = (0..ANNOUNCERS)
        .map(|_| identity_sorting_before(&p_peer))
        .collect();
    let fake_keys: Vec<_> = fakes.iter().map(|f| f.public()).collect();
    for identity in &identities {
        let (key, value) = directory(&node_secret(identity), &fake_keys);
        assert!(records.put_to(&victim, key, value));
    }
    let announced = announce_word(
        &victim,
        ATTACKER_IP,
        "llama",
        identities,
        Duration::from_secs(60),
    );
    assert_eq!(announced, ANNOUNCERS, "the announcements did not all land");

    // The honest llama is still found, beside the fakes, and the search stayed within
    // its lookup bound although the catalogs claimed 8 × 63 more pages.
    let found = q.ok_json(&["search", "llama"]);
    let results = found["results"].as_array().unwrap();
    let publishers: Vec<&str> = results
        .iter()
        .map(|r| r["publisher"].as_str().unwrap())
        .collect();
    assert!(
        results
            .iter()
            .any(|r| r["publisher"] == honest.as_str() && r["entry"]["name"] == "llama-base"),
        "the honest publisher was crowded out: {found}"
    );
    assert!(publishers.len() > 1, "the fakes are found too: {found}");
    let lookups = found["lookups"].as_u64().unwrap();
    eprintln!(
        "search read {} nodes and {} publishers in {lookups} lookups",
        found["nodes"], found["publishers"]
    );
    assert!(
        lookups <= MAX_SEARCH_LOOKUPS as u64,
        "{lookups} DHT lookups for one search: {found}"
    );
    assert!(
        // One word, the announcers and the honest node, the fakes and the honest
        // publisher, and the pages budget.
        lookups
            <= (1 + (ANNOUNCERS + 1) + (FAKE_PUBLISHERS as usize + 1) + MAX_SEARCH_EXTRA_PAGES)
                as u64,
        "{lookups} DHT lookups for one search: {found}"
    );
    assert_eq!(found["complete"], false, "pages were left unread: {found}");

    // Once trusted, the honest publisher comes first.
    q.ok(&["trust", "add", "pat", &honest]);
    let found = q.ok_json(&["search", "llama"]);
    assert_eq!(found["results"][0]["publisher"], honest.as_str(), "{found}");
    assert_eq!(found["results"][0]["trusted"], true, "{found}");
}

#[test]
fn a_flood_of_value_records_neither_bloats_the_node_nor_keeps_a_publishers_record_out() {
    let victim = Daemon::start();
    let pid = victim.pid().unwrap();
    let idle = rss_bytes(pid).unwrap();

    // Eight networks, each sending as many signed catalog pages as one network may have
    // kept (about 9 KiB each: twice the bytes the whole store keeps), all at once.
    let started = std::time::Instant::now();
    let floods: Vec<_> = (0..8u8)
        .map(|n| {
            let address = victim.peer_address();
            let source = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 10 + n, 66));
            std::thread::spawn(move || {
                let records = (0..MAX_VALUES_PER_NETWORK as u64)
                    .map(|i| big_catalog_page(u64::from(n) << 32 | i))
                    .collect();
                flood_value_records(&address, source, records, Duration::from_secs(240))
            })
        })
        .collect();
    let reports: Vec<_> = floods.into_iter().map(|f| f.join().unwrap()).collect();
    let acknowledged: u64 = reports.iter().map(|r| r.acknowledged).sum();
    let flooded = rss_bytes(pid).unwrap();
    eprintln!(
        "idle RSS {} MiB, after the flood {} MiB ({:?}; {acknowledged} of {} puts acknowledged)",
        idle / MIB,
        flooded / MIB,
        started.elapsed(),
        8 * MAX_VALUES_PER_NETWORK,
    );
    assert!(
        acknowledged * 9 * 1024 > 2 * MAX_REMOTE_VALUE_BYTES as u64,
        "the flood barely reached the victim: {reports:?}"
    );
    assert!(
        flooded < idle + 2 * MAX_REMOTE_VALUE_BYTES as u64,
        "the victim grew from {} to {} MiB",
        idle / MIB,
        flooded / MIB
    );

    // The attackers have left. A publisher whose only peer is the victim publishes, and
    // is told the victim kept its name record; a newcomer resolves the name there.
    let step = std::time::Instant::now();
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    model_dir(&model, "after the flood", MIB);
    let p = start_joined(&victim, &[]);
    let report = p.publish_report(&model, "toy", "v1");
    assert_eq!(
        report["kept_by"], 1,
        "the victim refused the record: {report}"
    );
    let key = p.publisher_key();
    let mut p = p;
    p.stop();
    let newcomer = start_joined(&victim, &[]);
    let resolved = newcomer.ok_json(&["resolve", &format!("{key}/toy")]);
    assert_eq!(resolved["revision"], "v1", "{resolved}");
    eprintln!(
        "an honest name record was kept and resolved {:?} after the flood",
        step.elapsed()
    );
}
