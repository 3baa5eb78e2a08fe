//! Segment geometry, pure: what to request, in which pieces, and in what order.
//!
//! A fetch's work is the missing chunk ranges of its files, cut into segments of
//! [`SEGMENT_BYTES`]. The [`Planner`] hands them out lazily, a window at a time, so the
//! memory a fetch needs grows with the work in flight, never with the artifact's size
//! (a manifest may honestly list terabytes). Nothing here touches the store or the
//! network: callers pass in what the store holds.

use bao_tree::ChunkNum;
use iroh_blobs::protocol::ChunkRanges;
use iroh_blobs::Hash;
use libp2p::PeerId;

use range_collections::range_set::RangeSetRange;

pub use crate::library::chunk_ranges::{missing_bytes, range_bytes, CHUNK_BYTES};

/// Bytes per work item: large enough that request overhead is negligible, small enough
/// that several providers share even a modest file and a lost segment costs little.
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Chunks per segment.
pub const SEGMENT_CHUNKS: u64 = SEGMENT_BYTES / CHUNK_BYTES;
/// While other fetchers take part, complete peers are asked for at most this much at a
/// time, so parts the fetchers get from each other meanwhile are not sent twice.
pub const SWARM_REQUEST_BYTES: u64 = 1024 * 1024;
/// Most segments planned ahead of the workers. Bounds a fetch's memory; large enough
/// that thousands of small files keep every worker busy between refills.
pub const PLAN_WINDOW: usize = 512;

/// One segment of one blob: the chunk ranges of it still missing locally.
#[derive(Debug, Clone)]
pub struct WorkItem {
    /// Unique within the fetch.
    pub id: usize,
    /// The blob.
    pub hash: Hash,
    /// What is still missing of the segment.
    pub ranges: ChunkRanges,
    /// Payload bytes of `ranges`.
    pub bytes: u64,
    /// The whole segment, to recompute what is missing after a request.
    pub segment: ChunkRanges,
    /// The blob's size.
    pub size: u64,
    /// When it last went into the queue (`None`: before the fetch began).
    pub queued_at: Option<tokio::time::Instant>,
}

/// One blob to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlannedBlob {
    /// Its hash.
    pub hash: Hash,
    /// Its size in bytes.
    pub size: u64,
}

/// Hands out the segments of a list of blobs, a window at a time.
///
/// Invariant: segments handed out never overlap, and together with what the store held
/// when each was cut they cover every blob exactly.
#[derive(Debug)]
pub struct Planner {
    blobs: Vec<PlannedBlob>,
    /// Where each blob is in `blobs`.
    index: std::collections::HashMap<Hash, usize>,
    /// The blob being cut, and the first chunk of it not yet handed out.
    blob: usize,
    chunk: u64,
    next_id: usize,
    /// Striped: one segment of each blob in turn, for readers streaming several files
    /// at once; the first chunk not yet handed out of every blob.
    striped: Option<Vec<u64>>,
}

impl Planner {
    /// Plans `blobs`; empty blobs and repeats are skipped (nothing to fetch twice).
    pub fn new(blobs: impl IntoIterator<Item = PlannedBlob>) -> Self {
        let mut planner = Self {
            blobs: Vec::new(),
            index: std::collections::HashMap::new(),
            blob: 0,
            chunk: 0,
            next_id: 0,
            striped: None,
        };
        planner.extend(blobs);
        planner
    }

    /// Plans `blobs` too, after those planned so far; empty blobs and blobs already
    /// planned are skipped. Returns the blobs added.
    pub fn extend(&mut self, blobs: impl IntoIterator<Item = PlannedBlob>) -> Vec<PlannedBlob> {
        let mut added = Vec::new();
        for blob in blobs {
            if blob.size > 0 && !self.index.contains_key(&blob.hash) {
                self.index.insert(blob.hash, self.blobs.len());
                self.blobs.push(blob);
                added.push(blob);
            }
        }
        if let Some(positions) = &mut self.striped {
            positions.resize(self.blobs.len(), 0);
        }
        added
    }

