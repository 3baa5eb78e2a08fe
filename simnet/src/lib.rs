//! The simulator: many real Seedbank nodes (the `node` crate's own network layer, store
//! and fetch scheduler, unchanged) in one process, joined over libp2p's in-memory
//! transport behind shaped links ([`link`]), driven through scenarios with a fixed
//! random seed.
//!
//! Nodes are set up by [`network`] (network only) and [`full_node`] (with a store) and
//! joined by [`join`]. Scenarios: [`discovery`] (who provides what, at scale), [`churn`]
//! (artifacts found and fetched while nodes leave and join), [`preserve_churn`] (the
//! same with preservers that repair), [`swarm`] (many fetchers
//! of one artifact, one capped seeder) and [`names`] (published names resolved beside
//! provider lookups, before and after their publishers leave). [`plot`] draws their
//! curves as SVG.

pub mod churn;
pub mod discovery;
pub mod full_node;
pub mod join;
pub mod link;
mod lookup_miss;
pub mod names;
pub mod network;
pub mod plot;
pub mod preserve_churn;
pub mod stats;
pub mod swarm;
