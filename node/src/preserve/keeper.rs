//! The keeper: a round every `follow_interval` (and at once when a follow is added)
//! that reads each follow's publisher records, fetches and pins new releases, refreshes
//! the spot checks that have grown old, and repairs: fetches watched collection members
//! whose verified copies fell below their target ([`super::plan`]). A member no
//! provider answers for is checked again after a wait that doubles each time
//! ([`super::book::Unreachable`]), so a collection of lost members costs little per
//! round.

use std::time::Duration;

use futures::stream::{self, StreamExt};
use seedbank_protocol::api::FetchRequest;
use seedbank_protocol::{ArtifactKind, ContentId, Manifest};
use tracing::Instrument;

use super::follow::{latest_releases, Latest};
use super::plan::{choose_repairs, Candidate};
use super::service::Preserver;
use super::{follow_reason, FollowRecord, WatchedMember};
use crate::error::{NodeError, NodeResult};
use crate::progress::ProgressReporter;
use crate::random::random_u64;

/// Follows whose publisher records are read at once in a round.
const FOLLOWS_READ_AT_ONCE: usize = 8;

/// The first round after a start waits this long, so the node has found peers.
const FIRST_ROUND_DELAY: Duration = Duration::from_secs(5);

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoundReport {
    /// Releases fetched because a followed name has a new one.
    pub followed: Vec<ContentId>,
    /// Under-replicated members fetched.
    pub repaired: Vec<ContentId>,
    /// Bytes of the artifacts repaired.
    pub repair_bytes: u64,
    /// Artifacts whose providers were spot-checked.
    pub checked: usize,
}

impl Preserver {
    /// Runs the keeper until the node shuts down.
    pub fn spawn_keeper(&self) {
        let node = self.clone();
        let stop = self.stop.clone();
        let span = tracing::info_span!("keeper");
        tokio::spawn(
            async move {
                let wait = |d| tokio::time::sleep(d);
                tokio::select! {
                    _ = stop.cancelled() => return,
                    _ = wait(FIRST_ROUND_DELAY) => {}
                }
                loop {
                    match node.preserve_round().await {
                        Ok(report) if report != RoundReport::default() => {
                            tracing::info!(?report, "preservation round");
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "preservation round failed"),
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = node.wake.notified() => {}
                        _ = wait(node.options.follow_interval) => {}
                    }
                }
            }
            .instrument(span),
        );
    }

    /// One round: follows, stale spot checks, repairs.
    pub async fn preserve_round(&self) -> NodeResult<RoundReport> {
        let mut report = RoundReport::default();
        // The publishers' records are read a few follows at once (DHT lookups wait on
        // the network); what they name is then kept one follow after another, so
        // each fetch sees the budget the ones before it left.
        let reads = stream::iter(self.book.follows()?)
            .map(|follow| async move {
                let releases = latest_releases(&self.names, &follow.follow_target()).await;
                (follow, releases)
            })
            .buffered(FOLLOWS_READ_AT_ONCE)
            .collect::<Vec<_>>()
            .await;
        for (follow, releases) in reads {
            self.refresh_follow(follow, releases, &mut report).await?;
        }
        self.repair(&mut report).await?;
        Ok(report)
    }

    /// Reads a follow's publisher records, keeps new releases and notes the members of
    /// its collections. Errors end up in the record, for `seedbank following`.
    async fn refresh_follow(
        &self,
        mut follow: FollowRecord,
        releases: NodeResult<Vec<Latest>>,
        report: &mut RoundReport,
    ) -> NodeResult<()> {
        let target = follow.target();
        let mut errors = Vec::new();
        match releases {
            Ok(releases) => {
                let mut watched = Vec::new();
                for latest in releases {
                    let kept = self.keep(&latest, &follow, &mut errors).await;
                    if kept && !follow.kept.contains(&latest.root) {
                        follow.kept.push(latest.root);
                        report.followed.push(latest.root);
                    }
                    if kept && latest.kind == ArtifactKind::Collection {
                        match self.library.read_collection(latest.root).await {
                            Ok(collection) => {
                                watched.extend(collection.members.iter().map(|m| WatchedMember {
                                    root: m.id,
                                    target: collection.target_of(m),
                                    name: m.name.clone(),
                                    licence: m.licence.clone(),
                                }))
                            }
                            Err(e) => errors.push(format!("{}: {e}", latest.reference)),
                        }
                    }
                }
                watched.dedup_by_key(|m| m.root);
                follow.watched = watched;
            }
            Err(e) => errors.push(e.to_string()),
        }
        follow.checked_at = Some(self.clock.now_secs());
        follow.last_error = (!errors.is_empty()).then(|| errors.join("; "));
        if let Some(error) = &follow.last_error {
            tracing::warn!(%target, %error, "following");
        }
        // The follow may have been removed while this round read the network.
        if self.book.follow(&target)?.is_some() {
            self.book.put_follow(&follow)?;
        }
        Ok(())
    }

