//! One request to one peer: open a blob-protocol stream, run an iroh-blobs get over it,
//! and say what went wrong in terms the fetch scheduler can judge.
//!
//! Every failure lands in one [`RequestError`] variant, and only
//! [`RequestError::Misbehaved`] says the peer did something wrong: honest peers restart,
//! lose connections and lack data, and none of that is misbehaviour.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use iroh_blobs::api::remote::GetProgressItem;
use iroh_blobs::get::fsm::{ConnectedNextError, DecodeError};
use iroh_blobs::get::GetError;
use iroh_blobs::protocol::GetRequest;
use libp2p::PeerId;

use crate::error::is_storage_full;

use super::streams::{split_stream, StreamSide};
use super::traffic::Traffic;
use crate::library::store::BlobStore;
use crate::net::{NetHandle, Route, BLOB_PROTOCOL};

/// Longest wait for a stream to a peer to open (dialling included).
pub const OPEN_STREAM_TIMEOUT: Duration = Duration::from_secs(20);
/// A request that receives no verified byte for this long is abandoned: the peer is
/// stalled (or pretends to hold what it never sends). Long enough for a slow home link
/// to deliver one 16 KiB group under load.
pub const REQUEST_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why one request to one peer failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The peer sent bytes that failed verification against the hash: misbehaviour.
    #[error("{peer} sent data that failed verification: {reason}")]
    Misbehaved {
        /// The peer.
        peer: PeerId,
        /// What failed.
        reason: String,
    },
    /// The stream ended before everything asked for arrived: the peer lacks the data,
    /// holds a damaged copy (iroh-blobs providers check what they send and stop), or
    /// stopped mid-transfer. A failure, not misbehaviour.
    #[error("{peer} stopped before sending everything asked for: {reason}")]
    Incomplete {
        /// The peer.
        peer: PeerId,
        /// Details.
        reason: String,
    },
    /// No stream could be opened, or the connection broke.
    #[error("{peer} is unreachable: {reason}")]
    Unreachable {
        /// The peer.
        peer: PeerId,
        /// Details.
        reason: String,
    },
    /// Nothing verified arrived for [`REQUEST_IDLE_TIMEOUT`] (or the stated time).
    #[error("{peer} sent nothing for {} s", .after.as_secs())]
    TimedOut {
        /// The peer.
        peer: PeerId,
        /// How long we waited.
        after: Duration,
    },
    /// The peer is reached only through a relay and this node has fetched what the relay
    /// cap allows from it (`net.relayed_transfer_cap`): it is not asked again.
    #[error("{peer} is {reason}")]
    OverRelayCap {
        /// The peer.
        peer: PeerId,
        /// Why, in words for the user.
        reason: String,
    },
    /// The peer said it is serving too many others right now.
    #[error("{peer} is busy")]
    Busy {
        /// The peer.
        peer: PeerId,
    },
    /// This node failed: the store could not take the data (a full disk, a stopped store).
    #[error("storing data from {peer} failed: {reason}")]
    Local {
        /// The peer whose data was being stored.
        peer: PeerId,
        /// Details.
        reason: String,
        /// The disk is full (told by the error's kind, not its text).
        storage_full: bool,
    },
}

impl RequestError {
    /// Whether the peer did something no honest peer does.
    pub fn is_misbehaviour(&self) -> bool {
        matches!(self, RequestError::Misbehaved { .. })
    }

    /// Whether this node's disk is full.
    pub fn is_storage_full(&self) -> bool {
        matches!(
            self,
            RequestError::Local {
                storage_full: true,
                ..
            }
        )
    }

    /// Whether the failure is this node's, not the peer's.
    pub fn is_local(&self) -> bool {
        matches!(self, RequestError::Local { .. })
    }

