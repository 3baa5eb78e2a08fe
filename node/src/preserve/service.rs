//! The preservation service: pins with replica targets, health, follows and
//! collections, as the control API asks for them. The rounds that act on follows are in
//! the keeper.

use std::collections::HashMap;
use std::sync::Arc;

use futures::stream::{self, StreamExt};

use seedbank_protocol::api::{FetchRequest, PinReport};
use seedbank_protocol::collection::{
    check_replicas, Collection, CollectionMember, COLLECTION_FILE,
};
use seedbank_protocol::names_api::{PublishReport, PublishRequest};
use seedbank_protocol::preserve_api::{
    ArtifactHealth, CollectionRequest, FollowEntry, FollowList, FollowRequest, HealthReport,
    PinRequest,
};
use seedbank_protocol::{ArtifactKind, BlobHash, ContentId, NameRef};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::copy_proof::ProofContext;
use super::follow::FollowTarget;
use super::health::{check_copies, Checker, SilentPeers, ARTIFACTS_AT_ONCE};
use super::{
    follow_reason, FollowRecord, HealthRecord, PreserveBook, PreserveOptions, DEFAULT_REPLICAS,
    FOLLOW_REASON_PREFIX,
};
use crate::announce::Seeding;
use crate::clock::Clock;
use crate::denied::DeniedRoots;
use crate::error::{NodeError, NodeResult};
use crate::fetch::Fetcher;
use crate::library::Library;
use crate::names::Names;
use crate::net::NetHandle;
use crate::progress::ProgressReporter;
use crate::transfer::traffic::Traffic;

/// Longest wait for the manifest of an artifact to check (not held here).
const MANIFEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Licence a published collection carries: a list of ids is facts, free to share.
const COLLECTION_LICENCE: &str = "CC0-1.0";

/// What preservation works with besides its own records.
#[derive(Debug, Clone)]
pub struct Parts {
    /// What is held and pinned.
    pub library: Library,
    /// Publishers' records, for follows and collections; the licence policy.
    pub names: Names,
    /// Spot checks go to providers over it.
    pub net: NetHandle,
    /// Rate limits for spot checks.
    pub traffic: Traffic,
    /// Fetches what follows and repairs keep.
    pub fetcher: Fetcher,
    /// What is never kept.
    pub denied: DeniedRoots,
    /// Publishes collections.
    pub seeding: Seeding,
    /// Stamps follows and spot checks, and says which checks have grown old.
    pub clock: Clock,
}

/// The preservation service: pins with targets, health, follows, collections and the
/// keeper's rounds. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Preserver {
    pub(super) book: PreserveBook,
    pub(super) options: PreserveOptions,
    /// Wakes the keeper for a round now (a follow was added).
    pub(super) wake: Arc<Notify>,
    /// Stops the keeper.
    pub(super) stop: CancellationToken,
    pub(super) library: Library,
    pub(super) names: Names,
    pub(super) net: NetHandle,
    pub(super) traffic: Traffic,
    pub(super) fetcher: Fetcher,
    pub(super) denied: DeniedRoots,
    pub(super) seeding: Seeding,
    pub(super) clock: Clock,
}

impl Preserver {
    /// Preservation over `book` with `options`; the keeper runs once
    /// [`Self::spawn_keeper`] is called.
    pub fn new(book: PreserveBook, options: PreserveOptions, parts: Parts) -> Self {
        let Parts {
            library,
            names,
            net,
            traffic,
            fetcher,
            denied,
            seeding,
            clock,
        } = parts;
        Self {
            book,
            options,
            wake: Arc::default(),
            stop: CancellationToken::new(),
            library,
            names,
            net,
            traffic,
            fetcher,
            denied,
            seeding,
            clock,
        }
    }

    /// The options in force (budget, intervals).
    pub fn options(&self) -> &PreserveOptions {
        &self.options
    }

    /// Stops the keeper.
    pub fn stop(&self) {
        self.stop.cancel();
    }
}

/// One artifact `health` reports on, before its copies are counted.
struct Subject {
    root: ContentId,
    name: Option<String>,
    pinned: bool,
    target: Option<u32>,
    because: String,
}

