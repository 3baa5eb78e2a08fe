//! The BLAKE3 hash that names one blob.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The 32-byte BLAKE3 hash of a blob's bytes. Printed as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BlobHash(pub [u8; 32]);

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
    fn rejects_wrong_length_and_junk() {
        assert!("abcd".parse::<BlobHash>().is_err());
        assert!("zz".repeat(32).parse::<BlobHash>().is_err());
    }
}
