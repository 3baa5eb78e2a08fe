//! Denylists: content ids a publisher asks the nodes that subscribe to it never to fetch,
//! serve or announce.
//!
//! A denylist is an ordinary artifact holding one file, [`DENYLIST_FILE`], published
//! under a name like any other: the release and name record the publisher signs are
//! what make the list trustworthy, so the file itself carries no signature. Every
//! revision holds the whole list (a subscriber never needs an earlier one), in this
//! JSON form:
//!
//! ```json
//! {
//!   "format": "seedbank-denylist",
//!   "version": 1,
//!   "name": "bad-models",
//!   "revision": 3,
//!   "entries": [
//!     { "id": "sb1…", "reason": "leaked weights" }
//!   ]
//! }
//! ```
//!
//! Entries are sorted by id and listed once each, so the same list always encodes to the
//! same bytes. Decoding checks the size before parsing and every field after, and never
//! panics on bad input. Fields this version does not know are ignored, so a later
//! version 1 writer may add some; a higher `version` is refused with a message saying so.

use serde::{Deserialize, Serialize};

use crate::labels::validate_name;
use crate::ContentId;

/// The one file of a denylist artifact.
pub const DENYLIST_FILE: &str = "denylist.json";

/// The `format` every denylist carries, so a stray JSON file is never read as one.
pub const DENYLIST_FORMAT: &str = "seedbank-denylist";

/// The version of the format this crate reads and writes.
pub const DENYLIST_VERSION: u32 = 1;

/// Most entries one denylist may hold. Lists of known-bad artifacts are curated by
/// hand and run to hundreds; this leaves two orders of magnitude of room while keeping
/// what a subscriber holds in memory (and re-reads on every change) small.
pub const MAX_DENYLIST_ENTRIES: usize = 16_384;

/// Longest reason of one entry, in bytes: a sentence or a link, not an essay.
pub const MAX_DENY_REASON_BYTES: usize = 256;

/// Largest encoded denylist a node fetches or decodes: [`MAX_DENYLIST_ENTRIES`] entries
/// with long reasons fit; a publisher (or a peer posing as one's provider) cannot make a
/// subscriber fetch or parse more.
pub const MAX_DENYLIST_BYTES: usize = 8 * 1024 * 1024;

/// One listed artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DenyEntry {
    /// The artifact's content id (its root).
    pub id: ContentId,
    /// Why it is listed, shown to users whose fetch is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A denylist, as its file holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denylist {
    /// Always [`DENYLIST_FORMAT`].
    pub format: String,
    /// Always [`DENYLIST_VERSION`] for lists this crate writes.
    pub version: u32,
    /// The name it is published under.
    pub name: String,
    /// Its revision number: 1 for the first, one more for each revision after.
    pub revision: u64,
    /// The listed artifacts, sorted by id, each once.
    pub entries: Vec<DenyEntry>,
}

/// Why bytes are not a denylist, or a list cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DenylistError {
    /// Over [`MAX_DENYLIST_BYTES`].
    #[error("the denylist is {bytes} bytes, over the {MAX_DENYLIST_BYTES} allowed")]
    TooLarge {
        /// Its size.
        bytes: usize,
    },
    /// Not JSON of the denylist's shape.
    #[error("not a denylist: {0}")]
    Malformed(String),
    /// A JSON file of another kind.
    #[error("not a denylist: its format is {0:?}, not \"{DENYLIST_FORMAT}\"")]
    WrongFormat(String),
    /// A version this build cannot read.
    #[error(
        "denylist version {0} is newer than this seedbank reads ({DENYLIST_VERSION}); upgrade it"
    )]
    UnsupportedVersion(u32),
    /// Over [`MAX_DENYLIST_ENTRIES`].
    #[error("the denylist has {0} entries, over the {MAX_DENYLIST_ENTRIES} allowed")]
    TooManyEntries(usize),
    /// A reason that is too long, empty, or holds control characters.
    #[error("the reason for {id} {problem}")]
    BadReason {
        /// The entry.
        id: ContentId,
        /// What is wrong with it.
        problem: String,
    },
    /// One id listed twice.
    #[error("{0} is listed twice")]
    Duplicate(ContentId),
    /// Entries not sorted by id.
    #[error("the entries are not sorted by id")]
    Unsorted,
    /// A name that is not a valid artifact name.
    #[error("bad denylist name: {0}")]
    BadName(String),
}

/// Checks one entry's reason: at most [`MAX_DENY_REASON_BYTES`], not blank, no control
/// characters (it is printed on terminals).
pub fn validate_reason(id: ContentId, reason: &str) -> Result<(), DenylistError> {
    let problem = if reason.len() > MAX_DENY_REASON_BYTES {
        format!(
            "is {} bytes, over the {MAX_DENY_REASON_BYTES} allowed",
            reason.len()
        )
    } else if reason.trim().is_empty() {
        "is blank".to_owned()
    } else if reason.chars().any(char::is_control) {
        "holds control characters".to_owned()
    } else {
        return Ok(());
    };
    Err(DenylistError::BadReason { id, problem })
}

