//! Finding an artifact's root: look up who has it, then get the root HashSeq and the
//! manifest from them. One loop serves the full fetch and the manifest-only fetch (the
//! gateway's file listing, spot checks, denylists), cancellable, and it reports every
//! peer that sent a bad root to the peer book.
//!
//! The root and manifest are requested only up to their size limits
//! ([`MAX_ROOT_BYTES`], [`MAX_MANIFEST_BYTES`]), from up to [`ROOT_SOURCES_AT_ONCE`]
//! candidates at once; the first that delivers wins and the others are dropped. Content
//! is verified against the root hash, so a manifest that decodes badly or lists absurd
//! sizes is the artifact's fault, not the sender's: it is refused with the reason, and
//! no peer is blamed.

use std::time::Duration;

use bao_tree::ChunkNum;
use futures::stream::FuturesUnordered;
use futures_util::StreamExt;
use iroh_blobs::protocol::{ChunkRanges, GetRequest};
use libp2p::PeerId;
use seedbank_protocol::limits::{MAX_MANIFEST_BYTES, MAX_ROOT_BYTES};
use seedbank_protocol::ContentId;
use tokio_util::sync::CancellationToken;

use super::timings::FetchTimings;
use crate::discovery::{candidates, Candidate, ContentDiscovery};
use crate::error::{NodeError, NodeResult};
use crate::library::chunk_ranges::CHUNK_BYTES;
use crate::library::root::{read_root, RootAndManifest};
use crate::library::store::to_iroh;
use crate::peers::{PeerAction, PeerBook};
use crate::transfer::client::{BlobClient, RequestError, Tally, REQUEST_IDLE_TIMEOUT};

/// How many candidates are asked for the root and manifest at once.
pub const ROOT_SOURCES_AT_ONCE: usize = 3;

/// While no candidate has answered for this long, one more is asked beside those
/// waited on (a peer that claims the artifact and never answers holds a request until
/// its idle timeout), up to [`MAX_ROOT_SOURCES_AT_ONCE`].
pub const ROOT_HEDGE_AFTER: Duration = Duration::from_secs(1);

/// Most candidates asked for the root and manifest at once, hedged requests included.
pub const MAX_ROOT_SOURCES_AT_ONCE: usize = 12;

/// How many times a fetch looks for peers and asks them for the root before it fails.
const ROOT_ROUNDS: u32 = 3;

/// The first wait between two lookups for peers; each later one doubles, within the
/// lookup patience (right after a start, the DHT and mDNS have not found anyone yet).
const FIRST_LOOKUP_WAIT: Duration = Duration::from_secs(1);

/// A root found: the root and manifest, the candidates it was looked for among, and
/// the peers that sent data failing verification on the way.
#[derive(Debug)]
pub struct FoundRoot {
    /// The root and manifest, now in the store.
    pub fetched: RootAndManifest,
    /// Who was listed as holding the artifact.
    pub candidates: Vec<Candidate>,
    /// Peers that sent a bad root or manifest (already reported to the peer book).
    pub misbehaved: Vec<PeerId>,
}

/// Looks up who has `root` and gets its root and manifest from them, looking again
/// (up to [`ROOT_ROUNDS`] rounds) when nobody sent it. Complete providers are asked
/// first: they surely have the manifest.
pub async fn find_root(
    client: &BlobClient,
    discovery: &dyn ContentDiscovery,
    peers: &PeerBook,
    timings: &FetchTimings,
    root: ContentId,
    cancel: &CancellationToken,
) -> NodeResult<FoundRoot> {
    let mut outcome = RootOutcome::default();
    let mut round = 0;
    let result = loop {
        round += 1;
        let candidates = find_candidates(discovery, timings, root, cancel).await?;
        tracing::debug!(peers = candidates.len(), round, "asking for the root");
        // Peers that served well before first, complete providers before partial ones.
        let mut sources: Vec<PeerId> = candidates.iter().map(|c| c.peer).collect();
        peers.rank(&mut sources, tokio::time::Instant::now());
        sources.sort_by_key(|peer| !candidates.iter().any(|c| c.peer == *peer && c.complete));
        let result = tokio::select! {
            () = cancel.cancelled() => Err(cancelled()),
            fetched = fetch_root(client, root, &sources, &mut outcome) => fetched,
        };
        match result {
            Ok(fetched) => break Ok((fetched, candidates)),
            // Lookups differ from one moment to the next (records of peers that left,
            // peers that just arrived): look again before giving up.
            Err(NodeError::Unreachable(e)) if round < ROOT_ROUNDS => {
                tracing::debug!(error = %e, "no candidate sent the root; looking again");
                tokio::select! {
                    () = cancel.cancelled() => break Err(cancelled()),
                    () = tokio::time::sleep(timings.root_round_wait) => {}
                }
            }
            // Only peers that happen to be connected were asked, none of them had it,
            // and the DHT lists nobody: the network answered, and nobody has it.
            Err(NodeError::Unreachable(e)) if candidates.iter().all(|c| !c.listed) => {
                break Err(NodeError::NotFound(format!(
                    "nobody has {root}: the DHT lists no provider, and the {} connected peers asked do not hold it ({e})",
                    candidates.len()
                )))
            }
            Err(e) => break Err(e),
        }
    };
    for peer in &outcome.misbehaved {
        peers.report(*peer, PeerAction::SentBadData, tokio::time::Instant::now());
    }
    let (fetched, candidates) = result?;
    Ok(FoundRoot {
        fetched,
        candidates,
        misbehaved: outcome.misbehaved,
    })
}

