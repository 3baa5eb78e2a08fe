#![allow(clippy::unwrap_used)]

use bao_tree::ChunkNum;

use super::*;
use crate::transfer::fetch::peer_state::FIRST_ASK_INTERVAL;
use crate::transfer::fetch::plan::{
    PlannedBlob, Planner, SEGMENT_BYTES, SEGMENT_CHUNKS, SWARM_REQUEST_BYTES,
};

fn blob() -> Hash {
    Hash::from_bytes([7; 32])
}

/// A scheduler with one 8 MiB blob planned: two segments.
fn two_segments(me: Option<PeerId>, now: Instant) -> Scheduler {
    let mut planner = Planner::new([PlannedBlob {
        hash: blob(),
        size: 2 * SEGMENT_BYTES,
    }]);
    let mut s = Scheduler::new(me);
    s.enqueue(planner.next_segments(&ChunkRanges::empty(), 16), now);
    assert!(planner.is_done());
    s.set_planned_all();
    s
}

/// `peer` delivered all of `part` of `item`, and the request ended.
fn deliver(s: &mut Scheduler, item: &WorkItem, part: &ChunkRanges, peer: PeerId, now: Instant) {
    let still = &item.ranges - part;
    s.request_ended(
        item,
        peer,
        range_bytes(part, item.size),
        Some(still),
        Ok(()),
        now,
    );
}

/// A request of `peer` for `item` ended with nothing delivered: its stream was cut short.
fn fail(s: &mut Scheduler, item: &WorkItem, peer: PeerId, now: Instant) {
    s.request_ended(
        item,
        peer,
        0,
        Some(item.ranges.clone()),
        Err(&incomplete(peer)),
        now,
    );
}

fn work(next: Next) -> (WorkItem, ChunkRanges) {
    match next {
        Next::Work(item, part, _) => (item, part),
        other => panic!("expected work, got {other:?}"),
    }
}

/// The first chunk of an item's segment (segments are queued in a node-specific order).
fn segment_start(item: &WorkItem) -> u64 {
    match item.segment.iter().next() {
        Some(range_collections::range_set::RangeSetRange::Range(r)) => r.start.0,
        other => panic!("unexpected segment {other:?}"),
    }
}

fn candidate(peer: PeerId, complete: bool) -> Candidate {
    Candidate {
        peer,
        complete,
        listed: true,
    }
}

fn incomplete(peer: PeerId) -> RequestError {
    RequestError::Incomplete {
        peer,
        reason: "stream ended".into(),
    }
}

#[test]
fn work_is_stolen_only_at_the_end_and_bad_peers_are_banned() {
    let now = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut s = two_segments(None, now);
    s.set_first_streams(64);
    for peer in [a, b] {
        s.add_peer(candidate(peer, true));
    }
    let (first, _) = work(s.next_for(a, now));
    let (second, _) = work(s.next_for(b, now));
    assert_ne!(first.id, second.id);
    // Queue empty: a may duplicate b's segment, but not its own.
    assert_eq!(work(s.next_for(a, now)).0.id, second.id);
    assert!(matches!(s.next_for(a, now), Next::Wait));
    let bad = RequestError::Misbehaved {
        peer: a,
        reason: "leaf hash mismatch".into(),
    };
    s.request_ended(&first, a, 0, Some(first.ranges.clone()), Err(&bad), now);
    assert!(matches!(s.next_for(a, now), Next::Stop));
    assert!(s.banned().contains(&a));
    assert_eq!(s.queued(), 1, "the banned peer's segment is queued again");
    s.request_ended(
        &second,
        b,
        second.bytes,
        Some(ChunkRanges::empty()),
        Ok(()),
        now,
    );
    assert_eq!(s.done_bytes(), SEGMENT_BYTES);
    let (retry, _) = work(s.next_for(b, now));
    // Half of it arrives; the rest goes back in the queue.
    assert_eq!(retry.id, first.id);
    let start = segment_start(&retry);
    let half =
        ChunkRanges::from(ChunkNum(start + SEGMENT_CHUNKS / 2)..ChunkNum(start + SEGMENT_CHUNKS));
    s.request_ended(&retry, b, SEGMENT_BYTES / 2, Some(half), Ok(()), now);
    assert_eq!(s.done_bytes(), SEGMENT_BYTES + SEGMENT_BYTES / 2);
    let (rest, part) = work(s.next_for(b, now));
    assert_eq!(rest.bytes, SEGMENT_BYTES / 2);
    s.request_ended(
        &rest,
        b,
        rest.bytes,
        Some(ChunkRanges::empty()),
        Ok(()),
        now,
    );
    assert!(s.all_done());
    assert_eq!(s.done_bytes(), 2 * SEGMENT_BYTES);
    // Complete peers are asked a piece at a time.
    assert_eq!(range_bytes(&part, 2 * SEGMENT_BYTES), SWARM_REQUEST_BYTES);
}

