//! The announcer: keeps a provider record in the DHT for every complete artifact the
//! node holds.
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

use crate::denylist::Denylists;
use crate::import::unix_now;
use crate::library::Library;
use crate::names::LicencePolicy;
use crate::net::NetHandle;

/// How often due announcements are checked once the node has peers.
pub const ANNOUNCE_CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How often the node checks for its first peer while it has none.
pub const ALONE_CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// How long an announcement stands before it is renewed (records live 48 hours).
pub const REANNOUNCE_INTERVAL: Duration = Duration::from_secs(12 * 3600);

/// Wakes the announcer and stops it; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Announcer {
    wake: Arc<Notify>,
    stop: CancellationToken,
}

impl Announcer {
    /// Starts the announcer task for `library` on `net`.
    pub fn spawn(
        library: Library,
        net: NetHandle,
        policy: LicencePolicy,
        denylists: Denylists,
    ) -> Self {
        let announcer = Self::default();
        tokio::spawn(announcer.clone().run(library, net, policy, denylists));
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
        policy: LicencePolicy,
        denylists: Denylists,
    ) {
        let mut announced_everything = false;
        let mut reached_network = false;
        loop {
            let has_peers = net
                .status()
                .await
                .is_ok_and(|status| status.routing_table_size > 0);
            let everything = !announced_everything || (has_peers && !reached_network);
            match library
                .due_announcements(unix_now(), everything, &policy)
                .await
            {
                Ok(due) => {
                    announce(&library, &net, &denylists, due).await;
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
async fn announce(library: &Library, net: &NetHandle, denylists: &Denylists, due: Vec<ContentId>) {
    for root in due {
        if denylists.denies(root) {
            tracing::debug!(%root, "not announced: a denylist this node follows names it");
            continue;
        }
        match net.start_providing(root).await {
            Ok(()) => {
                let next = unix_now() + REANNOUNCE_INTERVAL.as_secs();
                if let Err(e) = library.schedule_announce(root, next).await {
                    tracing::debug!(%root, error = %e, "cannot schedule the next announcement");
                }
                tracing::debug!(%root, "announced");
            }
            Err(e) => tracing::debug!(%root, error = %e, "announcing failed; will retry"),
        }
    }
}
