//! One limit on control-API requests in flight, across all routes.
//!
//! Owns a semaphore of `max_api_requests` slots. Invariant: a request holds its slot
//! until its response body has ended or been dropped, so a streamed `add`, `fetch`,
//! `export` or `verify` counts for as long as the client watches it (the operation
//! itself may outlive a departed client; it is bounded by the node, not here). A
//! request finding no free slot within [`SLOT_WAIT`] is answered 503. Runs after the
//! Host, Origin and token checks, so only the token holder's requests take slots.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::Response;
use seedbank_protocol::api::ErrorCode;
use tokio::sync::Semaphore;

use super::handlers::error_response;
use super::held_body::hold_until_done;

/// How long a request waits for a free slot before it is refused. Short requests free
/// theirs in milliseconds; if none frees in this time, the slots are held by streams
/// that may run for hours, and a quick, explicit refusal beats a hanging CLI.
pub const SLOT_WAIT: Duration = Duration::from_secs(10);

/// The request slots shared by every route; cheap to clone.
#[derive(Debug, Clone)]
pub struct RequestSlots {
    semaphore: Arc<Semaphore>,
    max: usize,
}

impl RequestSlots {
    /// `max` slots, all free.
    pub fn new(max: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// Slots free now.
    #[cfg(test)]
    pub fn available(&self) -> usize {
        self.semaphore.available_permits()
    }
}

/// Middleware: takes a slot for the request and hands it to the response body.
pub async fn hold_slot(
    State(slots): State<RequestSlots>,
    request: Request,
    next: Next,
) -> Response {
    let acquired =
        tokio::time::timeout(SLOT_WAIT, Arc::clone(&slots.semaphore).acquire_owned()).await;
    let Ok(Ok(slot)) = acquired else {
        return error_response(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            format!(
                "all {} API request slots stayed busy for {SLOT_WAIT:?} (each streamed add, fetch, export or verify holds one until it ends); try again later",
                slots.max
            ),
        );
    };
    next.run(request)
        .await
        .map(|body| hold_until_done(body, slot))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

    use axum::body::{Body, Bytes};
    use axum::routing::get;
    use axum::Router;
    use tower::Service;

    use super::*;

    /// A router whose `/stream` answers with a body that never ends, and whose `/quick`
    /// answers at once.
    fn app(slots: &RequestSlots) -> Router {
        Router::new()
            .route(
                "/stream",
                get(|| async {
                    Body::from_stream(futures_util::stream::pending::<
                        Result<Bytes, std::convert::Infallible>,
                    >())
                }),
            )
            .route("/quick", get(|| async { "ok" }))
            .layer(axum::middleware::from_fn_with_state(
                slots.clone(),
                hold_slot,
            ))
    }

    async fn call(app: &Router, path: &str) -> Response {
        let request = Request::builder().uri(path).body(Body::empty()).unwrap();
        app.clone().call(request).await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_streaming_body_holds_its_slot_until_it_is_gone() {
        let slots = RequestSlots::new(1);
        let app = app(&slots);

        let streaming = call(&app, "/stream").await;
        assert_eq!(streaming.status(), StatusCode::OK);
        assert_eq!(slots.available(), 0, "the open stream holds the only slot");

        // Paused time: the wait for a slot runs out at once, without sleeping.
        let refused = call(&app, "/quick").await;
        assert_eq!(refused.status(), StatusCode::SERVICE_UNAVAILABLE);
        let body = axum::body::to_bytes(refused.into_body(), 4096)
            .await
            .unwrap();
        let error: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(error["code"], "busy", "{error}");
        assert!(error["message"]
            .as_str()
            .unwrap()
            .contains("1 API request slots"));

        // The client goes away: hyper drops the body, and the slot is free again.
        drop(streaming);
        assert_eq!(slots.available(), 1);
        let quick = call(&app, "/quick").await;
        assert_eq!(quick.status(), StatusCode::OK);
        assert_eq!(
            slots.available(),
            0,
            "a short body holds the slot too, until read"
        );
        let text = axum::body::to_bytes(quick.into_body(), 4096).await.unwrap();
        assert_eq!(&text[..], b"ok");
        assert_eq!(slots.available(), 1);
    }
}
