//! Hugging Face interop: the client's cache layout (read, imported, written by a fetch)
//! and mirroring a repo from an HF-compatible origin. [`HfBridge`] is the service the
//! control API calls; the HF-compatible gateway that serves artifacts to the client is
//! its own wing (`crate::gateway`).

pub mod cache;
pub mod cache_export;
pub mod download;
pub mod hub_hashes;
pub mod import;
pub mod listing;
pub mod low_speed;
pub mod mirror;
pub mod origin;

use crate::announce::Seeding;
use crate::error::NodeResult;
use crate::library::Library;
use crate::names::Names;
use crate::transfer::traffic::Traffic;

/// Importing caches and mirroring repos: publishes what it brings in. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HfBridge {
    library: Library,
    names: Names,
    traffic: Traffic,
    seeding: Seeding,
    hub_hashes: hub_hashes::HubHashBook,
    low_speed: low_speed::LowSpeed,
}

impl HfBridge {
    /// The bridge of a node: adds to `library`, publishes through `names` and
    /// `seeding`, downloads within `traffic`'s limits and gives up on an origin slower
    /// than `low_speed`.
    pub fn new(
        library: Library,
        names: Names,
        traffic: Traffic,
        seeding: Seeding,
        low_speed: low_speed::LowSpeed,
    ) -> NodeResult<Self> {
        Ok(Self {
            hub_hashes: hub_hashes::HubHashBook::open(library.meta())?,
            library,
            names,
            traffic,
            seeding,
            low_speed,
        })
    }

    /// The hub hashes this node has computed from bytes, which vouch for ETags.
    pub fn hub_hashes(&self) -> &hub_hashes::HubHashBook {
        &self.hub_hashes
    }
}
