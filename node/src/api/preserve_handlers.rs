//! API routes of preservation: pins with replica targets (fetching first when needed),
//! health, follows and collections.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;
use seedbank_protocol::preserve_api::{
    CollectionRequest, FollowEntry, FollowList, FollowRequest, HealthQuery, HealthReport,
    PinRequest,
};
use serde::Deserialize;

use super::handlers::{body, query, ApiResult};
use super::ndjson::stream_operation;
use super::ApiState;
use crate::error::NodeError;

/// `POST /v1/pins/{reference}`: fetches the artifact if it is not here (streaming
/// progress), then pins it with the replica target and reason of the body.
pub async fn pin_with(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    json: Result<Json<PinRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.preserver()
            .pin_with(&reference, &request, &mut progress)
            .await
    }))
}

/// `GET /v1/health?refresh=true`
pub async fn health(
    State(state): State<ApiState>,
    request: Result<Query<HealthQuery>, QueryRejection>,
) -> ApiResult<HealthReport> {
    let request = query(request)?;
    Ok(Json(state.node.preserver().health(request.refresh).await?))
}

/// `GET /v1/follows`
pub async fn following(State(state): State<ApiState>) -> ApiResult<FollowList> {
    Ok(Json(state.node.preserver().following().await?))
}

/// `POST /v1/follows`
pub async fn follow(
    State(state): State<ApiState>,
    json: Result<Json<FollowRequest>, JsonRejection>,
) -> ApiResult<FollowEntry> {
    let request = body(json)?;
    Ok(Json(state.node.preserver().follow(&request).await?))
}

/// Query of `DELETE /v1/follows`.
#[derive(Debug, Deserialize)]
pub struct UnfollowQuery {
    /// `PUBLISHER` or `PUBLISHER/NAME`.
    target: String,
}

/// `DELETE /v1/follows?target=…`
pub async fn unfollow(
    State(state): State<ApiState>,
    request: Result<Query<UnfollowQuery>, QueryRejection>,
) -> ApiResult<FollowEntry> {
    let request = query(request)?;
    Ok(Json(
        state.node.preserver().unfollow(&request.target).await?,
    ))
}

/// `POST /v1/collections`: publishes a collection, streaming progress, then the report.
pub async fn publish_collection(
    State(state): State<ApiState>,
    json: Result<Json<CollectionRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.preserver()
            .publish_collection(&request, &mut progress)
            .await
    }))
}
