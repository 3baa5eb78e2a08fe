//! Tests of the provider store: quotas, trimming, and making way under floods.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use libp2p::Multiaddr;

use super::*;

fn key(n: u32) -> RecordKey {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_le_bytes());
    RecordKey::new(&bytes)
}

fn record(key: RecordKey, provider: PeerId, addresses: usize) -> ProviderRecord {
    ProviderRecord {
        key,
        provider,
        expires: Some(Instant::now() + Duration::from_secs(3600)),
        addresses: (0..addresses)
            .map(|i| format!("/ip4/127.0.0.1/tcp/{}", 1000 + i).parse().unwrap())
            .collect(),
    }
}

fn loopback() -> AddressPolicy {
    AddressPolicy::from_listen(&["/ip4/127.0.0.1/tcp/0".parse::<Multiaddr>().unwrap()])
}

#[test]
fn a_flood_of_keys_cannot_stop_this_node_providing() {
    let local = PeerId::random();
    let mut store = ProviderStore::new(local);
    let now = Instant::now();
    for i in 0..70_000u32 {
        let sybil = PeerId::random();
        let ip = Some(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        let _ = store.add_remote(record(key(i), sybil, 1), ip, &loopback(), |_| true, now);
    }
    assert_eq!(store.remote_records(), MAX_REMOTE_RECORDS);
    store.add_provider(record(key(1 << 30), local, 1)).unwrap();
    assert_eq!(store.provided().count(), 1);
    assert_eq!(store.providers(&key(1 << 30)).len(), 1);
}

/// An address in 127.0.0.0/24, like the attackers' in the end-to-end tests.
fn attacker_ip(i: u32) -> Option<IpAddr> {
    Some(IpAddr::V4(std::net::Ipv4Addr::new(
        127,
        0,
        0,
        66 + (i % 34) as u8,
    )))
}

#[test]
fn one_network_holds_its_quota_and_no_more_and_others_still_get_in() {
    let mut store = ProviderStore::new(PeerId::random());
    let now = Instant::now();
    for i in 0..(MAX_RECORDS_PER_NETWORK as u32 + 500) {
        let _ = store.add_remote(
            record(key(i), PeerId::random(), 1),
            attacker_ip(i),
            &loopback(),
            |_| true,
            now,
        );
    }
    let network = network_of(attacker_ip(0).unwrap());
    assert_eq!(store.per_network[&network], MAX_RECORDS_PER_NETWORK);
    assert_eq!(store.remote_records(), MAX_RECORDS_PER_NETWORK);
    let elsewhere = Some(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 1, 1)));
    store
        .add_remote(
            record(key(1 << 29), PeerId::random(), 1),
            elsewhere,
            &loopback(),
            |_| true,
            now,
        )
        .unwrap();

    let sybil = PeerId::random();
    for i in 0..(MAX_KEYS_PER_PROVIDER as u32 + 1) {
        let outcome = store.add_remote(
            record(key(1_000_000 + i), sybil, 1),
            None,
            &loopback(),
            |_| true,
            now,
        );
        assert_eq!(outcome.is_ok(), (i as usize) < MAX_KEYS_PER_PROVIDER);
    }
}

#[test]
fn a_full_store_makes_way_for_honest_records_once_the_flood_is_gone() {
    let local = PeerId::random();
    let mut store = ProviderStore::new(local);
    let now = Instant::now();
    let sybils: Vec<PeerId> = (0..16).map(|_| PeerId::random()).collect();
    for i in 0..(MAX_REMOTE_RECORDS as u32) {
        let ip = Some(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        let sybil = sybils[i as usize % sybils.len()];
        store
            .add_remote(record(key(i), sybil, 1), ip, &loopback(), |_| true, now)
            .unwrap();
    }
    assert_eq!(store.remote_records(), MAX_REMOTE_RECORDS);
    let honest = PeerId::random();
    let honest_ip = Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1)));
    // While the flood is connected, a key nearer this node than those held gets in
    // in place of a far one...
    let near = (0..4096u32)
        .map(|i| key(2_000_000 + i))
        .min_by_key(|k| crate::net::make_way::distance(&store.local_key, k))
        .unwrap();
    store
        .add_remote(
            record(near.clone(), honest, 1),
            honest_ip,
            &loopback(),
            |_| true,
            now,
        )
        .unwrap();
    assert_eq!(store.remote_records(), MAX_REMOTE_RECORDS);
    // ...and once its connections close, anything does.
    let gone = |p: &PeerId| !sybils.contains(p);
    for i in 0..100u32 {
        store
            .add_remote(
                record(key(3_000_000 + i), honest, 1),
                honest_ip,
                &loopback(),
                gone,
                now,
            )
            .unwrap();
    }
    assert_eq!(store.remote_records(), MAX_REMOTE_RECORDS);
    assert_eq!(store.providers(&near)[0].provider, honest);
    assert_eq!(store.per_provider[&honest], 101);
}

