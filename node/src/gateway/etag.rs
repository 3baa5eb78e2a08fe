//! The ETag the gateway sends for a file. A client names the file's cache blob by it and
//! trusts that blob from then on, even when it later talks to the real hub, so the hub's
//! ETag a release's manifest claims is sent only once this node has hashed the bytes and
//! found it; a file whose bytes are not here in time is sent under its BLAKE3 hash (true,
//! and not a name the hub uses), and a claim the bytes contradict is refused.

use std::time::Duration;

use seedbank_protocol::hf::etag_for;

use super::errors::HfError;
use super::resolver::Target;
use super::GatewayState;

/// How long an answer waits for a file's bytes to arrive and be hashed before it falls
/// back to the BLAKE3 ETag: under the client's own 10 s limit for the request.
const HUB_ETAG_WAIT: Duration = Duration::from_secs(7);

/// The ETag to send for the file at `index` of `target`, fetching the file to hash it
/// when its hub ETag has not been vouched for yet.
pub async fn served_etag(
    state: &GatewayState,
    target: &Target,
    index: usize,
) -> Result<String, HfError> {
    let manifest = &target.manifest;
    let entry = &manifest.files[index];
    let own = entry.hash.to_hex();
    let Some(claimed) = manifest.hf.as_ref().and_then(|_| etag_for(manifest, index)) else {
        return Ok(own);
    };
    let book = state.node.hf().hub_hashes();
    let internal = |e: crate::error::NodeError| HfError::Upstream(e.to_string());
    let known = match book.get(entry.hash).map_err(internal)? {
        Some(known) => Some(known),
        None => {
            let store = state.node.library().transfer_store();
            // A reader while it waits, so the fetch it starts runs for the GET to come.
            let _reader = state.node.fetcher().reader_lease(target.root);
            let stored = store.size(entry.hash).await.map_err(internal)?.is_some();
            if !stored && entry.size > 0 {
                state
                    .node
                    .fetcher()
                    .fetch_files_in_background(target.root, &[entry.path.as_str()])
                    .await
                    .map_err(|e| {
                        HfError::Upstream(format!("cannot fetch {:?}: {e}", entry.path))
                    })?;
            }
            book.hash_when_stored(&store, entry.hash, entry.size);
            book.wait_for(entry.hash, HUB_ETAG_WAIT)
                .await
                .map_err(internal)?
        }
    };
    match known {
        Some(hashes) if hashes.names(&claimed) => Ok(claimed),
        Some(hashes) => Err(HfError::Upstream(
            hashes.mismatch(&entry.path, &claimed).to_string(),
        )),
        None => {
            tracing::info!(path = %entry.path, "file not hashed in time: sent under its BLAKE3 ETag");
            Ok(own)
        }
    }
}
