//! A networked node: the [`Library`] of artifacts plus the peer-to-peer network. Adds
//! are announced on the DHT, removals withdrawn, fetches run here, and unfinished
//! fetches resume when the node starts.
//!
//! Invariants: at most one fetch per artifact runs at a time (a second request for the
//! same artifact follows the running one); every held, complete artifact is announced
//! within [`ANNOUNCE_CHECK_INTERVAL`] of the node having a peer to announce to, and again
//! every [`REANNOUNCE_INTERVAL`] (provider records expire after 48 hours).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libp2p::identity::Keypair;
use seedbank_protocol::api::{
    ApiError, ArtifactSummary, FetchReport, FetchRequest, GcReport, NetworkStatus, PeerSummary,
    Progress, ProviderReport, ProvidersResponse, StatusResponse,
};
use seedbank_protocol::ContentId;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{NodeError, NodeResult};
use crate::export::select_files;
use crate::import::{unix_now, AddOptions};
use crate::library::Library;
use crate::meta::{ArtifactRecord, FetchJobRecord};
use crate::net::{start_network, NetConfig, NetHandle, NetTransport};
use crate::progress::ProgressReporter;
use crate::transfer::fetch::{Candidate, FetchContext};
use crate::transfer::provider::spawn_provider;
use crate::transfer::traffic::Traffic;

/// How often due announcements are checked.
pub const ANNOUNCE_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How long an announcement stands before it is renewed (records live 48 hours).
pub const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(12 * 3600);

/// Where a running fetch has got, shared with everyone waiting on it.
#[derive(Debug, Clone, Default)]
struct FetchState {
    progress: Option<Progress>,
    result: Option<Result<FetchReport, ApiError>>,
}

/// Rate limits in bytes per second.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimits {
    /// Upload limit; `None` for unlimited.
    pub upload: Option<u64>,
    /// Download limit; `None` for unlimited.
    pub download: Option<u64>,
}

/// How a node takes part in the network.
#[derive(Debug, Clone, Copy)]
pub struct NodeOptions {
    /// Upload and download limits.
    pub limits: RateLimits,
    /// Serve blobs to other peers and announce what it holds (and, while fetching, the
    /// parts it has). A node that does not seed only downloads: the simulator's
    /// single-server baseline.
    pub seed: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            limits: RateLimits::default(),
            seed: true,
        }
    }
}

/// A node on the network.
#[derive(Debug, Clone)]
pub struct Node {
    library: Library,
    net: NetHandle,
    traffic: Traffic,
    fetches: Arc<Mutex<HashMap<ContentId, watch::Receiver<FetchState>>>>,
    announce_now: Arc<tokio::sync::Notify>,
    seed: bool,
    stopping: CancellationToken,
}

impl Node {
    /// Starts the network around `library`, serves blobs and announces what it holds
    /// (if it seeds), and resumes unfinished fetches.
    pub async fn start(
        library: Library,
        keypair: Keypair,
        config: NetConfig,
        transport: NetTransport,
        options: NodeOptions,
    ) -> NodeResult<Self> {
        let net = start_network(keypair, config, transport).await?;
        let traffic = Traffic::new(options.limits.upload, options.limits.download);
        if options.seed {
            spawn_provider(&net, library.store().api(), traffic.clone())?;
        }
        let node = Self {
            library,
            net,
            traffic,
            fetches: Arc::default(),
            announce_now: Arc::default(),
            seed: options.seed,
            stopping: CancellationToken::new(),
        };
        if options.seed {
            tokio::spawn(node.clone().announce_loop());
        }
        for job in node.library.meta().fetch_jobs()? {
            tracing::info!(root = %job.root, "resuming unfinished fetch");
            let request = FetchRequest {
                id: job.root.to_string(),
                include: job.include,
            };
            let node = node.clone();
            tokio::spawn(async move {
                if let Err(e) = node.fetch(request, &mut ProgressReporter::silent()).await {
                    tracing::warn!(error = %e, "resumed fetch failed");
                }
            });
        }
        Ok(node)
    }

    /// Stops announcing, closes the store and metadata. The network stops once the last
    /// clone of this node (and of its network handle) is dropped.
    pub async fn shutdown(&self) -> NodeResult<()> {
        self.stopping.cancel();
        self.library.close().await
    }

    /// The artifacts.
    pub fn library(&self) -> &Library {
        &self.library
    }

    /// Bytes moved per peer.
    pub fn traffic(&self) -> &Traffic {
        &self.traffic
    }

    /// The network handle.
    pub fn net(&self) -> &NetHandle {
        &self.net
    }

    /// Adds a file or directory and schedules its announcement.
    pub async fn add(
        &self,
        options: AddOptions,
        progress: &mut ProgressReporter,
    ) -> NodeResult<ArtifactSummary> {
        let summary = self.library.add(options, progress).await?;
        self.library.meta().set_next_announce(summary.id, 0)?;
        self.announce_now.notify_one();
        Ok(summary)
    }

