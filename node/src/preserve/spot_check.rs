//! Proof that a peer holds a copy: ask it for one random 16 KiB group of one file and
//! verify what comes back against the file's BLAKE3 tree. Nothing is written to the
//! store; the bytes only have to verify.
//!
//! A provider record in the DHT is a claim, and claims cost nothing: records outlive the
//! peers that made them (48 h), and a peer can announce what it deleted. A spot check
//! costs the peer one small range and cannot be answered without the data, so counting
//! only peers that passed one gives the copies that really exist.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bao_tree::ChunkNum;
use iroh_blobs::get::fsm::{AtConnected, ConnectedNext, RequestCounters};
use iroh_blobs::protocol::{ChunkRanges, GetRequest};
use libp2p::PeerId;
use seedbank_protocol::{BlobHash, FileEntry, Manifest};

use crate::library::chunk_ranges::CHUNK_BYTES;
use crate::library::store::to_iroh;
use crate::net::NetHandle;
use crate::random::random_u64;
use crate::transfer::client::{open_blob_stream, RequestError};
use crate::transfer::streams::{split_stream, StreamSide};
use crate::transfer::traffic::Traffic;

/// Bytes asked for in one spot check: one iroh chunk group.
pub const SPOT_CHECK_BYTES: u64 = 16 * 1024;

/// Longest a spot check may take, stream opening included: 16 KiB take well under a
/// second from a peer that holds them, and a provider that stays silent longer is
/// counted as not holding a copy.
pub const SPOT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// One range of one blob to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpotRange {
    /// The blob.
    pub blob: BlobHash,
    /// Its size, as the manifest says.
    pub size: u64,
    /// First byte asked for (a multiple of [`SPOT_CHECK_BYTES`]).
    pub offset: u64,
}

impl SpotRange {
    /// The chunks asked for.
    pub fn chunks(&self) -> ChunkRanges {
        let first = ChunkNum(self.offset / CHUNK_BYTES);
        let end = ChunkNum(
            (self.offset + SPOT_CHECK_BYTES)
                .min(self.size)
                .div_ceil(CHUNK_BYTES),
        );
        ChunkRanges::from(first..end)
    }
}

/// A random 16 KiB group of a random non-empty file of `manifest`, drawn from `random`
/// (two independent random numbers); `None` for an artifact of empty files only.
pub fn pick_range(manifest: &Manifest, random: (u64, u64)) -> Option<SpotRange> {
    let files: Vec<&FileEntry> = manifest.files.iter().filter(|f| f.size > 0).collect();
    if files.is_empty() {
        return None;
    }
    let file = files[(random.0 % files.len() as u64) as usize];
    let groups = file.size.div_ceil(SPOT_CHECK_BYTES);
    Some(SpotRange {
        blob: file.hash,
        size: file.size,
        offset: (random.1 % groups) * SPOT_CHECK_BYTES,
    })
}

/// Two random numbers for [`pick_range`]; without an entropy source, a fixed pair still
/// checks a real range of the data.
pub fn random_pair() -> (u64, u64) {
    (random_u64(), random_u64())
}

/// Asks `peer` for `range` and verifies the answer; `Ok` only when every byte asked for
/// arrived and verified against the blob's hash.
pub async fn spot_check(
    net: &NetHandle,
    traffic: &Traffic,
    peer: PeerId,
    range: SpotRange,
) -> Result<(), RequestError> {
    match tokio::time::timeout(SPOT_CHECK_TIMEOUT, ask(net, traffic, peer, range)).await {
        Ok(result) => result,
        Err(_) => Err(RequestError::TimedOut {
            peer,
            after: SPOT_CHECK_TIMEOUT,
        }),
    }
}

async fn ask(
    net: &NetHandle,
    traffic: &Traffic,
    peer: PeerId,
    range: SpotRange,
) -> Result<(), RequestError> {
    let stream = open_blob_stream(net, peer).await?;
    let busy = Arc::new(AtomicBool::new(false));
    let (_, recv, send) = split_stream(stream, peer, traffic, StreamSide::Asking(busy.clone()));
    let request = GetRequest::builder()
        .root(range.chunks())
        .build(to_iroh(range.blob));
    let incomplete = |reason: String| RequestError::Incomplete { peer, reason };
    let connected = AtConnected::new(
        std::time::Instant::now().into(),
        recv,
        send,
        request,
        RequestCounters::default(),
    );
    let ConnectedNext::StartRoot(start) =
        connected
            .next()
            .await
            .map_err(|e| RequestError::Unreachable {
                peer,
                reason: e.to_string(),
            })?
    else {
        return Err(incomplete("the request was answered as another".into()));
    };
    let (content, size) = start.next().next().await.map_err(|e| {
        if busy.load(std::sync::atomic::Ordering::Relaxed) {
            RequestError::Busy { peer }
        } else {
            incomplete(format!("no answer for the blob: {e}"))
        }
    })?;
    if size != range.size {
        return Err(RequestError::Misbehaved {
            peer,
            reason: format!("it says the blob is {size} bytes; it is {}", range.size),
        });
    }
    content.drain().await.map_err(|e| {
        let reason = e.to_string();
        match e {
            iroh_blobs::get::fsm::DecodeError::LeafHashMismatch { .. }
            | iroh_blobs::get::fsm::DecodeError::ParentHashMismatch { .. } => {
                RequestError::Misbehaved { peer, reason }
            }
            _ => incomplete(reason),
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::FileEntry;

    use super::*;

    fn manifest(sizes: &[u64]) -> Manifest {
        Manifest {
            files: sizes
                .iter()
                .enumerate()
                .map(|(i, &size)| FileEntry {
                    path: format!("f{i}"),
                    size,
                    hash: BlobHash([i as u8; 32]),
                })
                .collect(),
            hf: None,
        }
    }

    #[test]
    fn ranges_fall_inside_non_empty_files_on_group_boundaries() {
        let files = manifest(&[0, 40_000, 5]);
        for a in 0..6 {
            for b in [0, 1, 2, 3, 99] {
                let range = pick_range(&files, (a, b)).unwrap();
                assert_ne!(range.size, 0, "empty files hold nothing to prove");
                assert_eq!(range.offset % SPOT_CHECK_BYTES, 0);
                assert!(range.offset < range.size);
            }
        }
        assert_eq!(pick_range(&manifest(&[0, 0]), (1, 2)), None);
    }
}
