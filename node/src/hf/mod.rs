//! Hugging Face interop: the client's cache layout (read, imported, written by a fetch),
//! and the HF-compatible gateway.

pub mod cache;
pub mod cache_export;
pub mod gateway;
pub mod import;
