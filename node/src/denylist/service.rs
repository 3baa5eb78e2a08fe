//! The denylist service's operations: subscribing (to keys it trusts only), refreshing on
//! a schedule, publishing, and reacting when what is denied changes: announcements of
//! newly denied artifacts are withdrawn and their fetches cancelled, the seed gate stops
//! serving their blobs, and artifacts a list no longer names are announced again.
//! Artifacts already held stay on disk; the user decides whether to remove them.

use std::time::Duration;

use seedbank_protocol::denylist_api::{
    DenylistPublishReport, DenylistPublishRequest, DenylistRefreshReport, DenylistSubscribeRequest,
    DenylistSubscription,
};
use seedbank_protocol::PublisherKey;
use tracing::Instrument;

use super::publish::publish_list;
use super::read::{read_latest, ReadList};
use super::{DenyBook, Denylists, StoredEntry, SubscriptionRecord};
use crate::denied::DenyChanges;
use crate::error::{NodeError, NodeResult};
use crate::names::Names;
use crate::progress::ProgressReporter;

/// How often the refresher looks for lists due a refresh (or the refresh interval,
/// when that is shorter).
const REFRESH_CHECK_INTERVAL: Duration = Duration::from_secs(60);

impl Denylists {
    /// Subscribes to `PUBLISHER/NAME`, whose publisher must be a key this node trusts or
    /// one of its own, and reads the list at once. A list that cannot be found or read
    /// is refused; one whose publisher is out of reach is kept and tried again later.
    /// Subscribing again refreshes the list.
    pub async fn subscribe(
        &self,
        request: &DenylistSubscribeRequest,
    ) -> NodeResult<DenylistSubscription> {
        let (publisher, name) = self.parse_list(&request.list)?;
        let (_, trusted) = self.names().describe(&publisher)?;
        if !trusted {
            return Err(NodeError::Denied(format!(
                "{publisher} is not a publisher this node trusts, and a denylist decides what \
                 this node refuses: trust the key first (`seedbank trust add ALIAS \
                 {publisher}`), then subscribe to ALIAS/{name}"
            )));
        }
        if self.book().get(&publisher, &name)?.is_some() {
            self.refresh_denylist(&publisher, &name).await?;
        } else {
            let mut record = SubscriptionRecord::new(self.clock().now_secs());
            match read_latest(self, &publisher, &name).await {
                Ok(read) => record_read(&mut record, read, self.clock().now_secs()),
                Err(e @ (NodeError::NotFound(_) | NodeError::BadRecord(_))) => return Err(e),
                Err(e) => record_failure(&mut record, &e, self.clock().now_secs()),
            }
            self.change_denylists(|book| book.put(&publisher, &name, &record))
                .await?;
            tracing::info!(%publisher, name, entries = record.entries.len(), "subscribed to a denylist");
        }
        self.subscription(&publisher, &name)
    }

    /// Ends a subscription; what only that list named is no longer denied.
    pub async fn unsubscribe(&self, list: &str) -> NodeResult<DenylistSubscription> {
        let (publisher, name) = self.subscribed_list(list)?;
        let mut removed = None;
        self.change_denylists(|book| {
            removed = book.remove(&publisher, &name)?;
            Ok(())
        })
        .await?;
        let record = removed.ok_or_else(|| not_subscribed(list))?;
        tracing::info!(%publisher, name, "unsubscribed from a denylist");
        Ok(self.view(&publisher, &name, &record))
    }

    /// Refreshes every subscription now.
    pub async fn refresh_all(&self) -> NodeResult<DenylistRefreshReport> {
        for (publisher, name, _) in self.book().all()? {
            self.refresh_denylist(&publisher, &name).await?;
        }
        Ok(DenylistRefreshReport {
            subscriptions: self.subscriptions()?,
            denied: self.denied().denied_roots().len() as u64,
        })
    }