    /// Hands out one segment of each blob in turn (from each blob's start), instead of
    /// blob after blob, so that readers streaming several files all get bytes early.
    pub fn striped(mut self) -> Self {
        self.striped = Some(vec![0; self.blobs.len()]);
        self
    }

    /// The blobs planned, without repeats.
    pub fn blobs(&self) -> &[PlannedBlob] {
        &self.blobs
    }

    /// The blob whose segments come next, if any remain.
    pub fn current(&self) -> Option<PlannedBlob> {
        match &self.striped {
            None => self.blobs.get(self.blob).copied(),
            Some(_) => self.next_striped().map(|i| self.blobs[i]),
        }
    }

    /// Whether every segment has been handed out.
    pub fn is_done(&self) -> bool {
        match &self.striped {
            None => self.blob >= self.blobs.len(),
            Some(_) => self.next_striped().is_none(),
        }
    }

    /// Striped: the next blob in turn (from `self.blob` on) with segments left.
    fn next_striped(&self) -> Option<usize> {
        let positions = self.striped.as_ref()?;
        let count = self.blobs.len();
        (0..count)
            .map(|step| (self.blob + step) % count)
            .find(|&i| positions[i] < self.blobs[i].size.div_ceil(CHUNK_BYTES))
    }

    /// Up to `max` segments of the current blob, given what the store holds of it
    /// (`present`), skipping segments it holds in full. Moves on to the next blob when
    /// this one is exhausted, so call again (with that blob's holdings) for more.
    pub fn next_segments(&mut self, present: &ChunkRanges, max: usize) -> Vec<WorkItem> {
        if self.striped.is_some() {
            return self.next_striped_segment(present, max);
        }
        let mut items = Vec::new();
        let Some(blob) = self.current() else {
            return items;
        };
        let chunks = blob.size.div_ceil(CHUNK_BYTES);
        while self.chunk < chunks && items.len() < max {
            let (item, end) = self.cut(blob, self.chunk, present);
            items.extend(item);
            self.chunk = end;
        }
        if self.chunk >= chunks {
            self.blob += 1;
            self.chunk = 0;
        }
        items
    }
}

impl Planner {
    /// The segment of `blob` starting at chunk `start`, as a work item unless `present`
    /// covers it; and the chunk after it.
    fn cut(
        &mut self,
        blob: PlannedBlob,
        start: u64,
        present: &ChunkRanges,
    ) -> (Option<WorkItem>, u64) {
        let end = (start + SEGMENT_CHUNKS).min(blob.size.div_ceil(CHUNK_BYTES));
        let segment = ChunkRanges::from(ChunkNum(start)..ChunkNum(end));
        let missing = &segment - present;
        if missing.is_empty() {
            return (None, end);
        }
        let item = WorkItem {
            id: self.next_id,
            hash: blob.hash,
            bytes: range_bytes(&missing, blob.size),
            ranges: missing,
            segment,
            size: blob.size,
            queued_at: None,
        };
        self.next_id += 1;
        (Some(item), end)
    }

    /// Striped: the next missing segment of `hash` out of turn (skipping those `present`
    /// covers), for a blob a reader just asked for. `None` when not striped, or when
    /// nothing of it is left to hand out.
    pub fn next_segment_of(&mut self, hash: Hash, present: &ChunkRanges) -> Option<WorkItem> {
        let index = *self.index.get(&hash)?;
        let blob = self.blobs[index];
        let chunks = blob.size.div_ceil(CHUNK_BYTES);
        loop {
            let start = *self.striped.as_ref()?.get(index)?;
            if start >= chunks {
                return None;
            }
            let (item, end) = self.cut(blob, start, present);
            if let Some(positions) = self.striped.as_mut() {
                positions[index] = end;
            }
            if item.is_some() {
                return item;
            }
        }
    }

