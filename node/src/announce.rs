//! What the node tells the network it holds: the announcer, which keeps a provider
//! record in the DHT for every complete artifact the node holds, and the seed gate,
//! which keeps the blob provider from serving what the node does not seed. [`Seeding`]
//! holds both; every path that adds an artifact (add, fetch, publish) ends in
//! [`Seeding::announce_soon`].
//!
//! Invariants: every complete artifact is announced within [`ANNOUNCE_CHECK_INTERVAL`]
//! of being added (at once when woken), again every [`REANNOUNCE_INTERVAL`] (records
//! expire after 48 hours), and all of them once after start-up and once more as soon as
//! the node has a peer to tell: a record stored only locally (a node alone on the
//! network still keeps its own) reaches the network then, not at the next schedule.
//! One artifact failing to announce never stops the others. An artifact a denylist the
//! node follows names is never announced (the node withdraws its record when the list
//! names it, and announces it again once no list does).

use std::sync::Arc;
use std::time::Duration;

use seedbank_protocol::ContentId;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use seedbank_protocol::api::ArtifactSummary;
use seedbank_protocol::names_api::{PublishReport, PublishRequest};

use crate::clock::Clock;
use crate::denied::DeniedRoots;
use crate::error::NodeResult;
use crate::library::import::AddOptions;
use crate::library::meta::ArtifactRecord;
use crate::library::Library;
use crate::names::{LicencePolicy, Names};
use crate::net::NetHandle;
use crate::progress::ProgressReporter;
use crate::transfer::seed_gate::SeedGate;

/// How often due announcements are checked once the node has peers.
pub const ANNOUNCE_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How often the node checks for its first peer while it has none.
pub const ALONE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long an announcement stands before it is renewed (records live 48 hours).
pub const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(12 * 3600);

/// The node's announcer and seed gate, both present only when it seeds. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Seeding {
    announcer: Option<Announcer>,
    gate: Option<SeedGate>,
    library: Library,
    policy: LicencePolicy,
    denied: DeniedRoots,
}

impl Seeding {
    /// Starts announcing what `library` holds (on the schedule `clock` keeps) and keeps
    /// a seed gate, if the node `seeds`; otherwise announces and gates nothing. The gate
    /// starts empty: fill it with [`Self::refresh_gate`] before serving.
    pub fn start(
        seeds: bool,
        library: Library,
        net: NetHandle,
        clock: Clock,
        policy: LicencePolicy,
        denied: DeniedRoots,
    ) -> Self {
        Self {
            announcer: seeds.then(|| {
                Announcer::spawn(library.clone(), net, clock, policy.clone(), denied.clone())
            }),
            gate: seeds.then(SeedGate::default),
            library,
            policy,
            denied,
        }
    }

    /// Whether the node seeds (serves blobs and announces).
    pub fn seeds(&self) -> bool {
        self.announcer.is_some()
    }

    /// The gate the blob provider asks, when the node seeds.
    pub fn gate(&self) -> Option<SeedGate> {
        self.gate.clone()
    }

    /// Tells the gate what not to serve now and has `root` announced soon.
    pub async fn announce_soon(&self, root: ContentId) {
        self.update_gate_for(root).await;
        if let Some(announcer) = &self.announcer {
            announcer.announce_soon(&self.library, root).await;
        }
    }

    /// Adds a file or directory to the library and has it announced soon.
    pub async fn add(
        &self,
        options: AddOptions,
        progress: &mut ProgressReporter,
    ) -> NodeResult<ArtifactSummary> {
        let summary = self.library.add(options, progress).await?;
        self.announce_soon(summary.id).await;
        Ok(summary)
    }

