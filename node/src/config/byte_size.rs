//! Amounts of disk written `500000`, `512M`, `20G` or `1.5 TiB` in flags, `config.toml`
//! and `SEEDBANK_*` variables (single-letter suffixes are 1024-based, as for rates).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A number of bytes of storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(u64);

impl ByteSize {
    /// `bytes` bytes.
    pub fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The number of bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        parse_size::Config::new()
            .with_binary()
            .parse_size(text.trim())
            .map(Self)
            .map_err(|_| format!("{text:?} is not an amount of storage: use e.g. 500M, 20G, 2T"))
    }
}

impl fmt::Display for ByteSize {
    /// The shortest exact form that [`FromStr`] reads back: `20G`, `512M`, `1000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, unit) in [
            ("T", 1u64 << 40),
            ("G", 1 << 30),
            ("M", 1 << 20),
            ("K", 1 << 10),
        ] {
            if self.0 > 0 && self.0.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum NumberOrText {
            Number(u64),
            Text(String),
        }
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(bytes) => Ok(Self(bytes)),
            NumberOrText::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_back_as_written() {
        for text in ["20G", "512M", "3K", "1000", "2T"] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size.to_string(), text);
        }
        assert_eq!("1.5 GiB".parse::<ByteSize>().unwrap().bytes(), 3 << 29);
        assert!("lots".parse::<ByteSize>().unwrap_err().contains("lots"));
    }
}
