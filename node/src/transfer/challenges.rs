//! The ranges this node is challenging other peers for right now (spot checks), which it
//! serves to nobody while the challenge is out: otherwise a provider holding nothing
//! could pass by relaying the challenge back here and returning the answer, and the
//! last real copy would count as several.
//!
//! Invariants: a challenge is open exactly as long as its [`OpenChallenge`] guard lives;
//! a request is refused when it asks for a challenged blob's challenged chunks, for the
//! blob among several (get-many), or for any file of the artifact through its root.

use std::sync::{Arc, Mutex, PoisonError};

use iroh_blobs::protocol::{ChunkRanges, GetManyRequest, GetRequest};
use iroh_blobs::Hash;
use seedbank_protocol::{BlobHash, ContentId};

use crate::library::store::to_iroh;

/// One challenge out: the artifact, the blob and the chunks asked for.
#[derive(Debug, Clone)]
struct Challenge {
    id: u64,
    root: Hash,
    blob: Hash,
    chunks: ChunkRanges,
}

/// The challenges out now. Cheap to clone; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Challenges {
    open: Arc<Mutex<(u64, Vec<Challenge>)>>,
}

/// Keeps a challenge open; dropping it closes the challenge.
#[derive(Debug)]
pub struct OpenChallenge {
    challenges: Challenges,
    id: u64,
}

impl Drop for OpenChallenge {
    fn drop(&mut self) {
        let mut open = self
            .challenges
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        open.1.retain(|challenge| challenge.id != self.id);
    }
}

impl Challenges {
    /// Opens a challenge for `chunks` of `blob`, a file of the artifact `root`.
    pub fn open(&self, root: ContentId, blob: BlobHash, chunks: ChunkRanges) -> OpenChallenge {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.0 += 1;
        let id = open.0;
        open.1.push(Challenge {
            id,
            root: to_iroh(root.hash()),
            blob: to_iroh(blob),
            chunks,
        });
        OpenChallenge {
            challenges: self.clone(),
            id,
        }
    }

    /// Whether `request` asks for something a challenge out covers.
    pub fn forbid(&self, request: &GetRequest) -> bool {
        self.any(|challenge| {
            if request.hash == challenge.blob {
                let asked = request.ranges.iter_infinite().next();
                return asked.is_some_and(|asked| asked.intersects(&challenge.chunks));
            }
            // Through the root, children past the manifest are the files.
            request.hash == challenge.root
                && request
                    .ranges
                    .iter_non_empty_infinite()
                    .any(|(index, _)| index >= 2)
        })
    }

    /// Whether a get-many `request` names a challenged blob or artifact.
    pub fn forbid_many(&self, request: &GetManyRequest) -> bool {
        self.any(|challenge| {
            request
                .hashes
                .iter()
                .any(|hash| *hash == challenge.blob || *hash == challenge.root)
        })
    }

    fn any(&self, covers: impl Fn(&Challenge) -> bool) -> bool {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.1.iter().any(covers)
    }
}

#[cfg(test)]
mod tests {
    use bao_tree::ChunkNum;

    use super::*;

    #[test]
    fn challenged_chunks_are_refused_only_while_the_challenge_is_out() {
        let challenges = Challenges::default();
        let root = ContentId::from_hash(BlobHash([1; 32]));
        let blob = BlobHash([2; 32]);
        let other = BlobHash([3; 32]);
        let request = |hash: BlobHash, chunks: std::ops::Range<u64>| {
            GetRequest::builder()
                .root(ChunkRanges::from(
                    ChunkNum(chunks.start)..ChunkNum(chunks.end),
                ))
                .build(to_iroh(hash))
        };
        assert!(!challenges.forbid(&request(blob, 16..32)));
        let open = challenges.open(root, blob, ChunkRanges::from(ChunkNum(16)..ChunkNum(32)));
        assert!(challenges.forbid(&request(blob, 16..32)));
        assert!(challenges.forbid(&request(blob, 0..17)), "overlapping");
        assert!(
            challenges.forbid(&GetRequest::blob(to_iroh(blob))),
            "the whole blob"
        );
        assert!(!challenges.forbid(&request(blob, 0..16)), "other chunks");
        assert!(!challenges.forbid(&request(other, 16..32)), "other blobs");
        let through_root = GetRequest::builder()
            .child(3, ChunkRanges::all())
            .build(to_iroh(root.hash()));
        assert!(challenges.forbid(&through_root));
        let manifest_only = GetRequest::builder()
            .root(ChunkRanges::all())
            .child(0, ChunkRanges::all())
            .build(to_iroh(root.hash()));
        assert!(!challenges.forbid(&manifest_only), "root and manifest");
        let many: GetManyRequest = [to_iroh(other), to_iroh(blob)].into_iter().collect();
        assert!(challenges.forbid_many(&many));
        drop(open);
        assert!(!challenges.forbid(&request(blob, 16..32)));
        assert!(!challenges.forbid_many(&many));
    }
}
