//! API routes for Hugging Face interop on the control API: importing a local cache.
//! (The HF-compatible read routes themselves are served by the gateway, on a listener of
//! their own.)

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use seedbank_protocol::hf_api::HfImportRequest;

use super::handlers::body;
use super::ndjson::stream_operation;
use super::ApiState;
use crate::error::NodeError;

/// `POST /v1/hf/import`: streams progress while the cache's snapshots are checked,
/// added and published, then the report.
pub async fn import(
    State(state): State<ApiState>,
    json: Result<Json<HfImportRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.hf().import(request, &mut progress).await
    }))
}