impl Denylist {
    /// Revision `revision` of the list `name` with `entries` (sorted here; an id given
    /// twice is refused).
    pub fn new(
        name: &str,
        revision: u64,
        mut entries: Vec<DenyEntry>,
    ) -> Result<Self, DenylistError> {
        entries.sort_by_key(|entry| entry.id);
        let list = Self {
            format: DENYLIST_FORMAT.to_owned(),
            version: DENYLIST_VERSION,
            name: name.to_owned(),
            revision,
            entries,
        };
        list.validate()?;
        Ok(list)
    }

    /// The next revision: this list's entries less `remove`, with `add` added (an id
    /// already listed takes the new reason, if one is given).
    pub fn revised(
        &self,
        add: Vec<DenyEntry>,
        remove: &[ContentId],
    ) -> Result<Self, DenylistError> {
        let mut entries: Vec<DenyEntry> = self
            .entries
            .iter()
            .filter(|entry| !remove.contains(&entry.id))
            .cloned()
            .collect();
        for new in add {
            match entries.iter_mut().find(|entry| entry.id == new.id) {
                Some(old) => old.reason = new.reason.or(old.reason.take()),
                None => entries.push(new),
            }
        }
        Self::new(&self.name, self.revision.saturating_add(1), entries)
    }

    /// The entry listing `id`, if any.
    pub fn entry(&self, id: ContentId) -> Option<&DenyEntry> {
        self.entries
            .binary_search_by_key(&id, |entry| entry.id)
            .ok()
            .and_then(|i| self.entries.get(i))
    }

    /// Checks every rule of the format.
    pub fn validate(&self) -> Result<(), DenylistError> {
        if self.format != DENYLIST_FORMAT {
            return Err(DenylistError::WrongFormat(self.format.clone()));
        }
        if self.version != DENYLIST_VERSION {
            return Err(DenylistError::UnsupportedVersion(self.version));
        }
        validate_name(&self.name).map_err(|e| DenylistError::BadName(e.to_string()))?;
        if self.entries.len() > MAX_DENYLIST_ENTRIES {
            return Err(DenylistError::TooManyEntries(self.entries.len()));
        }
        for pair in self.entries.windows(2) {
            if let [a, b] = pair {
                if a.id == b.id {
                    return Err(DenylistError::Duplicate(a.id));
                }
                if a.id > b.id {
                    return Err(DenylistError::Unsorted);
                }
            }
        }
        for entry in &self.entries {
            if let Some(reason) = &entry.reason {
                validate_reason(entry.id, reason)?;
            }
        }
        Ok(())
    }

