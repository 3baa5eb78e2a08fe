//! Seedbank's shared language: content ids, artifact manifests, the limits every peer
//! enforces, and the control-API types the CLI and daemon exchange.
//!
//! This crate is pure: no tokio, no sockets, no files. Everything that decodes
//! untrusted bytes here returns an error instead of panicking.

pub mod api;
pub mod artifact_path;
pub mod artifact_root;
pub mod blob_hash;
pub mod blob_wire;
pub mod content_id;
pub mod limits;
pub mod manifest;

pub use artifact_path::{escape_path, validate_artifact_path, ArtifactPathError};
pub use artifact_root::{ArtifactRoot, ArtifactRootError};
pub use blob_hash::BlobHash;
pub use content_id::{ContentId, ContentIdError};
pub use manifest::{
    validate_labels, ArtifactKind, FileEntry, Manifest, ManifestError, PublisherSignature,
};
