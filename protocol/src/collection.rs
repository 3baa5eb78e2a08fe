//! Collections: a published, signed list of artifacts to keep alive ("datasets to
//! preserve"). A collection is itself an artifact holding one file,
//! [`COLLECTION_FILE`], published under a name with the kind `collection`, so the
//! publisher's release record and name record sign it like any other release.
//!
//! Nodes that follow a collection fetch its members when too few copies are left; the
//! file is untrusted input to them, so decoding checks its size, its member count and
//! every field before anything acts on it.

use serde::{Deserialize, Serialize};

use crate::labels::validate_licence;
use crate::limits::MAX_NAME_BYTES;
use crate::ContentId;

/// The one file a collection artifact holds.
pub const COLLECTION_FILE: &str = "seedbank-collection.json";

/// The format written today.
pub const COLLECTION_FORMAT: u32 = 1;

/// Largest collection file a node reads.
pub const MAX_COLLECTION_BYTES: u64 = 1024 * 1024;

/// Most members in one collection.
pub const MAX_COLLECTION_MEMBERS: usize = 10_000;

/// Highest replica target a collection (or a pin) may ask for.
pub const MAX_REPLICA_TARGET: u32 = 100;

/// A list of artifacts to preserve.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Collection {
    /// [`COLLECTION_FORMAT`].
    pub format: u32,
    /// Copies on the network each member should have, unless the member says otherwise.
    pub replicas: u32,
    /// The members, in the publisher's order.
    pub members: Vec<CollectionMember>,
}

/// One artifact in a collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionMember {
    /// The artifact's root.
    pub id: ContentId,
    /// What the publisher calls it (for people reading the list), if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its SPDX licence, as the collection's publisher states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub licence: Option<String>,
    /// Copies wanted for this member, overriding the collection's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
}

/// Why a collection file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectionError {
    /// Larger than [`MAX_COLLECTION_BYTES`].
    #[error("the collection is {0} bytes; at most {MAX_COLLECTION_BYTES} are read")]
    TooLarge(u64),
    /// Not the JSON of a collection.
    #[error("not a collection file: {0}")]
    Malformed(String),
    /// A format this version does not read.
    #[error("collection format {0} is not known here (this version reads {COLLECTION_FORMAT})")]
    UnknownFormat(u32),
    /// More than [`MAX_COLLECTION_MEMBERS`] members.
    #[error("the collection lists {0} members; at most {MAX_COLLECTION_MEMBERS} are allowed")]
    TooManyMembers(usize),
    /// A replica target of 0 or above [`MAX_REPLICA_TARGET`].
    #[error("a replica target of {0} is outside 1..={MAX_REPLICA_TARGET}")]
    BadReplicas(u32),
    /// A member field is invalid.
    #[error("member {id}: {reason}")]
    BadMember {
        /// The member.
        id: ContentId,
        /// What is wrong.
        reason: String,
    },
}

/// Checks a replica target.
pub fn check_replicas(replicas: u32) -> Result<u32, CollectionError> {
    if (1..=MAX_REPLICA_TARGET).contains(&replicas) {
        Ok(replicas)
    } else {
        Err(CollectionError::BadReplicas(replicas))
    }
}

impl Collection {
    /// A collection of `members` with `replicas` copies each.
    pub fn new(replicas: u32, members: Vec<CollectionMember>) -> Result<Self, CollectionError> {
        let collection = Self {
            format: COLLECTION_FORMAT,
            replicas,
            members,
        };
        collection.check()?;
        Ok(collection)
    }

    /// The file's bytes: pretty JSON, so people can read what they follow.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).unwrap_or_default();
        bytes.push(b'\n');
        bytes
    }

    /// Reads untrusted bytes, checking every limit and field.
    pub fn decode(bytes: &[u8]) -> Result<Self, CollectionError> {
        if bytes.len() as u64 > MAX_COLLECTION_BYTES {
            return Err(CollectionError::TooLarge(bytes.len() as u64));
        }
        let collection: Self =
            serde_json::from_slice(bytes).map_err(|e| CollectionError::Malformed(e.to_string()))?;
        collection.check()?;
        Ok(collection)
    }

    /// The replica target of `member`.
    pub fn target_of(&self, member: &CollectionMember) -> u32 {
        member.replicas.unwrap_or(self.replicas)
    }

    fn check(&self) -> Result<(), CollectionError> {
        if self.format != COLLECTION_FORMAT {
            return Err(CollectionError::UnknownFormat(self.format));
        }
        if self.members.len() > MAX_COLLECTION_MEMBERS {
            return Err(CollectionError::TooManyMembers(self.members.len()));
        }
        check_replicas(self.replicas)?;
        for member in &self.members {
            let bad = |reason: String| CollectionError::BadMember {
                id: member.id,
                reason,
            };
            if let Some(replicas) = member.replicas {
                check_replicas(replicas).map_err(|e| bad(e.to_string()))?;
            }
            if let Some(licence) = &member.licence {
                validate_licence(licence).map_err(|e| bad(e.to_string()))?;
            }
            if let Some(name) = &member.name {
                if name.len() > MAX_NAME_BYTES || name.chars().any(char::is_control) {
                    return Err(bad(format!(
                        "its name must be at most {MAX_NAME_BYTES} bytes without control characters"
                    )));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(byte: u8) -> CollectionMember {
        CollectionMember {
            id: ContentId::from_hash(crate::BlobHash([byte; 32])),
            name: Some(format!("org/data-{byte}")),
            licence: Some("MIT".into()),
            replicas: None,
        }
    }

    #[test]
    fn a_collection_reads_back_what_was_written() {
        let mut members = vec![member(1), member(2)];
        members[1].replicas = Some(5);
        let collection = Collection::new(3, members).unwrap();
        let decoded = Collection::decode(&collection.encode()).unwrap();
        assert_eq!(decoded, collection);
        assert_eq!(decoded.target_of(&decoded.members[0]), 3);
        assert_eq!(decoded.target_of(&decoded.members[1]), 5);
    }

    #[test]
    fn bad_collections_are_refused_with_the_reason() {
        let too_big = vec![b' '; MAX_COLLECTION_BYTES as usize + 1];
        assert!(matches!(
            Collection::decode(&too_big),
            Err(CollectionError::TooLarge(_))
        ));
        assert!(matches!(
            Collection::decode(b"{\"format\":1}"),
            Err(CollectionError::Malformed(_))
        ));
        let text = br#"{"format":2,"replicas":3,"members":[]}"#;
        assert_eq!(
            Collection::decode(text),
            Err(CollectionError::UnknownFormat(2))
        );
        let text = br#"{"format":1,"replicas":0,"members":[]}"#;
        assert_eq!(
            Collection::decode(text),
            Err(CollectionError::BadReplicas(0))
        );
        let mut bad = member(3);
        bad.licence = Some("not a licence!".into());
        let text = serde_json::to_vec(&Collection {
            format: 1,
            replicas: 3,
            members: vec![bad],
        })
        .unwrap();
        assert!(matches!(
            Collection::decode(&text),
            Err(CollectionError::BadMember { .. })
        ));
        let many = Collection {
            format: 1,
            replicas: 3,
            members: vec![member(4); MAX_COLLECTION_MEMBERS + 1],
        };
        assert!(matches!(
            Collection::decode(&serde_json::to_vec(&many).unwrap()),
            Err(CollectionError::TooLarge(_) | CollectionError::TooManyMembers(_))
        ));
    }

    proptest::proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(0u8..=255, 0..512)) {
            let _ = Collection::decode(&bytes);
        }
    }
}
