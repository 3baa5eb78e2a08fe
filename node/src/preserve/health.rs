//! Counting an artifact's copies: the providers the DHT lists, and of those, the ones
//! that say they hold every file and prove it by answering a spot check
//! ([`super::copy_proof`]).
//!
//! Bounded: at most [`MAX_CHECKED_PROVIDERS`] providers are checked per artifact, at
//! most [`CHECKS_AT_ONCE`] at a time, and each one gets a few have-questions and one 64 KiB
//! request, so a check costs a provider little however big the artifact.
//!
//! Silent providers cost little: every check ends after
//! [`super::spot_check::SPOT_CHECK_TIMEOUT`], and a peer that let one check time out
//! is not waited for again in the same round of checks ([`SilentPeers`]), so a crowd
//! of fake providers claiming many artifacts costs one timeout, not one per artifact.
//!
//! A pass proves the bytes came through that provider, not that it stores them: it could
//! relay the challenge. So this node serves nobody the range while it challenges for it
//! (a relay back here fails), and passes count once per network they came from.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures::stream::{self, StreamExt};
use libp2p::PeerId;
use seedbank_protocol::{ContentId, Manifest};

use super::book::{HealthRecord, PeerOutcome};
use super::copy_proof::{prove_copy, ProofContext};
use crate::net::ip_network::network_label;
use crate::random::{random_u64, shuffle};

/// Most providers spot-checked for one artifact: more than any replica target asks for,
/// few enough that a DHT full of claims costs little.
pub const MAX_CHECKED_PROVIDERS: usize = 24;

/// Spot checks of one artifact's providers running at once: half of
/// [`MAX_CHECKED_PROVIDERS`], so a dozen silent providers cost one timeout.
pub const CHECKS_AT_ONCE: usize = 12;

/// Artifacts checked at once by a keeper round or `health --refresh`: with
/// [`CHECKS_AT_ONCE`] each, at most 96 spot checks (16 KiB each) in flight. One by one,
/// a collection of thousands of members would take hours of DHT lookups per round.
pub const ARTIFACTS_AT_ONCE: usize = 8;

/// Peers that let a spot check time out during one round of checks; they are not
/// waited for again in that round.
#[derive(Debug, Clone, Default)]
pub struct SilentPeers(Arc<Mutex<HashSet<PeerId>>>);

impl SilentPeers {
    fn contains(&self, peer: &PeerId) -> bool {
        self.0.lock().is_ok_and(|set| set.contains(peer))
    }

    fn insert(&self, peer: PeerId) {
        if let Ok(mut set) = self.0.lock() {
            set.insert(peer);
        }
    }
}

/// What a round of spot checks works with.
#[derive(Debug, Clone, Copy)]
pub struct Checker<'a> {
    /// What each provider's check works with.
    pub proof: ProofContext<'a>,
    /// Peers already found silent in this round.
    pub silent: &'a SilentPeers,
}

/// Looks up `root`'s providers and spot-checks each other one against `manifest`.
/// `held_here` says whether this node holds it complete (its own copy counts).
pub async fn check_copies(
    checker: Checker<'_>,
    root: ContentId,
    manifest: &Manifest,
    held_here: bool,
    now: u64,
) -> HealthRecord {
    let Checker { proof, silent } = checker;
    let net = proof.net;
    let me = net.local_peer();
    let mut listed = match net.find_providers(root).await {
        Ok(peers) => peers,
        Err(e) => {
            tracing::debug!(%root, error = %e, "provider lookup failed");
            Vec::new()
        }
    };
    listed.sort();
    listed.dedup();
    let listed_me = listed.contains(&me);
    let others: Vec<PeerId> = listed.into_iter().filter(|p| *p != me).collect();
    let providers = others.len() as u32 + u32::from(listed_me || held_here);
    let checked: Vec<PeerId> = shuffled(others)
        .into_iter()
        .take(MAX_CHECKED_PROVIDERS)
        .collect();
    let peers = stream::iter(checked)
        .map(|peer| async move {
            let outcome = |error: Option<String>| PeerOutcome {
                peer: peer.to_string(),
                verified: error.is_none(),
                error,
                network: net.peer_ip(&peer).map(network_label),
            };
            if silent.contains(&peer) {
                return outcome(Some(format!(
                    "{peer} let another spot check of this round time out"
                )));
            }
            let result = prove_copy(proof, peer, root, manifest).await;
            if let Err(e) = &result {
                tracing::debug!(%root, %peer, error = %e, "spot check failed");
                if e.timed_out() {
                    silent.insert(peer);
                }
            }
            outcome(result.err().map(|e| e.to_string()))
        })
        .buffer_unordered(CHECKS_AT_ONCE)
        .collect::<Vec<_>>()
        .await;
    let mut peers = peers;
    peers.sort_by(|a, b| b.verified.cmp(&a.verified).then(a.peer.cmp(&b.peer)));
    HealthRecord {
        checked_at: now,
        providers,
        held_here,
        peers,
    }
}

/// `peers` in a random order, so the ones checked when there are too many differ each
/// time and a crowd of fake providers cannot always fill the first places.
fn shuffled(mut peers: Vec<PeerId>) -> Vec<PeerId> {
    shuffle(&mut peers, random_u64);
    peers
}
