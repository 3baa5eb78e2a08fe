//! Fetching an artifact from several providers at once.
//!
//! First the root HashSeq and the manifest come from any provider. Then every selected
//! file's missing chunk ranges (what the local store has not verified yet, so an
//! interrupted fetch resumes where it stopped) are cut into segments of
//! [`SEGMENT_BYTES`] and put in one queue. Each provider gets up to
//! [`STREAMS_PER_PROVIDER`] workers, each taking the next segment and requesting it on
//! its own stream; iroh-blobs verifies every 16 KiB group against the hash before it
//! reaches the store. When the queue is empty, idle workers duplicate segments still in
//! flight on other providers, so a slow provider cannot hold up the end (work stealing).
//! A provider whose data fails verification is banned for the rest of the fetch and its
//! segment goes back in the queue; one that fails otherwise gets
//! [`MAX_FAILURES_PER_PROVIDER`] tries.

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
/// Most streams one fetch runs at once, across all providers.
pub const MAX_FETCH_STREAMS: usize = 16;
/// Failures (other than bad data) after which a provider is dropped from a fetch.
pub const MAX_FAILURES_PER_PROVIDER: u32 = 3;
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
        let stream = self
            .net
            .stream_control()
            .open_stream(peer, BLOB_PROTOCOL)
            .await
            .map_err(|e| ProviderFailure::Other(format!("cannot open a stream to {peer}: {e}")))?;
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
            for peer in providers {
                if banned.contains(peer) {
                    continue;
                }
                let request = GetRequest::builder()
                    .root(ChunkRanges::all())
                    .next(ChunkRanges::all())
                    .build(root_hash);
                match self.get(*peer, request).await {
                    Ok(_) => {
                        fetched = true;
                        break;
                    }
                    Err(ProviderFailure::BadData(e)) => {
                        tracing::debug!(%peer, error = %e, "banning provider: bad manifest data");
                        banned.insert(*peer);
                        errors.push(format!("{peer}: sent bad data"));
                    }
                    Err(ProviderFailure::Missing(e) | ProviderFailure::Other(e)) => errors.push(e),
                }
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

    /// Fetches the missing parts of `files` from `providers`. A provider in `announced`
    /// (the DHT lists it) that lacks data it announced is banned like one sending bad
    /// data; any other peer lacking data is just not asked again.
    pub async fn fetch_files(
        &self,
        files: &[&FileEntry],
        providers: &[PeerId],
        announced: &HashSet<PeerId>,
        banned: HashSet<PeerId>,
        progress: &mut ProgressReporter,
    ) -> NodeResult<TransferOutcome> {
        let mut queue = VecDeque::new();
        let mut seen = HashSet::new();
        for file in files {
            if file.size == 0 || !seen.insert(file.hash) {
                continue;
            }
            let present = self
                .store
                .api()
                .blobs()
                .observe(to_iroh(file.hash))
                .await
                .map_err(|e| {
                    NodeError::Store(format!("reading what is stored of {}: {e}", file.path))
                })?
                .ranges;
            queue.extend(missing_segments(
                to_iroh(file.hash),
                file.size,
                &present,
                queue.len(),
            ));
        }
        let missing: u64 = queue.iter().map(|item: &WorkItem| item.bytes).sum();
        progress.set_total(missing);
        let scheduler = Arc::new(Shared {
            state: Mutex::new(Scheduler {
                queue,
                banned,
                announced: announced.clone(),
                ..Scheduler::default()
            }),
            changed: Notify::new(),
        });
        let workers: Vec<_> = providers
            .iter()
            .flat_map(|peer| std::iter::repeat_n(*peer, STREAMS_PER_PROVIDER))
            .take(MAX_FETCH_STREAMS)
            .map(|peer| tokio::spawn(run_worker(self.clone(), scheduler.clone(), peer)))
            .collect();
        let watcher = {
            let scheduler = scheduler.clone();
            async move {
                loop {
                    let (done, serving) = {
                        let state = scheduler.lock();
                        (
                            state.downloaded,
                            state.per_peer.values().filter(|b| **b > 0).count(),
                        )
                    };
                    progress.report(
                        done,
                        &format!("from {serving} of {} peers", providers.len()),
                    );
                    if scheduler.lock().all_done() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        tokio::select! {
            _ = futures::future::join_all(workers) => {}
            _ = watcher => {}
        }
        let state = scheduler.lock();
        let outcome = TransferOutcome {
            bytes_missing_at_start: missing,
            bytes_downloaded: state.downloaded,
            per_peer: state.per_peer.clone(),
            banned: state.banned.clone(),
        };
        if !state.all_done() {
            let left = state.queue.len() + state.in_flight.len();
            let banned: Vec<String> = state.banned.iter().map(ToString::to_string).collect();
            return Err(NodeError::Unreachable(format!(
                "{left} segments could not be fetched from {} providers{}",
                providers.len(),
                if banned.is_empty() {
                    String::new()
                } else {
                    format!(" (banned for bad data: {})", banned.join(", "))
                }
            )));
        }
        Ok(outcome)
    }
}

/// What a transfer did.
#[derive(Debug, Clone, Default)]
pub struct TransferOutcome {
    /// Bytes missing locally when it started.
    pub bytes_missing_at_start: u64,
    /// Payload bytes received.
    pub bytes_downloaded: u64,
    /// Bytes received per provider.
    pub per_peer: HashMap<PeerId, u64>,
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

/// One segment of one blob.
#[derive(Debug, Clone)]
struct WorkItem {
    id: usize,
    hash: Hash,
    ranges: ChunkRanges,
    bytes: u64,
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
            let bytes = missing
                .iter()
                .map(|range| match range {
                    RangeSetRange::Range(r) => {
                        (r.end.0 * CHUNK_BYTES).min(size) - (r.start.0 * CHUNK_BYTES).min(size)
                    }
                    RangeSetRange::RangeFrom(r) => size.saturating_sub(r.start.0 * CHUNK_BYTES),
                })
                .sum();
            items.push(WorkItem {
                id: first_id + items.len(),
                hash,
                ranges: missing,
                bytes,
            });
        }
        start = end;
    }
    items
}

#[derive(Default)]
struct Scheduler {
    queue: VecDeque<WorkItem>,
    in_flight: HashMap<usize, (WorkItem, Vec<PeerId>)>,
    done: HashSet<usize>,
    banned: HashSet<PeerId>,
    announced: HashSet<PeerId>,
    failures: HashMap<PeerId, u32>,
    per_peer: HashMap<PeerId, u64>,
    downloaded: u64,
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

    /// The next segment for `peer`: from the queue, else (endgame) a segment in flight
    /// on other providers only.
    fn next_for(&mut self, peer: PeerId) -> Option<WorkItem> {
        if let Some(item) = self.queue.pop_front() {
            self.in_flight.insert(item.id, (item.clone(), vec![peer]));
            return Some(item);
        }
        self.in_flight
            .values_mut()
            .filter(|(_, peers)| !peers.contains(&peer))
            .min_by_key(|(item, peers)| (peers.len(), item.id))
            .map(|(item, peers)| {
                peers.push(peer);
                item.clone()
            })
    }

    fn finished(&mut self, item: &WorkItem, peer: PeerId, bytes: u64) {
        *self.per_peer.entry(peer).or_default() += bytes;
        if self.done.insert(item.id) {
            self.downloaded += item.bytes;
        }
        self.in_flight.remove(&item.id);
    }

    fn failed(&mut self, item: WorkItem, peer: PeerId, failure: &ProviderFailure) {
        match failure {
            ProviderFailure::BadData(_) => {
                self.banned.insert(peer);
            }
            ProviderFailure::Missing(_) if self.announced.contains(&peer) => {
                self.banned.insert(peer);
            }
            ProviderFailure::Missing(_) => {
                self.failures.insert(peer, MAX_FAILURES_PER_PROVIDER);
            }
            ProviderFailure::Other(_) => *self.failures.entry(peer).or_default() += 1,
        }
        if let Some((_, peers)) = self.in_flight.get_mut(&item.id) {
            peers.retain(|p| *p != peer);
            if peers.is_empty() {
                self.in_flight.remove(&item.id);
                if !self.done.contains(&item.id) {
                    self.queue.push_back(item);
                }
            }
        }
    }
}

async fn run_worker(context: FetchContext, shared: Arc<Shared>, peer: PeerId) {
    loop {
        let next = {
            let mut state = shared.lock();
            if state.all_done() || !state.may_work(peer) {
                break;
            }
            state.next_for(peer)
        };
        let Some(item) = next else {
            // Nothing for this peer now; a failing worker may hand work back.
            let _ = tokio::time::timeout(IDLE_RECHECK, shared.changed.notified()).await;
            continue;
        };
        let request = GetRequest::blob_ranges(item.hash, item.ranges.clone());
        let result = context.get(peer, request).await;
        {
            let mut state = shared.lock();
            match result {
                Ok(bytes) => state.finished(&item, peer, bytes),
                Err(failure) => {
                    tracing::debug!(%peer, hash = %from_iroh(item.hash), ?failure, "segment request failed");
                    state.failed(item, peer, &failure);
                }
            }
        }
        shared.changed.notify_waiters();
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

    #[test]
    fn work_is_stolen_only_at_the_end_and_bad_peers_are_banned() {
        let a = PeerId::random();
        let b = PeerId::random();
        let item = |id| WorkItem {
            id,
            hash: Hash::EMPTY,
            ranges: ChunkRanges::all(),
            bytes: 1,
        };
        let mut s = Scheduler {
            queue: VecDeque::from([item(0), item(1)]),
            ..Scheduler::default()
        };
        let first = s.next_for(a).unwrap();
        let second = s.next_for(b).unwrap();
        assert_ne!(first.id, second.id);
        // Queue empty: a may duplicate b's segment, but not its own.
        assert_eq!(s.next_for(a).unwrap().id, second.id);
        assert!(s.next_for(a).is_none());
        s.failed(first, a, &ProviderFailure::BadData("mismatch".into()));
        assert!(!s.may_work(a));
        assert_eq!(
            s.queue.len(),
            1,
            "the banned peer's segment is queued again"
        );
        s.finished(&second, b, 1);
        let c = PeerId::random();
        let lacking = s.next_for(c).unwrap();
        s.failed(lacking, c, &ProviderFailure::Missing("not found".into()));
        assert!(
            !s.may_work(c) && !s.banned.contains(&c),
            "unannounced peers are dropped, not banned"
        );
        let retry = s.next_for(b).unwrap();
        s.finished(&retry, b, 1);
        assert!(s.all_done());
        assert_eq!(s.downloaded, 2);
    }
}
