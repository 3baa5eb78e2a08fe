//! A provider lookup under way: the providers found so far, and where they go (to a
//! caller waiting for the end, or to one watching them turn up).

use std::collections::HashSet;

use libp2p::PeerId;
use tokio::sync::{oneshot, watch};

use super::handle::{ProviderLookup, ProvidersSoFar};

/// Where a provider lookup's findings go.
pub(super) enum LookupReply {
    /// Once, when the lookup ends.
    Once(oneshot::Sender<ProviderLookup>),
    /// As they turn up, until the lookup ends or nobody watches.
    Watch(watch::Sender<ProvidersSoFar>),
}

/// A provider lookup under way.
pub(super) struct PendingLookup {
    reply: LookupReply,
    /// Providers found so far (this node excluded).
    pub(super) found: HashSet<PeerId>,
    /// DHT peers that had answered when the first provider turned up.
    pub(super) requests_to_first: Option<u32>,
}

impl PendingLookup {
    pub(super) fn new(reply: LookupReply) -> Self {
        Self {
            reply,
            found: HashSet::new(),
            requests_to_first: None,
        }
    }

    /// Tells a watcher what is found so far; whether nobody watches any more.
    pub(super) fn report_progress(&self, finished: bool) -> bool {
        match &self.reply {
            LookupReply::Once(_) => false,
            LookupReply::Watch(watcher) => {
                watcher.send_replace(ProvidersSoFar {
                    providers: self.found.iter().copied().collect(),
                    finished,
                });
                watcher.is_closed()
            }
        }
    }

    /// Sends the outcome to a caller waiting for the end (`requests`: DHT peers that
    /// answered); a watcher has had it already.
    pub(super) fn finish(self, requests: u32) {
        if let LookupReply::Once(reply) = self.reply {
            let _ = reply.send(ProviderLookup {
                providers: self.found.into_iter().collect(),
                requests_to_first: self.requests_to_first,
                requests,
            });
        }
    }
}
