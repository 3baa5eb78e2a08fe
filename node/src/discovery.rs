//! Finding peers that hold an artifact: complete providers (listed under its root) and
//! partial ones (peers still fetching it, listed under its swarm key). The fetcher asks
//! through [`ContentDiscovery`] and knows nothing of the DHT behind it.

use std::time::Duration;

use futures::future::BoxFuture;
use libp2p::PeerId;
use seedbank_protocol::ContentId;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::net::{NetHandle, ProvidersSoFar};

/// Longest a lookup may take; a lookup is repeated while a fetch runs, so a slow one is
/// better abandoned than waited for.
pub const DISCOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long two lookups go on once either has found a provider: those who answer
/// first are enough to start a fetch, which looks again while it runs. Waiting for the
/// lookups to end would wait for every listed peer, and a peer that left stays listed
/// until its record expires, costing a dial timeout (5 s over QUIC).
pub const FOUND_LINGER: Duration = Duration::from_millis(500);

/// Waits on a complete and a partial provider lookup until both end, until
/// [`FOUND_LINGER`] after either found someone, or [`DISCOVER_TIMEOUT`]; the providers
/// each found by then. A lookup that could not start counts as ended with none.
async fn settle(
    complete: Option<watch::Receiver<ProvidersSoFar>>,
    partial: Option<watch::Receiver<ProvidersSoFar>>,
) -> (Vec<PeerId>, Vec<PeerId>) {
    let (mut complete, mut partial) = (Watched::new(complete), Watched::new(partial));
    let deadline = Instant::now() + DISCOVER_TIMEOUT;
    let mut linger_until: Option<Instant> = None;
    while !(complete.last.finished && partial.last.finished) {
        if linger_until.is_none()
            && !(complete.last.providers.is_empty() && partial.last.providers.is_empty())
        {
            linger_until = Some(Instant::now() + FOUND_LINGER);
        }
        let wake = linger_until.map_or(deadline, |linger| linger.min(deadline));
        tokio::select! {
            () = complete.next() => {}
            () = partial.next() => {}
            () = tokio::time::sleep_until(wake) => break,
        }
    }
    (complete.last.providers, partial.last.providers)
}

/// One watched lookup: what it reported last, and the receiver while it runs.
struct Watched {
    receiver: Option<watch::Receiver<ProvidersSoFar>>,
    last: ProvidersSoFar,
}

impl Watched {
    fn new(receiver: Option<watch::Receiver<ProvidersSoFar>>) -> Self {
        let last = ProvidersSoFar {
            providers: Vec::new(),
            finished: receiver.is_none(),
        };
        Self { receiver, last }
    }

    /// Waits for the lookup's next report (forever once it ended) and keeps it.
    async fn next(&mut self) {
        let Some(receiver) = &mut self.receiver else {
            return std::future::pending().await;
        };
        let running = receiver.changed().await.is_ok();
        self.last = receiver.borrow_and_update().clone();
        if !running {
            // The event loop let go of it: it ended, or the network stopped.
            self.last.finished = true;
            self.receiver = None;
        }
    }
}

/// A peer a fetch may ask for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The peer.
    pub peer: PeerId,
    /// Listed as holding the whole artifact. Otherwise it may hold parts (a peer still
    /// fetching, or just a connected peer) and is asked what it has before any request.
    pub complete: bool,
    /// Listed in the DHT (as holding it, or as fetching it), not only connected.
    pub listed: bool,
}

/// Where a fetch finds peers.
pub trait ContentDiscovery: Send + Sync {
    /// Peers listed as holding `root` (complete) or parts of it (partial).
    fn find(&self, root: ContentId) -> BoxFuture<'_, Vec<Candidate>>;

    /// Peers connected now, which may hold parts of anything (asked before use).
    fn connected(&self) -> BoxFuture<'_, Vec<PeerId>>;
}

/// Every peer a fetch of `root` may ask: those discovery lists for it, then connected
/// peers as partial candidates (asked what they hold before any request). Without a
/// root, connected peers only.
pub async fn candidates(
    discovery: &dyn ContentDiscovery,
    root: Option<ContentId>,
) -> Vec<Candidate> {
    let mut found = match root {
        Some(root) => discovery.find(root).await,
        None => Vec::new(),
    };
    for peer in discovery.connected().await {
        if !found.iter().any(|c| c.peer == peer) {
            found.push(Candidate {
                peer,
                complete: false,
                listed: false,
            });
        }
    }
    found
}

impl ContentDiscovery for NetHandle {
    fn find(&self, root: ContentId) -> BoxFuture<'_, Vec<Candidate>> {
        Box::pin(async move {
            let complete = self.watch_providers(root).await.ok();
            let partial = self.watch_providers(root.swarm_key()).await.ok();
            let (complete, partial) = settle(complete, partial).await;
            let local = self.local_peer();
            let mut found: Vec<Candidate> = complete
                .iter()
                .filter(|peer| **peer != local)
                .map(|peer| Candidate {
                    peer: *peer,
                    complete: true,
                    listed: true,
                })
                .collect();
            found.extend(
                partial
                    .into_iter()
                    .filter(|peer| *peer != local && !complete.contains(peer))
                    .map(|peer| Candidate {
                        peer,
                        complete: false,
                        listed: true,
                    }),
            );
            found
        })
    }

    fn connected(&self) -> BoxFuture<'_, Vec<PeerId>> {
        Box::pin(async move {
            self.peers()
                .await
                .unwrap_or_default()
                .into_iter()
                .filter_map(|info| info.peer.parse().ok())
                .collect()
        })
    }
}
