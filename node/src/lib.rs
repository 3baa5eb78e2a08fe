//! The Seedbank node: a content store of artifacts (iroh-blobs), their metadata (sled),
//! and the HTTP control API the `seedbank` CLI talks to.
//!
//! [`daemon::run`] starts everything; [`library::Library`] holds the operations on
//! artifacts (add, list, export, pin, gc, verify) and can be used without the API.

pub mod announce;
pub mod api;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod daemon_lock;
pub mod data_dir;
pub mod denied;
pub mod denylist;
pub mod discovery;
pub mod error;
pub mod fetch;
pub mod gateway;
pub mod hf;
pub mod identity;
pub mod library;
pub mod names;
pub mod net;
pub mod node;
pub mod peers;
pub mod preserve;
pub mod progress;
pub mod random;
pub mod startup_report;
pub mod transfer;
pub mod units;

pub use config::NodeConfig;
pub use data_dir::DataDir;
pub use error::NodeError;
pub use library::Library;