    /// The file's bytes: indented JSON ending in a newline, at most
    /// [`MAX_DENYLIST_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, DenylistError> {
        self.validate()?;
        let mut bytes =
            serde_json::to_vec_pretty(self).map_err(|e| DenylistError::Malformed(e.to_string()))?;
        bytes.push(b'\n');
        if bytes.len() > MAX_DENYLIST_BYTES {
            return Err(DenylistError::TooLarge { bytes: bytes.len() });
        }
        Ok(bytes)
    }

    /// Reads a list from untrusted bytes: size first, then shape, then every rule.
    pub fn decode(bytes: &[u8]) -> Result<Self, DenylistError> {
        if bytes.len() > MAX_DENYLIST_BYTES {
            return Err(DenylistError::TooLarge { bytes: bytes.len() });
        }
        let list: Self =
            serde_json::from_slice(bytes).map_err(|e| DenylistError::Malformed(e.to_string()))?;
        list.validate()?;
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;
    use crate::BlobHash;

    fn id(byte: u8) -> ContentId {
        ContentId(BlobHash([byte; 32]))
    }

    fn entry(byte: u8, reason: Option<&str>) -> DenyEntry {
        DenyEntry {
            id: id(byte),
            reason: reason.map(str::to_owned),
        }
    }

    #[test]
    fn a_list_round_trips_sorted_and_readable() {
        let list = Denylist::new(
            "bad-models",
            1,
            vec![entry(9, Some("leaked weights")), entry(2, None)],
        )
        .unwrap();
        assert_eq!(list.entries[0].id, id(2), "sorted by id");
        let bytes = list.encode().unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"format\": \"seedbank-denylist\""), "{text}");
        assert!(
            text.contains(&id(9).to_string()),
            "ids in their text form: {text}"
        );
        assert_eq!(Denylist::decode(&bytes).unwrap(), list);
        assert_eq!(
            list.entry(id(9)).unwrap().reason.as_deref(),
            Some("leaked weights")
        );
        assert!(list.entry(id(3)).is_none());
    }

    #[test]
    fn a_revision_holds_the_whole_list_with_changes() {
        let first = Denylist::new("l", 1, vec![entry(1, Some("a")), entry(2, None)]).unwrap();
        let second = first
            .revised(
                vec![entry(3, Some("c")), entry(2, Some("now with a reason"))],
                &[id(1)],
            )
            .unwrap();
        assert_eq!(second.revision, 2);
        let ids: Vec<ContentId> = second.entries.iter().map(|e| e.id).collect();
        assert_eq!(ids, vec![id(2), id(3)]);
        assert_eq!(
            second.entry(id(2)).unwrap().reason.as_deref(),
            Some("now with a reason")
        );
        let third = second.revised(vec![entry(3, None)], &[]).unwrap();
        assert_eq!(
            third.entry(id(3)).unwrap().reason.as_deref(),
            Some("c"),
            "listing again without a reason keeps the old one"
        );
    }

    #[test]
    fn every_rule_is_checked_on_decode() {
        let good = Denylist::new("l", 1, vec![entry(1, None), entry(2, None)]).unwrap();
        let decode_with = |change: &dyn Fn(&mut serde_json::Value)| {
            let mut value = serde_json::to_value(&good).unwrap();
            change(&mut value);
            Denylist::decode(&serde_json::to_vec(&value).unwrap())
        };
        assert!(matches!(
            decode_with(&|v| v["format"] = "seedbank-collection".into()),
            Err(DenylistError::WrongFormat(_))
        ));
        assert_eq!(
            decode_with(&|v| v["version"] = 2.into()),
            Err(DenylistError::UnsupportedVersion(2))
        );
        assert!(matches!(
            decode_with(&|v| v["name"] = "no/slashes".into()),
            Err(DenylistError::BadName(_))
        ));
        assert_eq!(
            decode_with(&|v| v["entries"][1]["id"] = id(1).to_string().into()),
            Err(DenylistError::Duplicate(id(1)))
        );
        assert_eq!(
            decode_with(&|v| v["entries"][0]["id"] = id(3).to_string().into()),
            Err(DenylistError::Unsorted)
        );
        assert!(matches!(
            decode_with(&|v| v["entries"][0]["reason"] = "x".repeat(257).into()),
            Err(DenylistError::BadReason { .. })
        ));
        assert!(matches!(
            decode_with(&|v| v["entries"][0]["reason"] = "a\u{1b}[2Jb".into()),
            Err(DenylistError::BadReason { .. })
        ));
        assert!(matches!(
            decode_with(&|v| v["entries"][0]["id"] = "sb1nope".into()),
            Err(DenylistError::Malformed(_))
        ));
        assert!(
            decode_with(&|v| v["comment"] = "fields a later writer adds".into()).is_ok(),
            "unknown fields are ignored"
        );
    }

    #[test]
    fn limits_are_enforced_before_and_after_parsing() {
        let oversized = vec![b' '; MAX_DENYLIST_BYTES + 1];
        assert_eq!(
            Denylist::decode(&oversized),
            Err(DenylistError::TooLarge {
                bytes: MAX_DENYLIST_BYTES + 1
            })
        );
        let entries: Vec<DenyEntry> = (0..=MAX_DENYLIST_ENTRIES as u32)
            .map(|n| {
                let mut hash = [0u8; 32];
                hash[..4].copy_from_slice(&n.to_be_bytes());
                DenyEntry {
                    id: ContentId(BlobHash(hash)),
                    reason: None,
                }
            })
            .collect();
        assert_eq!(
            Denylist::new("l", 1, entries.clone()),
            Err(DenylistError::TooManyEntries(MAX_DENYLIST_ENTRIES + 1))
        );
        let at_limit = Denylist::new("l", 1, entries[..MAX_DENYLIST_ENTRIES].to_vec()).unwrap();
        let bytes = at_limit.encode().unwrap();
        assert!(bytes.len() <= MAX_DENYLIST_BYTES);
        assert_eq!(
            Denylist::decode(&bytes).unwrap().entries.len(),
            MAX_DENYLIST_ENTRIES
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let mut text = "[".repeat(100_000);
        text.push_str(&"]".repeat(100_000));
        assert!(matches!(
            Denylist::decode(text.as_bytes()),
            Err(DenylistError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = Denylist::decode(&bytes);
        }

        #[test]
        fn decoding_mangled_lists_never_panics(cut in 0usize..400, flip in any::<u8>(), at in 0usize..400) {
            let list = Denylist::new("l", 7, vec![entry(1, Some("why")), entry(5, None)]).unwrap();
            let mut bytes = list.encode().unwrap();
            if let Some(byte) = bytes.get_mut(at) {
                *byte ^= flip;
            }
            bytes.truncate(cut.min(bytes.len()));
            let _ = Denylist::decode(&bytes);
        }

        #[test]
        fn valid_lists_round_trip(ids in proptest::collection::btree_set(any::<[u8; 32]>(), 0..40), reason in "[a-z ]{1,40}") {
            let entries = ids
                .into_iter()
                .enumerate()
                .map(|(i, hash)| DenyEntry {
                    id: ContentId(BlobHash(hash)),
                    reason: (i % 2 == 0 && !reason.trim().is_empty()).then(|| reason.clone()),
                })
                .collect();
            let list = Denylist::new("a-list", 3, entries).unwrap();
            prop_assert_eq!(Denylist::decode(&list.encode().unwrap()).unwrap(), list);
        }
    }
}
