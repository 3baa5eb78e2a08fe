//! A networked node: the [`Library`] of artifacts plus the peer-to-peer network, and
//! the one door the control API uses.
//!
//! Wiring only: storage belongs to the library, fetching to the [`Fetcher`],
//! announcements and the seed gate to [`Seeding`], names to [`Names`], denylists to
//! [`Denylists`], preservation to the [`Preserver`], Hugging Face imports and mirrors to
//! the [`HfBridge`], transfers to the transfer module. Each service is given the parts
//! it needs when the node starts; none of them knows the node. What stays here is what
//! spans services (a listing with its denials, a removal refused while a fetch runs)
//! and the node's figures.

use std::time::Duration;

use libp2p::identity::Keypair;
use seedbank_protocol::api::{
    ArtifactDetail, ArtifactSummary, ExportReport, ExportRequest, FetchJobState, GcReport,
    NetworkStatus, PeerSummary, PinReport, ProvidersResponse, RemoveReport, StatusResponse,
    VerifyReport,
};
use seedbank_protocol::hf_api::{HfCacheReport, HfCacheRequest};
use seedbank_protocol::names_api::{PublishReport, PublishRequest};
use seedbank_protocol::{ContentId, PublisherSecret};
use tokio_util::sync::CancellationToken;

use crate::announce::Seeding;
use crate::clock::Clock;
use crate::denied::DeniedRoots;
use crate::denylist::{DenyBook, Denylists, DEFAULT_REFRESH_INTERVAL};
use crate::error::{NodeError, NodeResult};
use crate::fetch::attempt::AttemptRunner;
use crate::fetch::jobs::JobCounts;
use crate::fetch::{FetchTimings, Fetcher};
use crate::hf::low_speed::LowSpeed;
use crate::hf::HfBridge;
use crate::library::import::AddOptions;
use crate::library::Library;
use crate::names::{LicencePolicy, Names};
use crate::net::{start_network, NetConfig, NetHandle, NetTransport};
use crate::peers::PeerBook;
use crate::preserve::service::Preserver;
use crate::preserve::{PreserveBook, PreserveOptions};
use crate::progress::ProgressReporter;
use crate::transfer::provider::spawn_provider;
use crate::transfer::provider_stats::{ProviderCounts, ProviderStats};
use crate::transfer::traffic::Traffic;

/// Rate limits in bytes per second.
#[derive(Debug, Clone, Copy, Default)]
pub struct RateLimits {
    /// Upload limit; `None` for unlimited.
    pub upload: Option<u64>,
    /// Download limit; `None` for unlimited.
    pub download: Option<u64>,
}

/// How a node takes part in the network.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Upload and download limits.
    pub limits: RateLimits,
    /// Serve blobs to other peers and announce what it holds (and, while fetching, the
    /// parts it has). A node that does not seed only downloads: the simulator's
    /// single-server baseline.
    pub seed: bool,
    /// SPDX licences the node seeds; empty: any.
    pub seed_licences: Vec<String>,
    /// Follows, repairs and their budget.
    pub preserve: PreserveOptions,
    /// Time between two refreshes of each denylist the node follows.
    pub denylist_refresh: Duration,
    /// How patient fetches are.
    pub fetch_timings: FetchTimings,
    /// The slowest an origin may send to `mirror-hf` before a download counts as dropped.
    pub mirror_low_speed: LowSpeed,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            limits: RateLimits::default(),
            seed: true,
            seed_licences: Vec::new(),
            preserve: PreserveOptions::default(),
            denylist_refresh: DEFAULT_REFRESH_INTERVAL,
            fetch_timings: FetchTimings::default(),
            mirror_low_speed: LowSpeed::default(),
        }
    }
}

/// A node on the network.
#[derive(Debug, Clone)]
pub struct Node {
    clock: Clock,
    library: Library,
    net: NetHandle,
    traffic: Traffic,
    peers: PeerBook,
    provider: ProviderStats,
    names: Names,
    names_stop: CancellationToken,
    denied: DeniedRoots,
    seeding: Seeding,
    fetcher: Fetcher,
    denylists: Denylists,
    preserver: Preserver,
    hf: HfBridge,
}

