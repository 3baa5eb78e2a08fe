//! Hugging Face interop: the client's cache layout (read, imported, written by a fetch),
//! the HF-compatible gateway, and mirroring a repo from an HF-compatible origin.

pub mod cache;
pub mod cache_export;
pub mod download;
pub mod gateway;
pub mod import;
pub mod listing;
pub mod mirror;
pub mod origin;