    /// Striped: the next missing segment of the blob whose turn it is (skipping those
    /// it holds in full), then the turn passes to the next blob.
    fn next_striped_segment(&mut self, present: &ChunkRanges, max: usize) -> Vec<WorkItem> {
        let mut items = Vec::new();
        let Some(index) = self.next_striped() else {
            return items;
        };
        let blob = self.blobs[index];
        let chunks = blob.size.div_ceil(CHUNK_BYTES);
        let position = |planner: &Self| planner.striped.as_ref().map_or(chunks, |p| p[index]);
        while position(self) < chunks && items.is_empty() && max > 0 {
            let (item, end) = self.cut(blob, position(self), present);
            items.extend(item);
            if let Some(positions) = self.striped.as_mut() {
                positions[index] = end;
            }
        }
        self.blob = (index + 1) % self.blobs.len().max(1);
        items
    }
}

/// A piece: its block number and its ranges.
pub type Piece = (u64, ChunkRanges);

/// The pieces of `fresh` (a part of `all`): its parts in each `piece_bytes`-aligned
/// block. Returned twice: those of blocks of which nothing else is held (the block's part
/// of `all` is all fresh), and all of them.
pub fn pieces(
    all: &ChunkRanges,
    fresh: &ChunkRanges,
    piece_bytes: u64,
) -> (Vec<Piece>, Vec<Piece>) {
    let piece_chunks = (piece_bytes / CHUNK_BYTES).max(1);
    let mut blocks: Vec<u64> = Vec::new();
    for range in fresh.iter() {
        let (start, end) = match range {
            RangeSetRange::Range(r) => (r.start.0, r.end.0),
            // Open-ended only when the size is unknown; take its first block.
            RangeSetRange::RangeFrom(r) => (r.start.0, r.start.0 + 1),
        };
        for block in start / piece_chunks..end.div_ceil(piece_chunks) {
            if blocks.last() != Some(&block) {
                blocks.push(block);
            }
        }
    }
    let mut untouched = Vec::new();
    let mut any = Vec::new();
    for block in blocks {
        let span =
            ChunkRanges::from(ChunkNum(block * piece_chunks)..ChunkNum((block + 1) * piece_chunks));
        let piece = fresh & &span;
        if ((all & &span) - &piece).is_empty() {
            untouched.push((block, piece.clone()));
        }
        any.push((block, piece));
    }
    (untouched, any)
}

/// The ranges of one of `options` (block, ranges), chosen by `salt`.
pub fn choose(mut options: Vec<Piece>, salt: u64) -> Option<ChunkRanges> {
    if options.is_empty() {
        return None;
    }
    let index = (salt % options.len() as u64) as usize;
    Some(options.swap_remove(index).1)
}

/// The first piece of `ranges`: its part in the first `piece_bytes`-aligned block it touches.
pub fn first_piece(ranges: &ChunkRanges, piece_bytes: u64) -> ChunkRanges {
    let (_, any) = pieces(ranges, ranges, piece_bytes);
    any.into_iter()
        .next()
        .map_or_else(|| ranges.clone(), |(_, piece)| piece)
}