#[test]
fn a_seeder_whose_stream_ends_early_backs_off_and_is_never_banned() {
    let start = Instant::now();
    let seeder = PeerId::random();
    let mut s = two_segments(None, start);
    s.add_peer(candidate(seeder, true));
    let mut now = start;
    let mut waited = Duration::ZERO;
    for failure in 1..MAX_FAILURES_PER_PEER {
        let (item, _) = work(s.next_for(seeder, now));
        fail(&mut s, &item, seeder, now);
        assert!(s.banned().is_empty(), "a truncated stream is not bad data");
        assert!(
            matches!(s.next_for(seeder, now), Next::Wait),
            "backs off after failure {failure}"
        );
        let delay = FIRST_RETRY_DELAY
            .saturating_mul(1 << (failure - 1))
            .min(MAX_RETRY_DELAY);
        waited += delay;
        now += delay;
    }
    assert!(
        waited >= Duration::from_secs(20),
        "a restarting seeder gets {waited:?}"
    );
    // It comes back: one success clears its record.
    let (item, _) = work(s.next_for(seeder, now));
    s.request_ended(
        &item,
        seeder,
        item.bytes,
        Some(ChunkRanges::empty()),
        Ok(()),
        now,
    );
    let (item, _) = work(s.next_for(seeder, now));
    // Its streams under way fail together: one outage, one failure.
    for _ in 0..MAX_FAILURES_PER_PEER {
        fail(&mut s, &item, seeder, now);
    }
    assert!(
        !s.dropped().contains(&seeder),
        "requests failing together count as one failure"
    );
    // Failures in a row, each after its back-off, drop it.
    for _ in 0..MAX_FAILURES_PER_PEER {
        now += MAX_RETRY_DELAY;
        fail(&mut s, &item, seeder, now);
    }
    assert!(
        s.dropped().contains(&seeder),
        "dropped after failing too often in a row"
    );
    assert!(s.banned().is_empty());
    assert!(matches!(
        s.next_for(seeder, now + MAX_RETRY_DELAY),
        Next::Stop
    ));
}

#[test]
fn an_idle_connected_peer_takes_no_work_and_changes_nothing() {
    let now = Instant::now();
    let (me, seeder, idle) = (PeerId::random(), PeerId::random(), PeerId::random());
    let mut s = two_segments(Some(me), now);
    s.add_peer(candidate(seeder, true));
    s.add_peer(Candidate {
        peer: idle,
        complete: false,
        listed: false,
    });
    let Next::Ask(hashes) = s.next_for(idle, now) else {
        panic!("a partial peer is asked what it holds first");
    };
    s.answered(
        idle,
        hashes.iter().map(|h| (*h, ChunkRanges::empty())).collect(),
        None,
        now,
    );
    // The seeder is given every piece at once, with no patience spent on the idle peer.
    let mut pieces_asked = 0;
    while let Next::Work(item, part, _) = s.next_for(seeder, now) {
        pieces_asked += 1;
        deliver(&mut s, &item, &part, seeder, now);
        if s.all_done() {
            break;
        }
        assert!(matches!(s.next_for(idle, now), Next::Wait));
    }
    assert!(s.all_done());
    assert_eq!(pieces_asked as u64, 2 * SEGMENT_BYTES / SWARM_REQUEST_BYTES);
    assert_eq!(s.per_peer().get(&idle).copied().unwrap_or(0), 0);
}

