//! Moving blobs between peers: the iroh-blobs get/provide protocol over libp2p
//! substreams on [`BLOB_PROTOCOL`](crate::net::BLOB_PROTOCOL).
//!
//! [`provider`] answers other peers' requests from the local store; [`fetch`] gets an
//! artifact from several providers at once, including peers still fetching it, after
//! asking them what they hold ([`have`]). [`streams`] adapts libp2p streams to the
//! stream traits iroh-blobs expects, counting and rate-limiting the bytes that pass.

pub mod fetch;
pub mod have;
pub mod provider;
pub mod streams;
pub mod traffic;
