//! Questions to Kademlia's routing table, answered by looking in one bucket.

use libp2p::{kad, Multiaddr, PeerId};

use super::provider_store::ProviderStore;

/// The DHT behaviour this node runs.
pub(super) type Kad = kad::Behaviour<ProviderStore>;

/// Peers in the routing table.
pub(super) fn size(kad: &mut Kad) -> usize {
    kad.kbuckets().map(|b| b.num_entries()).sum()
}

/// The addresses the routing table holds for `peer`, if it holds `peer`.
pub(super) fn addresses_of(kad: &mut Kad, peer: &PeerId) -> Option<Vec<Multiaddr>> {
    let bucket = kad.kbucket(*peer)?;
    let addresses = bucket
        .iter()
        .find(|entry| entry.node.key.preimage() == peer)
        .map(|entry| entry.node.value.iter().cloned().collect());
    addresses
}

/// Whether `peer` is in the routing table, or its bucket has room for it.
pub(super) fn has_room_for(kad: &mut Kad, peer: &PeerId) -> bool {
    let Some(bucket) = kad.kbucket(*peer) else {
        return false;
    };
    bucket.num_entries() < kad::K_VALUE.get()
        || bucket.iter().any(|entry| entry.node.key.preimage() == peer)
}
