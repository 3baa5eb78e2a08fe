//! `GET /metrics`: the node's gauges in Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use super::ApiState;

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads the node's status into a fresh registry and encodes it.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let status = match state.node.library().status().await {
        Ok(status) => status,
        Err(e) => return e.into_response(),
    };
    let mut registry = Registry::with_prefix("seedbank");
    let gauges = [
        ("artifacts", "Artifacts held by this node", status.artifacts),
        ("pins", "Pinned artifacts", status.pins),
        (
            "store_bytes",
            "Bytes of complete blobs in the store",
            status.store_bytes,
        ),
        (
            "uptime_seconds",
            "Seconds since the daemon started",
            status.uptime_secs,
        ),
    ];
    for (name, help, value) in gauges {
        let gauge = Gauge::<i64>::default();
        gauge.set(i64::try_from(value).unwrap_or(i64::MAX));
        registry.register(name, help, gauge);
    }
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &registry) {
        return crate::error::NodeError::Store(format!("encoding metrics: {e}")).into_response();
    }
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text).into_response()
}
