//! Fetching an artifact from several peers at once.
//!
//! First the root HashSeq and the manifest come from any provider. Then every selected
//! file's missing chunk ranges (what the local store has not verified yet, so an
//! interrupted fetch resumes where it stopped) are cut into segments of
//! [`SEGMENT_BYTES`], in an order of this node's own, and put in one queue. Each peer
//! gets up to [`STREAMS_PER_PROVIDER`] workers, each taking a segment and requesting it on
//! its own stream; iroh-blobs verifies every 16 KiB group against the hash before it
//! reaches the store. After every request the segment is checked against the store, so
//! whatever arrived counts, even from a request that failed half-way.
//!
//! Peers come in two kinds. *Complete* ones, listed by the DHT under the root, serve any
//! segment; they are given the rarest first, i.e. what the partial peers do not hold.
//! *Partial* ones, peers still fetching the same artifact (listed under its swarm key)
//! or merely connected, are asked what they hold (see [`super::have`]) and given only
//! that. The DHT is asked again every [`PROVIDER_REFRESH`] while the fetch runs, so
//! fetchers that start together find each other and trade parts, and the one seeder
//! does not have to send everything to everyone.
//!
//! When the queue is empty, idle workers duplicate segments still in flight on other
//! peers, so a slow peer cannot hold up the end (work stealing). A peer whose data fails
//! verification is banned for the rest of the fetch and its segment goes back in the
//! queue; one that fails otherwise gets [`MAX_FAILURES_PER_PROVIDER`] tries. A fetch that
//! receives nothing from anyone for [`STALL_TIMEOUT`] fails with an error.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bao_tree::ChunkNum;
use iroh_blobs::get::fsm::DecodeError;
use iroh_blobs::get::GetError;
use iroh_blobs::protocol::{ChunkRanges, GetRequest};
use iroh_blobs::Hash;
use libp2p::PeerId;
use range_collections::range_set::RangeSetRange;
use seedbank_protocol::limits::{MAX_FILES_PER_ARTIFACT, MAX_MANIFEST_BYTES};
use seedbank_protocol::{BlobHash, ContentId, FileEntry, Manifest};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::have::ask_have;
use super::streams::split_stream;
use super::traffic::Traffic;
use crate::error::{NodeError, NodeResult};
use crate::net::{NetHandle, BLOB_PROTOCOL};
use crate::progress::ProgressReporter;
use crate::store::{from_iroh, to_iroh, BlobStore};

/// Bytes per work item: large enough that request overhead is negligible, small enough
/// that several providers share even a modest file and a lost segment costs little.
pub const SEGMENT_BYTES: u64 = 4 * 1024 * 1024;
/// Parallel streams per provider: keeps a provider's link busy across request gaps.
pub const STREAMS_PER_PROVIDER: usize = 2;
/// Most streams one fetch runs at once, across all peers.
pub const MAX_FETCH_STREAMS: usize = 32;
/// Failures in a row (other than bad data) after which a peer is dropped from a fetch.
pub const MAX_FAILURES_PER_PROVIDER: u32 = 3;
/// How often a running fetch asks the DHT for new complete and partial peers.
pub const PROVIDER_REFRESH: Duration = Duration::from_secs(3);
/// How many times a fetch looks for new peers a second apart before slowing down to
/// [`PROVIDER_REFRESH`].
pub const EARLY_REFRESHES: u64 = 5;
/// A fetch that receives no byte from anyone for this long gives up.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Complete peers serve the rarest segment among this many at the head of the queue.
pub const RAREST_FIRST_WINDOW: usize = 64;
/// How soon a partial peer is asked again what it holds after its holdings grew; each
/// answer with nothing new doubles the wait, up to [`MAX_ASK_INTERVAL`].
pub const FIRST_ASK_INTERVAL: Duration = Duration::from_millis(500);
/// Longest wait between asking a partial peer what it holds.
pub const MAX_ASK_INTERVAL: Duration = Duration::from_secs(8);
/// Most blobs a partial peer is asked about at once.
pub const MAX_BLOBS_PER_ASK: usize = 8;
/// While partial peers take part, how long a segment is in flight before idle workers
/// duplicate the request (endgame).
pub const ENDGAME_PATIENCE: Duration = Duration::from_secs(5);
/// While partial peers take part, complete peers are asked for at most this much at a
/// time, so parts the fetchers get from each other meanwhile are not sent twice.
pub const SWARM_REQUEST_BYTES: u64 = 1024 * 1024;
/// Longest wait for a stream to a peer to open (dialling included).
pub const OPEN_STREAM_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest a request for the root and manifest may take.
pub const MANIFEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest a DHT lookup for new peers may take while a fetch runs.
pub const DISCOVER_TIMEOUT: Duration = Duration::from_secs(30);
/// How often an idle worker looks again for work returned by a failed one.
const IDLE_RECHECK: Duration = Duration::from_millis(200);

const CHUNK_BYTES: u64 = 1024;
const SEGMENT_CHUNKS: u64 = SEGMENT_BYTES / CHUNK_BYTES;

/// Why a request to one provider failed.
#[derive(Debug)]
pub enum ProviderFailure {
    /// The provider sent data that failed verification: it misbehaved.
    BadData(String),
    /// The provider stopped sending because it does not have (valid) data for the range.
    /// iroh-blobs providers check what they send against the hash, so a provider whose
    /// stored copy is corrupt ends up here rather than sending bad bytes.
    Missing(String),
    /// Anything else: unreachable, stream closed, local failure.
    Other(String),
}

