//! The content id of an artifact: the BLAKE3 hash of its root HashSeq, and its one
//! canonical text form.
//!
//! The text form is `sb1` followed by the 32 hash bytes in lowercase RFC 4648 base32
//! without padding (52 characters, 55 in all). The prefix keeps an id from ever being
//! mistaken for a name: names contain a `/` or are shorter, and no name starts with
//! `sb1` followed by exactly 52 base32 characters by accident.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use data_encoding::Encoding;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::BlobHash;

/// The prefix of every content id's text form.
pub const CONTENT_ID_PREFIX: &str = "sb1";

/// Length of the base32 part of a content id's text form.
const ENCODED_HASH_CHARS: usize = 52;

pub(crate) static BASE32_LOWER: LazyLock<Encoding> = LazyLock::new(|| {
    let mut spec = data_encoding::Specification::new();
    spec.symbols.push_str("abcdefghijklmnopqrstuvwxyz234567");
    #[allow(clippy::expect_used)]
    spec.encoding()
        .expect("static base32 specification is valid")
});

/// An artifact's content id: the hash of its root HashSeq `[manifest, file_1, …]`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ContentId(pub BlobHash);

/// Why a text is not a content id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentIdError {
    /// The text does not start with `sb1`.
    #[error("{0:?} is not a content id: content ids start with \"{CONTENT_ID_PREFIX}\"")]
    MissingPrefix(String),
    /// The text has the prefix but the wrong number of characters after it.
    #[error(
        "{text:?} is not a content id: expected {ENCODED_HASH_CHARS} characters after \"{CONTENT_ID_PREFIX}\", found {found}"
    )]
    WrongLength {
        /// The text given.
        text: String,
        /// How many characters followed the prefix.
        found: usize,
    },
    /// The text has a character outside the base32 alphabet.
    #[error("{text:?} is not a content id: character {character:?} is not base32 (a-z, 2-7)")]
    InvalidCharacter {
        /// The text given.
        text: String,
        /// The first offending character.
        character: char,
    },
}

/// The BLAKE3 key-derivation context of [`ContentId::swarm_key`].
pub const SWARM_KEY_CONTEXT: &str = "seedbank 2026-11-24 swarm key v1";

impl ContentId {
    /// The id of the root blob with this hash.
    pub fn from_hash(hash: BlobHash) -> Self {
        Self(hash)
    }

    /// The root blob's hash.
    pub fn hash(&self) -> BlobHash {
        self.0
    }

    /// The DHT key under which peers still fetching this artifact announce themselves, so
    /// fetchers find each other and trade the parts they already hold. Derived with a
    /// fixed context string, so it never collides with a real root.
    pub fn swarm_key(&self) -> ContentId {
        Self(BlobHash(blake3::derive_key(
            SWARM_KEY_CONTEXT,
            self.0.as_bytes(),
        )))
    }

    /// True if `text` looks like it is meant to be a content id rather than a name.
    pub fn looks_like_id(text: &str) -> bool {
        text.starts_with(CONTENT_ID_PREFIX) && !text.contains('/') && !text.contains('@')
    }
}

impl fmt::Display for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(CONTENT_ID_PREFIX)?;
        f.write_str(&BASE32_LOWER.encode(self.0.as_bytes()))
    }
}

impl fmt::Debug for ContentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ContentId({self})")
    }
}

impl FromStr for ContentId {
    type Err = ContentIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let Some(encoded) = text.strip_prefix(CONTENT_ID_PREFIX) else {
            return Err(ContentIdError::MissingPrefix(text.to_owned()));
        };
        if let Some(character) = encoded
            .chars()
            .find(|c| !matches!(c, 'a'..='z' | '2'..='7'))
        {
            return Err(ContentIdError::InvalidCharacter {
                text: text.to_owned(),
                character,
            });
        }
        let wrong_length = || ContentIdError::WrongLength {
            text: text.to_owned(),
            found: encoded.len(),
        };
        if encoded.len() != ENCODED_HASH_CHARS {
            return Err(wrong_length());
        }
        let bytes = BASE32_LOWER
            .decode(encoded.as_bytes())
            .map_err(|_| wrong_length())?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| wrong_length())?;
        let id = ContentId(BlobHash(hash));
        // 52 base32 characters carry 260 bits; the last 4 must be zero for the form to be
        // canonical, so that one id has exactly one text.
        if id.to_string() != text {
            return Err(wrong_length());
        }
        Ok(id)
    }
}

impl Serialize for ContentId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for ContentId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            BlobHash::deserialize(deserializer).map(ContentId)
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn text_round_trips(bytes in any::<[u8; 32]>()) {
            let id = ContentId(BlobHash(bytes));
            let text = id.to_string();
            prop_assert_eq!(text.len(), CONTENT_ID_PREFIX.len() + ENCODED_HASH_CHARS);
            prop_assert_eq!(text.parse::<ContentId>(), Ok(id));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".*") {
            let _ = text.parse::<ContentId>();
        }

        #[test]
        fn json_round_trips(bytes in any::<[u8; 32]>()) {
            let id = ContentId(BlobHash(bytes));
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<ContentId>(&json).unwrap(), id);
        }
    }

    #[test]
    fn swarm_keys_differ_from_roots_and_from_each_other() {
        let a = ContentId(BlobHash([1; 32]));
        let b = ContentId(BlobHash([2; 32]));
        assert_ne!(a.swarm_key(), a);
        assert_ne!(a.swarm_key(), b.swarm_key());
        assert_eq!(
            a.swarm_key(),
            a.swarm_key(),
            "every node derives the same key"
        );
    }

    #[test]
    fn rejects_junk_with_a_reason() {
        assert!(matches!(
            "bafyabc".parse::<ContentId>(),
            Err(ContentIdError::MissingPrefix(_))
        ));
        assert!(matches!(
            "sb1abc".parse::<ContentId>(),
            Err(ContentIdError::WrongLength { found: 3, .. })
        ));
        let id = ContentId(BlobHash([7; 32])).to_string();
        let upper = id.to_uppercase().replacen("SB1", "sb1", 1);
        assert!(matches!(
            upper.parse::<ContentId>(),
            Err(ContentIdError::InvalidCharacter { .. })
        ));
        let error = "sb1!!".parse::<ContentId>().unwrap_err().to_string();
        assert!(error.contains("'!'"), "{error}");
    }

    #[test]
    fn non_canonical_trailing_bits_are_rejected() {
        let id = ContentId(BlobHash([0; 32])).to_string();
        // The last character carries 4 padding bits; setting one gives a second text.
        let mut tweaked = id[..id.len() - 1].to_owned();
        tweaked.push('b');
        assert!(tweaked.parse::<ContentId>().is_err());
    }

    #[test]
    fn ids_do_not_look_like_names() {
        let id = ContentId(BlobHash([1; 32])).to_string();
        assert!(ContentId::looks_like_id(&id));
        assert!(!ContentId::looks_like_id("alice/llama"));
        assert!(!ContentId::looks_like_id("llama@main"));
    }
}