#[test]
fn fetchers_the_dht_lists_split_the_seeders_pieces_before_they_hold_anything() {
    let now = Instant::now();
    let (me, seeder) = (PeerId::random(), PeerId::random());
    let others: Vec<PeerId> = (0..3).map(|_| PeerId::random()).collect();
    let mut s = two_segments(Some(me), now);
    s.add_peer(candidate(seeder, true));
    for peer in &others {
        s.add_peer(candidate(*peer, false));
    }
    // Until the owners' patience runs out, the seeder is asked only for this node's share
    // of the pieces (rendezvous hashing among 4 fetchers), though nobody holds anything.
    let mut pieces_asked = 0;
    while let Next::Work(item, part, _) = s.next_for(seeder, now) {
        pieces_asked += 1;
        deliver(&mut s, &item, &part, seeder, now);
    }
    let all = 2 * SEGMENT_BYTES / SWARM_REQUEST_BYTES;
    assert!(
        pieces_asked > 0 && pieces_asked < all,
        "asked {pieces_asked} of {all} pieces"
    );
    // Once they have had their chance, the rest is asked for too.
    let later = now + ENDGAME_PATIENCE * 2;
    assert!(matches!(s.next_for(seeder, later), Next::Work(..)));
}

#[test]
fn partial_peers_are_given_only_what_they_hold_and_endgame_waits() {
    let now = Instant::now();
    let (seeder, partial) = (PeerId::random(), PeerId::random());
    let mut s = two_segments(None, now);
    s.add_peer(candidate(seeder, true));
    s.add_peer(candidate(partial, false));
    let Next::Ask(hashes) = s.next_for(partial, now) else {
        panic!("a partial peer is asked what it holds first");
    };
    assert_eq!(hashes, vec![blob()]);
    assert!(
        matches!(s.next_for(partial, now), Next::Wait),
        "one question at a time"
    );
    // It holds the second segment and a quarter of the first.
    let holds = ChunkRanges::from(ChunkNum(SEGMENT_CHUNKS * 3 / 4)..ChunkNum(2 * SEGMENT_CHUNKS));
    s.answered(partial, vec![(blob(), holds.clone())], None, now);
    // The seeder is given the segment nobody else holds in full: the first.
    let (rarest, _) = work(s.next_for(seeder, now));
    assert_eq!(
        rarest.segment,
        ChunkRanges::from(ChunkNum(0)..ChunkNum(SEGMENT_CHUNKS))
    );
    let (from_partial, part) = work(s.next_for(partial, now));
    assert_eq!(
        from_partial.segment,
        ChunkRanges::from(ChunkNum(SEGMENT_CHUNKS)..ChunkNum(2 * SEGMENT_CHUNKS))
    );
    assert_eq!(part, from_partial.ranges);
    // Endgame: the partial peer may help with the first segment, but only its quarter,
    // and only once the seeder has had it for ENDGAME_PATIENCE.
    let almost = now + ENDGAME_PATIENCE - Duration::from_millis(1);
    assert!(!matches!(s.next_for(partial, almost), Next::Work(..)));
    let later = now + ENDGAME_PATIENCE;
    let (stolen, part) = work(s.next_for(partial, later));
    assert_eq!(stolen.id, rarest.id);
    assert_eq!(range_bytes(&part, 2 * SEGMENT_BYTES), SEGMENT_BYTES / 4);
}

