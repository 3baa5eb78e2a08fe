//! Serves other peers' blob requests from the local store.
//!
//! One task accepts incoming `/seedbank/blobs/1` streams as fast as they arrive (libp2p-stream
//! drops streams when the accept loop falls behind) and asks the slot table
//! ([`provider_slots`](super::provider_slots)) whether to serve each: per peer, per IP
//! address and in all, with the longest-idle stream closed to make room for a newcomer.
//! Admitted streams go to iroh-blobs' stream handler in their own task; a stream the
//! table closes (no request in time, no bytes moving, evicted) ends at once. Streams of
//! peers the peer book bans are closed; streams that find every slot busy get the busy
//! answer, so their fetcher backs off instead of counting the data as missing here.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::{AsyncWriteExt, StreamExt};
use iroh_blobs::api::Store;
use iroh_blobs::provider::events::EventSender;
use iroh_blobs::provider::{handle_stream, StreamPair};
use seedbank_protocol::blob_wire::BUSY_ANSWER;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::provider_slots::{Admission, Slots};
use super::provider_stats::ProviderStats;
use super::seed_gate::SeedGate;
use super::streams::{split_stream, StreamSide};
use super::traffic::Traffic;
use crate::error::{NodeError, NodeResult};
use crate::net::{NetHandle, BLOB_PROTOCOL};
use crate::peers::PeerBook;

/// How often stream slots are checked for deadlines and idleness.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// Longest time spent telling a peer it must wait.
const BUSY_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Most busy answers being sent at once; beyond that refused streams are just closed.
const MAX_BUSY_ANSWERS: usize = 64;

/// Starts serving blob requests; runs until the network stops. Returns the counts of
/// what it does. With a `gate`, requests for the blobs it blocks are refused.
pub fn spawn_provider(
    net: &NetHandle,
    store: Store,
    traffic: Traffic,
    peers: PeerBook,
    gate: Option<SeedGate>,
) -> NodeResult<ProviderStats> {
    let mut incoming = net
        .stream_control()
        .accept(BLOB_PROTOCOL)
        .map_err(|e| NodeError::BadRequest(format!("blob protocol registered twice: {e}")))?;
    let stats = ProviderStats::default();
    let events = gate.map_or(EventSender::DEFAULT, |gate| {
        gate.event_sender(stats.clone())
    });
    let slots = Arc::new(Mutex::new(Slots::counting_into(stats.clone())));
    tokio::spawn(tracing::Instrument::instrument(
        watch_slots(Arc::downgrade(&slots)),
        tracing::info_span!("provider_slots"),
    ));
    let busy_answers = Arc::new(Semaphore::new(MAX_BUSY_ANSWERS));
    let net = net.clone();
    let counts = stats.clone();
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            while let Some((peer, stream)) = incoming.next().await {
                let now = Instant::now();
                if peers.is_banned(&peer, now) {
                    tracing::debug!(%peer, "refusing blob stream: peer is banned");
                    counts.refused_banned();
                    continue;
                }
                let admission = lock(&slots).admit(peer, net.peer_ip(&peer), now);
                let Admission::Admitted {
                    id,
                    activity,
                    cancel,
                } = admission
                else {
                    tracing::debug!(%peer, "blob stream slots are busy");
                    counts.refused_busy();
                    if let Ok(permit) = busy_answers.clone().try_acquire_owned() {
                        tokio::spawn(tracing::Instrument::instrument(
                            async move {
                                answer_busy(stream).await;
                                drop(permit);
                            },
                            tracing::info_span!("provider_busy", %peer),
                        ));
                    }
                    continue;
                };
                counts.served();
                let store = store.clone();
                let traffic = traffic.clone();
                let slots = slots.clone();
                let events = events.clone();
                tokio::spawn(tracing::Instrument::instrument(
                    async move {
                        let (stream_id, recv, send) =
                            split_stream(stream, peer, &traffic, StreamSide::Serving(activity));
                        let pair = StreamPair::new(stream_id, recv, send, events);
                        tokio::select! {
                            served = handle_stream(pair, store) => {
                                if let Err(e) = served {
                                    tracing::debug!(%peer, error = %e, "blob stream ended with an error");
                                }
                            }
                            () = cancel.cancelled() => {}
                        }
                        lock(&slots).release(id);
                    },
                    tracing::debug_span!("provider_stream", %peer),
                ));
            }
            tracing::debug!("blob provider stopped");
        },
        tracing::debug_span!("provider"),
    ));
    Ok(stats)
}

/// Closes streams past their deadlines, until the provider is gone.
async fn watch_slots(slots: Weak<Mutex<Slots>>) {
    let mut ticks = tokio::time::interval(CHECK_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(slots) = slots.upgrade() else {
            return;
        };
        let closed = lock(&slots).check(Instant::now());
        for (peer, reason) in closed {
            tracing::debug!(%peer, ?reason, "closed a blob stream");
        }
    }
}

/// Tells the asker that every slot is taken, and closes the stream.
async fn answer_busy(mut stream: libp2p::Stream) {
    let _ = tokio::time::timeout(BUSY_ANSWER_TIMEOUT, async {
        stream.write_all(&BUSY_ANSWER).await?;
        stream.close().await
    })
    .await;
}

fn lock(slots: &Mutex<Slots>) -> std::sync::MutexGuard<'_, Slots> {
    slots.lock().unwrap_or_else(|e| e.into_inner())
}
