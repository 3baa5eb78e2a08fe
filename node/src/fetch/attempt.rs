//! One try of a fetch job: find the root, make room, transfer what is missing, commit.
//!
//! The jobs own an [`AttemptRunner`] (the parts a try needs) and hand it an [`Attempt`]
//! per try; nothing here knows about jobs, retries or the node. Before bytes move, one
//! pass over the library: a damaged copy is discarded, the fetch is held through garbage
//! collection, room is reserved under the quota (grown, evicting, only as bytes verify)
//! and the disk is checked. After them, one
//! commit: the artifact is recorded with the labels its release gives it, and announced
//! if every file is here.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use seedbank_protocol::api::{FetchReport, ProviderReport};
use seedbank_protocol::{ContentId, FileEntry};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::root_search::find_root;
use super::timings::FetchTimings;
use crate::announce::Seeding;
use crate::clock::Clock;
use crate::denied::DeniedRoots;
use crate::discovery::ContentDiscovery;
use crate::error::{NodeError, NodeResult};
use crate::library::export::select_files;
use crate::library::meta::Labels;
use crate::library::Library;
use crate::names::Names;
use crate::net::NetHandle;
use crate::peers::PeerBook;
use crate::progress::ProgressReporter;
use crate::transfer::client::BlobClient;
use crate::transfer::fetch::{Transfer, TransferOutcome};
use crate::transfer::traffic::Traffic;

/// One try of a job, as the runner gets it.
#[derive(Debug)]
pub struct Attempt {
    /// The artifact.
    pub root: ContentId,
    /// The selection (all files when empty), which requests may widen while the try
    /// runs: the transfer takes the new files on.
    pub include: watch::Receiver<Vec<String>>,
    /// Cancelled when the user cancels or the daemon stops.
    pub cancel: CancellationToken,
    /// Where progress goes.
    pub progress: ProgressReporter,
    /// Set by the transfer while it waits for disk space.
    pub paused: Arc<AtomicBool>,
    /// Fetch each file from its start onwards, for a reader streaming it.
    pub in_order: bool,
    /// The labels of the release it was asked for by, if any.
    pub labels: Option<Labels>,
}

/// What a try that succeeded fetched.
#[derive(Debug)]
pub struct Tried {
    /// Its report.
    pub report: FetchReport,
    /// The selection it covered: the one it started with, widened by the requests it
    /// took on while it ran.
    pub include: Vec<String>,
}

/// The parts one try of a fetch needs. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AttemptRunner {
    /// Where the artifact goes.
    pub library: Library,
    /// The network, for lookups and streams.
    pub net: NetHandle,
    /// Rate limits and per-peer byte counts.
    pub traffic: Traffic,
    /// Who misbehaved before.
    pub peers: PeerBook,
    /// The labels releases give what is fetched.
    pub names: Names,
    /// What the node refuses to fetch.
    pub denied: DeniedRoots,
    /// Announces what completes.
    pub seeding: Seeding,
    /// The node's clock, which stamps when a job started.
    pub clock: Clock,
    /// How patient lookups are.
    pub timings: FetchTimings,
    /// Verified bytes fetched since start, for `/metrics`.
    pub bytes_fetched: Arc<AtomicU64>,
}

impl AttemptRunner {
    /// A client for blob requests through this node's store and limits.
    pub fn client(&self) -> BlobClient {
        BlobClient {
            net: self.net.clone(),
            store: self.library.transfer_store(),
            traffic: self.traffic.clone(),
        }
    }