#[test]
fn records_are_trimmed_and_bad_keys_refused() {
    let mut store = ProviderStore::new(PeerId::random());
    let now = Instant::now();
    let provider = PeerId::random();
    store
        .add_remote(
            record(key(1), provider, 5000),
            None,
            &loopback(),
            |_| true,
            now,
        )
        .unwrap();
    assert_eq!(
        store.providers(&key(1))[0].addresses.len(),
        MAX_PROVIDER_ADDRESSES
    );
    let mut short = record(key(2), provider, 1);
    short.key = RecordKey::new(&[1u8; 8]);
    assert_eq!(
        store.add_remote(short, None, &loopback(), |_| true, now),
        Err(Refusal::BadKey)
    );
    let public_only =
        AddressPolicy::from_listen(&["/ip4/203.0.113.1/tcp/1".parse::<Multiaddr>().unwrap()]);
    assert_eq!(
        store.add_remote(
            record(key(3), provider, 3),
            None,
            &public_only,
            |_| false,
            now
        ),
        Err(Refusal::NoAddress),
        "loopback addresses from a public node's peers are dropped"
    );
}

#[test]
fn a_full_key_makes_room_for_a_newcomer_by_dropping_unreachable_providers() {
    let mut store = ProviderStore::new(PeerId::random());
    let now = Instant::now();
    let sybils: Vec<PeerId> = (0..MAX_PROVIDERS_PER_KEY)
        .map(|_| PeerId::random())
        .collect();
    for sybil in &sybils {
        store
            .add_remote(record(key(7), *sybil, 1), None, &loopback(), |_| true, now)
            .unwrap();
    }
    let honest = PeerId::random();
    // While every sybil is connected, the list is full.
    assert_eq!(
        store.add_remote(record(key(7), honest, 1), None, &loopback(), |_| true, now),
        Err(Refusal::KeyFull)
    );
    // Once one of them is gone, the honest seeder takes its place.
    let gone = sybils[5];
    store
        .add_remote(
            record(key(7), honest, 1),
            None,
            &loopback(),
            |p| *p != gone,
            now,
        )
        .unwrap();
    let providers: Vec<PeerId> = store
        .providers(&key(7))
        .iter()
        .map(|r| r.provider)
        .collect();
    assert!(providers.contains(&honest) && !providers.contains(&gone));
    assert_eq!(providers.len(), MAX_PROVIDERS_PER_KEY);
}

#[test]
fn expired_records_are_removed_and_their_quota_returned() {
    let mut store = ProviderStore::new(PeerId::random());
    let now = Instant::now();
    let provider = PeerId::random();
    let mut old = record(key(1), provider, 1);
    old.expires = Some(now + Duration::from_secs(1));
    store
        .add_remote(old, attacker_ip(0), &loopback(), |_| true, now)
        .unwrap();
    assert_eq!(store.remove_expired(now + Duration::from_secs(2)), 1);
    assert_eq!(store.remote_records(), 0);
    assert!(store.per_network.is_empty() && store.per_provider.is_empty());
    assert!(store.providers(&key(1)).is_empty());
}

#[test]
fn value_records_are_not_kept() {
    let mut store = ProviderStore::new(PeerId::random());
    assert!(store.put(Record::new(key(1), vec![1, 2, 3])).is_err());
    assert!(store.get(&key(1)).is_none());
}