    /// Classifies an iroh-blobs get error, one reason per arm.
    pub fn from_get(peer: PeerId, error: &GetError) -> Self {
        let reason = error.to_string();
        match error {
            // Bytes arrived and did not hash to what the tree says: only a lying or
            // broken peer sends those; iroh-blobs providers check before sending.
            GetError::Decode {
                source:
                    DecodeError::LeafHashMismatch { .. } | DecodeError::ParentHashMismatch { .. },
                ..
            } => RequestError::Misbehaved { peer, reason },
            // The stream ended where data was expected: bao-tree reports an end of stream
            // inside a leaf or parent as "not found". A provider lacking the range, a
            // provider whose copy failed its own check, and a seeder killed mid-send
            // all look like this.
            GetError::Decode {
                source:
                    DecodeError::LeafNotFound { .. }
                    | DecodeError::ParentNotFound { .. }
                    | DecodeError::ChunkNotFound { .. },
                ..
            } => RequestError::Incomplete { peer, reason },
            // Reading from the stream failed (reset, closed connection).
            GetError::Decode {
                source: DecodeError::Read { .. },
                ..
            }
            | GetError::AtBlobHeaderNext { .. }
            | GetError::AtClosingNext { .. } => RequestError::Incomplete { peer, reason },
            // Writing into the local store failed: our disk, not their fault.
            GetError::Decode {
                source: DecodeError::Write { .. },
                ..
            }
            | GetError::LocalFailure { .. }
            | GetError::IrpcSend { .. } => RequestError::Local {
                peer,
                reason,
                storage_full: is_storage_full(error),
            },
            // Sending the request failed: the connection is gone.
            GetError::ConnectedNext {
                source: ConnectedNextError::Write { .. },
                ..
            }
            | GetError::InitialNext { .. }
            | GetError::ConnectedNext { .. } => RequestError::Unreachable { peer, reason },
            GetError::BadRequest { .. } => RequestError::Local {
                peer,
                reason,
                storage_full: false,
            },
            // Decode errors added in later iroh-blobs versions: not proof of bad data.
            GetError::Decode { .. } => RequestError::Incomplete { peer, reason },
        }
    }
}

/// Opens a blob-protocol stream to `peer`, giving up after [`OPEN_STREAM_TIMEOUT`].
pub async fn open_blob_stream(
    net: &NetHandle,
    peer: PeerId,
) -> Result<libp2p::Stream, RequestError> {
    Ok(open_routed_stream(net, peer).await?.0)
}

/// Opens a blob-protocol stream to `peer` and says whether it runs through a relay. A
/// peer reached only through relays first gets its chance at a direct connection (see
/// [`NetHandle::route_to`]); one first reached by this very open (a provider behind NAT,
/// dialled through its relay) too.
async fn open_routed_stream(
    net: &NetHandle,
    peer: PeerId,
) -> Result<(libp2p::Stream, Route), RequestError> {
    let was_connected = net.is_connected(&peer);
    let over_cap = |reason: String| RequestError::OverRelayCap { peer, reason };
    let route = net.route_to(&peer).await.map_err(over_cap)?;
    let stream = open_stream_in_time(net, peer).await?;
    if !was_connected {
        // The open dialled: learn over what before judging the route.
        net.settled_connection(&peer).await;
    }
    if route == Route::Direct && net.relayed_only(&peer) {
        drop(stream);
        let route = net.route_to(&peer).await.map_err(over_cap)?;
        return Ok((open_stream_in_time(net, peer).await?, route));
    }
    Ok((stream, route))
}

async fn open_stream_in_time(
    net: &NetHandle,
    peer: PeerId,
) -> Result<libp2p::Stream, RequestError> {
    match tokio::time::timeout(
        OPEN_STREAM_TIMEOUT,
        net.stream_control().open_stream(peer, BLOB_PROTOCOL),
    )
    .await
    {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => {
            let e = e.to_string();
            let reason = if e.contains("/p2p-circuit") {
                format!("reachable only through a relay, which refused another circuit: {e}")
            } else {
                format!("cannot open a stream: {e}")
            };
            Err(RequestError::Unreachable { peer, reason })
        }
        Err(_) => Err(RequestError::TimedOut {
            peer,
            after: OPEN_STREAM_TIMEOUT,
        }),
    }
}

/// Runs get requests against peers, writing verified data into the store.
#[derive(Debug, Clone)]
pub struct BlobClient {
    /// The network, for opening streams.
    pub net: NetHandle,
    /// The local store the data goes into.
    pub store: BlobStore,
    /// Counters and rate limits.
    pub traffic: Traffic,
}

