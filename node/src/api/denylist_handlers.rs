//! API routes for denylists: publish one, subscribe, unsubscribe, list and refresh the
//! subscriptions. Each turns the request into a call on the [`Node`](crate::node::Node).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::response::Response;
use axum::Json;
use seedbank_protocol::denylist::MAX_DENYLIST_BYTES;
use seedbank_protocol::denylist_api::{
    DenylistPublishRequest, DenylistRefreshReport, DenylistSubscribeRequest, DenylistSubscription,
};
use serde::Deserialize;

use super::handlers::{body, query, ApiResult};
use super::ndjson::stream_operation;
use super::ApiState;
use crate::error::NodeError;

/// Largest body of `POST /v1/denylists/publish`: a whole list may travel in it, so it
/// gets the list's own limit (and room for the JSON around it) instead of the API's.
pub const MAX_PUBLISH_BODY_BYTES: usize = MAX_DENYLIST_BYTES + 64 * 1024;

/// `?list=PUBLISHER/NAME`
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// The list, as `denylist list` shows it or by key.
    pub list: String,
}

/// `GET /v1/denylists`
pub async fn subscriptions(State(state): State<ApiState>) -> ApiResult<Vec<DenylistSubscription>> {
    Ok(Json(state.node.denylists().subscriptions()?))
}

/// `POST /v1/denylists`: subscribes, reading the list at once.
pub async fn subscribe(
    State(state): State<ApiState>,
    json: Result<Json<DenylistSubscribeRequest>, JsonRejection>,
) -> ApiResult<DenylistSubscription> {
    let request = body(json)?;
    Ok(Json(state.node.denylists().subscribe(&request).await?))
}

/// `DELETE /v1/denylists?list=…`
pub async fn unsubscribe(
    State(state): State<ApiState>,
    request: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<DenylistSubscription> {
    let request = query(request)?;
    Ok(Json(
        state.node.denylists().unsubscribe(&request.list).await?,
    ))
}

/// `POST /v1/denylists/refresh`: reads every list again now.
pub async fn refresh(State(state): State<ApiState>) -> ApiResult<DenylistRefreshReport> {
    Ok(Json(state.node.denylists().refresh_all().await?))
}

/// `POST /v1/denylists/publish`: streams progress while the list is added, then the
/// report.
pub async fn publish(
    State(state): State<ApiState>,
    json: Result<Json<DenylistPublishRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.denylists().publish(&request, &mut progress).await
    }))
}