/// Peers to fetch `root` from: those discovery lists, and connected ones as partial
/// candidates. Looks a few times, with growing waits, before giving up.
async fn find_candidates(
    discovery: &dyn ContentDiscovery,
    timings: &FetchTimings,
    root: ContentId,
    cancel: &CancellationToken,
) -> NodeResult<Vec<Candidate>> {
    for wait in lookup_waits(timings.lookup_patience) {
        tokio::select! {
            () = cancel.cancelled() => return Err(cancelled()),
            () = tokio::time::sleep(wait) => {}
        }
        let found = candidates(discovery, Some(root)).await;
        if !found.is_empty() {
            return Ok(found);
        }
    }
    Err(NodeError::Unreachable(format!(
        "no provider of {root} found: the DHT lists none and no peer is connected"
    )))
}

/// The waits before each lookup: none before the first, then [`FIRST_LOOKUP_WAIT`]
/// doubling, as long as they add up to at most `patience`.
fn lookup_waits(patience: Duration) -> Vec<Duration> {
    let mut waits = vec![Duration::ZERO];
    let mut next = FIRST_LOOKUP_WAIT.min(patience);
    let mut total = Duration::ZERO;
    while !next.is_zero() && total + next <= patience {
        waits.push(next);
        total += next;
        next *= 2;
    }
    waits
}

fn cancelled() -> NodeError {
    NodeError::Cancelled("cancelled".into())
}

/// What getting the root and manifest found out about the peers asked.
#[derive(Debug, Default)]
struct RootOutcome {
    /// Peers that sent data failing verification.
    misbehaved: Vec<PeerId>,
}

/// Gets the root and manifest of `root` into the store (unless already there) from the
/// first of `candidates` that has them, and reads them.
async fn fetch_root(
    client: &BlobClient,
    root: ContentId,
    candidates: &[PeerId],
    outcome: &mut RootOutcome,
) -> NodeResult<RootAndManifest> {
    if let Ok(found) = read_root(&client.store, root).await {
        return Ok(found);
    }
    let request = GetRequest::builder()
        .root(chunks_up_to(MAX_ROOT_BYTES))
        .next(chunks_up_to(MAX_MANIFEST_BYTES))
        .build(to_iroh(root.hash()));
    let arrived = std::sync::atomic::AtomicU64::new(0);
    let arrived = &arrived;
    let ask = |peer: PeerId| {
        let request = request.clone();
        async move {
            let this_request = std::sync::atomic::AtomicU64::new(0);
            let tally = Tally {
                transfer: arrived,
                request: &this_request,
            };
            let result = client.get(peer, request, REQUEST_IDLE_TIMEOUT, tally).await;
            (peer, result)
        }
    };
    let mut waiting = candidates.iter().copied().peekable();
    let mut running = FuturesUnordered::new();
    let mut errors: Vec<String> = Vec::new();
    let mut hedge = tokio::time::interval_at(
        tokio::time::Instant::now() + ROOT_HEDGE_AFTER,
        ROOT_HEDGE_AFTER,
    );
    loop {
        while running.len() < ROOT_SOURCES_AT_ONCE {
            let Some(peer) = waiting.next() else { break };
            running.push(ask(peer));
        }
        let may_hedge = running.len() < MAX_ROOT_SOURCES_AT_ONCE && waiting.peek().is_some();
        let next = tokio::select! {
            next = running.next() => next,
            _ = hedge.tick(), if may_hedge => {
                if let Some(peer) = waiting.next() {
                    tracing::debug!(%peer, "no root yet; asking one more candidate");
                    running.push(ask(peer));
                }
                continue;
            }
        };
        let Some((peer, result)) = next else {
            break;
        };
        // An answer came: the next hedge waits a whole period again.
        hedge.reset();
        match result {
            Ok(_) => match read_root(&client.store, root).await {
                Ok(found) => return Ok(found),
                // Verified bytes that do not make an artifact: the artifact is bad.
                Err(e @ NodeError::Manifest(_)) => return Err(e),
                Err(e) => errors.push(format!("{peer}: {e}")),
            },
            Err(e) => {
                tracing::debug!(%peer, error = %e, "root request failed");
                if e.is_misbehaviour() {
                    outcome.misbehaved.push(peer);
                }
                if let RequestError::Local { reason, .. } = &e {
                    return Err(NodeError::Store(format!(
                        "storing the root of {root}: {reason}"
                    )));
                }
                errors.push(e.to_string());
            }
        }
    }
    if !outcome.misbehaved.is_empty() && errors.len() == outcome.misbehaved.len() {
        return Err(NodeError::PeerMisbehaved(format!(
            "every peer that sent the manifest of {root} sent bad data ({})",
            errors.join("; ")
        )));
    }
    Err(NodeError::Unreachable(format!(
        "no provider sent the manifest of {root} ({})",
        if errors.is_empty() {
            "none was asked".to_owned()
        } else {
            errors.join("; ")
        }
    )))
}

/// The chunks of the first `bytes` bytes of a blob.
fn chunks_up_to(bytes: usize) -> ChunkRanges {
    ChunkRanges::from(ChunkNum(0)..ChunkNum((bytes as u64).div_ceil(CHUNK_BYTES)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_wait_longer_each_time_within_the_patience() {
        let s = Duration::from_secs;
        assert_eq!(lookup_waits(s(7)), vec![s(0), s(1), s(2), s(4)]);
        assert_eq!(lookup_waits(s(0)), vec![s(0)]);
        let short = Duration::from_millis(300);
        assert_eq!(lookup_waits(short), vec![s(0), short]);
    }
}