    /// Collects garbage and withdraws the announcements of what was removed.
    pub async fn collect_garbage(&self) -> NodeResult<GcReport> {
        let report = self.library.collect_garbage().await?;
        for root in &report.artifacts_removed {
            self.library.meta().remove_announce(*root)?;
            self.net.stop_providing(*root).await?;
        }
        Ok(report)
    }

    /// Status, with the network's part.
    pub async fn status(&self) -> NodeResult<StatusResponse> {
        let mut status = self.library.status().await?;
        let net = self.net.status().await?;
        status.network = Some(NetworkStatus {
            listen_addresses: net.listen_addresses,
            external_addresses: net.external_addresses,
            routing_table_size: net.routing_table_size,
            connected_peers: net.connected_peers,
        });
        Ok(status)
    }

    /// Connected peers with the bytes exchanged with each.
    pub async fn peers(&self) -> NodeResult<Vec<PeerSummary>> {
        let traffic = self.traffic.snapshot();
        let mut peers: Vec<PeerSummary> = self
            .net
            .peers()
            .await?
            .into_iter()
            .map(|info| {
                let bytes = info
                    .peer
                    .parse()
                    .ok()
                    .and_then(|peer| traffic.get(&peer).copied())
                    .unwrap_or_default();
                PeerSummary {
                    peer: info.peer,
                    addresses: info.addresses,
                    bytes_up: bytes.up,
                    bytes_down: bytes.down,
                }
            })
            .collect();
        peers.sort_by(|a, b| a.peer.cmp(&b.peer));
        Ok(peers)
    }

    /// Who provides an artifact, per the DHT.
    pub async fn providers(&self, id: &str) -> NodeResult<ProvidersResponse> {
        let root = self.root_of(id)?;
        let providers = self.net.find_providers(root).await?;
        Ok(ProvidersResponse {
            id: root,
            providers: providers.iter().map(ToString::to_string).collect(),
        })
    }

    fn root_of(&self, id: &str) -> NodeResult<ContentId> {
        if let Ok(root) = id.parse::<ContentId>() {
            return Ok(root);
        }
        match self.library.find(id) {
            Ok(record) => Ok(record.root),
            Err(_) => Err(NodeError::BadRequest(format!(
                "{id:?} is neither a content id (sb1…) nor the name of a local artifact"
            ))),
        }
    }

    /// Fetches an artifact from the network, or follows the fetch of it already running.
    pub async fn fetch(
        &self,
        request: FetchRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<FetchReport> {
        let root = self.root_of(&request.id)?;
        let mut state = {
            let mut fetches = self.fetches.lock().unwrap_or_else(|e| e.into_inner());
            match fetches.get(&root) {
                Some(running) => running.clone(),
                None => {
                    let (tx, rx) = watch::channel(FetchState::default());
                    fetches.insert(root, rx.clone());
                    tokio::spawn(self.clone().run_fetch_job(root, request.include, tx));
                    rx
                }
            }
        };
        loop {
            let current = state.borrow_and_update().clone();
            if let Some(result) = current.result {
                return result.map_err(|e| NodeError::Unreachable(e.message));
            }
            if let Some(p) = current.progress {
                progress.set_total(p.total_bytes);
                progress.report(p.done_bytes, p.current.as_deref().unwrap_or(""));
            }
            if state.changed().await.is_err() {
                return Err(NodeError::Store(
                    "the fetch task ended without a result".into(),
                ));
            }
        }
    }

    async fn run_fetch_job(
        self,
        root: ContentId,
        include: Vec<String>,
        state: watch::Sender<FetchState>,
    ) {
        let (progress_tx, mut progress_rx) = tokio::sync::mpsc::channel(16);
        let forward = {
            let state = state.clone();
            async move {
                while let Some(p) = progress_rx.recv().await {
                    state.send_modify(|s| s.progress = Some(p));
                }
            }
        };
        let mut reporter = ProgressReporter::new(progress_tx);
        let (result, ()) = tokio::join!(
            async {
                let result = self.fetch_now(root, include, &mut reporter).await;
                drop(reporter);
                result
            },
            forward
        );
        if let Err(e) = &result {
            tracing::info!(%root, error = %e, "fetch failed");
        }
        self.fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&root);
        state.send_modify(|s| s.result = Some(result.map_err(|e| e.to_api())));
    }