/// Opens a blob-protocol stream to `peer`, giving up after [`OPEN_STREAM_TIMEOUT`].
pub async fn open_blob_stream(
    net: &NetHandle,
    peer: PeerId,
) -> Result<libp2p::Stream, ProviderFailure> {
    match tokio::time::timeout(
        OPEN_STREAM_TIMEOUT,
        net.stream_control().open_stream(peer, BLOB_PROTOCOL),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(ProviderFailure::Other(format!(
            "cannot open a stream to {peer}: {e}"
        ))),
        Err(_) => Err(ProviderFailure::Other(format!(
            "cannot open a stream to {peer}: no answer in {} s",
            OPEN_STREAM_TIMEOUT.as_secs()
        ))),
    }
}

/// What a fetch needs from the node.
#[derive(Debug, Clone)]
pub struct FetchContext {
    /// The local store the data goes into.
    pub store: BlobStore,
    /// The network, for opening streams.
    pub net: NetHandle,
    /// Counters and rate limits.
    pub traffic: Traffic,
}

impl FetchContext {
    /// Runs one get request against `peer`, writing verified data into the store.
    /// Returns the payload bytes received.
    pub async fn get(&self, peer: PeerId, request: GetRequest) -> Result<u64, ProviderFailure> {
        let stream = open_blob_stream(&self.net, peer).await?;
        let (id, recv, send) = split_stream(stream, peer, &self.traffic);
        let pair = iroh_blobs::get::StreamPair::new(id, recv, send);
        let stats = self
            .store
            .api()
            .remote()
            .execute_get(pair, request)
            .complete()
            .await
            .map_err(classify)?;
        Ok(stats.payload_bytes_read)
    }

    /// Gets the root HashSeq and manifest of `root` from the first provider that has
    /// them, and checks that they agree.
    pub async fn fetch_manifest(
        &self,
        root: ContentId,
        providers: &[PeerId],
        banned: &mut HashSet<PeerId>,
    ) -> NodeResult<Manifest> {
        let root_hash = to_iroh(root.hash());
        let have_locally =
            self.store.size(root.hash()).await?.is_some() && self.read_manifest(root).await.is_ok();
        if !have_locally {
            let mut errors = Vec::new();
            let mut fetched = false;
            // Peers that failed for reasons that may pass (a connection closing as it was
            // used) get more tries; peers that lack it or sent bad data do not.
            let mut retry: Vec<PeerId> = providers.to_vec();
            for attempt in 0..MAX_FAILURES_PER_PROVIDER {
                if attempt > 0 {
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                }
                let mut again = Vec::new();
                for peer in retry {
                    if banned.contains(&peer) {
                        continue;
                    }
                    let request = GetRequest::builder()
                        .root(ChunkRanges::all())
                        .next(ChunkRanges::all())
                        .build(root_hash);
                    let result = tokio::time::timeout(MANIFEST_TIMEOUT, self.get(peer, request))
                        .await
                        .unwrap_or_else(|_| {
                            Err(ProviderFailure::Other(format!(
                                "{peer} sent no manifest in {} s",
                                MANIFEST_TIMEOUT.as_secs()
                            )))
                        });
                    match result {
                        Ok(_) => {
                            fetched = true;
                            break;
                        }
                        Err(ProviderFailure::BadData(e)) => {
                            tracing::debug!(%peer, error = %e, "banning provider: bad manifest data");
                            banned.insert(peer);
                            errors.push(format!("{peer}: sent bad data"));
                        }
                        Err(ProviderFailure::Missing(e)) => errors.push(e),
                        Err(ProviderFailure::Other(e)) => {
                            errors.push(e);
                            again.push(peer);
                        }
                    }
                }
                if fetched || again.is_empty() {
                    break;
                }
                retry = again;
            }
            if !fetched {
                return Err(NodeError::Unreachable(format!(
                    "no provider of {root} sent its manifest ({})",
                    errors.join("; ")
                )));
            }
        }
        self.read_manifest(root).await
    }

    async fn read_manifest(&self, root: ContentId) -> NodeResult<Manifest> {
        let seq = self
            .store
            .read_small(root.hash(), 32 * (MAX_FILES_PER_ARTIFACT + 1))
            .await?;
        if seq.len() % 32 != 0 || seq.is_empty() {
            return Err(NodeError::Corrupt(format!(
                "{root} is not an artifact root"
            )));
        }
        let hashes: Vec<BlobHash> = seq
            .chunks_exact(32)
            .map(|c| BlobHash(c.try_into().unwrap_or([0; 32])))
            .collect();
        let manifest_bytes = self.store.read_small(hashes[0], MAX_MANIFEST_BYTES).await?;
        let manifest = Manifest::decode(&manifest_bytes)?;
        let listed: Vec<BlobHash> = manifest.files.iter().map(|f| f.hash).collect();
        if listed != hashes[1..] {
            return Err(NodeError::Corrupt(format!(
                "{root}: the root's file list does not match its manifest"
            )));
        }
        Ok(manifest)
    }

