//! Adapts a libp2p substream to iroh-blobs' `RecvStream`/`SendStream` traits.
//!
//! iroh-blobs assumes QUIC semantics, where dropping the send half finishes the stream.
//! A yamux stream dropped while open is reset instead, and the provider would then wait
//! forever for the end of the request, so [`BlobSend`] closes its half when dropped.
//! Every byte passes through the node's shared rate limiters and is counted per peer
//! (and, when serving, per stream slot); when asking, the answer is checked for the busy
//! answer first.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use async_speed_limit::clock::StandardClock;
use async_speed_limit::limiter::Resource;
use futures::io::{AsyncRead as FuturesRead, AsyncWrite as FuturesWrite, ReadHalf, WriteHalf};
use futures::AsyncReadExt as _;
use futures::AsyncWriteExt as _;
use iroh::endpoint::VarInt;
use iroh_blobs::util::{
    AsyncReadRecvStream, AsyncReadRecvStreamExtra, AsyncWriteSendStream, AsyncWriteSendStreamExtra,
};
use libp2p::PeerId;
use tokio_util::compat::{Compat, FuturesAsyncReadCompatExt, FuturesAsyncWriteCompatExt};

use super::busy::BusyCheck;
use super::provider_slots::StreamActivity;
use super::traffic::Traffic;

static NEXT_STREAM_ID: AtomicU64 = AtomicU64::new(1);

/// The receiving half iroh-blobs reads from.
pub type BlobRecvStream = AsyncReadRecvStream<BlobRecv>;
/// The sending half iroh-blobs writes to.
pub type BlobSendStream = AsyncWriteSendStream<BlobSend>;

/// Which end of a stream this node is.
#[derive(Debug, Clone)]
pub enum StreamSide {
    /// Serving a peer's request; bytes moved are counted into the stream's slot.
    Serving(Arc<StreamActivity>),
    /// Asking a peer; the flag is set if the peer answers busy.
    Asking(Arc<AtomicBool>),
}

/// Splits a libp2p stream into iroh-blobs halves, limited and counted for `peer`.
pub fn split_stream(
    stream: libp2p::Stream,
    peer: PeerId,
    traffic: &Traffic,
    side: StreamSide,
) -> (u64, BlobRecvStream, BlobSendStream) {
    let id = NEXT_STREAM_ID.fetch_add(1, Ordering::Relaxed);
    let (read, write) = stream.split();
    let activity = match &side {
        StreamSide::Serving(activity) => Some(activity.clone()),
        StreamSide::Asking(_) => None,
    };
    let read = Counted {
        inner: traffic.download_limiter().limit(read),
        peer,
        traffic: traffic.clone(),
        is_upload: false,
        activity: activity.clone(),
    };
    let write = Counted {
        inner: traffic.upload_limiter().limit(write),
        peer,
        traffic: traffic.clone(),
        is_upload: true,
        activity,
    };
    let read = match side {
        StreamSide::Serving(_) => BusyCheck::passthrough(read),
        StreamSide::Asking(busy) => BusyCheck::new(read, busy),
    };
    (
        id,
        AsyncReadRecvStream::new(BlobRecv {
            inner: read.compat(),
            id,
        }),
        AsyncWriteSendStream::new(BlobSend {
            inner: Some(write.compat_write()),
            id,
        }),
    )
}

/// Passes bytes through and adds them to the peer's counters.
struct Counted<S> {
    inner: S,
    peer: PeerId,
    traffic: Traffic,
    is_upload: bool,
    activity: Option<Arc<StreamActivity>>,
}

impl<S> Counted<S> {
    fn count(&self, bytes: usize) {
        if self.is_upload {
            self.traffic.record(self.peer, bytes as u64, 0);
        } else {
            self.traffic.record(self.peer, 0, bytes as u64);
        }
        if let Some(activity) = &self.activity {
            let counter = if self.is_upload {
                &activity.sent
            } else {
                &activity.received
            };
            counter.fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}

impl<S: FuturesRead + Unpin> FuturesRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.count(*n);
        }
        poll
    }
}

impl<S: FuturesWrite + Unpin> FuturesWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.count(*n);
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

type ReadSide = Compat<BusyCheck<Counted<Resource<ReadHalf<libp2p::Stream>, StandardClock>>>>;
type WriteSide = Compat<Counted<Resource<WriteHalf<libp2p::Stream>, StandardClock>>>;

/// Receiving half of a blob-protocol stream.
pub struct BlobRecv {
    inner: ReadSide,
    id: u64,
}

impl AsyncReadRecvStreamExtra for BlobRecv {
    fn inner(&mut self) -> &mut (impl tokio::io::AsyncRead + Unpin + Send) {
        &mut self.inner
    }

    fn stop(&mut self, _code: VarInt) -> io::Result<()> {
        // Dropping the read half is how a libp2p stream stops receiving.
        Ok(())
    }

    fn id(&self) -> u64 {
        self.id
    }
}

/// Sending half of a blob-protocol stream; finishes the stream when dropped.
pub struct BlobSend {
    inner: Option<WriteSide>,
    id: u64,
}

impl AsyncWriteSendStreamExtra for BlobSend {
    fn inner(&mut self) -> &mut (impl tokio::io::AsyncWrite + Unpin + Send) {
        self.inner
            .as_mut()
            .expect("write half is only taken on drop")
    }

    fn reset(&mut self, _code: VarInt) -> io::Result<()> {
        // Dropping without closing resets a yamux stream.
        if let Some(inner) = self.inner.take() {
            drop(inner);
        }
        Ok(())
    }

    fn stopped(&mut self) -> impl Future<Output = io::Result<Option<VarInt>>> + Send {
        // libp2p streams do not report STOP_SENDING. iroh-blobs waits on this only while
        // streaming bitfield updates to an observer; answering "stopped" at once makes an
        // observe request one-shot (the current bitfield, then the end), so an observer
        // that went away can never hold a stream slot forever.
        std::future::ready(Ok(None))
    }

    fn id(&self) -> u64 {
        self.id
    }
}

impl Drop for BlobSend {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    let mut inner = inner.into_inner();
                    let _ = inner.close().await;
                });
            }
        }
    }
}
