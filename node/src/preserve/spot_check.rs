//! Proof that a peer holds a copy: ask it, through the artifact's root, for random
//! 16 KiB groups drawn across the artifact's files (weighted by size, several files per
//! check) and verify what comes back against each file's BLAKE3 tree. Nothing is written
//! to the store; the bytes only have to verify.
//!
//! A provider record in the DHT is a claim, and claims cost nothing: records outlive the
//! peers that made them (48 h), and a peer can announce what it deleted. A spot check
//! costs the peer a few small ranges and cannot be answered without the data, so
//! counting only peers that passed one gives the copies that really exist. Asking
//! through the root matters: a peer that dropped a revision but kept a file another
//! revision shares still holds that file, but no longer the revision's root.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bao_tree::ChunkNum;
use iroh_blobs::get::fsm::{AtConnected, ConnectedNext, EndBlobNext, RequestCounters};
use iroh_blobs::protocol::{ChunkRanges, GetRequest};
use libp2p::PeerId;
use seedbank_protocol::{BlobHash, ContentId, Manifest};

use crate::library::chunk_ranges::CHUNK_BYTES;
use crate::library::store::to_iroh;
use crate::net::NetHandle;
use crate::transfer::client::{open_blob_stream, RequestError};
use crate::transfer::streams::{split_stream, StreamSide};
use crate::transfer::traffic::Traffic;

/// Bytes asked for in one range of a spot check: one iroh chunk group.
pub const SPOT_CHECK_BYTES: u64 = 16 * 1024;

/// Ranges asked for in one spot check, each from another file where the artifact has
/// that many: 64 KiB in all.
pub const RANGES_PER_CHECK: usize = 4;

/// Longest a spot check may take, stream opening included: 16 KiB take well under a
/// second from a peer that holds them, and a provider that stays silent longer is
/// counted as not holding a copy.
pub const SPOT_CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// One range of one file of an artifact to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpotRange {
    /// The file's place in the manifest (and, after the manifest, in the root).
    pub file: usize,
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

/// [`RANGES_PER_CHECK`] random 16 KiB groups of `manifest`'s files (fewer when it has
/// fewer non-empty files), each from another file, the files drawn with a chance in
/// proportion to their size among those not drawn yet (so every byte is about as likely
/// to be asked for); in manifest order. Empty for an artifact of empty files only.
/// `random` gives independent random numbers.
pub fn pick_ranges(manifest: &Manifest, mut random: impl FnMut() -> u64) -> Vec<SpotRange> {
    let mut untaken: u64 = manifest.files.iter().map(|f| f.size).sum();
    let mut ranges: Vec<SpotRange> = Vec::with_capacity(RANGES_PER_CHECK);
    while ranges.len() < RANGES_PER_CHECK && untaken > 0 {
        let mut at = random() % untaken;
        let Some((file, entry)) = manifest
            .files
            .iter()
            .enumerate()
            .filter(|(index, _)| ranges.iter().all(|r| r.file != *index))
            .find(|(_, entry)| {
                let here = at < entry.size;
                at = at.saturating_sub(entry.size);
                here
            })
        else {
            break;
        };
        untaken -= entry.size;
        ranges.push(SpotRange {
            file,
            blob: entry.hash,
            size: entry.size,
            offset: (random() % entry.size.div_ceil(SPOT_CHECK_BYTES)) * SPOT_CHECK_BYTES,
        });
    }
    ranges.sort_by_key(|r| r.file);
    ranges
}

/// Asks `peer` for `ranges` of the artifact `root` in one request through the root, and
/// verifies the answer; `Ok` only when every byte asked for arrived and verified
/// against its file's hash. The error says which file failed.
pub async fn spot_check(
    net: &NetHandle,
    traffic: &Traffic,
    peer: PeerId,
    root: ContentId,
    ranges: &[SpotRange],
) -> Result<(), SpotCheckError> {
    match tokio::time::timeout(SPOT_CHECK_TIMEOUT, ask(net, traffic, peer, root, ranges)).await {
        Ok(result) => result,
        Err(_) => Err(SpotCheckError {
            file: None,
            source: RequestError::TimedOut {
                peer,
                after: SPOT_CHECK_TIMEOUT,
            },
        }),
    }
}

/// A spot check that failed, and the file it failed on when it got that far.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct SpotCheckError {
    /// The manifest index of the file whose range failed.
    pub file: Option<usize>,
    /// What went wrong.
    pub source: RequestError,
}

/// The root-relative place of file `index` in a get request: the root itself is 0 and
/// the manifest, the root's first child, 1.
fn request_offset(file: usize) -> u64 {
    file as u64 + 2
}

