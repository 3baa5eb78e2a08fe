//! The release record: a publisher's signed statement about one artifact root — what it
//! is called, which revision, under which licence, which revision it follows.
//!
//! The root itself covers only the files (see [`crate::Manifest`]), so the same files
//! published by two people, or added twice, share one content id and one swarm; the
//! release is what differs between them.

use serde::{Deserialize, Serialize};

use crate::labels::{validate_labels, validate_tag, ArtifactKind};
use crate::limits::{MAX_RELEASE_BYTES, MAX_TAGS};
use crate::publisher_key::PublisherKey;
use crate::signed::{invalid, RecordBody, RecordError, Signed};
use crate::{validate_artifact_path, ContentId};

/// One published revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The artifact this release describes.
    pub root: ContentId,
    /// Model or dataset.
    pub kind: ArtifactKind,
    /// Short name, e.g. `tiny-llama`.
    pub name: String,
    /// Revision label, e.g. `v2` or `main`.
    pub revision: String,
    /// SPDX licence id or expression.
    pub licence: Option<String>,
    /// Path of the model or dataset card among the artifact's files.
    pub card: Option<String>,
    /// Words describing it (from the card's `tags:`), used by search.
    pub tags: Vec<String>,
    /// Root of the revision this one follows.
    pub parent: Option<ContentId>,
    /// Total bytes of its files.
    pub size: u64,
    /// Number of files.
    pub files: u64,
    /// When it was published, seconds since the Unix epoch.
    pub published_at: u64,
}

/// A release with its publisher's signature.
pub type SignedRelease = Signed<Release>;

impl RecordBody for Release {
    const KIND: u8 = 1;
    const WHAT: &'static str = "release record";
    const MAX_BYTES: usize = MAX_RELEASE_BYTES;

    fn validate(&self, _signer: &PublisherKey) -> Result<(), RecordError> {
        validate_labels(&self.name, &self.revision, self.licence.as_deref())
            .map_err(|e| invalid(Self::WHAT, e))?;
        if let Some(card) = &self.card {
            validate_artifact_path(card).map_err(|e| invalid(Self::WHAT, e))?;
        }
        if self.tags.len() > MAX_TAGS {
            return Err(invalid(
                Self::WHAT,
                format!(
                    "{} tags, more than the limit of {MAX_TAGS}",
                    self.tags.len()
                ),
            ));
        }
        for tag in &self.tags {
            validate_tag(tag).map_err(|e| invalid(Self::WHAT, e))?;
        }
        if self.parent == Some(self.root) {
            return Err(invalid(Self::WHAT, "a revision cannot follow itself"));
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::publisher_key::PublisherSecret;
    use crate::BlobHash;

    pub(crate) fn release(name: &str, revision: &str, root: u8) -> Release {
        Release {
            root: ContentId(BlobHash([root; 32])),
            kind: ArtifactKind::Model,
            name: name.into(),
            revision: revision.into(),
            licence: Some("Apache-2.0".into()),
            card: Some("README.md".into()),
            tags: vec!["llama".into()],
            parent: None,
            size: 1 << 30,
            files: 3,
            published_at: 1_800_000_000,
        }
    }

    #[test]
    fn a_signed_release_round_trips_and_a_flipped_byte_is_refused() {
        let secret = PublisherSecret::from_seed([5; 32]);
        let signed = Signed::sign(release("toy", "v1", 1), &secret).unwrap();
        let bytes = signed.encode();
        assert_eq!(SignedRelease::decode(&bytes).unwrap(), signed);
        for i in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[i] ^= 1;
            assert!(
                SignedRelease::decode(&tampered).is_err(),
                "flipping byte {i} went unnoticed"
            );
        }
    }

    #[test]
    fn bad_labels_and_too_many_tags_are_refused_when_signing() {
        let secret = PublisherSecret::from_seed([5; 32]);
        let mut bad = release("a/b", "v1", 1);
        assert!(Signed::sign(bad.clone(), &secret).is_err());
        bad.name = "ok".into();
        bad.tags = (0..=MAX_TAGS).map(|i| format!("t{i}")).collect();
        assert!(Signed::sign(bad, &secret).is_err());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = SignedRelease::decode(&bytes);
        }
    }
}
