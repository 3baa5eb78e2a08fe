//! Getting an artifact's root HashSeq and manifest: the first thing a fetch needs, and
//! the first thing a hostile peer could abuse.
//!
//! Both are requested only up to their size limits ([`MAX_ROOT_BYTES`],
//! [`MAX_MANIFEST_BYTES`]), from up to [`ROOT_SOURCES_AT_ONCE`] candidates at once; the
//! first that delivers wins and the others are dropped. Content is verified against the
//! root hash, so a manifest that decodes badly or lists absurd sizes is the artifact's
//! fault, not the sender's: it is refused with the reason, and no peer is blamed.

use futures::stream::FuturesUnordered;
use futures_util::StreamExt;
use iroh_blobs::protocol::{ChunkRanges, GetRequest};
use libp2p::PeerId;
use seedbank_protocol::limits::{MAX_MANIFEST_BYTES, MAX_ROOT_BYTES};
use seedbank_protocol::{ArtifactRoot, ContentId, Manifest};

use super::client::{BlobClient, RequestError, REQUEST_IDLE_TIMEOUT};
use super::fetch::plan::CHUNK_BYTES;
use crate::error::{NodeError, NodeResult};
use crate::store::{to_iroh, BlobStore};
use bao_tree::ChunkNum;

/// How many candidates are asked for the root and manifest at once.
pub const ROOT_SOURCES_AT_ONCE: usize = 3;

/// An artifact's root and manifest, checked against each other.
#[derive(Debug, Clone)]
pub struct RootAndManifest {
    /// The root HashSeq.
    pub root: ArtifactRoot,
    /// The manifest it names.
    pub manifest: Manifest,
}

/// Reads the root and manifest of `root` from the local store.
pub async fn read_root(store: &BlobStore, root: ContentId) -> NodeResult<RootAndManifest> {
    let bytes = store.read_small(root.hash(), MAX_ROOT_BYTES).await?;
    let decoded =
        ArtifactRoot::decode(&bytes).map_err(|e| NodeError::Corrupt(format!("{root}: {e}")))?;
    let manifest_bytes = store
        .read_small(decoded.manifest, MAX_MANIFEST_BYTES)
        .await?;
    let manifest = Manifest::decode(&manifest_bytes)?;
    decoded
        .check_manifest(&manifest)
        .map_err(|e| NodeError::Corrupt(format!("{root}: {e}")))?;
    Ok(RootAndManifest {
        root: decoded,
        manifest,
    })
}

/// What getting the root and manifest found out about the peers asked.
#[derive(Debug, Default)]
pub struct RootOutcome {
    /// Peers that sent data failing verification.
    pub misbehaved: Vec<PeerId>,
}

/// Gets the root and manifest of `root` into the store (unless already there) from the
/// first of `candidates` that has them, and reads them.
pub async fn fetch_root(
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
    let mut waiting = candidates.iter().copied();
    let mut running = FuturesUnordered::new();
    let mut errors: Vec<String> = Vec::new();
    loop {
        while running.len() < ROOT_SOURCES_AT_ONCE {
            let Some(peer) = waiting.next() else { break };
            let request = request.clone();
            running.push(async move {
                (
                    peer,
                    client
                        .get(peer, request, REQUEST_IDLE_TIMEOUT, arrived)
                        .await,
                )
            });
        }
        let Some((peer, result)) = running.next().await else {
            break;
        };
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
