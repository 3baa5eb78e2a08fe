//! Serves other peers' blob requests from the local store.
//!
//! One task accepts incoming `/seedbank/blobs/1` streams as fast as they arrive (libp2p-stream
//! drops streams when the accept loop falls behind) and hands each to iroh-blobs' stream
//! handler in its own task. At most [`MAX_INBOUND_STREAMS_PER_PEER`] streams of one peer
//! are served at once, and [`MAX_INBOUND_STREAMS`] in all; streams beyond that are closed,
//! as are those of peers the peer book bans.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use iroh_blobs::api::Store;
use iroh_blobs::provider::events::EventSender;
use iroh_blobs::provider::{handle_stream, StreamPair};
use libp2p::PeerId;
use tokio::sync::Semaphore;

use super::streams::split_stream;
use super::traffic::Traffic;
use crate::error::{NodeError, NodeResult};
use crate::net::{NetHandle, BLOB_PROTOCOL};
use crate::peers::PeerBook;

/// Most inbound blob streams served at once: bounds memory and file handles; fetchers
/// open a few streams per provider, so this serves dozens of peers concurrently.
pub const MAX_INBOUND_STREAMS: usize = 128;
/// Most inbound blob streams one peer may have open at once.
pub const MAX_INBOUND_STREAMS_PER_PEER: usize = 8;

/// Starts serving blob requests; runs until the network stops.
pub fn spawn_provider(
    net: &NetHandle,
    store: Store,
    traffic: Traffic,
    peers: PeerBook,
) -> NodeResult<()> {
    let mut incoming = net
        .stream_control()
        .accept(BLOB_PROTOCOL)
        .map_err(|e| NodeError::BadRequest(format!("blob protocol registered twice: {e}")))?;
    let total = Arc::new(Semaphore::new(MAX_INBOUND_STREAMS));
    let per_peer: Arc<Mutex<HashMap<PeerId, usize>>> = Arc::default();
    tokio::spawn(async move {
        while let Some((peer, stream)) = incoming.next().await {
            if peers.is_banned(&peer, tokio::time::Instant::now()) {
                tracing::debug!(%peer, "refusing blob stream: peer is banned");
                continue;
            }
            let Ok(permit) = total.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "refusing blob stream: too many in flight");
                continue;
            };
            if !claim(&per_peer, peer) {
                tracing::debug!(%peer, "refusing blob stream: peer has too many in flight");
                continue;
            }
            let store = store.clone();
            let traffic = traffic.clone();
            let per_peer = per_peer.clone();
            tokio::spawn(async move {
                let (id, recv, send) = split_stream(stream, peer, &traffic);
                let pair = StreamPair::new(id, recv, send, EventSender::DEFAULT);
                if let Err(e) = handle_stream(pair, store).await {
                    tracing::debug!(%peer, error = %e, "blob stream ended with an error");
                }
                release(&per_peer, peer);
                drop(permit);
            });
        }
        tracing::debug!("blob provider stopped");
    });
    Ok(())
}

fn claim(per_peer: &Mutex<HashMap<PeerId, usize>>, peer: PeerId) -> bool {
    let mut counts = per_peer.lock().unwrap_or_else(|e| e.into_inner());
    let count = counts.entry(peer).or_default();
    if *count >= MAX_INBOUND_STREAMS_PER_PEER {
        return false;
    }
    *count += 1;
    true
}

fn release(per_peer: &Mutex<HashMap<PeerId, usize>>, peer: PeerId) {
    let mut counts = per_peer.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(count) = counts.get_mut(&peer) {
        *count -= 1;
        if *count == 0 {
            counts.remove(&peer);
        }
    }
}
