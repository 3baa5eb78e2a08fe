//! Recognising a provider's "busy" answer ([`BUSY_ANSWER`]) on the asking side.
//!
//! [`BusyCheck`] reads the first bytes of an answer before anyone else sees them. If
//! they are the busy answer, it raises a flag and fails the read; otherwise it hands them
//! on unchanged, and after that it is a plain pass-through.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::io::AsyncRead;
use seedbank_protocol::blob_wire::BUSY_ANSWER;

/// A reader that watches for the busy answer at the start of a stream.
pub struct BusyCheck<R> {
    inner: R,
    head: [u8; BUSY_ANSWER.len()],
    filled: usize,
    handed_on: usize,
    /// Whether the head has been read in full (or the stream ended before that).
    checked: bool,
    busy: Arc<AtomicBool>,
}

impl<R> BusyCheck<R> {
    /// Wraps `inner`; `busy` is set if the answer is the busy answer.
    pub fn new(inner: R, busy: Arc<AtomicBool>) -> Self {
        Self {
            inner,
            head: [0; BUSY_ANSWER.len()],
            filled: 0,
            handed_on: 0,
            checked: false,
            busy,
        }
    }

    /// A reader that never checks (the serving side of a stream).
    pub fn passthrough(inner: R) -> Self {
        let mut reader = Self::new(inner, Arc::default());
        reader.checked = true;
        reader
    }
}

/// The error a read fails with once the busy answer is seen.
pub fn busy_error() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionRefused, "the peer is busy")
}

impl<R: AsyncRead + Unpin> AsyncRead for BusyCheck<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        while !this.checked {
            let filled = this.filled;
            let n = match Pin::new(&mut this.inner).poll_read(cx, &mut this.head[filled..]) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            this.filled += n;
            if n == 0 || this.filled == this.head.len() {
                this.checked = true;
                if this.filled == this.head.len() && this.head == BUSY_ANSWER {
                    this.busy.store(true, Ordering::Relaxed);
                }
            }
        }
        if this.busy.load(Ordering::Relaxed) && this.handed_on == 0 {
            return Poll::Ready(Err(busy_error()));
        }
        if this.handed_on < this.filled {
            let n = buf.len().min(this.filled - this.handed_on);
            buf[..n].copy_from_slice(&this.head[this.handed_on..this.handed_on + n]);
            this.handed_on += n;
            return Poll::Ready(Ok(n));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use futures::io::{AsyncReadExt, Cursor};

    use super::*;

    async fn read_all(bytes: &[u8], check: bool) -> (io::Result<Vec<u8>>, bool) {
        let busy = Arc::new(AtomicBool::new(false));
        let cursor = Cursor::new(bytes.to_vec());
        let mut reader = if check {
            BusyCheck::new(cursor, busy.clone())
        } else {
            BusyCheck::passthrough(cursor)
        };
        let mut out = Vec::new();
        let result = reader.read_to_end(&mut out).await.map(|_| out);
        (result, busy.load(Ordering::Relaxed))
    }

    #[tokio::test]
    async fn the_busy_answer_fails_the_read_and_raises_the_flag() {
        let (result, busy) = read_all(&BUSY_ANSWER, true).await;
        assert!(busy);
        assert_eq!(result.unwrap_err().kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn other_answers_pass_unchanged_whatever_their_length() {
        for bytes in [
            &[][..],
            &[1, 2, 3][..],
            &[0xff; 7][..],
            &[0xff; 8][..],
            &(0..100).collect::<Vec<u8>>()[..],
        ] {
            let (result, busy) = read_all(bytes, true).await;
            assert!(!busy);
            assert_eq!(result.unwrap(), bytes);
        }
        let (result, busy) = read_all(&BUSY_ANSWER, false).await;
        assert!(!busy, "the serving side never checks");
        assert_eq!(result.unwrap(), BUSY_ANSWER);
    }
}
