//! Finding peers that hold an artifact: complete providers (listed under its root) and
//! partial ones (peers still fetching it, listed under its swarm key). The fetcher asks
//! through [`ContentDiscovery`] and knows nothing of the DHT behind it.

use std::time::Duration;

use futures::future::BoxFuture;
use libp2p::PeerId;
use seedbank_protocol::ContentId;

use crate::net::NetHandle;

/// Longest a lookup may take; a lookup is repeated while a fetch runs, so a slow one is
/// better abandoned than waited for.
pub const DISCOVER_TIMEOUT: Duration = Duration::from_secs(30);

/// A peer a fetch may ask for data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Candidate {
    /// The peer.
    pub peer: PeerId,
    /// Listed as holding the whole artifact. Otherwise it may hold parts (a peer still
    /// fetching, or just a connected peer) and is asked what it has before any request.
    pub complete: bool,
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
            });
        }
    }
    found
}

impl ContentDiscovery for NetHandle {
    fn find(&self, root: ContentId) -> BoxFuture<'_, Vec<Candidate>> {
        Box::pin(async move {
            let lookup = |key| async move {
                tokio::time::timeout(DISCOVER_TIMEOUT, self.find_providers(key))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default()
            };
            let (complete, partial) = tokio::join!(lookup(root), lookup(root.swarm_key()));
            let local = self.local_peer();
            let mut found: Vec<Candidate> = complete
                .iter()
                .filter(|peer| **peer != local)
                .map(|peer| Candidate {
                    peer: *peer,
                    complete: true,
                })
                .collect();
            found.extend(
                partial
                    .into_iter()
                    .filter(|peer| *peer != local && !complete.contains(peer))
                    .map(|peer| Candidate {
                        peer,
                        complete: false,
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
