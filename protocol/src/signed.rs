//! The signed envelope every publisher statement travels in: releases, name records,
//! catalog pages and directories.
//!
//! Encoding: one format-version byte, one byte naming the record type, the postcard
//! encoding of `(signer, body)`, then the 64-byte ed25519 signature over a fixed
//! context string followed by everything before the signature. Postcard is
//! deterministic, so a record has exactly one encoding. Decoding checks the size cap
//! first, then the type, then the signature, then the body's own rules, and never
//! panics on arbitrary bytes.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::publisher_key::{KeyError, PublisherKey, PublisherSecret, SIGNATURE_BYTES};

/// The signed-record format this code writes and reads.
pub const RECORD_FORMAT_VERSION: u8 = 1;

/// Signed before the record bytes, so a signature made for Seedbank can never be
/// replayed as a signature over anything else.
const SIGNING_CONTEXT: &[u8] = b"seedbank signed record v1\0";

/// A record type that travels signed.
pub trait RecordBody: Serialize + DeserializeOwned + Clone {
    /// The byte naming this type in the encoding (and under the signature).
    const KIND: u8;
    /// What the type is called in errors.
    const WHAT: &'static str;
    /// Largest encoding accepted, signature included.
    const MAX_BYTES: usize;

    /// Checks the body's own rules, given who signed it.
    fn validate(&self, signer: &PublisherKey) -> Result<(), RecordError>;
}

/// Why bytes are not a valid signed record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// More bytes than the type allows.
    #[error("{what} of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// The record type.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Too short to hold even a header and a signature.
    #[error("{0} is truncated")]
    Truncated(&'static str),
    /// A format version this code does not read.
    #[error(
        "unsupported record format version {0} (this node reads version {RECORD_FORMAT_VERSION})"
    )]
    UnsupportedVersion(u8),
    /// A record of another type.
    #[error("expected a {expected}, found record type {found}")]
    WrongKind {
        /// The type expected.
        expected: &'static str,
        /// The type byte found.
        found: u8,
    },
    /// The body does not decode.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// The record type.
        what: &'static str,
        /// The decoder's complaint.
        reason: String,
    },
    /// The signature does not verify.
    #[error("{what} has a bad signature: {source}")]
    BadSignature {
        /// The record type.
        what: &'static str,
        /// Which key it failed under.
        source: KeyError,
    },
    /// A record signed by one key carries a statement signed by another.
    #[error("{what} is signed by {signer} but carries a release signed by {release_signer}")]
    SignerMismatch {
        /// The record type.
        what: &'static str,
        /// Who signed the record.
        signer: PublisherKey,
        /// Who signed the release inside.
        release_signer: PublisherKey,
    },
    /// A field breaks its rules.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The record type.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The record is stored under a DHT key it does not belong to.
    #[error("{0} is stored under a key that does not belong to it")]
    WrongKey(&'static str),
}

/// A record body with its signer and signature. Only [`Signed::sign`], [`Signed::decode`]
/// and the decoding of a record that embeds one make one; the embedding record's rules
/// verify it, so every value reachable from a decoded record has been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<T> {
    signer: PublisherKey,
    body: T,
    signature: [u8; SIGNATURE_BYTES],
}

fn header<T: RecordBody>() -> [u8; 2] {
    [RECORD_FORMAT_VERSION, T::KIND]
}

fn message(signed_part: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNING_CONTEXT.len() + signed_part.len());
    message.extend_from_slice(SIGNING_CONTEXT);
    message.extend_from_slice(signed_part);
    message
}

impl<T: RecordBody> Signed<T> {
    /// Validates `body` and signs it with `secret`.
    pub fn sign(body: T, secret: &PublisherSecret) -> Result<Self, RecordError> {
        let signer = secret.public();
        body.validate(&signer)?;
        let signed_part = Self::signed_part(&signer, &body)?;
        let signature = secret.sign(&message(&signed_part));
        let record = Self {
            signer,
            body,
            signature,
        };
        let size = signed_part.len() + SIGNATURE_BYTES;
        if size > T::MAX_BYTES {
            return Err(RecordError::TooLarge {
                what: T::WHAT,
                size,
                max: T::MAX_BYTES,
            });
        }
        Ok(record)
    }