    /// Publishes the next revision of one of this node's lists; a subscription of this
    /// node to it takes the new revision at once.
    pub async fn publish(
        &self,
        request: &DenylistPublishRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<DenylistPublishReport> {
        let report = publish_list(self, request, progress).await?;
        if self.book().get(&report.publisher, &report.name)?.is_some() {
            self.refresh_denylist(&report.publisher, &report.name)
                .await?;
        }
        Ok(report)
    }

    /// Reads the latest revision of one list (if still subscribed) and applies it; a
    /// failure is recorded with the subscription, whose entries stay in force.
    async fn refresh_denylist(&self, publisher: &PublisherKey, name: &str) -> NodeResult<()> {
        let Some(mut record) = self.book().get(publisher, name)? else {
            return Ok(());
        };
        let (_, trusted) = self.names().describe(publisher)?;
        if trusted {
            match read_latest(self, publisher, name).await {
                Ok(read) => record_read(&mut record, read, self.clock().now_secs()),
                Err(e) => record_failure(&mut record, &e, self.clock().now_secs()),
            }
        } else {
            record.last_attempt = Some(self.clock().now_secs());
            record.last_error = Some(format!(
                "not refreshed: {publisher} is no longer trusted; the entries read before stay \
                 in force until you unsubscribe (or trust the key again)"
            ));
        }
        if let Some(error) = &record.last_error {
            tracing::info!(%publisher, name, error, "denylist refresh failed; its entries stay in force");
        }
        self.change_denylists(|book| match book.get(publisher, name)? {
            // Unsubscribed while the list was read.
            None => Ok(()),
            Some(_) => book.put(publisher, name, &record),
        })
        .await
    }

    /// Runs `change` on the subscriptions, rebuilds what is denied and reacts to what
    /// changed, all under the denylists' lock.
    async fn change_denylists(
        &self,
        change: impl FnOnce(&DenyBook) -> NodeResult<()>,
    ) -> NodeResult<()> {
        let _changing = self.lock_changes().await;
        change(self.book())?;
        self.library().flush().await?;
        let changes = self.rebuild()?;
        self.react_to_denials(&changes).await;
        Ok(())
    }

    /// Withdraws and cancels what became denied, stops serving it, and announces again
    /// what no longer is. Failures are logged: the denial itself already holds.
    async fn react_to_denials(&self, changes: &DenyChanges) {
        for &root in &changes.added {
            let held = matches!(self.library().artifact(root), Ok(Some(_)));
            tracing::info!(%root, held, "denied by a denylist: not fetched, served or announced from now on");
            if held {
                if let Err(e) = self.library().forget_announce(root).await {
                    tracing::warn!(%root, error = %e, "cannot forget the announcement of a denied artifact");
                }
                if let Err(e) = self.inner.parts.net.stop_providing(root).await {
                    tracing::debug!(%root, error = %e, "cannot withdraw the announcement of a denied artifact");
                }
            }
            let fetching = self.fetcher().job_of(root).is_ok_and(|job| job.is_some());
            if fetching {
                if let Err(e) = self.fetcher().cancel_root(root).await {
                    tracing::warn!(%root, error = %e, "cannot cancel the fetch of a denied artifact");
                }
            }
        }
        self.seeding().refresh_gate().await;
        if self.seeding().seeds() {
            for &root in &changes.removed {
                if matches!(self.library().artifact(root), Ok(Some(_))) {
                    tracing::info!(%root, "no longer denied: announcing it again");
                    self.seeding().announce_soon(root).await;
                }
            }
        }
    }

    /// Refreshes lists as they fall due, until the node stops.
    pub fn spawn_refresher(&self) {
        let lists = self.clone();
        let stop = self.stop_token();
        let check = self.interval().min(REFRESH_CHECK_INTERVAL);
        let span = tracing::info_span!("denylist_refresher");
        tokio::spawn(
            async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(check) => {}
                }
                let due = match lists.due(lists.clock().now_secs()) {
                    Ok(due) => due,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot list the denylists due a refresh");
                        continue;
                    }
                };
                for (publisher, name) in due {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        refreshed = lists.refresh_denylist(&publisher, &name) => {
                            if let Err(e) = refreshed {
                                tracing::warn!(%publisher, name, error = %e, "cannot refresh a denylist");
                            }
                        }
                    }
                }
            }
            }
            .instrument(span),
        );
    }

    /// A subscription as the API shows it.
    fn subscription(
        &self,
        publisher: &PublisherKey,
        name: &str,
    ) -> NodeResult<DenylistSubscription> {
        let record = self
            .book()
            .get(publisher, name)?
            .ok_or_else(|| not_subscribed(&format!("{publisher}/{name}")))?;
        Ok(self.view(publisher, name, &record))
    }

    /// The publisher and name of `PUBLISHER/NAME` (no revision: a list is always read at
    /// its latest).
    fn parse_list(&self, text: &str) -> NodeResult<(PublisherKey, String)> {
        let name_ref = Names::parse_name(text)?;
        if name_ref.revision.is_some() {
            return Err(NodeError::BadRequest(format!(
                "{text}: subscribe to PUBLISHER/NAME without a revision; a denylist is always \
                 read at its latest"
            )));
        }
        Ok((self.names().publisher(&name_ref.publisher)?, name_ref.name))
    }

    /// The subscription `text` names: as `denylist list` shows it, by key, or by alias.
    fn subscribed_list(&self, text: &str) -> NodeResult<(PublisherKey, String)> {
        for (publisher, name, _) in self.book().all()? {
            if self.denied().list_text(&publisher, &name) == text
                || format!("{publisher}/{name}") == text
            {
                return Ok((publisher, name));
            }
        }
        self.parse_list(text)
    }
}

/// Takes a revision read at `now` (seconds since the Unix epoch) into a subscription.
fn record_read(record: &mut SubscriptionRecord, read: ReadList, now: u64) {
    record.last_attempt = Some(now);
    record.last_refresh = Some(now);
    record.last_error = None;
    record.root = Some(read.root);
    record.revision = Some(read.list.revision);
    record.entries = read.list.entries.iter().map(StoredEntry::from).collect();
}

/// Notes a read that failed at `now`; the entries read before stay.
fn record_failure(record: &mut SubscriptionRecord, error: &NodeError, now: u64) {
    record.last_attempt = Some(now);
    record.last_error = Some(error.to_string());
}

fn not_subscribed(list: &str) -> NodeError {
    NodeError::NotFound(format!(
        "this node does not subscribe to {list} (`seedbank denylist list` shows its lists)"
    ))
}
