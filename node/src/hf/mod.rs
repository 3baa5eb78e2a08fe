//! Hugging Face interop: the client's cache layout, importing a cache, and (in later
//! modules) the HF-compatible gateway, mirroring from an origin and writing the cache.

pub mod cache;
pub mod download;
pub mod import;
pub mod listing;
pub mod mirror;
pub mod origin;
