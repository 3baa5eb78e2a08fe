//! A response body that keeps a guard alive until the body is finished with, so whatever
//! the guard counts (a request slot, a request in progress on a connection) lasts as long
//! as the client is still receiving, streamed bodies included.

use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};

/// `body`, with `guard` dropped when hyper drops the body (after its last frame, or when
/// the client goes away).
pub fn hold_until_done<G: Send + Unpin + 'static>(body: Body, guard: G) -> Body {
    Body::new(HeldBody {
        body,
        _guard: guard,
    })
}

struct HeldBody<G> {
    body: Body,
    _guard: G,
}

impl<G: Unpin> HttpBody for HeldBody<G> {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        // `Body` and the guard are `Unpin`, so the projection is plain.
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
