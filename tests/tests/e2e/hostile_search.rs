//! Search on a hostile network: cheap identities that announce a word and sign
//! directories, and catalogs that claim more pages than they have, written with
//! libp2p in this test process from their own loopback address, against real daemons.

use std::net::IpAddr;
use std::time::Duration;

use seedbank_node::names::{MAX_SEARCH_EXTRA_PAGES, MAX_SEARCH_LOOKUPS};
use seedbank_protocol::PublisherSecret;
use seedbank_tests::fixtures::MIB;
use seedbank_tests::records::RecordPeer;
use seedbank_tests::search_poison::{
    announce_word, catalog_claiming_pages, directory, identity_sorting_before, node_secret,
};
use seedbank_tests::{model_dir, start_joined, Daemon};

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
