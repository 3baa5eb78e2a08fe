//! Reading an artifact's root HashSeq and manifest from the store, checked against each
//! other and read only up to their size limits ([`MAX_ROOT_BYTES`],
//! [`MAX_MANIFEST_BYTES`]).

use seedbank_protocol::limits::{MAX_MANIFEST_BYTES, MAX_ROOT_BYTES};
use seedbank_protocol::{ArtifactRoot, ContentId, Manifest};

use super::store::BlobStore;
use crate::error::{NodeError, NodeResult};

/// An artifact's root and manifest, checked against each other.
#[derive(Debug, Clone)]
pub struct RootAndManifest {
    /// The root HashSeq.
    pub root: ArtifactRoot,
    /// The manifest it names.
    pub manifest: Manifest,
}

/// Reads the root and manifest of `root` from the local store.
pub async fn read_root(store: &BlobStore, root: ContentId) -> NodeResult<RootAndManifest> {
    let bytes = store.read_small(root.hash(), MAX_ROOT_BYTES).await?;
    let decoded =
        ArtifactRoot::decode(&bytes).map_err(|e| NodeError::Corrupt(format!("{root}: {e}")))?;
    let manifest_bytes = store
        .read_small(decoded.manifest, MAX_MANIFEST_BYTES)
        .await?;
    let manifest = Manifest::decode(&manifest_bytes)?;
    decoded
        .check_manifest(&manifest)
        .map_err(|e| NodeError::Corrupt(format!("{root}: {e}")))?;
    Ok(RootAndManifest {
        root: decoded,
        manifest,
    })
}