/// The node's figures for `/metrics`.
#[derive(Debug, Clone)]
pub struct NodeMetrics {
    /// Status, with the network's part and the fetches under way.
    pub status: StatusResponse,
    /// Blob-protocol bytes sent to peers since start.
    pub bytes_up: u64,
    /// Blob-protocol bytes received from peers since start.
    pub bytes_down: u64,
    /// Bans imposed since start (bad data, or too many timeouts).
    pub bans: u64,
    /// Peers banned now.
    pub banned_now: u64,
    /// How fetch jobs ended since start.
    pub fetches: JobCounts,
    /// Verified bytes fetched since start.
    pub bytes_fetched: u64,
    /// DHT queries under way.
    pub dht_queries: u64,
    /// DHT queries since start.
    pub dht_queries_started: u64,
    /// What the blob provider did with incoming streams since start.
    pub provider: ProviderCounts,
}

impl Node {
    /// Starts the network around `library`, serves blobs and announces what it holds
    /// (if it seeds), starts each service with the parts it needs, and resumes
    /// unfinished fetches. The library's clock is the node's: every service stamps and
    /// schedules by it.
    pub async fn start(
        library: Library,
        keypair: Keypair,
        config: NetConfig,
        transport: NetTransport,
        options: NodeOptions,
    ) -> NodeResult<Self> {
        let clock = library.clock().clone();
        let node_secret = publisher_secret(&keypair)?;
        let net = start_network(keypair, config, transport).await?;
        let policy = LicencePolicy::new(options.seed_licences.clone());
        let names = Names::new(
            library.clone(),
            net.clone(),
            clock.clone(),
            node_secret,
            policy.clone(),
        )?;
        let names_stop = CancellationToken::new();
        if options.seed {
            names.spawn_keeper(names_stop.clone());
        }
        let traffic = Traffic::new(options.limits.upload, options.limits.download);
        let peers = PeerBook::restore(
            &library.saved_peer_book(),
            tokio::time::Instant::now(),
            clock.now_secs(),
        );
        let denied = DeniedRoots::new(names.clone());
        let seeding = Seeding::start(
            options.seed,
            library.clone(),
            net.clone(),
            clock.clone(),
            policy,
            denied.clone(),
        );
        let fetcher = Fetcher::new(AttemptRunner {
            library: library.clone(),
            net: net.clone(),
            traffic: traffic.clone(),
            peers: peers.clone(),
            names: names.clone(),
            denied: denied.clone(),
            seeding: seeding.clone(),
            clock: clock.clone(),
            timings: options.fetch_timings,
            bytes_fetched: Default::default(),
        });
        let denylists = Denylists::open(
            DenyBook::open(library.meta())?,
            denied.clone(),
            crate::denylist::Parts {
                library: library.clone(),
                names: names.clone(),
                net: net.clone(),
                fetcher: fetcher.clone(),
                seeding: seeding.clone(),
                clock: clock.clone(),
            },
            options.denylist_refresh,
        )?;
        seeding.refresh_gate().await;
        let provider = match seeding.gate() {
            Some(gate) => spawn_provider(
                &net,
                library.transfer_store().api(),
                traffic.clone(),
                peers.clone(),
                Some(gate),
            )?,
            None => ProviderStats::default(),
        };
        let preserver = Preserver::new(
            PreserveBook::open(library.meta())?,
            options.preserve.clone(),
            crate::preserve::service::Parts {
                library: library.clone(),
                names: names.clone(),
                net: net.clone(),
                traffic: traffic.clone(),
                fetcher: fetcher.clone(),
                denied: denied.clone(),
                seeding: seeding.clone(),
                clock: clock.clone(),
            },
        );
        let hf = HfBridge::new(
            library.clone(),
            names.clone(),
            traffic.clone(),
            seeding.clone(),
            options.mirror_low_speed,
        )?;
        spawn_withdrawals(library.evictions(), net.clone());
        denylists.spawn_refresher();
        fetcher.resume_saved().await?;
        if options.seed && options.preserve.keeper {
            preserver.spawn_keeper();
        }
        Ok(Self {
            clock,
            library,
            net,
            traffic,
            peers,
            provider,
            names,
            names_stop,
            denied,
            seeding,
            fetcher,
            denylists,
            preserver,
            hf,
        })
    }

