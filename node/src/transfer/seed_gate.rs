//! The blobs a node will not serve: those that belong only to artifacts under a licence
//! outside its allowlist (`seed_licences`), or to artifacts a denylist it follows names
//! (and those roots themselves). The blob provider asks the gate about every request
//! (iroh-blobs' request events, intercepted) and refuses those, so a node that holds
//! such an artifact never seeds it, even to a peer that asks without a DHT lookup. It
//! also refuses the ranges this node's spot checks are challenging others for right now
//! ([`Challenges`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

use iroh_blobs::provider::events::{
    AbortReason, EventMask, EventSender, ProviderMessage, RequestMode,
};
use seedbank_protocol::BlobHash;

use super::challenges::Challenges;
use super::provider_stats::ProviderStats;
use crate::library::store::to_iroh;

/// Requests waiting for the gate's answer before the provider waits.
const PENDING_QUESTIONS: usize = 256;

/// Why a blob is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Only artifacts under a licence the node does not seed hold it.
    Licence,
    /// A denylist the node follows names an artifact that holds it.
    Denied,
}

/// The set of blobs not to serve, each with why.
#[derive(Debug, Clone, Default)]
pub struct SeedGate {
    blocked: Arc<RwLock<HashMap<iroh_blobs::Hash, Refusal>>>,
    challenges: Challenges,
}

impl SeedGate {
    /// Replaces the blobs not to serve: `licence` for their licence, `denied` for a
    /// denylist.
    pub fn set(&self, licence: HashSet<BlobHash>, denied: HashSet<BlobHash>) {
        let blocked = licence
            .into_iter()
            .map(|hash| (to_iroh(hash), Refusal::Licence))
            .chain(
                denied
                    .into_iter()
                    .map(|hash| (to_iroh(hash), Refusal::Denied)),
            )
            .collect();
        *self
            .blocked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = blocked;
    }

    /// Serves `hashes` from now on (a seeded artifact that holds them arrived).
    pub fn allow(&self, hashes: &[BlobHash]) {
        let mut blocked = self
            .blocked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for hash in hashes {
            blocked.remove(&to_iroh(*hash));
        }
    }

    /// The challenges this node's spot checks have out, refused while they are.
    pub fn challenges(&self) -> &Challenges {
        &self.challenges
    }

    /// Why `hash` is not to be served, if it is not.
    pub fn blocks(&self, hash: &iroh_blobs::Hash) -> Option<Refusal> {
        self.blocked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(hash)
            .copied()
    }

    /// An event sender for the blob provider that refuses requests for blocked blobs,
    /// counting each refusal into `stats`. Spawns the task that answers.
    pub fn event_sender(&self, stats: ProviderStats) -> EventSender {
        let mask = EventMask {
            get: RequestMode::Intercept,
            get_many: RequestMode::Intercept,
            ..EventMask::DEFAULT
        };
        let (sender, mut questions) = EventSender::channel(PENDING_QUESTIONS, mask);
        let gate = self.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                while let Some(question) = questions.recv().await {
                    match question {
                        ProviderMessage::GetRequestReceived(msg) => {
                            let request = &msg.inner.request;
                            let answer = if gate.challenges.forbid(request) {
                                challenged()
                            } else {
                                gate.answer(&[request.hash], &stats)
                            };
                            msg.tx.send(answer).await.ok();
                        }
                        ProviderMessage::GetManyRequestReceived(msg) => {
                            let request = &msg.inner.request;
                            let answer = if gate.challenges.forbid_many(request) {
                                challenged()
                            } else {
                                gate.answer(&request.hashes, &stats)
                            };
                            msg.tx.send(answer).await.ok();
                        }
                        _ => {}
                    }
                }
            },
            tracing::info_span!("seed_gate"),
        ));
        sender
    }

    fn answer(
        &self,
        hashes: &[iroh_blobs::Hash],
        stats: &ProviderStats,
    ) -> Result<(), AbortReason> {
        match hashes.iter().find_map(|h| self.blocks(h)) {
            Some(Refusal::Licence) => {
                tracing::debug!("refusing a blob request: licence not seeded here");
                stats.refused_licence();
                Err(AbortReason::Permission)
            }
            Some(Refusal::Denied) => {
                tracing::debug!("refusing a blob request: a denylist this node follows names it");
                stats.refused_denied();
                Err(AbortReason::Permission)
            }
            None => Ok(()),
        }
    }
}

/// The refusal of a request for a range this node is challenging others for.
fn challenged() -> Result<(), AbortReason> {
    tracing::debug!("refusing a blob request: this node is challenging peers for that range");
    Err(AbortReason::Permission)
}