    /// Fetches the missing parts of `files` from `candidates`, and, when `discover` is
    /// given, from peers the DHT lists for it (or its swarm key) while the fetch runs.
    /// A complete candidate (the DHT lists it) that lacks data it announced is banned like
    /// one sending bad data; a partial one is asked what it holds and given only that.
    pub async fn fetch_files(
        &self,
        files: &[&FileEntry],
        candidates: Vec<Candidate>,
        discover: Option<ContentId>,
        banned: HashSet<PeerId>,
        progress: &mut ProgressReporter,
    ) -> NodeResult<TransferOutcome> {
        let mut items = Vec::new();
        let mut seen = HashSet::new();
        for file in files {
            if file.size == 0 || !seen.insert(file.hash) {
                continue;
            }
            let present = self.local_ranges(to_iroh(file.hash)).await.map_err(|e| {
                NodeError::Store(format!("reading what is stored of {}: {e}", file.path))
            })?;
            let first_id = items.len();
            items.extend(missing_segments(
                to_iroh(file.hash),
                file.size,
                &present,
                first_id,
            ));
        }
        let missing: u64 = items.iter().map(|item: &WorkItem| item.bytes).sum();
        progress.set_total(missing);
        // Each node takes segments in an order of its own, so fetchers of the same
        // artifact start on different parts and soon have something to trade.
        let me = self.net.local_peer().to_bytes();
        items.sort_by_cached_key(|item| {
            *blake3::Hasher::new()
                .update(&me)
                .update(&(item.id as u64).to_le_bytes())
                .finalize()
                .as_bytes()
        });
        let began = tokio::time::Instant::now();
        for item in &mut items {
            item.queued_at = Some(began);
        }
        let salt = u64::from_le_bytes(
            blake3::hash(&me).as_bytes()[..8]
                .try_into()
                .unwrap_or_default(),
        );
        let shared = Arc::new(Shared {
            state: Mutex::new(Scheduler {
                queue: items.into(),
                banned,
                salt,
                me: Some(self.net.local_peer()),
                ..Scheduler::default()
            }),
            changed: Notify::new(),
        });
        let mut crew = Crew::default();
        crew.add(self, &shared, candidates);
        // Fetchers that start together announce themselves within moments: look for
        // them every second at first, then every PROVIDER_REFRESH.
        let mut refresh = tokio::time::interval(Duration::from_secs(1));
        refresh.tick().await;
        let mut refreshes = 0u64;
        let mut report = tokio::time::interval(Duration::from_millis(100));
        let mut last_bytes = self.traffic.total_down();
        let mut last_arrival = tokio::time::Instant::now();
        let stalled = loop {
            if shared.lock().all_done() {
                break false;
            }
            if crew.workers.is_empty() {
                // Everyone known gave up: one last look for others before failing.
                let found = match discover {
                    Some(root) => self.discover(root).await,
                    None => Vec::new(),
                };
                if crew.add(self, &shared, found) == 0 {
                    break false;
                }
            }
            tokio::select! {
                _ = report.tick() => {
                    let (done, serving, known) = {
                        let state = shared.lock();
                        (state.done_bytes, state.per_peer.values().filter(|b| **b > 0).count(), state.peers.len())
                    };
                    progress.report(done, &format!("from {serving} of {known} peers"));
                    let bytes = self.traffic.total_down();
                    if bytes != last_bytes {
                        last_bytes = bytes;
                        last_arrival = tokio::time::Instant::now();
                    } else if last_arrival.elapsed() >= STALL_TIMEOUT {
                        break true;
                    }
                }
                _ = refresh.tick(), if discover.is_some() => {
                    refreshes += 1;
                    let due = refreshes <= EARLY_REFRESHES
                        || refreshes.is_multiple_of(PROVIDER_REFRESH.as_secs().max(1));
                    if let (true, Some(root)) = (due, discover) {
                        let found = self.discover(root).await;
                        crew.add(self, &shared, found);
                    }
                }
                Some(_) = crew.workers.join_next() => crew.fill(self, &shared),
            }
        };
        crew.workers.abort_all();
        let state = shared.lock();
        let outcome = TransferOutcome {
            bytes_missing_at_start: missing,
            bytes_downloaded: state.done_bytes,
            per_peer: state.per_peer.clone(),
            peers: state.peers.keys().copied().collect(),
            banned: state.banned.clone(),
        };
        if !state.all_done() {
            let left = state.queue.len() + state.in_flight.len();
            let banned: Vec<String> = state.banned.iter().map(ToString::to_string).collect();
            return Err(NodeError::Unreachable(format!(
                "{left} segments could not be fetched from {} peers{}{}",
                state.peers.len(),
                if stalled {
                    format!(" (nothing arrived for {} s)", STALL_TIMEOUT.as_secs())
                } else {
                    String::new()
                },
                if banned.is_empty() {
                    String::new()
                } else {
                    format!(" (banned for bad data: {})", banned.join(", "))
                }
            )));
        }
        Ok(outcome)
    }