    /// Fetches and pins `latest` for `follow` unless held, refused by the licence policy
    /// or too big for the budget. Whether it is kept here now.
    async fn keep(&self, latest: &Latest, follow: &FollowRecord, errors: &mut Vec<String>) -> bool {
        let reason = follow_reason(&follow.target());
        if self.library.holds_complete(latest.root).await {
            if self.library.pin_of(latest.root).ok().flatten().is_none() {
                if let Err(e) = self
                    .library
                    .pin_with(latest.root, Some(reason), Some(follow.replicas))
                    .await
                {
                    errors.push(format!("{}: {e}", latest.reference));
                }
            }
            return true;
        }
        if let Some(refusal) = self.denied.refusal(latest.root) {
            errors.push(format!("{}: not kept: {refusal}", latest.reference));
            return false;
        }
        if !self.names.policy().allows(latest.licence.as_deref()) {
            errors.push(format!(
                "{}: not kept: {}",
                latest.reference,
                self.names.policy().refusal(latest.licence.as_deref())
            ));
            return false;
        }
        // The release's size is the publisher's claim; the manifest's sizes are what the
        // files' hashes will hold the transfer to. Files earlier releases share are
        // kept already and cost the budget nothing more.
        let manifest = match self.fetcher.fetch_manifest(latest.root).await {
            Ok(manifest) => manifest,
            Err(e) => {
                errors.push(format!("{}: not kept: {e}", latest.reference));
                return false;
            }
        };
        if let Err(e) = self.check_budget(&manifest, &latest.reference).await {
            errors.push(e.to_string());
            return false;
        }
        match self
            .fetch_and_pin(&latest.reference, reason, follow.replicas)
            .await
        {
            Ok(_) => true,
            Err(e) => {
                errors.push(format!("{}: {e}", latest.reference));
                false
            }
        }
    }

    /// Refuses an artifact with `manifest` when the preservation budget cannot take the
    /// bytes of its files that follows do not keep already.
    async fn check_budget(&self, manifest: &Manifest, what: &str) -> NodeResult<()> {
        let Some(budget) = self.options.budget else {
            return Ok(());
        };
        let mut kept = self.follow_blobs().await?;
        let used: u64 = kept.values().sum();
        let size: u64 = manifest
            .files
            .iter()
            .filter_map(|file| {
                kept.insert(file.hash, file.size)
                    .is_none()
                    .then_some(file.size)
            })
            .sum();
        if used.saturating_add(size) > budget {
            return Err(NodeError::BadRequest(format!(
                "{what}: not kept: it needs {size} bytes and the preservation budget has {} of {budget} left (preserve_budget)",
                budget.saturating_sub(used)
            )));
        }
        Ok(())
    }

    /// Fetches `reference` and pins it for a follow.
    async fn fetch_and_pin(
        &self,
        reference: &str,
        reason: String,
        replicas: u32,
    ) -> NodeResult<u64> {
        let fetch = FetchRequest {
            id: reference.to_owned(),
            allow_unsigned: false,
            include: Vec::new(),
            pin: true,
        };
        let fetched = self
            .fetcher
            .fetch(fetch, &mut ProgressReporter::silent())
            .await?;
        self.library
            .pin_with(fetched.id, Some(reason), Some(replicas))
            .await?;
        Ok(self.library.artifact(fetched.id)?.map_or(0, |r| r.size))
    }

