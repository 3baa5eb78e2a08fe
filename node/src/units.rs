//! Values written the same way in flags, `config.toml` and `SEEDBANK_*` variables:
//! rates like `5M`, sizes like `20GB` and durations like `30s`.

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

/// An amount of storage, written `1000000`, `500MiB`, `20GB`, `20G` or `1.5 TB`.
/// `KB`, `MB`, `GB`, `TB` are 1000-based and `KiB`, `MiB`, `GiB`, `TiB` 1024-based, as
/// disks are sold and as `df -h` reports; a single letter (`20G`) is 1024-based, as in
/// rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(u64);

impl ByteSize {
    /// `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        Self(bytes)
    }

    /// The size in bytes.
    pub fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        // A lone unit letter (`20G`) reads as binary, like the rates; `GB` stays decimal.
        let lone_letter = trimmed
            .chars()
            .last()
            .is_some_and(|c| "kKmMgGtT".contains(c))
            && trimmed
                .chars()
                .rev()
                .nth(1)
                .is_some_and(|c| c.is_ascii_digit() || c == ' ');
        let config = if lone_letter {
            parse_size::Config::new().with_binary()
        } else {
            parse_size::Config::new()
        };
        config
            .parse_size(trimmed)
            .map(Self)
            .map_err(|_| format!("{text:?} is not a size: use e.g. 500MiB, 20GB, 1TB"))
    }
}

impl fmt::Display for ByteSize {
    /// The shortest exact form that [`FromStr`] reads back: `20GB`, `500MiB`, `1000`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(&str, u64); 8] = [
            ("TiB", 1 << 40),
            ("TB", 1_000_000_000_000),
            ("GiB", 1 << 30),
            ("GB", 1_000_000_000),
            ("MiB", 1 << 20),
            ("MB", 1_000_000),
            ("KiB", 1 << 10),
            ("KB", 1_000),
        ];
        let shortest = UNITS
            .iter()
            .filter(|(_, unit)| self.0 > 0 && self.0.is_multiple_of(*unit))
            .min_by_key(|(_, unit)| self.0 / unit);
        match shortest {
            Some((suffix, unit)) => write!(f, "{}{suffix}", self.0 / unit),
            None => write!(f, "{}", self.0),
        }
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match NumberOrText::deserialize(deserializer)? {
            NumberOrText::Number(bytes) => Ok(Self(bytes)),
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
    fn sizes_take_decimal_and_binary_units_and_refuse_junk() {
        let size = |text: &str| text.parse::<ByteSize>().map(ByteSize::bytes);
        assert_eq!(size("1000"), Ok(1000));
        assert_eq!(size("20GB"), Ok(20_000_000_000));
        assert_eq!(size("500MiB"), Ok(500 << 20));
        assert_eq!(size("20G"), Ok(20 << 30));
        assert_eq!(size("4 MiB"), Ok(4 << 20));
        assert_eq!(size("1.5 TB"), Ok(1_500_000_000_000));
        assert!(size("lots").unwrap_err().contains("\"lots\""));
    }

    #[test]
    fn sizes_print_in_a_form_they_are_read_back_from() {
        for (text, shown) in [
            ("20GB", "20GB"),
            ("500MiB", "500MiB"),
            ("2GB", "2GB"),
            ("1000", "1KB"),
            ("1234", "1234"),
        ] {
            let size: ByteSize = text.parse().unwrap();
            assert_eq!(size.to_string(), shown);
            assert_eq!(shown.parse::<ByteSize>().unwrap(), size);
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
