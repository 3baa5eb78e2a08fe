//! Values written the same way in flags, `config.toml` and `SEEDBANK_*` variables:
//! rates like `5M` and durations like `30s`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A rate in bytes per second, written `500000`, `512K`, `10M`, `1G` or `10 MiB`.
/// Single-letter suffixes are 1024-based, as in curl, wget and rsync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteRate(u64);

impl ByteRate {
    /// A rate of `bytes` per second (at least 1).
    pub fn new(bytes: u64) -> Option<Self> {
        (bytes > 0).then_some(Self(bytes))
    }

    /// Bytes per second.
    pub fn bytes_per_second(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteRate {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let number = trimmed.strip_suffix("/s").unwrap_or(trimmed);
        let bytes = parse_size::Config::new()
            .with_binary()
            .parse_size(number)
            .map_err(|_| {
                format!("{text:?} is not a rate: use bytes per second, e.g. 500000, 512K, 10M")
            })?;
        Self::new(bytes).ok_or_else(|| "a rate must be at least 1 byte per second".into())
    }
}

impl fmt::Display for ByteRate {
    /// The shortest exact form that [`FromStr`] reads back: `10M`, `512K`, `1000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (suffix, unit) in [("G", 1u64 << 30), ("M", 1 << 20), ("K", 1 << 10)] {
            if self.0.is_multiple_of(unit) {
                return write!(f, "{}{suffix}", self.0 / unit);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteRate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteRate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(bytes) => Self::new(bytes).ok_or_else(|| {
                serde::de::Error::custom("a rate must be at least 1 byte per second")
            }),
            NumberOrText::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A setting written either as a bare number or as text with a unit.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrText {
    Number(u64),
    Text(String),
}

/// Parses a duration like `30s`, `5m`, `1h 30m` or a bare number of seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("{text:?} is not a duration ({e}): use e.g. 30s, 5m, 1h"))
}

/// Serde for durations written like `30s` or `5m` (a bare number is seconds).
pub mod duration_text {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::NumberOrText;

    /// Writes `5m`, `30s`, `1h 30m`.
    pub fn serialize<S: Serializer>(value: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&humantime::format_duration(*value))
    }

    /// Reads a number of seconds or a duration text.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(seconds) => Ok(Duration::from_secs(seconds)),
            NumberOrText::Text(text) => {
                super::parse_duration(&text).map_err(serde::de::Error::custom)
            }
        }
    }
}

/// Serde for a list that may also be written as one value (`SEEDBANK_NET_BOOTSTRAP=/ip4/…`).
pub mod one_or_many {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }

    /// Writes the list as a list.
    pub fn serialize<T: Serialize, S: Serializer>(
        value: &[T],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        value.serialize(serializer)
    }

    /// Reads a list, or one value as a list of one.
    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Vec<T>, D::Error> {
        Ok(match OneOrMany::deserialize(deserializer)? {
            OneOrMany::One(value) => vec![value],
            OneOrMany::Many(values) => values,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_take_binary_suffixes_and_refuse_junk() {
        let rate = |text: &str| text.parse::<ByteRate>().map(ByteRate::bytes_per_second);
        assert_eq!(rate("1000"), Ok(1000));
        assert_eq!(rate("10M"), Ok(10 << 20));
        assert_eq!(rate("2k"), Ok(2048));
        assert_eq!(rate("10 MiB"), Ok(10 << 20));
        assert_eq!(rate("5M/s"), Ok(5 << 20));
        assert!(rate("fast").unwrap_err().contains("\"fast\""));
        assert!(rate("0").is_err());
    }

    #[test]
    fn rates_print_in_the_form_they_are_read() {
        for text in ["5M", "512K", "1G", "1000"] {
            assert_eq!(text.parse::<ByteRate>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn durations_take_units_or_seconds() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").unwrap_err().contains("soon"));
    }
}