impl BlobClient {
    /// Runs one get request against `peer`; returns the payload bytes received. Gives up
    /// when no verified byte arrives for `idle_timeout`. Verified bytes are counted in
    /// `tally` as they come, so a caller sees progress before the request ends and knows
    /// what a request it cancels or that fails half-way delivered.
    pub async fn get(
        &self,
        peer: PeerId,
        request: GetRequest,
        idle_timeout: Duration,
        tally: Tally<'_>,
    ) -> Result<u64, RequestError> {
        let (stream, route) = open_routed_stream(&self.net, peer).await?;
        let busy = Arc::new(AtomicBool::new(false));
        let (id, recv, send) = split_stream(
            stream,
            peer,
            &self.traffic,
            StreamSide::Asking(busy.clone()),
        );
        let pair = iroh_blobs::get::StreamPair::new(id, recv, send);
        let progress = self.store.get_from(pair, request).stream();
        let delivered_before = tally.request.load(Ordering::Relaxed);
        let result = match until_done(peer, progress, idle_timeout, tally).await {
            Err(_) if busy.load(Ordering::Relaxed) => Err(RequestError::Busy { peer }),
            other => other,
        };
        if route == Route::Relayed {
            // What a cut-short request delivered counts too: verified bytes are kept, so
            // short requests would otherwise carry a whole model past the cap.
            let delivered = tally
                .request
                .load(Ordering::Relaxed)
                .saturating_sub(delivered_before);
            self.net.add_relayed_bytes(&peer, delivered);
            return relayed_outcome(peer, result);
        }
        result
    }
}

/// A request that ran through a relay, said so when it was cut short. Bad bytes, a full
/// disk or a busy peer stay what they are: only a transfer cut short is the relay's doing.
fn relayed_outcome(peer: PeerId, result: Result<u64, RequestError>) -> Result<u64, RequestError> {
    result.map_err(|error| match error {
        cut @ (RequestError::Unreachable { .. }
        | RequestError::Incomplete { .. }
        | RequestError::TimedOut { .. }) => RequestError::Unreachable {
            peer,
            reason: format!(
                "reachable only through a relay (hole punching brought no direct connection), \
                 and the relay cut the transfer at its limits: {cut}"
            ),
        },
        other => other,
    })
}

/// Where a get request's verified bytes are counted as they arrive.
#[derive(Debug, Clone, Copy)]
pub struct Tally<'a> {
    /// The whole transfer's count, shared by its requests (what a stall timer watches).
    pub transfer: &'a AtomicU64,
    /// This request's own count, still true when the request is dropped half-way.
    pub request: &'a AtomicU64,
}

/// Follows a get request's progress to its end, failing it when no verified byte
/// arrives for `idle_timeout` (dropping the stream cancels the request).
async fn until_done(
    peer: PeerId,
    progress: impl futures::Stream<Item = GetProgressItem>,
    idle_timeout: Duration,
    tally: Tally<'_>,
) -> Result<u64, RequestError> {
    tokio::pin!(progress);
    let mut so_far = 0;
    loop {
        let item = tokio::time::timeout(idle_timeout, progress.next())
            .await
            .map_err(|_| RequestError::TimedOut {
                peer,
                after: idle_timeout,
            })?;
        match item {
            Some(GetProgressItem::Progress(bytes)) => {
                let new = bytes.saturating_sub(so_far);
                tally.transfer.fetch_add(new, Ordering::Relaxed);
                tally.request.fetch_add(new, Ordering::Relaxed);
                so_far = so_far.max(bytes);
            }
            Some(GetProgressItem::Done(stats)) => return Ok(stats.payload_bytes_read),
            Some(GetProgressItem::Error(e)) => return Err(RequestError::from_get(peer, &e)),
            None => {
                return Err(RequestError::Local {
                    peer,
                    reason: "the get request ended without a result".into(),
                    storage_full: false,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_that_stops_delivering_times_out_and_one_that_trickles_does_not() {
        let peer = PeerId::random();
        let idle = Duration::from_secs(10);
        // A byte every 9 s for a minute, then silence.
        let trickle = futures::stream::unfold(0u64, |n| async move {
            if n < 7 {
                tokio::time::sleep(Duration::from_secs(9)).await;
                Some((GetProgressItem::Progress(n * 1024), n + 1))
            } else {
                futures::future::pending().await
            }
        });
        let started = tokio::time::Instant::now();
        let (transfer, request) = (AtomicU64::new(0), AtomicU64::new(0));
        let tally = Tally {
            transfer: &transfer,
            request: &request,
        };
        let result = until_done(peer, trickle.boxed(), idle, tally).await;
        assert_eq!(result, Err(RequestError::TimedOut { peer, after: idle }));
        assert_eq!(
            transfer.load(Ordering::Relaxed),
            6 * 1024,
            "progress is seen as it comes"
        );
        assert_eq!(
            request.load(Ordering::Relaxed),
            6 * 1024,
            "what a failed request delivered is known"
        );
        assert_eq!(started.elapsed(), Duration::from_secs(7 * 9 + 10));
    }
}
