//! Search poisoning from the test harness: cheap identities that announce a search word
//! and sign directories, and publishers whose catalogs claim more pages than they have,
//! as an attacker who wants one word's search to find only their entries would make.

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use libp2p::identity::Keypair;
use libp2p::kad::{self, QueryResult, RecordKey};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use seedbank_protocol::catalog::{
    catalog_key, directory_key, word_key, CatalogEntry, CatalogPage, Directory, SignedDirectory,
};
use seedbank_protocol::{ArtifactKind, BlobHash, ContentId, PublisherKey, PublisherSecret, Signed};

use crate::attacker::kad_swarm_from;
use crate::hostile::peer_runtime;

/// How long an announcer stays after its query, for its messages to be delivered.
const LINGER: Duration = Duration::from_millis(500);
/// Announcements under way at once.
const ANNOUNCEMENTS_AT_ONCE: usize = 4;

/// A node identity whose peer id sorts before `before`, as one ground in a fraction of
/// a second: half of all keys do.
pub fn identity_sorting_before(before: &PeerId) -> Keypair {
    loop {
        let key = Keypair::generate_ed25519();
        if key.public().to_peer_id() < *before {
            return key;
        }
    }
}

/// The publisher key a node identity signs its directory with (its ed25519 key).
pub fn node_secret(identity: &Keypair) -> PublisherSecret {
    let ed25519 = identity
        .clone()
        .try_into_ed25519()
        .expect("an ed25519 identity");
    let seed: [u8; 32] = ed25519
        .secret()
        .as_ref()
        .try_into()
        .expect("a 32-byte seed");
    PublisherSecret::from_seed(seed)
}

/// `node`'s signed directory naming `publishers`, as a DHT key and value.
pub fn directory(node: &PublisherSecret, publishers: &[PublisherKey]) -> ([u8; 32], Vec<u8>) {
    let mut publishers = publishers.to_vec();
    publishers.sort();
    publishers.dedup();
    let signed: SignedDirectory = Signed::sign(
        Directory {
            sequence: 1,
            publishers,
        },
        node,
    )
    .expect("signing a directory");
    (directory_key(&node.public()), signed.encode())
}

/// The first page of `publisher`'s catalog, listing `name` and claiming `pages` pages
/// (none of the others exists), as a DHT key and value.
pub fn catalog_claiming_pages(
    publisher: &PublisherSecret,
    name: &str,
    pages: u16,
) -> ([u8; 32], Vec<u8>) {
    let page = CatalogPage {
        page: 0,
        pages,
        sequence: 1,
        entries: vec![CatalogEntry {
            name: name.into(),
            revision: "v1".into(),
            root: ContentId(BlobHash(*blake3::hash(name.as_bytes()).as_bytes())),
            kind: ArtifactKind::Model,
            size: 1,
            licence: Some("MIT".into()),
            tags: vec![],
        }],
    };
    let signed = Signed::sign(page, publisher).expect("signing a catalog page");
    (catalog_key(&publisher.public(), 0), signed.encode())
}

/// The first page of a fresh publisher's catalog (drawn from `seed`), listing 48 names
/// of 120 bytes: about 9 KiB, as a DHT key and value.
pub fn big_catalog_page(seed: u64) -> ([u8; 32], Vec<u8>) {
    let mut secret_seed = [0u8; 32];
    secret_seed[..8].copy_from_slice(&seed.to_le_bytes());
    secret_seed[8] = 0xf1;
    let publisher = PublisherSecret::from_seed(secret_seed);
    let entries = (0..48)
        .map(|i| CatalogEntry {
            name: format!("flood-{i:03}-{}", "x".repeat(110)),
            revision: "v1".into(),
            root: ContentId(BlobHash(*blake3::hash(&[i]).as_bytes())),
            kind: ArtifactKind::Dataset,
            size: 1,
            licence: None,
            tags: vec![],
        })
        .collect();
    let page = CatalogPage {
        page: 0,
        pages: 1,
        sequence: 1,
        entries,
    };
    let signed = Signed::sign(page, &publisher).expect("signing a catalog page");
    (catalog_key(&publisher.public(), 0), signed.encode())
}

/// Announces `word` to the daemon at `victim` as a DHT provider from each of
/// `identities`, dialling from `source`; returns how many announcements the victim
/// acknowledged. Each record names a made-up address on `source`, port 9.
pub fn announce_word(
    victim: &str,
    source: IpAddr,
    word: &str,
    identities: Vec<Keypair>,
    within: Duration,
) -> usize {
    let runtime = peer_runtime();
    let victim: Multiaddr = victim.parse().expect("victim address");
    let key = RecordKey::new(&word_key(word));
    runtime.block_on(async move {
        let announcements = identities.into_iter().map(|identity| {
            let victim = victim.clone();
            let key = key.clone();
            async move {
                tokio::time::timeout(within, announce(victim, source, key, identity))
                    .await
                    .unwrap_or(false)
            }
        });
        // A few at a time: a node lets one address have only a few handshakes pending.
        futures_util::stream::iter(announcements)
            .buffer_unordered(ANNOUNCEMENTS_AT_ONCE)
            .filter(|acknowledged| std::future::ready(*acknowledged))
            .count()
            .await
    })
}

async fn announce(
    mut victim: Multiaddr,
    source: IpAddr,
    key: RecordKey,
    identity: Keypair,
) -> bool {
    let Some(libp2p::multiaddr::Protocol::P2p(victim_peer)) = victim.pop() else {
        panic!("victim address {victim} lacks /p2p/");
    };
    let mut swarm = kad_swarm_from(source, identity, Default::default());
    swarm.add_external_address(
        format!("/ip4/{source}/tcp/9")
            .parse()
            .expect("made-up address"),
    );
    swarm.behaviour_mut().add_address(&victim_peer, victim);
    if swarm.behaviour_mut().start_providing(key).is_err() {
        return false;
    }
    loop {
        if let SwarmEvent::Behaviour(kad::Event::OutboundQueryProgressed {
            result: QueryResult::StartProviding(result),
            step,
            ..
        }) = swarm.select_next_some().await
        {
            if step.last {
                // The announcements go out as the query ends: let them reach the wire.
                let linger = tokio::time::sleep(LINGER);
                tokio::pin!(linger);
                loop {
                    tokio::select! {
                        _ = &mut linger => return result.is_ok(),
                        _ = swarm.select_next_some() => {}
                    }
                }
            }
        }
    }
}