    /// Ends running fetches (they stay saved and resume at the next start), so that
    /// clients watching them get their last line at once.
    pub fn stop_fetches(&self) {
        self.fetcher.stop();
    }

    /// Stops fetches, announcing and every service's background task, closes the store
    /// and metadata. The network stops once the last clone of this node (and of its
    /// network handle) is dropped.
    pub async fn shutdown(&self) -> NodeResult<()> {
        self.fetcher.stop();
        self.names_stop.cancel();
        self.preserver.stop();
        self.denylists.stop();
        self.seeding.stop();
        self.library.save_peer_book(&self.peers).await;
        self.library.close().await
    }

    /// Fetching: fetches by id or name, detached fetches, jobs, manifests.
    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// What the denylists this node follows deny now.
    pub fn denied(&self) -> &DeniedRoots {
        &self.denied
    }

    /// The denylists service: subscriptions, refreshes, publishing lists.
    pub fn denylists(&self) -> &Denylists {
        &self.denylists
    }

    /// The preservation service: pins with targets, health, follows, collections.
    pub fn preserver(&self) -> &Preserver {
        &self.preserver
    }

    /// The Hugging Face bridge: cache imports and mirrors.
    pub fn hf(&self) -> &HfBridge {
        &self.hf
    }

    /// The node's clock (the control API's test hook moves it, when it may move).
    pub fn clock(&self) -> &Clock {
        &self.clock
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
        self.seeding.add(options, progress).await
    }

    /// Every artifact held.
    pub async fn list(&self) -> NodeResult<Vec<ArtifactSummary>> {
        let mut list = self.library.list().await?;
        for summary in &mut list {
            summary.denied = self.denied.denials(summary.id);
        }
        Ok(list)
    }

    /// One artifact with its manifest, its releases and whether this node seeds it.
    pub async fn detail(&self, reference: &str) -> NodeResult<ArtifactDetail> {
        let mut detail = self.library.detail(reference).await?;
        detail.releases = self.names.releases(detail.summary.id)?;
        if let Some(latest) = detail.releases.first() {
            detail.licence = detail.licence.clone().or(latest.release.licence.clone());
        }
        detail.seeding = self.names.seeds(detail.licence.as_deref());
        detail.summary.denied = self.denied.denials(detail.summary.id);
        detail.seeding &= detail.summary.denied.is_empty();
        Ok(detail)
    }

    /// Names, publishers and trust.
    pub fn names(&self) -> &Names {
        &self.names
    }