/// A peer's rendezvous score for one block of one blob.
pub fn rendezvous_score(peer: &PeerId, hash: Hash, block: u64) -> [u8; 32] {
    *blake3::Hasher::new()
        .update(&peer.to_bytes())
        .update(hash.as_bytes())
        .update(&block.to_le_bytes())
        .finalize()
        .as_bytes()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    #[test]
    fn striped_plans_take_one_segment_of_each_file_in_turn() {
        let blob = |byte: u8, segments: u64| PlannedBlob {
            hash: Hash::from_bytes([byte; 32]),
            size: segments * SEGMENT_BYTES,
        };
        let mut planner = Planner::new([blob(1, 2), blob(2, 3), blob(3, 1)]).striped();
        let mut order = Vec::new();
        while let Some(current) = planner.current() {
            for item in planner.next_segments(&ChunkRanges::empty(), 100) {
                assert_eq!(item.hash, current.hash);
                let start = match item.segment.iter().next() {
                    Some(RangeSetRange::Range(r)) => r.start.0 / SEGMENT_CHUNKS,
                    other => panic!("unexpected segment {other:?}"),
                };
                order.push((item.hash.as_bytes()[0], start));
            }
        }
        assert!(planner.is_done());
        assert_eq!(order, vec![(1, 0), (2, 0), (3, 0), (1, 1), (2, 1), (2, 2)]);
    }

    #[test]
    fn files_added_to_a_striped_plan_are_cut_once_whether_out_of_turn_or_in_it() {
        let blob = |byte: u8, segments: u64| PlannedBlob {
            hash: Hash::from_bytes([byte; 32]),
            size: segments * SEGMENT_BYTES,
        };
        let none = ChunkRanges::empty();
        let mut planner = Planner::new([blob(1, 3)]).striped();
        assert_eq!(planner.next_segments(&none, 100).len(), 1);
        let added = planner.extend([blob(1, 3), blob(2, 2), blob(3, 0)]);
        assert_eq!(added, vec![blob(2, 2)], "known and empty blobs are skipped");
        let out_of_turn = planner.next_segment_of(blob(2, 2).hash, &none).unwrap();
        assert_eq!(out_of_turn.hash, blob(2, 2).hash);
        let mut segments = vec![out_of_turn.segment];
        while !planner.is_done() {
            for item in planner.next_segments(&none, 100) {
                if item.hash == blob(2, 2).hash {
                    segments.push(item.segment);
                }
            }
        }
        let starts: Vec<u64> = segments
            .iter()
            .map(|s| match s.iter().next() {
                Some(RangeSetRange::Range(r)) => r.start.0 / SEGMENT_CHUNKS,
                other => panic!("unexpected segment {other:?}"),
            })
            .collect();
        assert_eq!(
            starts,
            vec![0, 1],
            "each segment of the new blob once, in order"
        );
        assert!(Planner::new([blob(4, 2)])
            .next_segment_of(blob(4, 2).hash, &none)
            .is_none());
    }

    use super::*;

    fn blob(byte: u8, size: u64) -> PlannedBlob {
        PlannedBlob {
            hash: Hash::from_bytes([byte; 32]),
            size,
        }
    }

    /// Everything the planner hands out for `blobs`, with `present` held of each.
    fn plan_all(blobs: &[PlannedBlob], present: &ChunkRanges, window: usize) -> Vec<WorkItem> {
        let mut planner = Planner::new(blobs.iter().copied());
        let mut items = Vec::new();
        while !planner.is_done() {
            let batch = planner.next_segments(present, window);
            assert!(batch.len() <= window);
            items.extend(batch);
        }
        items
    }

    #[test]
    fn segments_cover_only_what_is_missing() {
        let size = 10 * 1024 * 1024 + 5;
        let items = plan_all(&[blob(1, size)], &ChunkRanges::empty(), 2);
        assert_eq!(items.len(), 3);
        assert_eq!(items.iter().map(|i| i.bytes).sum::<u64>(), size);
        let first_four_mib = ChunkRanges::from(ChunkNum(0)..ChunkNum(SEGMENT_CHUNKS));
        let items = plan_all(&[blob(1, size)], &first_four_mib, 2);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items.iter().map(|i| i.bytes).sum::<u64>(),
            size - SEGMENT_BYTES
        );
        assert_eq!(missing_bytes(size, &first_four_mib), size - SEGMENT_BYTES);
        assert!(plan_all(&[blob(1, size)], &ChunkRanges::all(), 2).is_empty());
    }

    #[test]
    fn a_huge_blob_is_planned_a_window_at_a_time() {
        // 2^42 bytes would be a million segments; only a window exists at once.
        let mut planner = Planner::new([blob(1, 1 << 42)]);
        let first = planner.next_segments(&ChunkRanges::empty(), PLAN_WINDOW);
        assert_eq!(first.len(), PLAN_WINDOW);
        assert!(!planner.is_done());
        let second = planner.next_segments(&ChunkRanges::empty(), PLAN_WINDOW);
        assert_eq!(second[0].id, PLAN_WINDOW);
        assert!(second[0].segment.iter().all(|r| match r {
            RangeSetRange::Range(r) => r.start.0 == PLAN_WINDOW as u64 * SEGMENT_CHUNKS,
            RangeSetRange::RangeFrom(_) => false,
        }));
    }

    #[test]
    fn empty_and_repeated_blobs_are_skipped() {
        let planner = Planner::new([blob(1, 0), blob(2, 5), blob(2, 5), blob(3, 7)]);
        assert_eq!(planner.blobs(), &[blob(2, 5), blob(3, 7)]);
    }

    #[test]
    fn pieces_are_aligned_blocks_and_touched_ones_are_told_apart() {
        let piece = SWARM_REQUEST_BYTES / CHUNK_BYTES;
        let all = ChunkRanges::from(ChunkNum(piece / 2)..ChunkNum(3 * piece));
        let (untouched, any) = pieces(&all, &all, SWARM_REQUEST_BYTES);
        assert_eq!(untouched.len(), 3);
        assert_eq!(any, untouched);
        assert_eq!(
            any[0].1,
            ChunkRanges::from(ChunkNum(piece / 2)..ChunkNum(piece))
        );
        assert_eq!(
            any[2].1,
            ChunkRanges::from(ChunkNum(2 * piece)..ChunkNum(3 * piece))
        );
        // Someone holds a chunk of the middle block: it is touched.
        let fresh = &all - &ChunkRanges::from(ChunkNum(piece)..ChunkNum(piece + 1));
        let (untouched, any) = pieces(&all, &fresh, SWARM_REQUEST_BYTES);
        assert_eq!(untouched.len(), 2);
        assert_eq!(any.len(), 3);
        assert!(untouched.iter().all(|(block, _)| *block != 1));
        let chosen: Vec<_> = (0..2).map(|salt| choose(untouched.clone(), salt)).collect();
        assert_ne!(chosen[0], chosen[1], "different salts, different pieces");
    }

    fn arb_present() -> impl Strategy<Value = ChunkRanges> {
        proptest::collection::vec((0u64..20_000, 1u64..5_000), 0..8).prop_map(|spans| {
            spans
                .into_iter()
                .fold(ChunkRanges::empty(), |acc, (start, len)| {
                    &acc | &ChunkRanges::from(ChunkNum(start)..ChunkNum(start + len))
                })
        })
    }

    proptest! {
        #[test]
        fn planned_segments_cover_exactly_the_missing_bytes(
            sizes in proptest::collection::vec(0u64..40_000_000, 1..5),
            present in arb_present(),
            window in 1usize..6,
        ) {
            let blobs: Vec<_> = sizes.iter().enumerate().map(|(i, size)| blob(i as u8, *size)).collect();
            let items = plan_all(&blobs, &present, window);
            for b in &blobs {
                let of_blob: Vec<_> = items.iter().filter(|i| i.hash == b.hash).collect();
                let mut union = ChunkRanges::empty();
                for item in &of_blob {
                    prop_assert!((&union & &item.ranges).is_empty(), "segments overlap");
                    prop_assert!((&item.ranges & &present).is_empty(), "plans what is held");
                    prop_assert_eq!(item.bytes, range_bytes(&item.ranges, b.size));
                    union = &union | &item.ranges;
                }
                prop_assert_eq!(range_bytes(&union, b.size), missing_bytes(b.size, &present));
            }
            let mut ids: Vec<_> = items.iter().map(|i| i.id).collect();
            ids.dedup();
            prop_assert_eq!(ids.len(), items.len());
        }
    }
}