    fn signed_part(signer: &PublisherKey, body: &T) -> Result<Vec<u8>, RecordError> {
        let mut bytes = header::<T>().to_vec();
        let encoded = postcard::to_stdvec(&(signer, body)).map_err(|e| RecordError::Malformed {
            what: T::WHAT,
            reason: e.to_string(),
        })?;
        bytes.extend_from_slice(&encoded);
        Ok(bytes)
    }

    /// Who signed it.
    pub fn signer(&self) -> &PublisherKey {
        &self.signer
    }

    /// The statement.
    pub fn body(&self) -> &T {
        &self.body
    }

    /// The encoded bytes.
    pub fn encode(&self) -> Vec<u8> {
        // Encoding a body that was validated and encoded once cannot fail.
        let mut bytes = Self::signed_part(&self.signer, &self.body).unwrap_or_default();
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// Decodes untrusted bytes: size, type, signature, then the body's rules.
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let record = Self::decode_unverified(bytes)?;
        record.verify()?;
        Ok(record)
    }

    /// Checks the signature and the body's rules. [`Signed::decode`] does this; a
    /// record embedding another checks the embedded one with it.
    pub fn verify(&self) -> Result<(), RecordError> {
        let signed_part = Self::signed_part(&self.signer, &self.body)?;
        self.signer
            .verify(&message(&signed_part), &self.signature)
            .map_err(|source| RecordError::BadSignature {
                what: T::WHAT,
                source,
            })?;
        self.body.validate(&self.signer)
    }

    /// Decodes the structure (size, type, fields) without checking the signature.
    fn decode_unverified(bytes: &[u8]) -> Result<Self, RecordError> {
        if bytes.len() > T::MAX_BYTES {
            return Err(RecordError::TooLarge {
                what: T::WHAT,
                size: bytes.len(),
                max: T::MAX_BYTES,
            });
        }
        if bytes.len() < 2 + SIGNATURE_BYTES {
            return Err(RecordError::Truncated(T::WHAT));
        }
        if bytes[0] != RECORD_FORMAT_VERSION {
            return Err(RecordError::UnsupportedVersion(bytes[0]));
        }
        if bytes[1] != T::KIND {
            return Err(RecordError::WrongKind {
                expected: T::WHAT,
                found: bytes[1],
            });
        }
        let (signed_part, signature) = bytes.split_at(bytes.len() - SIGNATURE_BYTES);
        let malformed = |reason: String| RecordError::Malformed {
            what: T::WHAT,
            reason,
        };
        let ((signer, body), rest): ((PublisherKey, T), _) =
            postcard::take_from_bytes(&signed_part[2..]).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed(format!("{} trailing bytes", rest.len())));
        }
        let mut fixed = [0; SIGNATURE_BYTES];
        fixed.copy_from_slice(signature);
        Ok(Self {
            signer,
            body,
            signature: fixed,
        })
    }
}

/// Embedded in another record as its encoded bytes. Decoding checks only the structure:
/// the embedding record's rules verify the embedded signature (see
/// [`RecordBody::validate`]), so a bad one is reported as such.
impl<T: RecordBody> Serialize for Signed<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.encode())
    }
}

impl<'de, T: RecordBody> Deserialize<'de> for Signed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = <Vec<u8>>::deserialize(deserializer)?;
        Signed::decode_unverified(&bytes).map_err(serde::de::Error::custom)
    }
}

/// A field error in a record of type `what`.
pub(crate) fn invalid(what: &'static str, reason: impl std::fmt::Display) -> RecordError {
    RecordError::Invalid {
        what,
        reason: reason.to_string(),
    }
}