impl Preserver {
    /// Pins an artifact, fetching it first when it is not here, with a replica target
    /// and a reason.
    pub async fn pin_with(
        &self,
        reference: &str,
        request: &PinRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<PinReport> {
        if let Some(replicas) = request.replicas {
            check_replicas(replicas).map_err(|e| NodeError::BadRequest(e.to_string()))?;
        }
        let fetchable =
            reference.parse::<ContentId>().is_ok() || NameRef::looks_like_name(reference);
        let root = match self.library.find(reference) {
            Ok(record) if self.library.is_complete(&record).await? => record.root,
            // Only content ids and published names can be fetched; a local label that
            // names nothing stays an error about the label.
            Err(e) if !fetchable => return Err(e),
            found => {
                let id = match found {
                    Ok(record) => record.root.to_string(),
                    Err(_) => reference.to_owned(),
                };
                let fetch = FetchRequest {
                    id,
                    allow_unsigned: false,
                    include: Vec::new(),
                    pin: true,
                };
                self.fetcher.fetch(fetch, progress).await?.id
            }
        };
        let report = self
            .library
            .pin_with(root, request.reason.clone(), request.replicas)
            .await?;
        self.names.adopt_soon(root);
        Ok(report)
    }

    /// Every pin and every watched collection member with its copies; with `refresh`,
    /// each one's providers are spot-checked now.
    pub async fn health(&self, refresh: bool) -> NodeResult<HealthReport> {
        let subjects = self.health_subjects()?;
        let mut held = Vec::with_capacity(subjects.len());
        for subject in &subjects {
            held.push(self.library.holds_complete(subject.root).await);
        }
        let mut checked = if refresh {
            let roots = subjects.iter().map(|s| s.root).zip(held.iter().copied());
            self.check_many(roots.collect()).await
        } else {
            HashMap::new()
        };
        let mut artifacts = Vec::with_capacity(subjects.len());
        for (subject, held_here) in subjects.into_iter().zip(held) {
            let (record, check_error) = match checked.remove(&subject.root) {
                Some(Ok(record)) => (Some(record), None),
                Some(Err(e)) => (self.book.health(subject.root)?, Some(e)),
                None => (self.book.health(subject.root)?, None),
            };
            let mut entry = health_of(subject, held_here, record.as_ref());
            entry.check_error = check_error.map(|e| e.to_string());
            entry.failed_checks = self.book.unreachable(entry.id)?.map_or(0, |u| u.failures);
            artifacts.push(entry);
        }
        artifacts.sort_by(|a, b| a.verified.cmp(&b.verified).then(a.id.cmp(&b.id)));
        let under_target = artifacts.iter().filter(|a| a.under_target).count() as u32;
        Ok(HealthReport {
            artifacts,
            under_target,
        })
    }

    /// Checks each of `roots` (with whether it is held here) as [`Self::check_health`]
    /// does, [`ARTIFACTS_AT_ONCE`] at a time; each root's record, or why it could not
    /// be checked.
    pub(super) async fn check_many(
        &self,
        roots: Vec<(ContentId, bool)>,
    ) -> HashMap<ContentId, NodeResult<HealthRecord>> {
        let silent = SilentPeers::default();
        let silent = &silent;
        stream::iter(roots)
            .map(|(root, held_here)| async move {
                (root, self.check_health_with(root, held_here, silent).await)
            })
            .buffer_unordered(ARTIFACTS_AT_ONCE)
            .collect()
            .await
    }

    /// Spot-checks the providers of `root` now and remembers what they answered.
    pub(super) async fn check_health(
        &self,
        root: ContentId,
        held_here: bool,
    ) -> NodeResult<HealthRecord> {
        self.check_health_with(root, held_here, &SilentPeers::default())
            .await
    }

    /// [`Self::check_health`] within a round that already found `silent` silent.
    async fn check_health_with(
        &self,
        root: ContentId,
        held_here: bool,
        silent: &SilentPeers,
    ) -> NodeResult<HealthRecord> {
        let manifest =
            match tokio::time::timeout(MANIFEST_TIMEOUT, self.fetcher.fetch_manifest(root)).await {
                Ok(Ok(manifest)) => manifest,
                // Nobody sent it (nobody listed, every peer silent or gone, or out of
                // time): the keeper backs off. A local failure is not the network's.
                Ok(Err(e @ (NodeError::Unreachable(_) | NodeError::TimedOut(_)))) => {
                    self.book.note_unreachable(root, self.clock.now_secs())?;
                    return Err(e);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    self.book.note_unreachable(root, self.clock.now_secs())?;
                    return Err(NodeError::Unreachable(format!(
                        "no provider sent the manifest of {root}"
                    )));
                }
            };
        self.book.note_reachable(root)?;
        let challenges = self
            .seeding
            .gate()
            .map(|gate| gate.challenges().clone())
            .unwrap_or_default();
        let checker = Checker {
            proof: ProofContext {
                net: &self.net,
                traffic: &self.traffic,
                challenges: &challenges,
            },
            silent,
        };
        let record = check_copies(checker, root, &manifest, held_here, self.clock.now_secs()).await;
        self.book.put_health(root, &record)?;
        Ok(record)
    }

    /// What `health` reports on: pins, then watched members not pinned here.
    fn health_subjects(&self) -> NodeResult<Vec<Subject>> {
        let mut subjects = Vec::new();
        for (root, pin) in self.library.pins()? {
            let name = self
                .library
                .artifact(root)?
                .filter(|r| !r.name.is_empty())
                .map(|r| format!("{}@{}", r.name, r.revision));
            subjects.push(Subject {
                root,
                name,
                pinned: true,
                target: pin.replica_target,
                because: pin.reason.unwrap_or_else(|| "pinned".to_owned()),
            });
        }
        let mut listed: std::collections::HashSet<ContentId> =
            subjects.iter().map(|s| s.root).collect();
        for follow in self.book.follows()? {
            for member in &follow.watched {
                if !listed.insert(member.root) {
                    continue;
                }
                subjects.push(Subject {
                    root: member.root,
                    name: member.name.clone(),
                    pinned: false,
                    target: Some(member.target),
                    because: format!("watched: {}", follow_reason(&follow.target())),
                });
            }
        }
        Ok(subjects)
    }

    /// Starts following a publisher, or one of its names; the first check runs at once.
    pub async fn follow(&self, request: &FollowRequest) -> NodeResult<FollowEntry> {
        let target = FollowTarget::parse(&self.names, &request.target)?;
        let replicas = check_replicas(request.replicas.unwrap_or(DEFAULT_REPLICAS))
            .map_err(|e| NodeError::BadRequest(e.to_string()))?;
        let book = &self.book;
        let record = match book.follow(&target.text())? {
            Some(mut existing) => {
                existing.replicas = replicas;
                existing
            }
            None => FollowRecord {
                publisher: target.publisher,
                name: target.name.clone(),
                replicas,
                added_at: self.clock.now_secs(),
                checked_at: None,
                last_error: None,
                kept: Vec::new(),
                watched: Vec::new(),
            },
        };
        book.put_follow(&record)?;
        self.library.flush().await?;
        self.wake.notify_one();
        Ok(entry_of(&record))
    }

    /// Stops following `target`; what it kept is unpinned (it stays cached, and `gc` or
    /// the storage quota may remove it). Returns the follow as it was.
    pub async fn unfollow(&self, target: &str) -> NodeResult<FollowEntry> {
        let target = FollowTarget::parse(&self.names, target)?.text();
        let book = &self.book;
        let record = book.follow(&target)?.ok_or_else(|| {
            NodeError::NotFound(format!(
                "{target} is not followed (see `seedbank following`)"
            ))
        })?;
        book.remove_follow(&target)?;
        let reason = follow_reason(&target);
        for (root, pin) in self.library.pins()? {
            if pin.reason.as_deref() == Some(reason.as_str()) {
                self.library.set_pinned(&root.to_string(), false).await?;
            }
        }
        for member in &record.watched {
            book.forget_health(member.root)?;
        }
        self.library.flush().await?;
        Ok(entry_of(&record))
    }

    /// Every follow, with the budget and what follows use of it.
    pub async fn following(&self) -> NodeResult<FollowList> {
        Ok(FollowList {
            follows: self.book.follows()?.iter().map(entry_of).collect(),
            budget: self.options.budget,
            budget_used: self.follow_bytes().await?,
        })
    }

    /// Bytes of the artifacts pinned because of follows, each file counted once
    /// however many of them share it.
    pub(super) async fn follow_bytes(&self) -> NodeResult<u64> {
        Ok(self.follow_blobs().await?.values().sum())
    }

    /// The files of the artifacts pinned because of follows, with their sizes (an
    /// artifact whose root is not stored yet counts its recorded size under its id).
    pub(super) async fn follow_blobs(&self) -> NodeResult<HashMap<BlobHash, u64>> {
        let mut blobs = HashMap::new();
        for (root, pin) in self.library.pins()? {
            let by_follow = pin
                .reason
                .as_deref()
                .is_some_and(|r| r.starts_with(FOLLOW_REASON_PREFIX));
            if !by_follow {
                continue;
            }
            match self.library.stored_root(root).await {
                Ok(stored) => blobs.extend(stored.manifest.files.iter().map(|f| (f.hash, f.size))),
                Err(_) => {
                    let size = self.library.artifact(root)?.map_or(0, |r| r.size);
                    blobs.insert(root.hash(), size);
                }
            }
        }
        Ok(blobs)
    }

    /// Publishes a collection of `request.members` under `request.name`.
    pub async fn publish_collection(
        &self,
        request: &CollectionRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<PublishReport> {
        let replicas = check_replicas(request.replicas.unwrap_or(DEFAULT_REPLICAS))
            .map_err(|e| NodeError::BadRequest(e.to_string()))?;
        if request.members.is_empty() {
            return Err(NodeError::BadRequest(
                "a collection needs at least one member".into(),
            ));
        }
        let mut members = Vec::new();
        for text in &request.members {
            members.push(self.collection_member(text).await?);
        }
        let collection =
            Collection::new(replicas, members).map_err(|e| NodeError::BadRequest(e.to_string()))?;
        // A folder of its own, uniquely named: two collections published at once (in
        // the same instant of the node's clock, too) never share one.
        let tmp = self.library.data_root().join("tmp");
        let dir = std::fs::create_dir_all(&tmp)
            .and_then(|()| {
                tempfile::Builder::new()
                    .prefix("collection-")
                    .tempdir_in(&tmp)
            })
            .map_err(|e| NodeError::io("making a folder for the collection", &tmp, e))?;
        let file = dir.path().join(COLLECTION_FILE);
        let written = std::fs::write(&file, collection.encode())
            .map_err(|e| NodeError::io("writing the collection", &file, e));
        let result = match written {
            Ok(()) => {
                let publish = PublishRequest {
                    target: dir.path().to_string_lossy().into_owned(),
                    name: request.name.clone(),
                    revision: Some(
                        request
                            .revision
                            .clone()
                            .unwrap_or_else(|| format!("t{}", self.clock.now_secs())),
                    ),
                    kind: Some(ArtifactKind::Collection),
                    licence: Some(COLLECTION_LICENCE.to_owned()),
                    card: None,
                    tags: Vec::new(),
                    key: request.key.clone(),
                    reference: false,
                };
                self.seeding.publish(&self.names, &publish, progress).await
            }
            Err(e) => Err(e),
        };
        let shown = dir.path().display().to_string();
        if let Err(e) = dir.close() {
            tracing::warn!(dir = %shown, error = %e, "cannot remove a temporary folder");
        }
        result
    }

    /// A collection member from a content id or a published name.
    async fn collection_member(&self, text: &str) -> NodeResult<CollectionMember> {
        if let Ok(id) = text.parse::<ContentId>() {
            let known = self.library.artifact(id)?;
            return Ok(CollectionMember {
                id,
                name: known
                    .as_ref()
                    .filter(|r| !r.name.is_empty())
                    .map(|r| r.name.clone()),
                licence: known.and_then(|r| r.licence),
                replicas: None,
            });
        }
        let resolution = self.names.resolve(text).await.map_err(|e| {
            NodeError::BadRequest(format!(
                "member {text:?} is neither a content id (sb1…) nor a name that resolves: {e}"
            ))
        })?;
        Ok(CollectionMember {
            id: resolution.root,
            name: Some(format!(
                "{}@{}",
                text.split('@').next().unwrap_or(text),
                resolution.revision
            )),
            licence: resolution.release.release.licence,
            replicas: None,
        })
    }
}

/// The health of one subject from its last checks.
fn health_of(subject: Subject, held_here: bool, record: Option<&HealthRecord>) -> ArtifactHealth {
    let remote = record.map_or(0, HealthRecord::verified_elsewhere);
    let verified = u32::from(held_here) + remote;
    let verified_peers =
        u32::from(held_here) + record.map_or(0, HealthRecord::verified_peers_elsewhere);
    let providers = record.map_or(u32::from(held_here), |r| {
        r.providers.max(u32::from(held_here))
    });
    ArtifactHealth {
        id: subject.root,
        name: subject.name,
        held_here,
        pinned: subject.pinned,
        replica_target: subject.target,
        because: subject.because,
        providers,
        verified,
        verified_peers,
        under_target: subject.target.is_some_and(|t| verified < t),
        checked_at: record.map(|r| r.checked_at),
        peers: record.map_or_else(Vec::new, |r| r.peers.iter().map(Into::into).collect()),
        check_error: None,
        failed_checks: 0,
    }
}

/// The API's view of a follow.
fn entry_of(record: &FollowRecord) -> FollowEntry {
    FollowEntry {
        target: record.target(),
        publisher: record.publisher,
        name: record.name.clone(),
        replicas: record.replicas,
        added_at: record.added_at,
        checked_at: record.checked_at,
        last_error: record.last_error.clone(),
        kept: record.kept.clone(),
        watched: record.watched.iter().map(|m| m.root).collect(),
    }
}
