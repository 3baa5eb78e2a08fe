//! The blobs a node will not serve: those that belong only to artifacts under a licence
//! outside its allowlist (`seed_licences`). The blob provider asks the gate about every
//! request (iroh-blobs' request events, intercepted) and refuses those, so a node that
//! holds such an artifact never seeds it, even to a peer that asks without a DHT lookup.

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use iroh_blobs::provider::events::{
    AbortReason, EventMask, EventSender, ProviderMessage, RequestMode,
};
use seedbank_protocol::BlobHash;

use super::provider_stats::ProviderStats;
use crate::store::to_iroh;

/// Requests waiting for the gate's answer before the provider waits.
const PENDING_QUESTIONS: usize = 256;

/// The set of blobs not to serve.
#[derive(Debug, Clone, Default)]
pub struct SeedGate {
    blocked: Arc<RwLock<HashSet<iroh_blobs::Hash>>>,
}

impl SeedGate {
    /// Replaces the set of blobs not to serve.
    pub fn set(&self, hashes: HashSet<BlobHash>) {
        let hashes = hashes.into_iter().map(to_iroh).collect();
        *self
            .blocked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = hashes;
    }

    /// Whether `hash` is not to be served.
    pub fn blocks(&self, hash: &iroh_blobs::Hash) -> bool {
        self.blocked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(hash)
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
        tokio::spawn(async move {
            while let Some(question) = questions.recv().await {
                match question {
                    ProviderMessage::GetRequestReceived(msg) => {
                        let answer = gate.answer(&[msg.inner.request.hash], &stats);
                        msg.tx.send(answer).await.ok();
                    }
                    ProviderMessage::GetManyRequestReceived(msg) => {
                        let answer = gate.answer(&msg.inner.request.hashes, &stats);
                        msg.tx.send(answer).await.ok();
                    }
                    _ => {}
                }
            }
        });
        sender
    }

    fn answer(
        &self,
        hashes: &[iroh_blobs::Hash],
        stats: &ProviderStats,
    ) -> Result<(), AbortReason> {
        if hashes.iter().any(|h| self.blocks(h)) {
            tracing::debug!("refusing a blob request: licence not seeded here");
            stats.refused_licence();
            Err(AbortReason::Permission)
        } else {
            Ok(())
        }
    }
}