async fn ask(
    net: &NetHandle,
    traffic: &Traffic,
    peer: PeerId,
    root: ContentId,
    ranges: &[SpotRange],
) -> Result<(), SpotCheckError> {
    let whole = |source: RequestError| SpotCheckError { file: None, source };
    let stream = open_blob_stream(net, peer).await.map_err(whole)?;
    let busy = Arc::new(AtomicBool::new(false));
    let (_, recv, send) = split_stream(stream, peer, traffic, StreamSide::Asking(busy.clone()));
    let request = ranges
        .iter()
        .fold(GetRequest::builder(), |request, range| {
            request.offset(request_offset(range.file), range.chunks())
        })
        .build(to_iroh(root.hash()));
    let connected = AtConnected::new(
        std::time::Instant::now().into(),
        recv,
        send,
        request,
        RequestCounters::default(),
    );
    let mut next = match connected.next().await {
        Ok(ConnectedNext::StartChild(child)) => child,
        Ok(_) => {
            return Err(whole(RequestError::Incomplete {
                peer,
                reason: "the request was answered as another".into(),
            }))
        }
        Err(e) => {
            return Err(whole(RequestError::Unreachable {
                peer,
                reason: e.to_string(),
            }))
        }
    };
    for range in ranges {
        let failed = |source: RequestError| SpotCheckError {
            file: Some(range.file),
            source,
        };
        if next.offset() != request_offset(range.file) {
            return Err(failed(RequestError::Incomplete {
                peer,
                reason: "the answer skipped a file".into(),
            }));
        }
        let (content, size) = next.next(to_iroh(range.blob)).next().await.map_err(|e| {
            failed(if busy.load(std::sync::atomic::Ordering::Relaxed) {
                RequestError::Busy { peer }
            } else {
                RequestError::Incomplete {
                    peer,
                    reason: format!("no answer for the file: {e}"),
                }
            })
        })?;
        if size != range.size {
            return Err(failed(RequestError::Misbehaved {
                peer,
                reason: format!("it says the file is {size} bytes; it is {}", range.size),
            }));
        }
        let end = content.drain().await.map_err(|e| {
            let reason = e.to_string();
            failed(match e {
                iroh_blobs::get::fsm::DecodeError::LeafHashMismatch { .. }
                | iroh_blobs::get::fsm::DecodeError::ParentHashMismatch { .. } => {
                    RequestError::Misbehaved { peer, reason }
                }
                _ => RequestError::Incomplete { peer, reason },
            })
        })?;
        match end.next() {
            EndBlobNext::MoreChildren(child) => next = child,
            EndBlobNext::Closing(_) => return Ok(()),
        }
    }
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

    /// A small xorshift generator: the same numbers every run.
    fn numbers(seed: u64) -> impl FnMut() -> u64 {
        let mut state = seed | 1;
        move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        }
    }

    #[test]
    fn ranges_fall_inside_non_empty_files_on_group_boundaries_one_per_file() {
        let files = manifest(&[0, 40_000, 5, 0, 1 << 20, 70_000]);
        for seed in 0..200 {
            let ranges = pick_ranges(&files, numbers(seed));
            assert_eq!(
                ranges.len(),
                RANGES_PER_CHECK,
                "four non-empty files, four ranges"
            );
            for (range, next) in ranges.iter().zip(ranges.iter().skip(1)) {
                assert!(
                    range.file < next.file,
                    "one range per file, in order: {ranges:?}"
                );
            }
            for range in &ranges {
                assert_ne!(range.size, 0, "empty files hold nothing to prove");
                assert_eq!(range.size, files.files[range.file].size);
                assert_eq!(range.offset % SPOT_CHECK_BYTES, 0);
                assert!(range.offset < range.size);
            }
        }
        assert!(pick_ranges(&manifest(&[0, 0]), numbers(1)).is_empty());
        assert_eq!(pick_ranges(&manifest(&[7, 0]), numbers(1)).len(), 1);
    }

    #[test]
    fn big_files_are_asked_for_in_proportion_to_their_size() {
        // Four 4 MiB shards and four 16 KiB files: the shards hold 99.6 % of the bytes.
        let files = manifest(&[
            16 << 10,
            4 << 20,
            16 << 10,
            4 << 20,
            16 << 10,
            4 << 20,
            16 << 10,
            4 << 20,
        ]);
        let mut small = 0;
        for seed in 0..500 {
            small += pick_ranges(&files, numbers(seed))
                .iter()
                .filter(|r| r.size == 16 << 10)
                .count();
        }
        assert!(
            small < 100,
            "{small} of 2000 ranges fell in the small files"
        );
    }
}
