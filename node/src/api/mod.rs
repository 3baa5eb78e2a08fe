//! The HTTP/JSON control API the `seedbank` CLI talks to.
//!
//! Loopback only by default. Every request needs the bearer token from
//! `<data>/api.token`; a request carrying a browser `Origin` header, or (unless
//! `api_allow_remote`) naming a `Host` that is not loopback, is refused, so a web page
//! cannot drive the daemon through the user's browser. Bodies are capped at
//! [`MAX_API_REQUEST_BYTES`]; requests in flight, across all routes and until their
//! streamed bodies end, at the configured maximum; connections and their idle time by
//! [`server`].

mod auth;
mod denylist_handlers;
mod handlers;
mod held_body;
mod hf_handlers;
mod hf_mirror_handler;
mod local_only;
mod metrics;
mod name_handlers;
mod ndjson;
mod preserve_handlers;
mod request_limit;
pub mod server;
mod test_handlers;
pub mod token;
mod write_stall;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::Router;
use seedbank_protocol::limits::MAX_API_REQUEST_BYTES;

pub use local_only::{refuse_foreign_requests, HostPolicy};
pub use request_limit::{hold_slot, RequestSlots};

use crate::node::Node;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The node.
    pub node: Node,
    /// The bearer token clients must present.
    pub token: Arc<str>,
}

/// Builds the API router: `max_requests` in flight at once, requests naming hosts that
/// `hosts` allows.
pub fn router(state: ApiState, max_requests: usize, hosts: HostPolicy) -> Router {
    Router::new()
        .route("/v1/status", get(handlers::status))
        .route("/v1/artifacts", get(handlers::list).post(handlers::add))
        .route(
            "/v1/artifacts/{reference}",
            get(handlers::show).delete(handlers::remove),
        )
        .route("/v1/artifacts/{reference}/export", post(handlers::export))
        .route(
            "/v1/artifacts/{reference}/hf-cache",
            post(handlers::export_hf_cache),
        )
        .route(
            "/v1/pins/{reference}",
            put(handlers::pin)
                .post(preserve_handlers::pin_with)
                .delete(handlers::unpin),
        )
        .route("/v1/health", get(preserve_handlers::health))
        .route(
            "/v1/follows",
            get(preserve_handlers::following)
                .post(preserve_handlers::follow)
                .delete(preserve_handlers::unfollow),
        )
        .route(
            "/v1/collections",
            post(preserve_handlers::publish_collection),
        )
        .route("/v1/gc", post(handlers::gc))
        .route("/v1/fetch", post(handlers::fetch))
        .route("/v1/jobs", get(handlers::jobs).post(handlers::start_job))
        .route("/v1/jobs/{id}", delete(handlers::cancel_job))
        .route("/v1/peers", get(handlers::peers))
        .route("/v1/providers/{id}", get(handlers::providers))
        .route("/v1/verify", post(handlers::verify))
        .route(
            "/v1/keys",
            get(name_handlers::keys).post(name_handlers::new_key),
        )
        .route("/v1/keys/import", post(name_handlers::import_key))
        .route("/v1/keys/{alias}/export", get(name_handlers::export_key))
        .route(
            "/v1/trust",
            get(name_handlers::trusted).post(name_handlers::trust),
        )
        .route("/v1/trust/{alias}", delete(name_handlers::distrust))
        .route("/v1/publish", post(name_handlers::publish))
        .route("/v1/hf/mirror", post(hf_mirror_handler::mirror))
        .route("/v1/resolve", get(name_handlers::resolve))
        .route("/v1/history", get(name_handlers::history))
        .route("/v1/catalog", get(name_handlers::catalog))
        .route("/v1/search", get(name_handlers::search))
        .route("/v1/hf/import", post(hf_handlers::import))
        .route(
            "/v1/denylists",
            get(denylist_handlers::subscriptions)
                .post(denylist_handlers::subscribe)
                .delete(denylist_handlers::unsubscribe),
        )
        .route(
            "/v1/denylists/publish",
            post(denylist_handlers::publish).layer(DefaultBodyLimit::max(
                denylist_handlers::MAX_PUBLISH_BODY_BYTES,
            )),
        )
        .route("/v1/denylists/refresh", post(denylist_handlers::refresh))
        .route("/metrics", get(metrics::metrics))
        // Answers only on a daemon started with the hidden --test-clock flag.
        .route("/v1/test/clock/advance", post(test_handlers::advance_clock))
        .fallback(handlers::not_found)
        // The last layer added runs first: where the request came from, then the
        // token, and only then does it take a request slot.
        .layer(DefaultBodyLimit::max(MAX_API_REQUEST_BYTES))
        .layer(axum::middleware::from_fn_with_state(
            RequestSlots::new(max_requests),
            request_limit::hold_slot,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            local_only::refuse_foreign_requests,
        ))
        .layer(axum::middleware::from_fn(in_request_span))
        .with_state(state)
}

/// Runs each request in a span naming its method and path, so its log lines, and the
/// work it starts (a fetch job's span is a child of it), can be followed.
async fn in_request_span(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let span = tracing::info_span!(
        "api",
        method = %request.method(),
        path = %request.uri().path()
    );
    tracing::Instrument::instrument(next.run(request), span).await
}
