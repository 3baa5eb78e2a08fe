//! The end-to-end suite: real daemons driven through the real CLI, one module per area,
//! all in one test binary so the suite links node, libp2p and iroh once.
//!
//! Each module starts its own daemons through the shared harness in `seedbank_tests`
//! (loopback only, no mDNS, temporary data dirs), so tests run in parallel and in any
//! order; a failure shows the command, its output and the daemon's log.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod api;
mod denylist;
mod fetch_path;
mod foundation;
mod hf_cache;
mod hf_gateway;
mod hf_mirror;
mod hostile_files;
mod hostile_gateway;
mod hostile_network;
mod hostile_records;
mod mdns;
mod names;
mod nat;
mod network;
mod operators;
mod operators_artifacts;
mod preservation;
mod quota;
mod scripting;
