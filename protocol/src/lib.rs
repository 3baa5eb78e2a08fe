//! Seedbank's shared language: content ids, artifact manifests, publisher keys and the
//! signed records they make (releases, name records, catalogs), the limits every peer
//! enforces, and the control-API types the CLI and daemon exchange.
//!
//! This crate is pure: no tokio, no sockets, no files. Everything that decodes
//! untrusted bytes here returns an error instead of panicking.

pub mod api;
pub mod artifact_path;
pub mod artifact_root;
pub mod blob_hash;
pub mod blob_wire;
pub mod catalog;
pub mod collection;
pub mod content_id;
pub mod denylist;
pub mod denylist_api;
pub mod hf;
pub mod hf_api;
pub mod labels;
pub mod limits;
pub mod manifest;
pub mod name_record;
pub mod name_ref;
pub mod names_api;
pub mod preserve_api;
pub mod publisher_key;
pub mod reachability_api;
pub mod release;
pub mod signed;
pub mod test_api;

pub use artifact_path::{escape_path, validate_artifact_path, ArtifactPathError};
pub use artifact_root::{ArtifactRoot, ArtifactRootError};
pub use blob_hash::BlobHash;
pub use catalog::{CatalogEntry, CatalogPage, DhtRecord, Directory};
pub use collection::{Collection, CollectionError, CollectionMember};
pub use content_id::{ContentId, ContentIdError};
pub use hf::{HfRepo, HfRepoType, HfRevision};
pub use labels::{validate_labels, ArtifactKind, LabelError};
pub use manifest::{FileEntry, Manifest, ManifestError};
pub use name_record::{NameRecord, RevisionEntry, SignedNameRecord};
pub use name_ref::NameRef;
pub use publisher_key::{PublisherKey, PublisherSecret};
pub use release::{Release, SignedRelease};
pub use signed::{RecordError, Signed};
