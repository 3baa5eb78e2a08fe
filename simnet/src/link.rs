//! Shaped links: each simulated node's access link has an upload and a download
//! capacity, shared by all its connections, and a one-way delay on the bytes it
//! receives. Applied to the raw in-memory connection, below noise and yamux, so
//! handshakes, DHT messages and blob data all pay for it, as on a real line.
//!
//! A link can also be cut ([`Link::cut`]): every connection through it, open or new,
//! then fails at its next read or write, as when a machine leaves the network. Shutting
//! a [`seedbank_node::node::Node`] down does not stop its network task (its blob
//! provider keeps a handle to it), so a node that leaves must also have its link cut.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_speed_limit::clock::StandardClock;
use async_speed_limit::limiter::Resource;
use async_speed_limit::Limiter;
use futures::io::{AsyncRead, AsyncWrite, ReadHalf, WriteHalf};
use futures::AsyncReadExt;
use serde::Serialize;
use tokio::time::{Instant, Sleep};

/// Most bytes held back by the delay line of one connection; yamux flow control keeps
/// a connection far below this.
const MAX_DELAYED_BYTES: usize = 16 * 1024 * 1024;

/// One node's access link.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct LinkShape {
    /// Delay added to every byte the node receives (zero: none).
    pub latency: Duration,
    /// Upload capacity in bytes per second (`None`: unlimited).
    pub upload: Option<u64>,
    /// Download capacity in bytes per second (`None`: unlimited).
    pub download: Option<u64>,
}

/// The limiters of one node's link, shared by all its connections.
#[derive(Clone)]
pub struct Link {
    shape: LinkShape,
    upload: Limiter,
    download: Limiter,
    cut: Arc<AtomicBool>,
}

impl Link {
    /// A link of the given shape.
    pub fn new(shape: LinkShape) -> Self {
        let limiter = |rate: Option<u64>| Limiter::new(rate.map_or(f64::INFINITY, |r| r as f64));
        Self {
            shape,
            upload: limiter(shape.upload),
            download: limiter(shape.download),
            cut: Arc::default(),
        }
    }

    /// Cuts the link for good: every connection through it fails at its next read or
    /// write, and new ones fail their handshake.
    pub fn cut(&self) {
        self.cut.store(true, Ordering::Relaxed);
    }

    /// Puts a connection of this node's behind the link.
    pub fn shape<S: AsyncRead + AsyncWrite + Send + Unpin>(&self, connection: S) -> Shaped<S> {
        let (read, write) = connection.split();
        Shaped {
            read: self
                .download
                .clone()
                .limit(Delayed::new(read, self.shape.latency)),
            write: self.upload.clone().limit(write),
            cut: self.cut.clone(),
        }
    }
}

/// A connection behind a [`Link`].
pub struct Shaped<S> {
    read: Resource<Delayed<ReadHalf<S>>, StandardClock>,
    write: Resource<WriteHalf<S>, StandardClock>,
    cut: Arc<AtomicBool>,
}

impl<S> Shaped<S> {
    /// `Some(error)` once the link is cut.
    fn cut_error(&self) -> Option<io::Error> {
        self.cut
            .load(Ordering::Relaxed)
            .then(|| io::Error::new(io::ErrorKind::ConnectionReset, "the node left: link cut"))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Shaped<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut_error() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.read).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Shaped<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(e) = self.cut_error() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.write).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(e) = self.cut_error() {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.write).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.write).poll_close(cx)
    }
}

/// A delay line: bytes become readable `delay` after they arrived.
pub struct Delayed<R> {
    inner: R,
    delay: Duration,
    queue: VecDeque<(Instant, Vec<u8>)>,
    queued_bytes: usize,
    eof: bool,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<R> Delayed<R> {
    fn new(inner: R, delay: Duration) -> Self {
        Self {
            inner,
            delay,
            queue: VecDeque::new(),
            queued_bytes: 0,
            eof: false,
            timer: None,
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Delayed<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.delay.is_zero() {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        // Take in everything that has arrived, stamped with when it may be read.
        let mut scratch = [0u8; 16 * 1024];
        while !this.eof && this.queued_bytes < MAX_DELAYED_BYTES {
            match Pin::new(&mut this.inner).poll_read(cx, &mut scratch) {
                Poll::Ready(Ok(0)) => this.eof = true,
                Poll::Ready(Ok(n)) => {
                    this.queue
                        .push_back((Instant::now() + this.delay, scratch[..n].to_vec()));
                    this.queued_bytes += n;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => break,
            }
        }
        loop {
            let Some((due, bytes)) = this.queue.front_mut() else {
                return if this.eof {
                    Poll::Ready(Ok(0))
                } else {
                    Poll::Pending
                };
            };
            if *due <= Instant::now() {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                bytes.drain(..n);
                if bytes.is_empty() {
                    this.queue.pop_front();
                }
                this.queued_bytes -= n;
                this.timer = None;
                return Poll::Ready(Ok(n));
            }
            let due = *due;
            let timer = this
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
            timer.as_mut().reset(due);
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::AsyncWriteExt;

    use super::*;

    #[tokio::test]
    async fn bytes_arrive_late_and_no_faster_than_the_link() {
        let (a, b) = tokio::io::duplex(1 << 20);
        use tokio_util::compat::TokioAsyncReadCompatExt;
        let sender = Link::new(LinkShape {
            upload: Some(1024 * 1024),
            ..LinkShape::default()
        });
        let receiver = Link::new(LinkShape {
            latency: Duration::from_millis(50),
            ..LinkShape::default()
        });
        let mut a = sender.shape(a.compat());
        let mut b = receiver.shape(b.compat());
        let started = std::time::Instant::now();
        let payload = vec![7u8; 512 * 1024];
        let writer = async {
            for chunk in payload.chunks(16 * 1024) {
                a.write_all(chunk).await.unwrap();
            }
            a.close().await.unwrap();
        };
        let reader = async {
            let mut got = Vec::new();
            b.read_to_end(&mut got).await.unwrap();
            got
        };
        let ((), got) = tokio::join!(writer, reader);
        assert_eq!(got, payload);
        // Half a MiB at 1 MiB/s, plus the delay.
        assert!(
            started.elapsed() >= Duration::from_millis(400),
            "{:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn a_cut_link_fails_reads_and_writes() {
        let (a, b) = tokio::io::duplex(1 << 16);
        use tokio_util::compat::TokioAsyncReadCompatExt;
        let link = Link::new(LinkShape::default());
        let mut a = link.shape(a.compat());
        let mut b = Link::new(LinkShape::default()).shape(b.compat());
        a.write_all(b"hello").await.unwrap();
        let mut got = [0u8; 5];
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        link.cut();
        assert!(a.write_all(b"again").await.is_err());
        let mut buf = [0u8; 1];
        assert!(a.read(&mut buf).await.is_err());
    }
}
