//! Publisher keys: the ed25519 keys that sign releases, name records and catalogs, and
//! their one canonical text form.
//!
//! A public key prints as `sbp1` followed by its 32 bytes in lowercase base32 (56
//! characters in all); a secret key exported for backup prints as `sbsecret1…`. Neither
//! can be mistaken for a content id (`sb1…`) or a name (names hold no such prefix and
//! are checked for it where it matters).

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::content_id::BASE32_LOWER;

/// The prefix of a publisher key's text form.
pub const PUBLISHER_KEY_PREFIX: &str = "sbp1";
/// The prefix of an exported secret key's text form.
pub const SECRET_KEY_PREFIX: &str = "sbsecret1";
/// Length of the base32 part of a 32-byte key's text form.
const ENCODED_KEY_CHARS: usize = 52;
/// Length of an ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// A publisher's ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublisherKey(pub [u8; 32]);

/// Why a text is not a key, or a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The text does not start with the expected prefix.
    #[error("{text:?} is not a {what}: it must start with \"{prefix}\"")]
    MissingPrefix {
        /// The text given.
        text: String,
        /// What was expected.
        what: &'static str,
        /// The prefix.
        prefix: &'static str,
    },
    /// The text has the prefix but is not 32 bytes of canonical base32 after it.
    #[error("{text:?} is not a {what}: expected {ENCODED_KEY_CHARS} base32 characters (a-z, 2-7) after the prefix")]
    Malformed {
        /// The text given.
        text: String,
        /// What was expected.
        what: &'static str,
    },
    /// The bytes are not a valid ed25519 point.
    #[error("{0} is not a valid ed25519 public key")]
    NotAPoint(String),
    /// The signature does not verify under the key.
    #[error("the signature does not verify under publisher key {0}")]
    BadSignature(PublisherKey),
}

fn decode_key_text(
    text: &str,
    prefix: &'static str,
    what: &'static str,
) -> Result<[u8; 32], KeyError> {
    let encoded = text
        .strip_prefix(prefix)
        .ok_or_else(|| KeyError::MissingPrefix {
            text: text.to_owned(),
            what,
            prefix,
        })?;
    let malformed = || KeyError::Malformed {
        text: text.to_owned(),
        what,
    };
    if encoded.len() != ENCODED_KEY_CHARS {
        return Err(malformed());
    }
    let bytes = BASE32_LOWER
        .decode(encoded.as_bytes())
        .map_err(|_| malformed())?;
    let key: [u8; 32] = bytes.try_into().map_err(|_| malformed())?;
    // One key, one text: the 4 spare bits of the last character must be zero.
    if BASE32_LOWER.encode(&key) != encoded {
        return Err(malformed());
    }
    Ok(key)
}

impl PublisherKey {
    /// True if `text` is meant to be a publisher key rather than an alias.
    pub fn looks_like_key(text: &str) -> bool {
        text.starts_with(PUBLISHER_KEY_PREFIX)
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Checks `signature` over `message` (strict ed25519: no malleable signatures, no
    /// small-order keys).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), KeyError> {
        let key =
            VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::NotAPoint(self.to_string()))?;
        let signature: [u8; SIGNATURE_BYTES] = signature
            .try_into()
            .map_err(|_| KeyError::BadSignature(*self))?;
        key.verify_strict(message, &ed25519_dalek::Signature::from_bytes(&signature))
            .map_err(|_| KeyError::BadSignature(*self))
    }

    /// The first characters of the text form, for tables.
    pub fn short(&self) -> String {
        self.to_string()[..PUBLISHER_KEY_PREFIX.len() + 12].to_owned()
    }
}

impl fmt::Display for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(PUBLISHER_KEY_PREFIX)?;
        f.write_str(&BASE32_LOWER.encode(&self.0))
    }
}

impl fmt::Debug for PublisherKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherKey({self})")
    }
}

impl FromStr for PublisherKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bytes = decode_key_text(text, PUBLISHER_KEY_PREFIX, "publisher key")?;
        VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::NotAPoint(text.to_owned()))?;
        Ok(Self(bytes))
    }
}

impl Serialize for PublisherKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PublisherKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Self)
        }
    }
}

/// A publisher's secret key. Never serialized by accident: it has no serde impls, and
/// its `Debug` shows only the public half.
#[derive(Clone)]
pub struct PublisherSecret(SigningKey);

impl PublisherSecret {
    /// The key with this 32-byte seed (from a random source, or a stored key file).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed, for storing in a 0600 file.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublisherKey {
        PublisherKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        self.0.sign(message).to_bytes()
    }

    /// The export text form, `sbsecret1…`.
    pub fn to_export_text(&self) -> String {
        format!("{SECRET_KEY_PREFIX}{}", BASE32_LOWER.encode(&self.seed()))
    }

    /// Reads the export text form.
    pub fn from_export_text(text: &str) -> Result<Self, KeyError> {
        decode_key_text(text.trim(), SECRET_KEY_PREFIX, "secret key").map(Self::from_seed)
    }
}

impl fmt::Debug for PublisherSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublisherSecret(public {})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn text_forms_round_trip(seed in any::<[u8; 32]>()) {
            let secret = PublisherSecret::from_seed(seed);
            let public = secret.public();
            prop_assert_eq!(public.to_string().parse::<PublisherKey>(), Ok(public));
            let again = PublisherSecret::from_export_text(&secret.to_export_text()).unwrap();
            prop_assert_eq!(again.public(), public);
            let json = serde_json::to_string(&public).unwrap();
            prop_assert_eq!(serde_json::from_str::<PublisherKey>(&json).unwrap(), public);
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(text in ".*") {
            let _ = text.parse::<PublisherKey>();
            let _ = PublisherSecret::from_export_text(&text);
        }
    }

    #[test]
    fn signatures_verify_only_under_their_key_and_message() {
        let alice = PublisherSecret::from_seed([1; 32]);
        let bob = PublisherSecret::from_seed([2; 32]);
        let signature = alice.sign(b"hello");
        assert!(alice.public().verify(b"hello", &signature).is_ok());
        assert!(alice.public().verify(b"hullo", &signature).is_err());
        assert!(bob.public().verify(b"hello", &signature).is_err());
        assert!(alice.public().verify(b"hello", &signature[..63]).is_err());
    }

    #[test]
    fn keys_are_not_content_ids_and_say_what_is_wrong() {
        let key = PublisherSecret::from_seed([3; 32]).public().to_string();
        assert!(!crate::ContentId::looks_like_id(&key));
        assert!(key.parse::<crate::ContentId>().is_err());
        let error = "sb1abc".parse::<PublisherKey>().unwrap_err().to_string();
        assert!(error.contains("sbp1"), "{error}");
        let secret_as_public = PublisherSecret::from_seed([3; 32]).to_export_text();
        assert!(secret_as_public.parse::<PublisherKey>().is_err());
    }
}
