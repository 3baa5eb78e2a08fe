//! Which nodes, publishers and catalog pages one search reads, when more are offered
//! than it may read. Peer ids cost nothing, so no choice may favour a property an
//! attacker picks for free (the order of peer ids, the first directory read, a catalog
//! that claims many pages):
//!
//! - **Nodes**: half are the ones whose ids lie nearest, by XOR distance, to one of the
//!   words' keys (getting close costs an attacker work that doubles with every bit),
//!   the rest are drawn at random from the others, so a crowd of announcers lowers an
//!   honest node's chance of being read but cannot make it nil.
//! - **Publishers**: this node's own and trusted ones first, then one from each
//!   directory in turn (its list shuffled), so one directory naming many publishers
//!   gets one place per turn like any other.
//! - **Pages**: every catalog's first page, then further pages one per catalog per turn
//!   (trusted first) from one budget for the whole search, so a catalog claiming many
//!   pages costs no more than its share.

use std::collections::HashSet;

use libp2p::kad::{KBucketDistance, KBucketKey, RecordKey};
use libp2p::PeerId;
use seedbank_protocol::PublisherKey;

use crate::random::shuffle;

/// XOR distance from `peer` to the nearest of `keys` (DHT keys of the search words).
fn nearest_distance(peer: &PeerId, keys: &[RecordKey]) -> Option<KBucketDistance> {
    let peer_key = KBucketKey::from(*peer);
    keys.iter()
        .map(|k| peer_key.distance(&KBucketKey::new(k.clone())))
        .min()
}

/// Up to `most` of `candidates`: the `most / 2` nearest to `keys`, then the rest drawn
/// with `random` (a source of random numbers). Keeps the chosen in reading order.
pub fn pick_nodes(
    mut candidates: Vec<PeerId>,
    keys: &[RecordKey],
    most: usize,
    random: impl FnMut() -> u64,
) -> Vec<PeerId> {
    candidates.sort();
    candidates.dedup();
    if candidates.len() <= most {
        return candidates;
    }
    candidates.sort_by_cached_key(|p| nearest_distance(p, keys));
    let nearest = most / 2;
    let mut rest = candidates.split_off(nearest);
    shuffle(&mut rest, random);
    rest.truncate(most - nearest);
    candidates.extend(rest);
    candidates
}

/// Up to `most` publishers to read: every one of `first` (this node's own and trusted
/// ones that some directory lists, or that this node serves) in order, then one of each
/// directory's in turn, each directory's list shuffled with `random`.
pub fn pick_publishers(
    first: &[PublisherKey],
    directories: Vec<Vec<PublisherKey>>,
    most: usize,
    mut random: impl FnMut() -> u64,
) -> Vec<PublisherKey> {
    let mut chosen = Vec::new();
    let mut seen = HashSet::new();
    for p in first {
        if chosen.len() < most && seen.insert(*p) {
            chosen.push(*p);
        }
    }
    let mut lists: Vec<Vec<PublisherKey>> = directories
        .into_iter()
        .map(|mut list| {
            shuffle(&mut list, &mut random);
            list
        })
        .collect();
    while chosen.len() < most && lists.iter().any(|l| !l.is_empty()) {
        for list in &mut lists {
            // Each turn, a directory's next publisher not chosen already.
            while let Some(p) = list.pop() {
                if seen.insert(p) {
                    chosen.push(p);
                    break;
                }
            }
            if chosen.len() == most {
                break;
            }
        }
    }
    chosen
}

/// The further pages to read, as (index into `pages`, page number), in turns: page 1
/// of each catalog that has one, then page 2 of each, … until `budget` reads. `pages`
/// holds each catalog's page count in reading order (trusted first).
pub fn plan_pages(pages: &[u16], budget: usize) -> Vec<(usize, u16)> {
    let mut plan = Vec::new();
    let deepest = pages.iter().copied().max().unwrap_or(0);
    for page in 1..deepest {
        for (index, &count) in pages.iter().enumerate() {
            if page < count {
                if plan.len() == budget {
                    return plan;
                }
                plan.push((index, page));
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter() -> impl FnMut() -> u64 {
        let mut n = 0u64;
        move || {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            n >> 11
        }
    }

    fn key(n: u8) -> PublisherKey {
        PublisherKey([n; 32])
    }

    #[test]
    fn few_nodes_are_all_read() {
        let peers: Vec<PeerId> = (0..5).map(|_| PeerId::random()).collect();
        let picked = pick_nodes(peers.clone(), &[RecordKey::new(b"w")], 32, counter());
        assert_eq!(picked.len(), 5);
        assert!(peers.iter().all(|p| picked.contains(p)));
    }

    #[test]
    fn many_nodes_give_half_the_places_to_the_nearest_and_half_to_chance() {
        let word = RecordKey::new(b"llama");
        let peers: Vec<PeerId> = (0..200).map(|_| PeerId::random()).collect();
        let mut by_distance = peers.clone();
        by_distance.sort_by_key(|p| nearest_distance(p, std::slice::from_ref(&word)));
        let picked = pick_nodes(peers.clone(), std::slice::from_ref(&word), 32, counter());
        assert_eq!(picked.len(), 32);
        assert_eq!(picked[..16], by_distance[..16]);
        assert_eq!(picked.iter().collect::<HashSet<_>>().len(), 32);

        // Over many searches, every far node gets read now and then.
        let mut read = HashSet::new();
        let mut random = counter();
        for _ in 0..200 {
            read.extend(pick_nodes(
                peers.clone(),
                std::slice::from_ref(&word),
                32,
                &mut random,
            ));
        }
        assert_eq!(read.len(), 200, "some nodes were never read");
    }

    #[test]
    fn a_directory_naming_many_publishers_gets_one_place_per_turn() {
        let flood: Vec<PublisherKey> = (10..74).map(key).collect();
        let honest = vec![key(1)];
        let picked = pick_publishers(&[key(200)], vec![flood, honest], 4, counter());
        assert_eq!(picked[0], key(200), "trusted first");
        assert!(picked.contains(&key(1)), "{picked:?}");
        assert_eq!(picked.len(), 4);
    }

    #[test]
    fn a_publisher_listed_twice_is_read_once() {
        let picked = pick_publishers(
            &[key(1)],
            vec![vec![key(1), key(2)], vec![key(2)]],
            8,
            counter(),
        );
        assert_eq!(picked.len(), 2);
    }

    #[test]
    fn catalogs_claiming_many_pages_share_one_budget_page_by_page() {
        let plan = plan_pages(&[3, 64, 64, 1], 5);
        assert_eq!(plan, [(0, 1), (1, 1), (2, 1), (0, 2), (1, 2)]);
        assert_eq!(plan_pages(&[64; 8], 64).len(), 64);
        assert!(plan_pages(&[1, 1], 10).is_empty());
    }
}
