//! `GET /metrics`: the node's gauges in Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use seedbank_protocol::api::FetchJobState;

use super::ApiState;

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Reads the node's status into a fresh registry and encodes it.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let metrics = match state.node.metrics().await {
        Ok(metrics) => metrics,
        Err(e) => return e.into_response(),
    };
    let status = &metrics.status;
    let network = status.network.as_ref();
    let running = status
        .fetches
        .iter()
        .filter(|job| job.state == FetchJobState::Running)
        .count() as u64;
    let mut registry = Registry::with_prefix("seedbank");
    let gauges = [
        (
            "connected_peers",
            "Peers connected now",
            network.map_or(0, |n| n.connected_peers),
        ),
        (
            "routing_table_peers",
            "Peers in the DHT routing table",
            network.map_or(0, |n| n.routing_table_size),
        ),
        ("dht_queries", "DHT queries under way", metrics.dht_queries),
        ("fetches_running", "Fetches transferring now", running),
        (
            "fetch_jobs",
            "Fetch jobs running, waiting or saved",
            status.fetches.len() as u64,
        ),
        (
            "bytes_up",
            "Bytes sent to peers since start",
            metrics.bytes_up,
        ),
        (
            "bytes_down",
            "Bytes received from peers since start",
            metrics.bytes_down,
        ),
        (
            "bytes_fetched",
            "Verified bytes fetched since start",
            metrics.bytes_fetched,
        ),
        (
            "fetches_completed",
            "Fetches completed since start",
            metrics.fetches_completed,
        ),
        (
            "peers_banned",
            "Peers banned for sending bad data since start",
            metrics.peers_banned,
        ),
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
