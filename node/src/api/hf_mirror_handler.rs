//! `POST /v1/hf/mirror`: mirrors a repo from an HF-compatible origin, streaming progress
//! and then the report (see [`Node::mirror_hf`](crate::node::Node::mirror_hf)).

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use seedbank_protocol::hf_api::HfMirrorRequest;

use super::handlers::body;
use super::ndjson::stream_operation;
use super::ApiState;
use crate::error::NodeError;

/// `POST /v1/hf/mirror`
pub async fn mirror(
    State(state): State<ApiState>,
    json: Result<Json<HfMirrorRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.hf().mirror(request, &mut progress).await
    }))
}