    /// Signs and announces an artifact (added from a path first, if given one) under a
    /// name.
    pub async fn publish(
        &self,
        names: &Names,
        request: &PublishRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<PublishReport> {
        let report = names.publish(request, progress).await?;
        self.announce_soon(report.release.release.root).await;
        Ok(report)
    }

    /// Updates the gate for the artifact `root` that just arrived (or changed labels).
    /// A seeded one only lifts blocks from its own blobs, without a scan of every
    /// artifact; one that is not seeded adds blocks, which depend on what every other
    /// artifact holds, so the gate is worked out again.
    async fn update_gate_for(&self, root: ContentId) {
        let Some(gate) = &self.gate else {
            return;
        };
        let record = match self.library.artifact(root) {
            Ok(Some(record)) => record,
            _ => return self.refresh_gate().await,
        };
        if !self.policy.allows(record.licence.as_deref()) || self.denied.denies(root) {
            return self.refresh_gate().await;
        }
        let mut blobs = vec![record.root.hash(), record.manifest];
        if let Ok(stored) = self.library.stored_root(root).await {
            blobs.extend(stored.manifest.files.iter().map(|f| f.hash));
        }
        // A denied root's own hash stays blocked whatever else holds those bytes.
        let denied = self.denied.denied_roots();
        blobs.retain(|hash| !denied.contains(&ContentId(*hash)));
        gate.allow(&blobs);
    }

    /// Tells the seed gate the blobs not to serve: those only artifacts under a licence
    /// the node does not seed, or named by a denylist, hold; and every denied root.
    pub async fn refresh_gate(&self) {
        let Some(gate) = &self.gate else {
            return;
        };
        let denied = self.denied.denied_roots();
        let policy = &self.policy;
        let licence_only = self
            .library
            .unseeded_blobs(|record| policy.allows(record.licence.as_deref()))
            .await;
        let all = self
            .library
            .unseeded_blobs(|record| {
                policy.allows(record.licence.as_deref()) && !denied.contains(&record.root)
            })
            .await;
        match (licence_only, all) {
            (Ok(licence_only), Ok(mut all)) => {
                all.extend(denied.iter().map(|root| root.hash()));
                let denied_blobs = all.difference(&licence_only).copied().collect();
                gate.set(licence_only, denied_blobs);
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot update the blobs not to seed")
            }
        }
    }

    /// Stops the announcer.
    pub fn stop(&self) {
        if let Some(announcer) = &self.announcer {
            announcer.stop();
        }
    }
}

/// Wakes the announcer and stops it; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Announcer {
    wake: Arc<Notify>,
    stop: CancellationToken,
}

impl Announcer {
    /// Starts the announcer task for `library` on `net`, scheduling by `clock`.
    pub fn spawn(
        library: Library,
        net: NetHandle,
        clock: Clock,
        policy: LicencePolicy,
        denied: DeniedRoots,
    ) -> Self {
        let announcer = Self::default();
        tokio::spawn(tracing::Instrument::instrument(
            announcer.clone().run(library, net, clock, policy, denied),
            tracing::info_span!("announcer"),
        ));
        announcer
    }

    /// Schedules `root` to be announced now and wakes the task.
    pub async fn announce_soon(&self, library: &Library, root: ContentId) {
        if let Err(e) = library.schedule_announce(root, 0).await {
            tracing::warn!(%root, error = %e, "cannot schedule an announcement");
        }
        self.wake.notify_one();
    }

    /// Stops the task.
    pub fn stop(&self) {
        self.stop.cancel();
    }

    async fn run(
        self,
        library: Library,
        net: NetHandle,
        clock: Clock,
        policy: LicencePolicy,
        denied: DeniedRoots,
    ) {
        let mut announced_everything = false;
        let mut reached_network = false;
        loop {
            let has_peers = net
                .status()
                .await
                .is_ok_and(|status| status.routing_table_size > 0);
            let everything = !announced_everything || (has_peers && !reached_network);
            let seeds = |record: &ArtifactRecord| {
                let allowed = policy.allows(record.licence.as_deref());
                if !allowed {
                    tracing::debug!(root = %record.root, "not announced: {}", policy.refusal(record.licence.as_deref()));
                }
                allowed
            };
            match library
                .due_announcements(clock.now_secs(), everything, seeds)
                .await
            {
                Ok(due) => {
                    announce(&library, &net, &clock, &denied, due).await;
                    announced_everything = true;
                    reached_network |= has_peers;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "listing due announcements failed; will retry")
                }
            }
            let wait = if reached_network {
                ANNOUNCE_CHECK_INTERVAL
            } else {
                ALONE_CHECK_INTERVAL
            };
            tokio::select! {
                () = self.stop.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

/// Announces each of `due` but those a denylist names (checked one by one, as a list
/// may name one meanwhile), scheduling its renewal; failures are logged and retried at
/// the next check.
async fn announce(
    library: &Library,
    net: &NetHandle,
    clock: &Clock,
    denied: &DeniedRoots,
    due: Vec<ContentId>,
) {
    for root in due {
        if denied.denies(root) {
            tracing::debug!(%root, "not announced: a denylist this node follows names it");
            continue;
        }
        match net.start_providing(root).await {
            Ok(()) => {
                let next = clock.now_secs() + REANNOUNCE_INTERVAL.as_secs();
                if let Err(e) = library.schedule_announce(root, next).await {
                    tracing::debug!(%root, error = %e, "cannot schedule the next announcement");
                }
                tracing::debug!(%root, "announced");
            }
            Err(e) => tracing::debug!(%root, error = %e, "announcing failed; will retry"),
        }
    }
}
