//! The node's fetch path: where a fetch request goes (content id, published name or local
//! label), the fetch jobs, and one try of a job (find peers, get the root and manifest,
//! make room under the quota and check the disk, transfer, record).

use std::sync::atomic::Ordering;
use std::time::Duration;

use libp2p::PeerId;
use seedbank_protocol::api::{FetchJobSummary, FetchReport, FetchRequest, ProviderReport};
use seedbank_protocol::{ContentId, NameRef};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::Node;
use crate::discovery::{candidates, Candidate, ContentDiscovery};
use crate::error::{NodeError, NodeResult};
use crate::export::select_files;
use crate::fetch_jobs::{Attempt, JobView, Origin};
use crate::meta::Labels;
use crate::peers::PeerAction;
use crate::progress::ProgressReporter;
use crate::transfer::client::BlobClient;
use crate::transfer::fetch::{Transfer, TransferOutcome};
use crate::transfer::root::{fetch_root, RootOutcome};

/// How long a fetch looks for peers before it says nobody has the artifact: waits
/// between lookups (right after a start, the DHT and mDNS have not found anyone yet).
const FIND_PATIENCE: [Duration; 4] = [
    Duration::ZERO,
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// How many times a fetch looks for peers and asks them for the root before it fails.
const ROOT_ROUNDS: u32 = 3;

impl Node {
    /// Fetch jobs, running and saved.
    pub fn jobs(&self) -> NodeResult<Vec<FetchJobSummary>> {
        self.jobs.list()
    }

    /// Cancels the fetch of `id`, running or saved.
    pub async fn cancel_fetch(&self, id: &str) -> NodeResult<ContentId> {
        let root = self.root_of(id)?;
        self.jobs.cancel(root).await?;
        Ok(root)
    }

    /// Starts a fetch in the background (or joins the running one) and returns at once.
    pub async fn fetch_detached(&self, request: FetchRequest) -> NodeResult<FetchJobSummary> {
        let (root, warning) = self.fetch_target(&request).await?;
        self.refuse_denied(root)?;
        if let Some(warning) = warning {
            tracing::warn!("{warning}");
        }
        self.start_job(root, request.include, request.pin, Origin::Background)
            .await?;
        self.jobs
            .list()?
            .into_iter()
            .find(|job| job.id == root)
            .ok_or_else(|| NodeError::Store(format!("the fetch of {root} ended at once")))
    }

    /// Fetches an artifact from the network, or follows the fetch of it already running
    /// (widening it if this request selects other files).
    pub async fn fetch(
        &self,
        request: FetchRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<FetchReport> {
        let (root, warning) = self.fetch_target(&request).await?;
        self.refuse_denied(root)?;
        let mut view = self
            .start_job(root, request.include, request.pin, Origin::Watched)
            .await?;
        loop {
            let current = view.borrow_and_update().clone();
            if let Some(result) = current.result {
                let mut report = result.map_err(NodeError::from_api)?;
                report.warnings.extend(warning);
                if report.pinned {
                    self.adopt_soon(root);
                }
                return Ok(report);
            }
            if let Some(p) = current.progress {
                progress.forward(p);
            }
            if view.changed().await.is_err() {
                return Err(NodeError::Store(
                    "the fetch task ended without a result".into(),
                ));
            }
        }
    }

    /// The manifest of `root`: from the store, else got from the peers that have it
    /// (the root and manifest only, no file), for answers that need the file list
    /// before any file is fetched.
    pub async fn fetch_manifest(&self, root: ContentId) -> NodeResult<seedbank_protocol::Manifest> {
        if let Ok(stored) = self.library.stored_root(root).await {
            return Ok(stored.manifest);
        }
        self.refuse_denied(root)?;
        let client = BlobClient {
            net: self.net.clone(),
            store: self.library.transfer_store(),
            traffic: self.traffic.clone(),
        };
        let cancel = CancellationToken::new();
        let mut outcome = RootOutcome::default();
        let mut round = 0;
        loop {
            round += 1;
            let candidates = self.find_candidates(root, &cancel).await?;
            let sources: Vec<PeerId> = candidates.iter().map(|c| c.peer).collect();
            match fetch_root(&client, root, &sources, &mut outcome).await {
                Ok(fetched) => return Ok(fetched.manifest),
                Err(NodeError::Unreachable(_)) if round < ROOT_ROUNDS => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Starts fetching the files at `paths` of `root` in the background (or widens the
    /// fetch running), for a reader that streams them as they arrive.
    pub async fn fetch_files_in_background(
        &self,
        root: ContentId,
        paths: &[&str],
    ) -> NodeResult<()> {
        let include = paths.iter().map(|path| globset::escape(path)).collect();
        self.start_job(root, include, false, Origin::Streaming)
            .await
            .map(drop)
    }

    pub(super) async fn start_job(
        &self,
        root: ContentId,
        include: Vec<String>,
        pin: bool,
        origin: Origin,
    ) -> NodeResult<watch::Receiver<JobView>> {
        let node = self.clone();
        self.jobs
            .start(root, include, pin, origin, move |attempt| {
                let node = node.clone();
                async move { node.fetch_once(attempt).await }
            })
            .await
    }

    /// The labels a release this node has seen gives `root`, if any.
    fn release_labels(&self, root: ContentId) -> NodeResult<Option<Labels>> {
        self.names.labels_for(root)
    }

    /// The root `id` names among content ids and this node's artifacts.
    pub(super) fn root_of(&self, id: &str) -> NodeResult<ContentId> {
        if let Ok(root) = id.parse::<ContentId>() {
            return Ok(root);
        }
        if NameRef::looks_like_name(id) {
            return self.names.cached_root(id)?.ok_or_else(|| {
                NodeError::NotFound(format!(
                    "{id} has not been resolved on this node; use its content id"
                ))
            });
        }
        match self.library.find(id) {
            Ok(record) => Ok(record.root),
            Err(_) => Err(NodeError::BadRequest(format!(
                "{id:?} is neither a content id (sb1…) nor the name of a local artifact"
            ))),
        }
    }

    /// The root a fetch asks for: a content id, a published name (resolved and
    /// checked through its signed records, with a warning if this node will not seed
    /// it), or, with `allow_unsigned`, a local label.
    async fn fetch_target(
        &self,
        request: &FetchRequest,
    ) -> NodeResult<(ContentId, Option<String>)> {
        let id = request.id.as_str();
        if let Ok(root) = id.parse::<ContentId>() {
            return Ok((root, None));
        }
        if NameRef::looks_like_name(id) {
            return self.names.resolve_for_fetch(id).await;
        }
        match self.library.find(id) {
            Ok(record) if request.allow_unsigned => Ok((record.root, None)),
            Ok(_) => Err(NodeError::BadRequest(format!(
                "{id:?} is a local label, which no signature backs: fetch PUBLISHER/{id}, the \
                 content id, or pass --allow-unsigned"
            ))),
            Err(_) => Err(NodeError::BadRequest(format!(
                "{id:?} is neither a content id (sb1…), a published name (PUBLISHER/NAME) nor \
                 the name of a local artifact"
            ))),
        }
    }

    /// One try of a fetch job: find peers, get the root and manifest, check the space,
    /// transfer what is missing, and record the artifact.
    async fn fetch_once(&self, attempt: Attempt) -> NodeResult<FetchReport> {
        let Attempt {
            root,
            include,
            cancel,
            mut progress,
            paused,
            in_order,
        } = attempt;
        // Checked at every try: a list may name it after the job started (resumed and
        // background jobs, retries).
        self.refuse_denied(root)?;
        let client = BlobClient {
            net: self.net.clone(),
            store: self.library.transfer_store(),
            traffic: self.traffic.clone(),
        };
        if self.library.is_damaged(root).await? {
            self.library.discard_damaged(root).await?;
        }
        let mut root_outcome = RootOutcome::default();
        let mut round = 0;
        let (fetched, candidates) = loop {
            round += 1;
            let candidates = self.find_candidates(root, &cancel).await?;
            tracing::info!(peers = candidates.len(), "fetching");
            let mut sources: Vec<PeerId> = candidates.iter().map(|c| c.peer).collect();
            // Complete providers first: they surely have the manifest.
            sources.sort_by_key(|peer| !candidates.iter().any(|c| c.peer == *peer && c.complete));
            let result = tokio::select! {
                () = cancel.cancelled() => return Err(NodeError::Cancelled("cancelled".into())),
                fetched = fetch_root(&client, root, &sources, &mut root_outcome) => fetched,
            };
            match result {
                Ok(fetched) => break (fetched, candidates),
                // Lookups differ from one moment to the next (records of peers that
                // left, peers that just arrived): look again before giving up.
                Err(NodeError::Unreachable(e)) if round < ROOT_ROUNDS => {
                    tracing::debug!(error = %e, "no candidate sent the root; looking again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(e),
            }
        };
        for peer in &root_outcome.misbehaved {
            self.peers
                .report(*peer, PeerAction::SentBadData, tokio::time::Instant::now());
        }
        self.library.hold_fetch(root).await?;
        let files = select_files(&fetched.manifest.files, &include)?;
        // Held until the artifact is recorded: until then its bytes are promised, not stored.
        let _room = self.library.make_room_to_fetch(root, &files).await?;
        let missing = self.library.missing_bytes(&files).await?;
        self.library.ensure_space_to_fetch(missing)?;
        // While fetching, tell other fetchers we have parts to trade.
        let swarm_announce = self.announcer.is_some().then(|| {
            let net = self.net.clone();
            tokio::spawn(async move { net.start_providing(root.swarm_key()).await })
        });
        let transfer = Transfer {
            client: &client,
            discovery: &self.net as &dyn ContentDiscovery,
            root: Some(root),
            banned: root_outcome.misbehaved,
            cancel: cancel.clone(),
            paused,
            peers: self.peers.clone(),
            in_order,
        };
        let outcome = transfer.run(&files, candidates, &mut progress).await;
        if let Some(task) = swarm_announce {
            task.abort();
            self.net.stop_providing(root.swarm_key()).await?;
        }
        if outcome.as_ref().map_or(true, |o| !o.banned.is_empty()) {
            self.save_peer_book().await;
        }
        let outcome = outcome?;
        self.bytes_fetched
            .fetch_add(outcome.bytes_downloaded, Ordering::Relaxed);
        if !self.library.files_complete(&files).await? {
            return Err(NodeError::Corrupt(format!(
                "{root}: some files are still incomplete after the fetch"
            )));
        }
        let record = self
            .library
            .commit_fetched(&fetched, root, self.release_labels(root)?)
            .await?;
        if files.len() == fetched.manifest.files.len() {
            self.announce_soon(root).await;
        }
        Ok(FetchReport {
            id: root,
            name: record.name,
            revision: record.revision,
            files: files.len() as u64,
            size: files.iter().map(|f| f.size).sum(),
            bytes_missing_at_start: outcome.bytes_missing_at_start,
            bytes_downloaded: outcome.bytes_downloaded,
            providers: provider_reports(&outcome),
            pinned: false,
            warnings: Vec::new(),
        })
    }

    /// Peers to fetch `root` from: those discovery lists, and connected ones as partial
    /// candidates. Looks a few times, with growing waits, before giving up.
    async fn find_candidates(
        &self,
        root: ContentId,
        cancel: &CancellationToken,
    ) -> NodeResult<Vec<Candidate>> {
        for wait in FIND_PATIENCE {
            tokio::select! {
                () = cancel.cancelled() => return Err(NodeError::Cancelled("cancelled".into())),
                () = tokio::time::sleep(wait) => {}
            }
            let found = candidates(&self.net, Some(root)).await;
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Err(NodeError::Unreachable(format!(
            "no provider of {root} found: the DHT lists none and no peer is connected"
        )))
    }
}

/// Per-provider contributions, largest first.
fn provider_reports(outcome: &TransferOutcome) -> Vec<ProviderReport> {
    let mut reports: Vec<ProviderReport> = outcome
        .peers
        .iter()
        .map(|peer| ProviderReport {
            peer: peer.to_string(),
            bytes: outcome.per_peer.get(peer).copied().unwrap_or(0),
            banned: outcome.banned.contains(peer),
            dropped: outcome.dropped.contains(peer),
        })
        .filter(|report| report.bytes > 0 || report.banned || report.dropped)
        .collect();
    reports.sort_by_key(|p| std::cmp::Reverse(p.bytes));
    reports
}
