//! The root of an artifact: an iroh-blobs HashSeq `[manifest, file_1, …, file_n]`.
//!
//! This module is the one place that knows that layout. The root's hash is the
//! artifact's content id; its bytes are 32-byte hashes back to back, the manifest's
//! first and then one per file in manifest order. Decoding untrusted bytes checks the
//! length against [`MAX_ROOT_BYTES`] first and never panics.

use crate::limits::MAX_ROOT_BYTES;
use crate::{BlobHash, Manifest};

/// The decoded root HashSeq of an artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRoot {
    /// Hash of the manifest blob.
    pub manifest: BlobHash,
    /// Hashes of the files, in manifest order.
    pub files: Vec<BlobHash>,
}

/// Why bytes are not an artifact root, or do not match a manifest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactRootError {
    /// No bytes at all: not even a manifest hash.
    #[error("the artifact root is empty: it lists no manifest")]
    Empty,
    /// The length is not a multiple of 32.
    #[error("the artifact root is {0} bytes, not a whole number of 32-byte hashes")]
    Misaligned(usize),
    /// Longer than [`MAX_ROOT_BYTES`].
    #[error("the artifact root is {0} bytes, more than the limit of {MAX_ROOT_BYTES}")]
    TooLarge(usize),
    /// The root's file hashes differ from the manifest's.
    #[error("the artifact root's file list does not match its manifest")]
    ManifestMismatch,
}

impl ArtifactRoot {
    /// The root of an artifact with this manifest hash and these files.
    pub fn new(manifest: BlobHash, manifest_body: &Manifest) -> Self {
        Self {
            manifest,
            files: manifest_body.files.iter().map(|f| f.hash).collect(),
        }
    }

    /// The HashSeq bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(32 * (self.files.len() + 1));
        bytes.extend_from_slice(self.manifest.as_bytes());
        for file in &self.files {
            bytes.extend_from_slice(file.as_bytes());
        }
        bytes
    }

    /// Decodes untrusted HashSeq bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ArtifactRootError> {
        if bytes.len() > MAX_ROOT_BYTES {
            return Err(ArtifactRootError::TooLarge(bytes.len()));
        }
        if bytes.is_empty() {
            return Err(ArtifactRootError::Empty);
        }
        if !bytes.len().is_multiple_of(32) {
            return Err(ArtifactRootError::Misaligned(bytes.len()));
        }
        let mut hashes = bytes.chunks_exact(32).map(|chunk| {
            let mut hash = [0; 32];
            hash.copy_from_slice(chunk);
            BlobHash(hash)
        });
        let manifest = hashes.next().ok_or(ArtifactRootError::Empty)?;
        Ok(Self {
            manifest,
            files: hashes.collect(),
        })
    }

    /// Checks that `manifest` lists exactly this root's files, in order.
    pub fn check_manifest(&self, manifest: &Manifest) -> Result<(), ArtifactRootError> {
        let listed = manifest.files.iter().map(|f| f.hash);
        if listed.len() == self.files.len() && listed.eq(self.files.iter().copied()) {
            Ok(())
        } else {
            Err(ArtifactRootError::ManifestMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn encoding_round_trips(manifest in any::<[u8; 32]>(), files in proptest::collection::vec(any::<[u8; 32]>(), 0..64)) {
            let root = ArtifactRoot {
                manifest: BlobHash(manifest),
                files: files.into_iter().map(BlobHash).collect(),
            };
            prop_assert_eq!(ArtifactRoot::decode(&root.encode()).unwrap(), root);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
            match ArtifactRoot::decode(&bytes) {
                Ok(root) => prop_assert_eq!(root.encode(), bytes),
                Err(_) => prop_assert!(bytes.is_empty() || !bytes.len().is_multiple_of(32)),
            }
        }
    }

    #[test]
    fn empty_misaligned_and_oversized_roots_are_refused() {
        assert_eq!(ArtifactRoot::decode(&[]), Err(ArtifactRootError::Empty));
        assert_eq!(
            ArtifactRoot::decode(&[0; 33]),
            Err(ArtifactRootError::Misaligned(33))
        );
        assert_eq!(
            ArtifactRoot::decode(&vec![0; MAX_ROOT_BYTES + 32]),
            Err(ArtifactRootError::TooLarge(MAX_ROOT_BYTES + 32))
        );
        assert!(ArtifactRoot::decode(&vec![0; MAX_ROOT_BYTES]).is_ok());
    }
}
