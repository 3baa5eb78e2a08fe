//! `GET /metrics`: the node's figures in Prometheus text format, read fresh into a new
//! registry on every scrape. Levels are gauges; figures that only grow while the daemon
//! runs are counters (their names end in `_total`) and start again from zero at each
//! start. README.md lists every name.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use seedbank_protocol::api::FetchJobState;

use super::ApiState;
use crate::node::NodeMetrics;

/// Content type of the Prometheus text exposition format.
const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Label sets of one metric family, e.g. `[("reason", "busy")]`.
type Labels = Vec<(&'static str, &'static str)>;

/// Reads the node's figures into a fresh registry and encodes it.
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let metrics = match state.node.metrics().await {
        Ok(metrics) => metrics,
        Err(e) => return e.into_response(),
    };
    let mut text = String::new();
    if let Err(e) = encode(&mut text, &registry(&metrics)) {
        return crate::error::NodeError::Internal(format!("encoding metrics: {e}")).into_response();
    }
    ([(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)], text).into_response()
}

/// Every metric, under the `seedbank_` prefix.
fn registry(metrics: &NodeMetrics) -> Registry {
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
        (
            "dht_queries_running",
            "DHT queries under way",
            metrics.dht_queries,
        ),
        ("fetches_running", "Fetches transferring now", running),
        (
            "fetch_jobs",
            "Fetch jobs running, waiting or saved",
            status.fetches.len() as u64,
        ),
        ("banned_peers", "Peers banned now", metrics.banned_now),
        ("artifacts", "Artifacts held by this node", status.artifacts),
        ("pins", "Pinned artifacts", status.pins),
        (
            "store_bytes",
            "Bytes of complete blobs in the store",
            status.store_bytes,
        ),
        (
            "storage_used_bytes",
            "Bytes counted against max_storage (files referenced in place do not count)",
            status.storage_used.unwrap_or(status.store_bytes),
        ),
        (
            "max_storage_bytes",
            "The node's max_storage in bytes (0: no limit)",
            status.max_storage.unwrap_or(0),
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
    let fetches = &metrics.fetches;
    let counters = [
        (
            "fetched_bytes",
            "Verified file bytes fetched since start",
            metrics.bytes_fetched,
        ),
        (
            "fetches_finished",
            "Fetches that got everything they were asked for, since start",
            fetches.finished,
        ),
        (
            "fetches_failed",
            "Fetches that gave up with an error since start (saved ones resume at the next start)",
            fetches.failed,
        ),
        (
            "fetches_cancelled",
            "Fetches cancelled since start (by the user, or the daemon stopping)",
            fetches.cancelled,
        ),
        (
            "peer_bans",
            "Peers banned since start (bad data, or too many timeouts)",
            metrics.bans,
        ),
        (
            "dht_queries",
            "DHT queries since start (lookups, announcements, routing-table refreshes), counted at their first result",
            metrics.dht_queries_started,
        ),
        (
            "blob_requests_served",
            "Blob streams from peers admitted and served since start",
            metrics.provider.served,
        ),
    ];
    for (name, help, value) in counters {
        let counter = Counter::<u64>::default();
        counter.inc_by(value);
        registry.register(name, help, counter);
    }
    let provider = &metrics.provider;
    let families = [
        (
            "sent_bytes",
            "Bytes sent to peers since start, by protocol: only the blob protocol (file data) is counted; DHT, identify and ping traffic is not",
            vec![(vec![("protocol", "blob")], metrics.bytes_up)],
        ),
        (
            "received_bytes",
            "Bytes received from peers since start, by protocol: only the blob protocol (file data) is counted; DHT, identify and ping traffic is not",
            vec![(vec![("protocol", "blob")], metrics.bytes_down)],
        ),
        (
            "blob_requests_refused",
            "Blob streams and requests from peers refused since start: banned peer, every slot busy, a licence this node does not seed, or an artifact a denylist it follows names",
            vec![
                (vec![("reason", "banned")], provider.refused_banned),
                (vec![("reason", "busy")], provider.refused_busy),
                (vec![("reason", "licence")], provider.refused_licence),
                (vec![("reason", "denied")], provider.refused_denied),
            ],
        ),
        (
            "blob_streams_closed",
            "Admitted blob streams the provider closed since start: no request within the deadline, idle too long, or evicted for a newcomer",
            vec![
                (vec![("reason", "deadline")], provider.closed_no_request),
                (vec![("reason", "idle")], provider.closed_idle),
                (vec![("reason", "evicted")], provider.closed_evicted),
            ],
        ),
    ];
    for (name, help, values) in families {
        let family = Family::<Labels, Counter>::default();
        for (labels, value) in values {
            family.get_or_create(&labels).inc_by(value);
        }
        registry.register(name, help, family);
    }
    registry
}
