//! Whether a provider holds a whole copy of an artifact: it says it holds every file
//! complete (the have-question fetches ask, [`ask_have`]), and it proves it by answering
//! a spot check through the artifact's root ([`spot_check`]).
//!
//! The have-answers are claims, but they catch what honest peers really do: drop a
//! revision and keep the files another revision shares, or still be fetching. The spot
//! check is the proof: ranges drawn across the files by size cannot be answered without
//! the bytes, and asking through the root fails on a peer that dropped the revision.

use bao_tree::ChunkNum;
use futures::stream::{self, StreamExt, TryStreamExt};
use iroh_blobs::protocol::ChunkRanges;
use libp2p::PeerId;
use seedbank_protocol::{ContentId, FileEntry, Manifest};

use super::spot_check::{pick_ranges, spot_check, SpotCheckError, SPOT_CHECK_TIMEOUT};
use crate::library::chunk_ranges::CHUNK_BYTES;
use crate::library::store::to_iroh;
use crate::net::NetHandle;
use crate::random::{random_u64, shuffle};
use crate::transfer::challenges::Challenges;
use crate::transfer::client::RequestError;
use crate::transfer::have::ask_have;
use crate::transfer::traffic::Traffic;

/// Files a provider is asked about in one check: all of an artifact of up to this many
/// non-empty files, a random sample of a bigger one (each question is one small stream).
pub const HAVE_FILES_PER_CHECK: usize = 32;

/// Have-questions to one provider at once.
const HAVE_QUESTIONS_AT_ONCE: usize = 4;

/// Why a provider does not count as holding a copy.
#[derive(Debug, thiserror::Error)]
pub enum CopyProofError {
    /// It says it lacks part or all of a file.
    #[error("it does not hold all of {path} ({size} bytes)")]
    Lacks {
        /// The file's path in the artifact.
        path: String,
        /// The file's size.
        size: u64,
    },
    /// A question or the spot check about one file failed.
    #[error("{path}: {source}")]
    File {
        /// The file's path in the artifact.
        path: String,
        /// What went wrong.
        source: RequestError,
    },
    /// The check failed before any file was reached.
    #[error("{0}")]
    Request(RequestError),
}

impl CopyProofError {
    /// Whether the provider let the check run out of time.
    pub fn timed_out(&self) -> bool {
        matches!(
            self,
            Self::Request(RequestError::TimedOut { .. })
                | Self::File {
                    source: RequestError::TimedOut { .. },
                    ..
                }
        )
    }
}

/// What a check of one provider works with.
#[derive(Debug, Clone, Copy)]
pub struct ProofContext<'a> {
    /// The network.
    pub net: &'a NetHandle,
    /// Where the check's bytes are counted.
    pub traffic: &'a Traffic,
    /// The ranges this node serves nobody while it challenges for them.
    pub challenges: &'a Challenges,
}

/// Checks that `peer` holds every file of `root` (whose manifest is `manifest`), within
/// [`SPOT_CHECK_TIMEOUT`] in all. An artifact of empty files only has nothing to prove.
pub async fn prove_copy(
    context: ProofContext<'_>,
    peer: PeerId,
    root: ContentId,
    manifest: &Manifest,
) -> Result<(), CopyProofError> {
    tokio::time::timeout(SPOT_CHECK_TIMEOUT, prove(context, peer, root, manifest))
        .await
        .unwrap_or(Err(CopyProofError::Request(RequestError::TimedOut {
            peer,
            after: SPOT_CHECK_TIMEOUT,
        })))
}

async fn prove(
    context: ProofContext<'_>,
    peer: PeerId,
    root: ContentId,
    manifest: &Manifest,
) -> Result<(), CopyProofError> {
    let ProofContext {
        net,
        traffic,
        challenges,
    } = context;
    let ranges = pick_ranges(manifest, random_u64);
    if ranges.is_empty() {
        return Ok(());
    }
    // The questions are made before they run: a closure handing out borrowed files
    // would make the future not `Send` for every lifetime.
    let questions: Vec<_> = asked_files(manifest)
        .into_iter()
        .map(|file| holds_whole(net, peer, file))
        .collect();
    stream::iter(questions)
        .buffer_unordered(HAVE_QUESTIONS_AT_ONCE)
        .try_collect::<()>()
        .await?;
    // Nobody gets the challenged ranges from this node while the check runs: a peer
    // holding nothing could otherwise pass by relaying the challenge back here.
    let _challenges: Vec<_> = ranges
        .iter()
        .map(|range| challenges.open(root, range.blob, range.chunks()))
        .collect();
    spot_check(net, traffic, peer, root, &ranges).await.map_err(
        |SpotCheckError { file, source }| match file {
            Some(index) => CopyProofError::File {
                path: manifest.files[index].path.clone(),
                source,
            },
            None => CopyProofError::Request(source),
        },
    )
}

/// The non-empty files to ask about: all of them, or a random
/// [`HAVE_FILES_PER_CHECK`] of them.
fn asked_files(manifest: &Manifest) -> Vec<&FileEntry> {
    let mut files: Vec<&FileEntry> = manifest.files.iter().filter(|f| f.size > 0).collect();
    if files.len() > HAVE_FILES_PER_CHECK {
        shuffle(&mut files, random_u64);
        files.truncate(HAVE_FILES_PER_CHECK);
    }
    files
}

/// Asks `peer` what it holds of `file`; an error unless it says all of it.
async fn holds_whole(
    net: &NetHandle,
    peer: PeerId,
    file: &FileEntry,
) -> Result<(), CopyProofError> {
    let held = ask_have(net, peer, to_iroh(file.hash))
        .await
        .map_err(|source| CopyProofError::File {
            path: file.path.clone(),
            source,
        })?;
    let whole = ChunkRanges::from(..ChunkNum(file.size.div_ceil(CHUNK_BYTES)));
    if (&whole - &held).is_empty() {
        Ok(())
    } else {
        Err(CopyProofError::Lacks {
            path: file.path.clone(),
            size: file.size,
        })
    }
}
