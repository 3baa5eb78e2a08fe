//! Seedbank's one addition to the iroh-blobs request protocol: the "busy" answer.
//!
//! A provider serving as many streams as it allows answers a new one with
//! [`BUSY_ANSWER`] and closes it. Read as the 8-byte little-endian size header that
//! opens every iroh-blobs answer, those bytes give a size of 2^56 - 1, above
//! [`MAX_FILE_BYTES`](crate::limits::MAX_FILE_BYTES), which no honest blob has; read as
//! the varint length prefix of an observe answer, they give a length far above any
//! bitfield. So the answer cannot be mistaken for data, and a fetcher that sees it backs
//! off from that peer for a while instead of counting the data as missing there.

/// What a full provider sends instead of an answer.
pub const BUSY_ANSWER: [u8; 8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::MAX_FILE_BYTES;

    #[test]
    fn the_busy_answer_is_no_honest_size_header() {
        let size = u64::from_le_bytes(BUSY_ANSWER);
        assert_eq!(size, (1 << 56) - 1);
        assert!(size > MAX_FILE_BYTES);
    }
}
