//! The simulator: many real Seedbank network nodes (the `node` crate's own network
//! layer, unchanged) in one process, joined over libp2p's in-memory transport, driven
//! through scenarios with a fixed random seed.
//!
//! Scenarios so far: [`discovery`] (who provides what, at scale) and [`churn`]
//! (providers found while nodes leave and join).

pub mod churn;
pub mod discovery;
pub mod network;
pub mod stats;
