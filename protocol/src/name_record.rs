//! Name records: "publisher P says name N is, at its latest, release E (root H), and
//! these were its earlier revisions; sequence s". Stored in the DHT under a key derived
//! from (P, N), so only P can write a name under P, and the highest sequence wins.

use serde::{Deserialize, Serialize};

use crate::labels::validate_labels;
use crate::limits::{MAX_EARLIER_REVISIONS, MAX_NAME_RECORD_BYTES};
use crate::publisher_key::PublisherKey;
use crate::release::SignedRelease;
use crate::signed::{invalid, RecordBody, RecordError, Signed};
use crate::ContentId;

/// The BLAKE3 key-derivation context of [`name_key`].
pub const NAME_KEY_CONTEXT: &str = "seedbank 2026-11-27 name record key v1";

/// An earlier revision, as the name record lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevisionEntry {
    /// Its revision label.
    pub revision: String,
    /// Its root.
    pub root: ContentId,
    /// When it was published, seconds since the Unix epoch.
    pub published_at: u64,
}

/// The statement a name record signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameRecord {
    /// The name.
    pub name: String,
    /// Grows with every publication; the highest wins.
    pub sequence: u64,
    /// The latest release, signed on its own by the same publisher.
    pub latest: SignedRelease,
    /// Earlier revisions, newest first, at most [`MAX_EARLIER_REVISIONS`].
    pub earlier: Vec<RevisionEntry>,
}

/// A name record with its publisher's signature.
pub type SignedNameRecord = Signed<NameRecord>;

/// The DHT key of `publisher`'s name `name`.
pub fn name_key(publisher: &PublisherKey, name: &str) -> [u8; 32] {
    let mut material = publisher.as_bytes().to_vec();
    material.extend_from_slice(name.as_bytes());
    blake3::derive_key(NAME_KEY_CONTEXT, &material)
}

impl NameRecord {
    /// The root and revision label of `revision`, or of the latest when `None`.
    pub fn revision(&self, revision: Option<&str>) -> Option<(ContentId, &str)> {
        let latest = self.latest.body();
        match revision {
            None => Some((latest.root, &latest.revision)),
            Some(wanted) if wanted == latest.revision => Some((latest.root, &latest.revision)),
            Some(wanted) => self
                .earlier
                .iter()
                .find(|e| e.revision == wanted)
                .map(|e| (e.root, e.revision.as_str())),
        }
    }
}

impl RecordBody for NameRecord {
    const KIND: u8 = 2;
    const WHAT: &'static str = "name record";
    const MAX_BYTES: usize = MAX_NAME_RECORD_BYTES;

    fn validate(&self, signer: &PublisherKey) -> Result<(), RecordError> {
        self.latest.verify()?;
        let latest = self.latest.body();
        if self.latest.signer() != signer {
            return Err(RecordError::SignerMismatch {
                what: Self::WHAT,
                signer: *signer,
                release_signer: *self.latest.signer(),
            });
        }
        if latest.name != self.name {
            return Err(invalid(
                Self::WHAT,
                format!(
                    "it is for {:?} but its release names {:?}",
                    self.name, latest.name
                ),
            ));
        }
        if self.earlier.len() > MAX_EARLIER_REVISIONS {
            return Err(invalid(
                Self::WHAT,
                format!(
                    "{} earlier revisions, more than the limit of {MAX_EARLIER_REVISIONS}",
                    self.earlier.len()
                ),
            ));
        }
        let mut seen = vec![latest.revision.as_str()];
        for entry in &self.earlier {
            validate_labels(&self.name, &entry.revision, None)
                .map_err(|e| invalid(Self::WHAT, e))?;
            if seen.contains(&entry.revision.as_str()) {
                return Err(invalid(
                    Self::WHAT,
                    format!("revision {:?} is listed twice", entry.revision),
                ));
            }
            seen.push(&entry.revision);
        }
        Ok(())
    }
}

/// Checks that `record` belongs under the DHT key `key`.
pub fn check_name_key(key: &[u8], record: &SignedNameRecord) -> Result<(), RecordError> {
    if key == name_key(record.signer(), &record.body().name) {
        Ok(())
    } else {
        Err(RecordError::WrongKey(NameRecord::WHAT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::publisher_key::PublisherSecret;
    use crate::release::tests::release;

    fn record(secret: &PublisherSecret, sequence: u64) -> SignedNameRecord {
        let latest = Signed::sign(release("toy", "v2", 2), secret).unwrap();
        Signed::sign(
            NameRecord {
                name: "toy".into(),
                sequence,
                latest,
                earlier: vec![RevisionEntry {
                    revision: "v1".into(),
                    root: ContentId(crate::BlobHash([1; 32])),
                    published_at: 1,
                }],
            },
            secret,
        )
        .unwrap()
    }

    #[test]
    fn resolves_latest_and_earlier_revisions() {
        let secret = PublisherSecret::from_seed([7; 32]);
        let signed = SignedNameRecord::decode(&record(&secret, 3).encode()).unwrap();
        let body = signed.body();
        assert_eq!(body.revision(None).unwrap().1, "v2");
        assert_eq!(body.revision(Some("v1")).unwrap().0 .0 .0, [1; 32]);
        assert!(body.revision(Some("v9")).is_none());
        assert!(check_name_key(&name_key(&secret.public(), "toy"), &signed).is_ok());
        assert!(check_name_key(&name_key(&secret.public(), "other"), &signed).is_err());
    }

    #[test]
    fn a_record_carrying_someone_elses_release_is_refused() {
        let alice = PublisherSecret::from_seed([7; 32]);
        let mallory = PublisherSecret::from_seed([8; 32]);
        let alices_release = Signed::sign(release("toy", "v2", 2), &alice).unwrap();
        let forged = Signed::sign(
            NameRecord {
                name: "toy".into(),
                sequence: 9,
                latest: alices_release,
                earlier: vec![],
            },
            &mallory,
        );
        assert!(matches!(forged, Err(RecordError::SignerMismatch { .. })));
    }

    #[test]
    fn a_tampered_release_inside_a_record_is_a_bad_signature() {
        let secret = PublisherSecret::from_seed([7; 32]);
        let genuine = record(&secret, 3);
        let release = genuine.body().latest.encode();
        let mut bytes = genuine.encode();
        let at = bytes
            .windows(release.len())
            .position(|w| w == release.as_slice())
            .unwrap()
            + release.len()
            - 1;
        bytes[at] ^= 1;
        assert!(matches!(
            SignedNameRecord::decode(&bytes),
            Err(RecordError::BadSignature { .. })
        ));
    }

    #[test]
    fn an_oversized_record_is_refused_before_parsing() {
        let bytes = vec![0u8; MAX_NAME_RECORD_BYTES + 1];
        assert!(matches!(
            SignedNameRecord::decode(&bytes),
            Err(RecordError::TooLarge { .. })
        ));
    }
}
