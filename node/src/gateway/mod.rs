//! The Hugging Face gateway: a read-only, HF-compatible HTTP endpoint on its own
//! listener, so `HF_ENDPOINT=http://127.0.0.1:PORT` makes the unmodified client load
//! models and datasets from the network.
//!
//! Loopback only by default, with the control API's guards: a browser `Origin` is
//! refused, `Host` must name loopback, requests in flight and connections are capped.
//! No token: the routes only read, and the only thing they can start is a fetch.

mod body;
pub mod errors;
mod etag;
mod listing;
mod range;
pub mod resolver;
mod routes;

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;

use crate::api::{self, HostPolicy};
use crate::error::{NodeError, NodeResult};
use crate::node::Node;
use resolver::Resolver;

/// Default gateway address: loopback only, beside the control API's.
pub const DEFAULT_GATEWAY_ADDR: &str = "127.0.0.1:5180";

/// Most gateway requests in flight at once (the client downloads 8 files at a time).
pub const MAX_GATEWAY_REQUESTS: usize = 64;

/// What the gateway's handlers reach.
#[derive(Debug, Clone)]
pub struct GatewayState {
    /// The node.
    pub node: Node,
    /// Repo ids to artifacts.
    pub resolver: Resolver,
}

/// Binds the gateway's listener, naming the address when it is taken.
pub async fn bind(addr: SocketAddr) -> NodeResult<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        NodeError::BadRequest(format!(
            "cannot listen for the Hugging Face gateway on {addr}: {e}; give it another address with \
             --hf-gateway-addr (or hf_gateway_addr in config.toml), or turn it off with --no-hf-gateway"
        ))
    })
}

/// The gateway's routes and guards.
pub fn router(state: GatewayState, hosts: HostPolicy) -> Router {
    Router::new()
        .fallback(routes::handle)
        .layer(axum::middleware::from_fn_with_state(
            api::RequestSlots::new(MAX_GATEWAY_REQUESTS),
            api::hold_slot,
        ))
        .layer(axum::middleware::from_fn_with_state(
            hosts,
            api::refuse_foreign_requests,
        ))
        .with_state(state)
}