#[test]
fn asking_backs_off_while_a_peer_holds_nothing_new() {
    let now = Instant::now();
    let partial = PeerId::random();
    let mut s = two_segments(None, now);
    s.add_peer(candidate(partial, false));
    let mut at = now;
    let Next::Ask(hashes) = s.next_for(partial, at) else {
        panic!("asking is due");
    };
    let nothing: Vec<_> = hashes.iter().map(|h| (*h, ChunkRanges::empty())).collect();
    let mut intervals = Vec::new();
    for _ in 0..6 {
        s.answered(partial, nothing.clone(), None, at);
        let mut wait = Duration::ZERO;
        while !matches!(s.next_for(partial, at + wait), Next::Ask(_)) {
            wait += Duration::from_millis(100);
        }
        at += wait;
        intervals.push(wait);
    }
    assert_eq!(intervals[0], FIRST_ASK_INTERVAL * 2);
    assert!(intervals.windows(2).all(|w| w[1] >= w[0]));
    assert_eq!(*intervals.last().unwrap(), MAX_ASK_INTERVAL);
}

#[test]
fn rendezvous_split_is_the_same_on_every_node_and_covers_every_block() {
    let peers: Vec<PeerId> = (0..4).map(|_| PeerId::random()).collect();
    for block in 0..64 {
        let owners: Vec<_> = peers
            .iter()
            .filter(|me| {
                let s = Scheduler::new(Some(**me));
                let others: Vec<_> = peers.iter().copied().filter(|p| p != *me).collect();
                s.owns(&others, blob(), block)
            })
            .collect();
        assert_eq!(owners.len(), 1, "block {block} has exactly one owner");
    }
}

#[test]
fn a_streamed_fetch_asks_for_a_file_from_its_start_onwards() {
    let now = Instant::now();
    let me = PeerId::random();
    let mut planner = Planner::new([PlannedBlob {
        hash: blob(),
        size: 16 * SEGMENT_BYTES,
    }]);
    let mut s = Scheduler::new(Some(me));
    s.set_in_order(true);
    s.enqueue(planner.next_segments(&ChunkRanges::empty(), 64), now);
    s.set_planned_all();
    let seeder = PeerId::random();
    s.add_peer(candidate(seeder, true));
    // A streamed fetch does not ramp up: 16 requests at once, in file order.
    let starts: Vec<u64> = (0..16)
        .map(|_| segment_start(&work(s.next_for(seeder, now)).0))
        .collect();
    let in_file_order: Vec<u64> = (0..16).map(|i| i * SEGMENT_CHUNKS).collect();
    assert_eq!(starts, in_file_order);
}

#[test]
fn a_request_cut_short_beside_another_peer_is_not_credited_with_its_bytes() {
    let now = Instant::now();
    let (a, b) = (PeerId::random(), PeerId::random());
    let mut s = two_segments(None, now);
    s.set_first_streams(64);
    for peer in [a, b] {
        s.add_peer(candidate(peer, true));
    }
    let (first, _) = work(s.next_for(a, now));
    let (second, _) = work(s.next_for(b, now));
    // End-game: a duplicates b's segment.
    assert_eq!(work(s.next_for(a, now)).0.id, second.id);
    // b has stored half of it when a's duplicate is cut short having received nothing
    // (a stopped daemon): those bytes are b's, not a's.
    let start = segment_start(&second);
    let half =
        ChunkRanges::from(ChunkNum(start + SEGMENT_CHUNKS / 2)..ChunkNum(start + SEGMENT_CHUNKS));
    s.request_ended(&second, a, 0, Some(half), Err(&incomplete(a)), now);
    assert_eq!(s.per_peer().get(&a).copied().unwrap_or(0), 0);
    assert_eq!(s.done_bytes(), SEGMENT_BYTES / 2);
    s.request_ended(
        &second,
        b,
        second.bytes,
        Some(ChunkRanges::empty()),
        Ok(()),
        now,
    );
    assert_eq!(s.per_peer()[&b], SEGMENT_BYTES);
    // Alone on its own segment, a request cut short is credited what it stored.
    let start = segment_start(&first);
    let half =
        ChunkRanges::from(ChunkNum(start + SEGMENT_CHUNKS / 2)..ChunkNum(start + SEGMENT_CHUNKS));
    s.request_ended(&first, a, 0, Some(half), Err(&incomplete(a)), now);
    assert_eq!(s.per_peer()[&a], SEGMENT_BYTES / 2);
}
