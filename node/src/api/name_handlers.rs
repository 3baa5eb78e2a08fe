//! API routes for publishing and names: keys, trust, publish, resolve, history,
//! catalogs and search. Each turns the request into a call on the node's
//! [`Names`](crate::names::Names) (or [`Node::publish`](crate::node::Node::publish)).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::Json;
use seedbank_protocol::names_api::{
    Catalog, CatalogQuery, History, KeyExport, KeyImportRequest, KeyInfo, KeyNewRequest, NameQuery,
    PublishRequest, Resolution, SearchQuery, SearchResponse, TrustAddRequest, TrustEntry,
};

use super::handlers::{body, query, ApiResult};
use super::ndjson::stream_operation;
use super::ApiState;
use crate::error::NodeError;

/// Results a search returns unless asked otherwise.
const DEFAULT_SEARCH_RESULTS: usize = 20;

/// `GET /v1/keys`
pub async fn keys(State(state): State<ApiState>) -> ApiResult<Vec<KeyInfo>> {
    Ok(Json(state.node.names().keys()?))
}

/// `POST /v1/keys`: makes a key.
pub async fn new_key(
    State(state): State<ApiState>,
    json: Result<Json<KeyNewRequest>, JsonRejection>,
) -> ApiResult<KeyInfo> {
    let request = body(json)?;
    Ok(Json(state.node.names().new_key(&request.alias)?))
}

/// `POST /v1/keys/import`
pub async fn import_key(
    State(state): State<ApiState>,
    json: Result<Json<KeyImportRequest>, JsonRejection>,
) -> ApiResult<KeyInfo> {
    let request = body(json)?;
    Ok(Json(state.node.names().import_key(&request)?))
}

/// `GET /v1/keys/{alias}/export`
pub async fn export_key(
    State(state): State<ApiState>,
    Path(alias): Path<String>,
) -> ApiResult<KeyExport> {
    Ok(Json(state.node.names().export_key(&alias)?))
}

/// `GET /v1/trust`
pub async fn trusted(State(state): State<ApiState>) -> ApiResult<Vec<TrustEntry>> {
    Ok(Json(state.node.names().trusted()?))
}

/// `POST /v1/trust`
pub async fn trust(
    State(state): State<ApiState>,
    json: Result<Json<TrustAddRequest>, JsonRejection>,
) -> ApiResult<TrustEntry> {
    let request = body(json)?;
    Ok(Json(state.node.names().trust(&request)?))
}

/// `DELETE /v1/trust/{alias}`
pub async fn distrust(
    State(state): State<ApiState>,
    Path(alias): Path<String>,
) -> ApiResult<TrustEntry> {
    Ok(Json(state.node.names().distrust(&alias)?))
}

/// `POST /v1/publish`: streams progress while a path is added, then the report.
pub async fn publish(
    State(state): State<ApiState>,
    json: Result<Json<PublishRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.publish(&request, &mut progress).await
    }))
}

/// `GET /v1/resolve?name=…`
pub async fn resolve(
    State(state): State<ApiState>,
    request: Result<Query<NameQuery>, QueryRejection>,
) -> ApiResult<Resolution> {
    let request = query(request)?;
    Ok(Json(state.node.names().resolve(&request.name).await?))
}

/// `GET /v1/history?name=…`
pub async fn history(
    State(state): State<ApiState>,
    request: Result<Query<NameQuery>, QueryRejection>,
) -> ApiResult<History> {
    let request = query(request)?;
    Ok(Json(state.node.names().history(&request.name).await?))
}

/// `GET /v1/catalog?publisher=…`
pub async fn catalog(
    State(state): State<ApiState>,
    request: Result<Query<CatalogQuery>, QueryRejection>,
) -> ApiResult<Catalog> {
    let request = query(request)?;
    Ok(Json(state.node.names().catalog(&request.publisher).await?))
}

/// `GET /v1/search?q=…&limit=…`
pub async fn search(
    State(state): State<ApiState>,
    request: Result<Query<SearchQuery>, QueryRejection>,
) -> ApiResult<SearchResponse> {
    let request = query(request)?;
    let limit = request.limit.unwrap_or(DEFAULT_SEARCH_RESULTS);
    Ok(Json(state.node.names().search(&request.q, limit).await?))
}
