//! Which held DHT record gives way to a newcomer when a store's quota is full, shared by
//! the provider and the value store: one whose peer (provider or sender) is no longer
//! connected goes first; else the one farthest from this node, if the newcomer's key is
//! closer (a node is asked to keep records near its own id; a flood of random keys is
//! mostly far). Pure: the stores gather the candidates and remove the one chosen.

use libp2p::kad::{KBucketDistance, KBucketKey, RecordKey};
use libp2p::PeerId;

/// Most held records looked at to choose one.
pub const REPLACEMENT_SAMPLE: usize = 256;

/// How far `key` is from `local` in the DHT's key space.
pub fn distance(local: &KBucketKey<PeerId>, key: &RecordKey) -> KBucketDistance {
    local.distance(&KBucketKey::new(key.clone()))
}

/// Of the first [`REPLACEMENT_SAMPLE`] `held` records (key, the peer that put it, and
/// what names it to the store), the one that gives way to `newcomer`, if any.
pub fn record_to_replace<'a, T>(
    held: impl Iterator<Item = (&'a RecordKey, PeerId, T)>,
    local: &KBucketKey<PeerId>,
    newcomer: &RecordKey,
    connected: impl Fn(&PeerId) -> bool,
) -> Option<T> {
    let mut farthest: Option<(KBucketDistance, T)> = None;
    for (key, peer, name) in held.take(REPLACEMENT_SAMPLE) {
        if !connected(&peer) {
            return Some(name);
        }
        let far = distance(local, key);
        if farthest
            .as_ref()
            .is_none_or(|(farthest, _)| far > *farthest)
        {
            farthest = Some((far, name));
        }
    }
    let (far, name) = farthest?;
    (distance(local, newcomer) < far).then_some(name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn key(n: u32) -> RecordKey {
        RecordKey::new(blake3::hash(&n.to_le_bytes()).as_bytes())
    }

    #[test]
    fn a_gone_peer_gives_way_first_then_the_farthest_for_a_closer_newcomer() {
        let local = KBucketKey::from(PeerId::random());
        let keys: Vec<RecordKey> = (0..64).map(key).collect();
        let peers: Vec<PeerId> = keys.iter().map(|_| PeerId::random()).collect();
        let held = || {
            keys.iter()
                .zip(&peers)
                .enumerate()
                .map(|(i, (k, p))| (k, *p, i))
        };
        let gone = peers[40];
        assert_eq!(
            record_to_replace(held(), &local, &keys[0], |p| *p != gone),
            Some(40)
        );
        let farthest = (0..64).max_by_key(|i| distance(&local, &keys[*i])).unwrap();
        let nearest = (0..64).min_by_key(|i| distance(&local, &keys[*i])).unwrap();
        assert_eq!(
            record_to_replace(held(), &local, &keys[nearest], |_| true),
            Some(farthest)
        );
        assert_eq!(
            record_to_replace(held(), &local, &keys[farthest], |_| true),
            None
        );
    }
}