    /// Peers the DHT lists for `root` (complete) or for its swarm key (partial).
    pub async fn discover(&self, root: ContentId) -> Vec<Candidate> {
        let lookup = |key| async move {
            tokio::time::timeout(DISCOVER_TIMEOUT, self.net.find_providers(key))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        let (complete, partial) = tokio::join!(lookup(root), lookup(root.swarm_key()));
        let mut found: Vec<Candidate> = complete
            .iter()
            .map(|peer| Candidate {
                peer: *peer,
                complete: true,
            })
            .collect();
        found.extend(
            partial
                .into_iter()
                .filter(|peer| !complete.contains(peer))
                .map(|peer| Candidate {
                    peer,
                    complete: false,
                }),
        );
        found
    }

    /// The chunk ranges of `hash` the local store holds, verified.
    async fn local_ranges(&self, hash: Hash) -> Result<ChunkRanges, String> {
        self.store
            .api()
            .blobs()
            .observe(hash)
            .await
            .map(|bitfield| bitfield.ranges)
            .map_err(|e| e.to_string())
    }
}

/// What a transfer did.
#[derive(Debug, Clone, Default)]
pub struct TransferOutcome {
    /// Bytes missing locally when it started.
    pub bytes_missing_at_start: u64,
    /// Payload bytes received.
    pub bytes_downloaded: u64,
    /// Bytes received per peer.
    pub per_peer: HashMap<PeerId, u64>,
    /// Every peer the fetch knew of.
    pub peers: Vec<PeerId>,
    /// Providers banned for bad data.
    pub banned: HashSet<PeerId>,
}

fn classify(error: GetError) -> ProviderFailure {
    let text = error.to_string();
    match &error {
        GetError::Decode {
            source: DecodeError::LeafHashMismatch { .. } | DecodeError::ParentHashMismatch { .. },
            ..
        } => ProviderFailure::BadData(text),
        GetError::Decode {
            source:
                DecodeError::LeafNotFound { .. }
                | DecodeError::ParentNotFound { .. }
                | DecodeError::ChunkNotFound { .. },
            ..
        } => ProviderFailure::Missing(text),
        _ => ProviderFailure::Other(text),
    }
}

/// A peer a fetch may ask for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The peer.
    pub peer: PeerId,
    /// The DHT lists it as holding the whole artifact. Otherwise it may hold parts (a
    /// peer still fetching, or just a connected peer) and is asked what it has first.
    pub complete: bool,
}

/// A piece: its block number and its ranges.
type Piece = (u64, ChunkRanges);

