//! One `Range: bytes=…` request header, checked against the file's size.

use super::errors::HfError;

/// A byte range within a file, end exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl ByteRange {
    /// Parses `bytes=S-`, `bytes=S-E` or `bytes=-N` for a file of `size` bytes. Several
    /// ranges at once are not served; a range outside the file is refused (416).
    pub fn parse(text: &str, size: u64) -> Result<Self, HfError> {
        let bad = || HfError::BadRequest(format!("unsupported Range header {text:?}"));
        let spec = text.trim().strip_prefix("bytes=").ok_or_else(bad)?;
        if spec.contains(',') {
            return Err(bad());
        }
        let (first, last) = spec.split_once('-').ok_or_else(bad)?;
        let number = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
        let (start, end) = match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => {
                let suffix = number(last)?;
                (size.saturating_sub(suffix), size)
            }
            (false, true) => (number(first)?, size),
            (false, false) => (number(first)?, number(last)?.saturating_add(1).min(size)),
            (true, true) => return Err(bad()),
        };
        if start >= size || start >= end {
            return Err(HfError::RangeNotSatisfiable(size));
        }
        Ok(Self { start, end })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_clip() {
        let r = |s| ByteRange::parse(s, 100);
        assert_eq!(
            r("bytes=10-").unwrap(),
            ByteRange {
                start: 10,
                end: 100
            }
        );
        assert_eq!(r("bytes=10-19").unwrap(), ByteRange { start: 10, end: 20 });
        assert_eq!(
            r("bytes=90-500").unwrap(),
            ByteRange {
                start: 90,
                end: 100
            }
        );
        assert_eq!(
            r("bytes=-5").unwrap(),
            ByteRange {
                start: 95,
                end: 100
            }
        );
        assert_eq!(r("bytes=100-"), Err(HfError::RangeNotSatisfiable(100)));
        assert!(matches!(r("bytes=1-2,4-5"), Err(HfError::BadRequest(_))));
        assert!(matches!(r("items=1-2"), Err(HfError::BadRequest(_))));
        assert!(matches!(r("bytes=x-"), Err(HfError::BadRequest(_))));
    }
}
