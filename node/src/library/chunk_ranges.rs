//! Byte arithmetic over BLAKE3 chunk ranges, pure: how many bytes of a blob a set of
//! verified ranges covers, and how many are still missing. The store reports ranges;
//! the library, the fetch planner and the gateway count with these.

use bao_tree::ChunkNum;
use iroh_blobs::protocol::ChunkRanges;
use range_collections::range_set::RangeSetRange;

/// Bytes per BLAKE3 chunk: the unit of ranges in requests and bitfields.
pub const CHUNK_BYTES: u64 = 1024;

/// Payload bytes of `ranges` in a blob of `size` bytes.
pub fn range_bytes(ranges: &ChunkRanges, size: u64) -> u64 {
    ranges
        .iter()
        .map(|range| match range {
            RangeSetRange::Range(r) => {
                (r.end.0.saturating_mul(CHUNK_BYTES)).min(size)
                    - (r.start.0.saturating_mul(CHUNK_BYTES)).min(size)
            }
            RangeSetRange::RangeFrom(r) => size.saturating_sub(r.start.0 * CHUNK_BYTES),
        })
        .sum()
}

/// Payload bytes of a blob of `size` bytes that `present` does not cover.
pub fn missing_bytes(size: u64, present: &ChunkRanges) -> u64 {
    let all = ChunkRanges::from(ChunkNum(0)..ChunkNum(size.div_ceil(CHUNK_BYTES)));
    range_bytes(&(&all - present), size)
}