/// The pieces of `fresh` (a part of `all`): its parts in each `piece_bytes`-aligned
/// block. Returned twice: those of blocks of which nothing else is held (the block's part
/// of `all` is all fresh), and all of them.
fn pieces(all: &ChunkRanges, fresh: &ChunkRanges, piece_bytes: u64) -> (Vec<Piece>, Vec<Piece>) {
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
fn choose(mut options: Vec<Piece>, salt: u64) -> Option<ChunkRanges> {
    if options.is_empty() {
        return None;
    }
    let index = (salt % options.len() as u64) as usize;
    Some(options.swap_remove(index).1)
}

/// The first piece of `ranges`: its part in the first `piece_bytes`-aligned block it touches.
fn first_piece(ranges: &ChunkRanges, piece_bytes: u64) -> ChunkRanges {
    let (_, any) = pieces(ranges, ranges, piece_bytes);
    any.into_iter()
        .next()
        .map_or_else(|| ranges.clone(), |(_, piece)| piece)
}

/// One segment of one blob: the chunk ranges of it still missing locally.
#[derive(Debug, Clone)]
struct WorkItem {
    id: usize,
    hash: Hash,
    ranges: ChunkRanges,
    bytes: u64,
    /// The whole segment, to recompute what is missing after a request.
    segment: ChunkRanges,
    /// The blob's size.
    size: u64,
    /// When it last went into the queue (`None`: before the fetch began).
    queued_at: Option<tokio::time::Instant>,
}

/// Payload bytes of `ranges` in a blob of `size` bytes.
fn range_bytes(ranges: &ChunkRanges, size: u64) -> u64 {
    ranges
        .iter()
        .map(|range| match range {
            RangeSetRange::Range(r) => {
                (r.end.0 * CHUNK_BYTES).min(size) - (r.start.0 * CHUNK_BYTES).min(size)
            }
            RangeSetRange::RangeFrom(r) => size.saturating_sub(r.start.0 * CHUNK_BYTES),
        })
        .sum()
}

/// The segments of a blob of `size` bytes that are not in `present`.
fn missing_segments(
    hash: Hash,
    size: u64,
    present: &ChunkRanges,
    first_id: usize,
) -> Vec<WorkItem> {
    let chunks = size.div_ceil(CHUNK_BYTES);
    let mut items = Vec::new();
    let mut start = 0;
    while start < chunks {
        let end = (start + SEGMENT_CHUNKS).min(chunks);
        let segment = ChunkRanges::from(ChunkNum(start)..ChunkNum(end));
        let missing = &segment - present;
        if !missing.is_empty() {
            items.push(WorkItem {
                id: first_id + items.len(),
                hash,
                bytes: range_bytes(&missing, size),
                ranges: missing,
                segment,
                size,
                queued_at: None,
            });
        }
        start = end;
    }
    items
}

/// What one peer is known to hold.
#[derive(Debug, Default)]
struct PeerState {
    /// Listed by the DHT as holding everything.
    complete: bool,
    /// Per blob, the chunk ranges it said it holds (partial peers only).
    have: HashMap<Hash, ChunkRanges>,
    /// When it was last asked, and how long to wait before asking again.
    asked_at: Option<tokio::time::Instant>,
    ask_every: Duration,
    /// One of its workers is asking it now.
    asking: bool,
}

impl PeerState {
    /// The part of `item` this peer can serve.
    fn can_serve(&self, item: &WorkItem) -> Option<ChunkRanges> {
        if self.complete {
            return Some(item.ranges.clone());
        }
        let have = self.have.get(&item.hash)?;
        let part = &item.ranges & have;
        (!part.is_empty()).then_some(part)
    }
}

/// What a worker does next.
enum Next {
    /// Request these ranges of this item; stop when the token is cancelled (someone
    /// else completed it).
    Work(WorkItem, ChunkRanges, CancellationToken),
    /// Ask the peer what it holds of these blobs.
    Ask(Vec<Hash>),
    /// Nothing to do now.
    Wait,
    /// Stop: all done, or the peer is banned or failed too often.
    Stop,
}

/// A segment being fetched.
struct InFlight {
    item: WorkItem,
    /// Peers asked for (part of) it.
    peers: Vec<PeerId>,
    /// When it was first requested.
    since: tokio::time::Instant,
    /// Cancelled when it is complete, so duplicate requests stop at once.
    done: CancellationToken,
}

impl InFlight {
    fn new(item: WorkItem, peer: PeerId, now: tokio::time::Instant) -> Self {
        Self {
            item,
            peers: vec![peer],
            since: now,
            done: CancellationToken::new(),
        }
    }
}

#[derive(Default)]
struct Scheduler {
    queue: VecDeque<WorkItem>,
    in_flight: HashMap<usize, InFlight>,
    peers: HashMap<PeerId, PeerState>,
    banned: HashSet<PeerId>,
    failures: HashMap<PeerId, u32>,
    per_peer: HashMap<PeerId, u64>,
    done_bytes: u64,
    /// Differs between nodes, so that fetchers choose differently.
    salt: u64,
    /// Requests handed out so far.
    requests: usize,
    /// This node, for splitting pieces between fetchers (`None`: owns everything).
    me: Option<PeerId>,
    /// Since when this node has owned no untouched piece.
    owned_exhausted_at: Option<tokio::time::Instant>,
}

struct Shared {
    state: Mutex<Scheduler>,
    changed: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Scheduler> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Scheduler {
    fn all_done(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty()
    }

    fn may_work(&self, peer: PeerId) -> bool {
        !self.banned.contains(&peer)
            && self.failures.get(&peer).copied().unwrap_or(0) < MAX_FAILURES_PER_PROVIDER
    }

    /// Adds a peer; a known partial peer the DHT now lists as complete is upgraded.
    /// Returns whether it is new.
    fn add_peer(&mut self, candidate: Candidate) -> bool {
        match self.peers.get_mut(&candidate.peer) {
            Some(state) => {
                state.complete |= candidate.complete;
                false
            }
            None => {
                self.peers.insert(
                    candidate.peer,
                    PeerState {
                        complete: candidate.complete,
                        ask_every: FIRST_ASK_INTERVAL,
                        ..PeerState::default()
                    },
                );
                true
            }
        }
    }

    /// What the partial peers hold, per blob (union over peers).
    fn held_by_partial_peers(&self) -> HashMap<Hash, ChunkRanges> {
        let mut held: HashMap<Hash, ChunkRanges> = HashMap::new();
        for state in self.peers.values().filter(|p| !p.complete) {
            for (hash, have) in &state.have {
                let union = held.entry(*hash).or_default();
                *union = &*union | have;
            }
        }
        held
    }

    /// What a complete peer is asked for next, as (queue position, ranges).
    ///
    /// Without partial peers: the first piece of the first queued segment. With them, the
    /// complete peer is usually the one seeder whose upload everyone shares, so it is
    /// asked only for what the fetchers cannot get from each other, and each such piece
    /// by one fetcher only: a piece of [`SWARM_REQUEST_BYTES`] of which no partial peer
    /// holds anything and which this node *owns* (rendezvous hashing over the fetchers
    /// it knows, so fetchers with the same view split the pieces between them without
    /// talking). Once this node has owned nothing untouched for [`ENDGAME_PATIENCE`],
    /// untouched pieces of others count too (their owner may be gone), and then pieces
    /// some peer holds part of whose segment has waited that long in the queue.
    fn pick_for_complete_peer(
        &mut self,
        now: tokio::time::Instant,
    ) -> Option<(usize, ChunkRanges)> {
        let fetchers = self.live_partial_peers();
        if fetchers.is_empty() {
            // Pieces even so: other fetchers may turn up any moment, and then what this
            // node has asked for cannot be taken back.
            return self
                .queue
                .front()
                .map(|item| (0, first_piece(&item.ranges, SWARM_REQUEST_BYTES)));
        }
        let held = self.held_by_partial_peers();
        let salt = self.salt ^ (self.requests as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut unowned = None;
        let mut overdue = None;
        for (position, item) in self.queue.iter().enumerate().take(RAREST_FIRST_WINDOW) {
            let fresh = match held.get(&item.hash) {
                Some(held) => &item.ranges - held,
                None => item.ranges.clone(),
            };
            let (untouched, any) = pieces(&item.ranges, &fresh, SWARM_REQUEST_BYTES);
            let (owned, others): (Vec<_>, Vec<_>) = untouched
                .into_iter()
                .partition(|(block, _)| self.owns(&fetchers, item.hash, *block));
            if let Some(piece) = choose(owned, salt) {
                self.owned_exhausted_at = None;
                return Some((position, piece));
            }
            if unowned.is_none() {
                unowned = choose(others, salt).map(|piece| (position, piece));
            }
            let waited = item
                .queued_at
                .is_none_or(|at| now.duration_since(at) >= ENDGAME_PATIENCE);
            if overdue.is_none() && waited {
                let piece = choose(any, salt)
                    .unwrap_or_else(|| first_piece(&item.ranges, SWARM_REQUEST_BYTES));
                overdue = Some((position, piece));
            }
        }
        let exhausted_at = *self.owned_exhausted_at.get_or_insert(now);
        if now.duration_since(exhausted_at) < ENDGAME_PATIENCE {
            return None;
        }
        unowned.or(overdue)
    }

    /// Partial peers that answered what they hold and have not failed: the fetchers
    /// pieces are split between.
    fn live_partial_peers(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(peer, state)| {
                !state.complete && state.asked_at.is_some() && self.may_work(**peer)
            })
            .map(|(peer, _)| *peer)
            .collect()
    }

    /// Whether this node, among itself and `fetchers`, owns block `block` of `hash`:
    /// it scores highest (rendezvous hashing).
    fn owns(&self, fetchers: &[PeerId], hash: Hash, block: u64) -> bool {
        let score = |peer: &PeerId| {
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            std::hash::Hash::hash(&(peer.to_bytes(), hash.as_bytes(), block), &mut hasher);
            std::hash::Hasher::finish(&hasher)
        };
        let Some(me) = self.me else {
            return true;
        };
        let mine = score(&me);
        fetchers.iter().all(|peer| score(peer) < mine)
    }

    /// The next thing for `peer` to do: a queued segment it can serve, else (endgame)
    /// part of a segment in flight on other peers only, else ask it what it holds if
    /// that is due, else wait.
    ///
    /// Complete peers are given what [`Self::pick_for_complete_peer`] chooses; partial
    /// peers the first queued segment they hold part of, and that part.
    fn next_for(&mut self, peer: PeerId, now: tokio::time::Instant) -> Next {
        if self.all_done() || !self.may_work(peer) {
            return Next::Stop;
        }
        let Some(complete) = self.peers.get(&peer).map(|state| state.complete) else {
            return Next::Stop;
        };
        let pick = if complete {
            self.pick_for_complete_peer(now)
        } else {
            self.peers.get(&peer).and_then(|state| {
                self.queue
                    .iter()
                    .enumerate()
                    .find_map(|(position, item)| state.can_serve(item).map(|part| (position, part)))
            })
        };
        let Some(state) = self.peers.get(&peer) else {
            return Next::Stop;
        };
        if let Some((position, part)) = pick {
            if let Some(item) = self.queue.remove(position) {
                self.requests += 1;
                tracing::trace!(
                    %peer,
                    complete = state.complete,
                    item = item.id,
                    bytes = range_bytes(&part, item.size),
                    partial_peers = self.peers.values().filter(|p| !p.complete).count(),
                    "request"
                );
                let entry = InFlight::new(item.clone(), peer, now);
                let done = entry.done.clone();
                self.in_flight.insert(item.id, entry);
                return Next::Work(item, part, done);
            }
        }
        // Endgame: duplicate a segment in flight elsewhere. Among complete peers only, at
        // once; while partial peers take part, workers run out of queued segments long
        // before the end, so only segments in flight for ENDGAME_PATIENCE (a stuck or
        // slow peer) are duplicated.
        let swarming = self.peers.values().any(|p| !p.complete);
        let stolen = self
            .in_flight
            .values()
            .filter(|f| !f.peers.contains(&peer))
            .filter(|f| !swarming || now.duration_since(f.since) >= ENDGAME_PATIENCE)
            .filter_map(|f| state.can_serve(&f.item).map(|part| (f, part)))
            .min_by_key(|(f, _)| (f.peers.len(), f.item.id))
            .map(|(f, part)| (f.item.id, part));
        if let Some((id, part)) = stolen {
            if let Some(entry) = self.in_flight.get_mut(&id) {
                entry.peers.push(peer);
                return Next::Work(entry.item.clone(), part, entry.done.clone());
            }
        }
        let due = !state.complete
            && !state.asking
            && state
                .asked_at
                .is_none_or(|at| now.duration_since(at) >= state.ask_every);
        if !due {
            return Next::Wait;
        }
        let mut hashes: Vec<Hash> = Vec::new();
        for item in self
            .queue
            .iter()
            .chain(self.in_flight.values().map(|f| &f.item))
        {
            if !hashes.contains(&item.hash) {
                hashes.push(item.hash);
                if hashes.len() == MAX_BLOBS_PER_ASK {
                    break;
                }
            }
        }
        if let Some(state) = self.peers.get_mut(&peer) {
            state.asking = true;
        }
        Next::Ask(hashes)
    }

    /// Records what `peer` said it holds. Peers that hold nothing new are asked less often.
    fn answered(
        &mut self,
        peer: PeerId,
        have: Vec<(Hash, ChunkRanges)>,
        now: tokio::time::Instant,
    ) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        let mut grew = false;
        for (hash, ranges) in have {
            let known = state.have.entry(hash).or_default();
            if !(&ranges - &*known).is_empty() {
                grew = true;
            }
            *known = ranges;
        }
        state.asking = false;
        state.asked_at = Some(now);
        state.ask_every = if grew {
            FIRST_ASK_INTERVAL
        } else {
            (state.ask_every * 2).min(MAX_ASK_INTERVAL)
        };
    }

    /// A request for part of `item` ended: `still_missing` is what the local store still
    /// lacks of its segment. Updates the item, requeues what is left if nobody else is
    /// working on it, and judges the peer.
    fn request_ended(
        &mut self,
        item: &WorkItem,
        peer: PeerId,
        received: u64,
        still_missing: Option<ChunkRanges>,
        failure: Option<&ProviderFailure>,
    ) {
        match failure {
            // Failures count only in a row: a connection closing under one request says
            // little about a peer that serves the next.
            None => {
                self.failures.remove(&peer);
            }
            Some(ProviderFailure::BadData(_)) => {
                self.banned.insert(peer);
            }
            Some(ProviderFailure::Missing(_)) => {
                let complete = self.peers.get(&peer).is_some_and(|p| p.complete);
                if complete {
                    // It announced the whole artifact but lacks part of it.
                    self.banned.insert(peer);
                } else {
                    *self.failures.entry(peer).or_default() += 1;
                    if let Some(state) = self.peers.get_mut(&peer) {
                        state.have.remove(&item.hash);
                        state.asked_at = None;
                    }
                }
            }
            Some(ProviderFailure::Other(_)) => *self.failures.entry(peer).or_default() += 1,
        }
        let Some(entry) = self.in_flight.get_mut(&item.id) else {
            *self.per_peer.entry(peer).or_default() += received;
            return;
        };
        let current = &mut entry.item;
        let mut added = 0;
        if let Some(missing) = still_missing {
            let bytes = range_bytes(&missing, current.size);
            added = current.bytes.saturating_sub(bytes);
            self.done_bytes += added;
            current.bytes = current.bytes.min(bytes);
            current.ranges = &current.ranges & &missing;
        }
        // A request cut short (cancelled, or failed half-way) reports nothing received;
        // what it added to the store is credited instead.
        *self.per_peer.entry(peer).or_default() += received.max(added);
        entry.peers.retain(|p| *p != peer);
        if current.ranges.is_empty() {
            entry.done.cancel();
            self.in_flight.remove(&item.id);
        } else if entry.peers.is_empty() {
            if let Some(mut left) = self.in_flight.remove(&item.id) {
                left.item.queued_at = Some(tokio::time::Instant::now());
                self.queue.push_front(left.item);
            }
        }
    }
}

/// The workers of one fetch: up to [`STREAMS_PER_PROVIDER`] per peer and
/// [`MAX_FETCH_STREAMS`] in all; peers beyond that wait for a free slot.
#[derive(Default)]
struct Crew {
    workers: tokio::task::JoinSet<()>,
    waiting: VecDeque<PeerId>,
}

impl Crew {
    /// Adds the new peers among `candidates`; returns how many were new.
    fn add(
        &mut self,
        context: &FetchContext,
        shared: &Arc<Shared>,
        candidates: Vec<Candidate>,
    ) -> usize {
        let mut added = 0;
        {
            let mut state = shared.lock();
            for candidate in candidates {
                if candidate.peer == context.net.local_peer()
                    || state.banned.contains(&candidate.peer)
                {
                    continue;
                }
                if state.add_peer(candidate) {
                    added += 1;
                    self.waiting
                        .extend(std::iter::repeat_n(candidate.peer, STREAMS_PER_PROVIDER));
                }
            }
        }
        self.fill(context, shared);
        added
    }

    /// Starts waiting workers while there are free slots.
    fn fill(&mut self, context: &FetchContext, shared: &Arc<Shared>) {
        while self.workers.len() < MAX_FETCH_STREAMS {
            let Some(peer) = self.waiting.pop_front() else {
                break;
            };
            self.workers
                .spawn(run_worker(context.clone(), shared.clone(), peer));
        }
    }
}

async fn run_worker(context: FetchContext, shared: Arc<Shared>, peer: PeerId) {
    loop {
        let next = shared.lock().next_for(peer, tokio::time::Instant::now());
        match next {
            Next::Stop => break,
            Next::Wait => {
                // Nothing for this peer now; others' progress or failures may change that.
                let _ = tokio::time::timeout(IDLE_RECHECK, shared.changed.notified()).await;
            }
            Next::Ask(hashes) => {
                let mut have = Vec::with_capacity(hashes.len());
                let mut failure = None;
                for hash in hashes {
                    match ask_have(&context.net, peer, hash).await {
                        Ok(ranges) => have.push((hash, ranges)),
                        Err(e) => {
                            failure = Some(e);
                            break;
                        }
                    }
                }
                let mut state = shared.lock();
                state.answered(peer, have, tokio::time::Instant::now());
                match failure {
                    Some(ProviderFailure::BadData(e)) => {
                        tracing::debug!(%peer, error = %e, "banning peer: bad bitfield");
                        state.banned.insert(peer);
                    }
                    Some(e) => {
                        tracing::debug!(%peer, failure = ?e, "asking what a peer holds failed");
                        *state.failures.entry(peer).or_default() += 1;
                    }
                    None => {}
                }
                drop(state);
                shared.changed.notify_waiters();
            }
            Next::Work(item, part, done) => {
                let request = GetRequest::blob_ranges(item.hash, part);
                let result = tokio::select! {
                    result = context.get(peer, request) => result,
                    () = done.cancelled() => Ok(0),
                };
                let still_missing = context
                    .local_ranges(item.hash)
                    .await
                    .map(|present| &item.segment - &present)
                    .ok();
                let (received, failure) = match result {
                    Ok(bytes) => (bytes, None),
                    Err(failure) => {
                        tracing::debug!(%peer, hash = %from_iroh(item.hash), ?failure, "segment request failed");
                        (0, Some(failure))
                    }
                };
                shared
                    .lock()
                    .request_ended(&item, peer, received, still_missing, failure.as_ref());
                shared.changed.notify_waiters();
            }
        }
    }
    shared.changed.notify_waiters();
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cover_only_what_is_missing() {
        let size = 10 * 1024 * 1024 + 5;
        let none = ChunkRanges::empty();
        let items = missing_segments(Hash::EMPTY, size, &none, 0);
        assert_eq!(items.len(), 3);
        assert_eq!(items.iter().map(|i| i.bytes).sum::<u64>(), size);
        let first_four_mib = ChunkRanges::from(ChunkNum(0)..ChunkNum(SEGMENT_CHUNKS));
        let items = missing_segments(Hash::EMPTY, size, &first_four_mib, 0);
        assert_eq!(items.len(), 2);
        assert_eq!(
            items.iter().map(|i| i.bytes).sum::<u64>(),
            size - SEGMENT_BYTES
        );
        let all = ChunkRanges::all();
        assert!(missing_segments(Hash::EMPTY, size, &all, 0).is_empty());
    }

    fn two_segments() -> Scheduler {
        let items = missing_segments(Hash::EMPTY, 2 * SEGMENT_BYTES, &ChunkRanges::empty(), 0);
        Scheduler {
            queue: items.into(),
            ..Scheduler::default()
        }
    }

    fn work(next: Next) -> (WorkItem, ChunkRanges) {
        match next {
            Next::Work(item, part, _) => (item, part),
            _ => panic!("expected work"),
        }
    }

    fn complete(peer: PeerId) -> Candidate {
        Candidate {
            peer,
            complete: true,
        }
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

    #[test]
    fn work_is_stolen_only_at_the_end_and_bad_peers_are_banned() {
        let now = tokio::time::Instant::now();
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        let mut s = two_segments();
        for peer in [a, b, c] {
            s.add_peer(complete(peer));
        }
        let (first, _) = work(s.next_for(a, now));
        let (second, _) = work(s.next_for(b, now));
        assert_ne!(first.id, second.id);
        // Queue empty: a may duplicate b's segment, but not its own.
        assert_eq!(work(s.next_for(a, now)).0.id, second.id);
        assert!(matches!(s.next_for(a, now), Next::Wait));
        let bad = ProviderFailure::BadData("mismatch".into());
        s.request_ended(&first, a, 0, Some(first.ranges.clone()), Some(&bad));
        assert!(matches!(s.next_for(a, now), Next::Stop));
        assert_eq!(
            s.queue.len(),
            1,
            "the banned peer's segment is queued again"
        );
        s.request_ended(&second, b, second.bytes, Some(ChunkRanges::empty()), None);
        assert_eq!(s.done_bytes, SEGMENT_BYTES);
        let (lacking, _) = work(s.next_for(c, now));
        let missing = ProviderFailure::Missing("not found".into());
        s.request_ended(&lacking, c, 0, Some(lacking.ranges.clone()), Some(&missing));
        assert!(
            s.banned.contains(&c),
            "a complete peer lacking data is banned"
        );
        let (retry, _) = work(s.next_for(b, now));
        // Half of it arrives; the rest goes back in the queue.
        assert_eq!(retry.id, first.id);
        let half = ChunkRanges::from(ChunkNum(SEGMENT_CHUNKS / 2)..ChunkNum(SEGMENT_CHUNKS));
        s.request_ended(&retry, b, SEGMENT_BYTES / 2, Some(half), None);
        assert_eq!(s.done_bytes, SEGMENT_BYTES + SEGMENT_BYTES / 2);
        let (rest, part) = work(s.next_for(b, now));
        assert_eq!(rest.bytes, SEGMENT_BYTES / 2);
        s.request_ended(&rest, b, rest.bytes, Some(ChunkRanges::empty()), None);
        assert!(s.all_done());
        assert_eq!(s.done_bytes, 2 * SEGMENT_BYTES);
        // Complete peers are asked a piece at a time.
        assert_eq!(range_bytes(&part, 2 * SEGMENT_BYTES), SWARM_REQUEST_BYTES);
    }

    #[test]
    fn partial_peers_are_asked_first_and_given_only_what_they_hold() {
        let now = tokio::time::Instant::now();
        let (seeder, partial) = (PeerId::random(), PeerId::random());
        let mut s = two_segments();
        s.add_peer(complete(seeder));
        s.add_peer(Candidate {
            peer: partial,
            complete: false,
        });
        let Next::Ask(hashes) = s.next_for(partial, now) else {
            panic!("a partial peer is asked what it holds first");
        };
        assert_eq!(hashes, vec![Hash::EMPTY]);
        assert!(
            matches!(s.next_for(partial, now), Next::Wait),
            "one question at a time"
        );
        // It holds the second segment and a quarter of the first.
        let holds =
            ChunkRanges::from(ChunkNum(SEGMENT_CHUNKS * 3 / 4)..ChunkNum(2 * SEGMENT_CHUNKS));
        s.answered(partial, vec![(Hash::EMPTY, holds.clone())], now);
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
        // and only once the seeder has had it a while.
        assert!(matches!(
            s.next_for(partial, now),
            Next::Ask(_) | Next::Wait
        ));
        s.peers.get_mut(&partial).unwrap().asking = false;
        let later = now + ENDGAME_PATIENCE;
        let (stolen, part) = work(s.next_for(partial, later));
        assert_eq!(stolen.id, rarest.id);
        assert_eq!(range_bytes(&part, 2 * SEGMENT_BYTES), SEGMENT_BYTES / 4);
        // Nothing new when asked again: the next question waits twice as long.
        s.answered(partial, vec![(Hash::EMPTY, holds)], now);
        assert_eq!(s.peers[&partial].ask_every, FIRST_ASK_INTERVAL * 2);
    }
}