    async fn fetch_now(
        &self,
        root: ContentId,
        include: Vec<String>,
        progress: &mut ProgressReporter,
    ) -> NodeResult<FetchReport> {
        let meta = self.library.meta();
        meta.put_fetch_job(&FetchJobRecord {
            root,
            include: include.clone(),
            started_at: unix_now(),
        })?;
        meta.flush().await?;
        let context = FetchContext {
            store: self.library.store().clone(),
            net: self.net.clone(),
            traffic: self.traffic.clone(),
        };
        let mut candidates = context.discover(root).await;
        for peer in self.net.peers().await? {
            if let Ok(peer) = peer.peer.parse() {
                if !candidates.iter().any(|c| c.peer == peer) {
                    candidates.push(Candidate {
                        peer,
                        complete: false,
                    });
                }
            }
        }
        if candidates.is_empty() {
            meta.remove_fetch_job(root)?;
            return Err(NodeError::Unreachable(format!(
                "no provider of {root} found: the DHT lists none and no peer is connected"
            )));
        }
        tracing::info!(%root, peers = candidates.len(), "fetching");
        // Complete providers first: they surely have the manifest.
        candidates.sort_by_key(|c| !c.complete);
        let manifest_sources: Vec<_> = candidates.iter().map(|c| c.peer).collect();
        let mut banned = Default::default();
        let manifest = context
            .fetch_manifest(root, &manifest_sources, &mut banned)
            .await?;
        let files = select_files(&manifest.files, &include)?;
        // While fetching, tell other fetchers we have parts to trade.
        let swarm_announce = self.seed.then(|| {
            let net = self.net.clone();
            tokio::spawn(async move { net.start_providing(root.swarm_key()).await })
        });
        let outcome = context
            .fetch_files(&files, candidates, Some(root), banned, progress)
            .await;
        if let Some(task) = swarm_announce {
            task.abort();
            self.net.stop_providing(root.swarm_key()).await?;
        }
        let outcome = outcome?;
        for file in &files {
            if file.size > 0 && self.library.store().size(file.hash).await?.is_none() {
                return Err(NodeError::Corrupt(format!(
                    "{} is still incomplete after the fetch",
                    file.path
                )));
            }
        }
        let store = self.library.store();
        store.keep_artifact(root).await?;
        store.sync().await?;
        let record = ArtifactRecord {
            root,
            manifest: self.manifest_hash(root).await?,
            name: manifest.name.clone(),
            kind: manifest.kind,
            revision: manifest.revision.clone(),
            size: manifest.total_size(),
            files: manifest.files.len() as u64,
            added_at: meta.artifact(root)?.map_or_else(unix_now, |r| r.added_at),
            referenced: false,
        };
        meta.put_artifact(&record)?;
        meta.remove_fetch_job(root)?;
        if files.len() == manifest.files.len() {
            meta.set_next_announce(root, 0)?;
            self.announce_now.notify_one();
        }
        meta.flush().await?;
        let mut providers_report: Vec<ProviderReport> = outcome
            .peers
            .iter()
            .map(|peer| ProviderReport {
                peer: peer.to_string(),
                bytes: outcome.per_peer.get(peer).copied().unwrap_or(0),
                banned: outcome.banned.contains(peer),
            })
            .collect();
        providers_report.sort_by_key(|p| std::cmp::Reverse(p.bytes));
        tracing::info!(%root, bytes = outcome.bytes_downloaded, "fetch complete");
        Ok(FetchReport {
            id: root,
            name: manifest.name.clone(),
            revision: manifest.revision.clone(),
            files: files.len() as u64,
            size: files.iter().map(|f| f.size).sum(),
            bytes_missing_at_start: outcome.bytes_missing_at_start,
            bytes_downloaded: outcome.bytes_downloaded,
            providers: providers_report,
        })
    }

    async fn manifest_hash(&self, root: ContentId) -> NodeResult<seedbank_protocol::BlobHash> {
        let seq = self
            .library
            .store()
            .read_small(root.hash(), 32 * 1024 * 1024)
            .await?;
        seq.get(..32)
            .and_then(|b| b.try_into().ok())
            .map(seedbank_protocol::BlobHash)
            .ok_or_else(|| NodeError::Corrupt(format!("{root} has an empty root")))
    }

    /// Announces every complete artifact that is due, whenever the node has a peer.
    /// After start-up everything is announced once, whatever its schedule says: the
    /// records may have expired while the node was down.
    async fn announce_loop(self) {
        let mut announced_since_start = false;
        loop {
            match self.announce_due(!announced_since_start).await {
                Ok(ran) => announced_since_start |= ran,
                Err(e) => tracing::debug!(error = %e, "announcing failed; will retry"),
            }
            tokio::select! {
                _ = self.stopping.cancelled() => break,
                _ = tokio::time::sleep(ANNOUNCE_CHECK_INTERVAL) => {}
                _ = self.announce_now.notified() => {}
            }
        }
    }

    /// Announces what is due (or everything); returns false if there was nobody to tell.
    async fn announce_due(&self, everything: bool) -> NodeResult<bool> {
        if self.net.status().await?.routing_table_size == 0 {
            return Ok(false);
        }
        let meta = self.library.meta();
        let now = unix_now();
        for record in meta.artifacts()? {
            let due = everything || meta.next_announce(record.root)? <= now;
            if !due || !self.library.is_complete(&record).await? {
                continue;
            }
            self.net.start_providing(record.root).await?;
            meta.set_next_announce(record.root, now + REANNOUNCE_INTERVAL.as_secs())?;
            tracing::debug!(root = %record.root, "announced");
        }
        meta.flush().await?;
        Ok(true)
    }
}