    /// Refreshes old spot checks of watched members and pins with a target, then
    /// fetches the members that are below their target: least-replicated first, within
    /// the budget, a few per round, each after a random wait and a fresh check.
    async fn repair(&self, report: &mut RoundReport) -> NodeResult<()> {
        let stale_after = self.options.health_interval.as_secs();
        let now = self.clock.now_secs();
        // An artifact no provider answered for is tried again after a wait that
        // doubles with each failure, so unreachable members cost little per round.
        let is_stale = |root| -> NodeResult<bool> {
            if let Some(unreachable) = self.book.unreachable(root)? {
                return Ok(unreachable.is_due(now, stale_after));
            }
            let old = self.book.health(root)?;
            Ok(old.is_none_or(|h| h.is_stale(now, stale_after)))
        };
        let mut seen = std::collections::HashSet::new();
        let mut to_check = Vec::new();
        for (root, pin) in self.library.pins()? {
            if pin.replica_target.is_some() && seen.insert(root) && is_stale(root)? {
                to_check.push((root, self.library.holds_complete(root).await));
            }
        }
        let mut members = Vec::new();
        for follow in self.book.follows()? {
            let reason = follow_reason(&follow.target());
            for member in follow.watched {
                if !seen.insert(member.root) {
                    continue;
                }
                if self.library.holds_complete(member.root).await {
                    // Held already (fetched by hand, or cached): keep it for the follow.
                    if self.library.pin_of(member.root)?.is_none() {
                        self.library
                            .pin_with(member.root, Some(reason.clone()), Some(member.target))
                            .await?;
                    }
                    continue;
                }
                // Outside the licence policy, or on a denylist this node follows.
                if !self.names.policy().allows(member.licence.as_deref())
                    || self.denied.denies(member.root)
                {
                    continue;
                }
                if is_stale(member.root)? {
                    to_check.push((member.root, false));
                }
                members.push((member, reason.clone()));
            }
        }
        let mut checked = self.check_many(to_check).await;
        report.checked += checked.values().filter(|r| r.is_ok()).count();
        let mut candidates = Vec::new();
        for (member, reason) in members {
            let record = match checked.remove(&member.root) {
                Some(Ok(record)) => record,
                Some(Err(e)) => {
                    tracing::debug!(root = %member.root, error = %e, "cannot check a watched member");
                    continue;
                }
                None => match self.book.health(member.root)? {
                    Some(record) => record,
                    None => continue,
                },
            };
            // No copy proved it exists, so a fetch has nobody to fetch from: every
            // preserver would spend a repair slot (and a fetch timeout) on it each
            // round, least-replicated first, and none would be left for members
            // that can still be saved.
            if record.verified() == 0 || self.book.unreachable(member.root)?.is_some() {
                tracing::debug!(root = %member.root, "no verified copy left to repair from");
                continue;
            }
            let size = match self.fetcher.fetch_manifest(member.root).await {
                Ok(manifest) => manifest.files.iter().map(|f| f.size).sum(),
                Err(_) => continue,
            };
            candidates.push(Candidate {
                item: (member.root, reason),
                size,
                verified: record.verified(),
                target: member.target,
            });
        }
        let used = match self.options.budget {
            Some(_) => self.follow_bytes().await.unwrap_or(u64::MAX),
            None => 0,
        };
        let budget_left = self.options.budget.map(|b| b.saturating_sub(used));
        let chosen = choose_repairs(
            &candidates,
            budget_left,
            self.options.repairs_per_round,
            random_u64,
        );
        for candidate in chosen {
            let (root, reason) = &candidate.item;
            self.jitter().await;
            // Another preserver may have repaired it meanwhile.
            let fresh = match self.check_health(*root, false).await {
                Ok(fresh) => fresh,
                Err(e) => {
                    tracing::warn!(%root, error = %e, "cannot check a member before repairing it");
                    continue;
                }
            };
            report.checked += 1;
            if fresh.verified() >= candidate.target {
                continue;
            }
            match self
                .fetch_and_pin(&root.to_string(), reason.clone(), candidate.target)
                .await
            {
                Ok(bytes) => {
                    tracing::info!(%root, bytes, verified = fresh.verified(), target = candidate.target, "repaired an under-replicated artifact");
                    report.repaired.push(*root);
                    report.repair_bytes += bytes;
                }
                Err(e) => tracing::warn!(%root, error = %e, "repair failed"),
            }
        }
        Ok(())
    }

    /// Waits a random time up to the repair jitter.
    async fn jitter(&self) {
        let most = self.options.repair_jitter.as_millis() as u64;
        if most > 0 {
            let millis = random_u64() % most;
            tokio::time::sleep(Duration::from_millis(millis)).await;
        }
    }
}
