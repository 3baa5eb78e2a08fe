//! The BLAKE3 hash that names one blob.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The 32-byte BLAKE3 hash of a blob's bytes. Printed as 64 lowercase hex digits.
///
/// Serialized as that hex text in human-readable formats (JSON for scripts), and as the
/// 32 raw bytes in binary ones: manifests are postcard-encoded and hashed into content
/// ids, so their encoding must never change.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlobHash(pub [u8; 32]);

/// The binary form: what `#[derive(Serialize, Deserialize)]` on [`BlobHash`] produced.
#[derive(Serialize, Deserialize)]
#[serde(rename = "BlobHash")]
struct RawBlobHash([u8; 32]);

impl Serialize for BlobHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            RawBlobHash(self.0).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for BlobHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            RawBlobHash::deserialize(deserializer).map(|raw| Self(raw.0))
        }
    }
}

impl BlobHash {
    /// The raw hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.0)
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

/// Why a text was not a blob hash.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a blob hash (expected 64 hex digits): {0:?}")]
pub struct BlobHashParseError(pub String);

impl FromStr for BlobHash {
    type Err = BlobHashParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = data_encoding::HEXLOWER_PERMISSIVE
            .decode(s.as_bytes())
            .map_err(|_| BlobHashParseError(s.to_owned()))?;
        let array: [u8; 32] = bytes
            .try_into()
            .map_err(|_| BlobHashParseError(s.to_owned()))?;
        Ok(Self(array))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip() {
        let hash = BlobHash([0xab; 32]);
        assert_eq!(hash.to_hex().parse::<BlobHash>(), Ok(hash));
    }

    #[test]
    fn json_is_hex_text_and_binary_is_the_raw_bytes() {
        let hash = BlobHash([0xab; 32]);
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(json, format!("\"{}\"", "ab".repeat(32)));
        assert_eq!(serde_json::from_str::<BlobHash>(&json).unwrap(), hash);
        assert!(serde_json::from_str::<BlobHash>("\"abcd\"").is_err());
        // Manifests hash their postcard bytes into content ids: those bytes must stay
        // the 32 bytes the derived encoding wrote.
        let binary = postcard::to_stdvec(&hash).unwrap();
        assert_eq!(binary, vec![0xab; 32]);
        assert_eq!(postcard::from_bytes::<BlobHash>(&binary).unwrap(), hash);
    }

    #[test]
    fn rejects_wrong_length_and_junk() {
        assert!("abcd".parse::<BlobHash>().is_err());
        assert!("zz".repeat(32).parse::<BlobHash>().is_err());
    }
}