    /// One try: find peers, get the root and manifest, check the space, transfer what
    /// is missing (and what widenings add meanwhile), and record the artifact.
    pub async fn run(&self, attempt: Attempt) -> NodeResult<Tried> {
        let Attempt {
            root,
            include: mut include_rx,
            cancel,
            mut progress,
            paused,
            in_order,
            labels,
        } = attempt;
        // Checked at every try: a list may name it after the job started (resumed and
        // background jobs, retries).
        self.denied.check(root)?;
        if self.library.is_damaged(root).await? {
            self.library.discard_damaged(root).await?;
        }
        let client = self.client();
        let found = find_root(
            &client,
            &self.net,
            &self.peers,
            &self.timings,
            root,
            &cancel,
        )
        .await?;
        tracing::info!(peers = found.candidates.len(), "fetching");
        self.library.hold_fetch(root).await?;
        let mut include = include_rx.borrow_and_update().clone();
        let files = select_files(&found.fetched.manifest.files, &include)?;
        // Held until the artifact is recorded: until then its bytes are promised, not stored.
        let room = self.library.make_room_to_fetch(root, &files).await?;
        let missing = self.library.missing_bytes(&files).await?;
        self.library.ensure_space_to_fetch(missing)?;
        // While fetching, tell other fetchers we have parts to trade.
        let swarm_announce = self.seeding.seeds().then(|| {
            let net = self.net.clone();
            tokio::spawn(tracing::Instrument::instrument(
                async move { net.start_providing(root.swarm_key()).await },
                tracing::Span::current(),
            ))
        });
        let transfer = Transfer {
            client: &client,
            discovery: &self.net as &dyn ContentDiscovery,
            root: Some(root),
            banned: found.misbehaved,
            cancel: cancel.clone(),
            paused,
            peers: self.peers.clone(),
            in_order,
            room: Some(&room),
        };
        // Requests that widen the job while it transfers add files to this transfer.
        let (wider_tx, wider_rx) = watch::channel(Vec::new());
        let mut latest: Vec<FileEntry> = files.iter().map(|f| (*f).clone()).collect();
        let outcome = {
            let run = transfer.run(&files, Some(wider_rx), found.candidates, &mut progress);
            tokio::pin!(run);
            loop {
                tokio::select! {
                    outcome = &mut run => break outcome,
                    Ok(()) = include_rx.changed() => {
                        let wider = include_rx.borrow_and_update().clone();
                        let chosen = select_files(&found.fetched.manifest.files, &wider)?;
                        let have: std::collections::HashSet<&str> =
                            latest.iter().map(|l| l.path.as_str()).collect();
                        let added: Vec<FileEntry> = chosen
                            .iter()
                            .filter(|f| !have.contains(f.path.as_str()))
                            .map(|f| (*f).clone())
                            .collect();
                        let refs: Vec<&FileEntry> = added.iter().collect();
                        self.library.ensure_space_to_fetch(self.library.missing_bytes(&refs).await?)?;
                        tracing::info!(files = added.len(), "the running fetch takes on more files");
                        latest.extend(added);
                        include = wider;
                        wider_tx.send_replace(latest.clone());
                    }
                }
            }
        };
        let files: Vec<&FileEntry> = latest.iter().collect();
        if let Some(task) = swarm_announce {
            task.abort();
            self.net.stop_providing(root.swarm_key()).await?;
        }
        if outcome.as_ref().map_or(true, |o| !o.banned.is_empty()) {
            self.library.save_peer_book(&self.peers).await;
        }
        let outcome = outcome?;
        self.bytes_fetched
            .fetch_add(outcome.bytes_downloaded, Ordering::Relaxed);
        if !self.library.files_complete(&files).await? {
            return Err(NodeError::Corrupt(format!(
                "{root}: some files are still incomplete after the fetch"
            )));
        }
        // The last bytes may have verified after the transfer last grew its room.
        room.cover(u64::MAX).await?;
        let labels = match labels {
            Some(labels) => Some(labels),
            None => self.names.labels_for(root)?,
        };
        let record = self
            .library
            .commit_fetched(&found.fetched, root, labels)
            .await?;
        if files.len() == found.fetched.manifest.files.len() {
            self.seeding.announce_soon(root).await;
        }
        let report = FetchReport {
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
        };
        Ok(Tried { report, include })
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
