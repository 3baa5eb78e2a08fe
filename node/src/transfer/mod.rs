//! Moving blobs between peers: the iroh-blobs get/provide protocol over libp2p
//! substreams on [`BLOB_PROTOCOL`](crate::net::BLOB_PROTOCOL).
//!
//! [`provider`] answers other peers' requests from the local store, within the stream
//! slots [`provider_slots`] hands out (a full provider answers busy, see [`busy`]). [`client`] makes one
//! request to one peer and classifies how it failed; [`fetch`] gets an artifact's files from several peers at once, including peers
//! still fetching it, after asking them what they hold ([`have`]). [`streams`] adapts
//! libp2p streams to the stream traits iroh-blobs expects, counting and rate-limiting
//! the bytes that pass.

pub mod busy;
pub mod challenges;
pub mod client;
pub mod fetch;
pub mod have;
pub mod provider;
pub mod provider_slots;
pub mod provider_stats;
pub mod seed_gate;
pub mod streams;
pub mod traffic;