    /// Signs and announces an artifact (added from a path first, if given one) under a
    /// name.
    pub async fn publish(
        &self,
        request: &PublishRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<PublishReport> {
        self.seeding.publish(&self.names, request, progress).await
    }

    /// Exports an artifact into a directory.
    pub async fn export(
        &self,
        reference: &str,
        request: &ExportRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<ExportReport> {
        self.library.export(reference, request, progress).await
    }

    /// Lays an artifact out in a Hugging Face client cache.
    pub async fn export_hf_cache(
        &self,
        reference: &str,
        request: &HfCacheRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<HfCacheReport> {
        self.hf.export_to_cache(reference, request, progress).await
    }

    /// Pins or unpins an artifact.
    pub async fn set_pinned(&self, reference: &str, pinned: bool) -> NodeResult<PinReport> {
        let report = self.library.set_pinned(reference, pinned).await?;
        if pinned {
            self.names.adopt_soon(report.id);
        }
        Ok(report)
    }

    /// Re-hashes everything stored.
    pub async fn verify(&self, progress: &mut ProgressReporter) -> NodeResult<VerifyReport> {
        self.library.verify(progress).await
    }

    /// Collects garbage and withdraws the announcements of what was removed; on a
    /// `dry_run`, only says what would go.
    pub async fn collect_garbage(&self, dry_run: bool) -> NodeResult<GcReport> {
        let report = self.library.collect_garbage(dry_run).await?;
        if !dry_run {
            for artifact in &report.artifacts_removed {
                self.library.forget_announce(artifact.id).await?;
                self.net.stop_providing(artifact.id).await?;
            }
        }
        Ok(report)
    }

    /// Removes one artifact (a pinned one only with `force`) and stops announcing it.
    /// Refuses while a fetch of it runs or is saved: that fetch would bring it back.
    pub async fn remove(&self, reference: &str, force: bool) -> NodeResult<RemoveReport> {
        let root = match self.library.find(reference) {
            Ok(record) => record.root,
            // Being fetched for the first time: no record yet, but a job.
            Err(e) => match reference.parse::<ContentId>() {
                Ok(root) => root,
                Err(_) => return Err(e),
            },
        };
        if let Some(job) = self.fetcher.job_of(root)? {
            let state = match job.state {
                FetchJobState::Running => "running",
                FetchJobState::Waiting => "waiting to try again",
                FetchJobState::PausedDiskFull => "paused (disk full)",
                FetchJobState::Saved => "saved to resume",
            };
            return Err(NodeError::BadRequest(format!(
                "a fetch of {root} is {state}; cancel it first with `seedbank fetch --cancel {root}`"
            )));
        }
        let report = self.library.remove(&root.to_string(), force).await?;
        self.net.stop_providing(root).await?;
        Ok(report)
    }

    /// Status, with the network's part and the fetches under way.
    pub async fn status(&self) -> NodeResult<StatusResponse> {
        let mut status = self.library.status().await?;
        let net = self.net.status().await?;
        status.network = Some(NetworkStatus {
            listen_addresses: net.listen_addresses,
            external_addresses: net.external_addresses,
            routing_table_size: net.routing_table_size,
            connected_peers: net.connected_peers,
            reachability: net.reachability,
        });
        status.fetches = self.fetcher.jobs()?;
        Ok(status)
    }

    /// The node's figures for `/metrics`.
    pub async fn metrics(&self) -> NodeResult<NodeMetrics> {
        let status = self.status().await?;
        let net = self.net.status().await?;
        let traffic = self.traffic.snapshot();
        Ok(NodeMetrics {
            status,
            bytes_up: traffic.values().map(|b| b.up).sum(),
            bytes_down: traffic.values().map(|b| b.down).sum(),
            bans: self.peers.bans_since_start(),
            banned_now: self.peers.banned_now(tokio::time::Instant::now()) as u64,
            fetches: self.fetcher.counts(),
            bytes_fetched: self.fetcher.bytes_fetched(),
            dht_queries: net.dht_queries,
            dht_queries_started: net.dht_queries_started,
            provider: self.provider.counts(),
        })
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
        let root = self.fetcher.root_of(id)?;
        let providers = self.net.find_providers(root).await?;
        Ok(ProvidersResponse {
            id: root,
            providers: providers.iter().map(ToString::to_string).collect(),
        })
    }
}

/// Withdraws each artifact the library evicts to make room from the DHT, until the
/// library is gone.
fn spawn_withdrawals(mut evicted: tokio::sync::mpsc::Receiver<ContentId>, net: NetHandle) {
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            while let Some(root) = evicted.recv().await {
                if let Err(e) = net.stop_providing(root).await {
                    tracing::debug!(%root, error = %e, "cannot withdraw an evicted artifact");
                }
            }
        },
        tracing::info_span!("withdrawals"),
    ));
}

/// The node key as a publisher key: the node's default publisher.
fn publisher_secret(keypair: &Keypair) -> NodeResult<PublisherSecret> {
    let ed25519 = keypair
        .clone()
        .try_into_ed25519()
        .map_err(|_| NodeError::Corrupt("the node key is not an ed25519 key".into()))?;
    let seed: [u8; 32] = ed25519
        .secret()
        .as_ref()
        .try_into()
        .map_err(|_| NodeError::Corrupt("the node key has an unexpected length".into()))?;
    Ok(PublisherSecret::from_seed(seed))
}
