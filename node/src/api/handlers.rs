//! One function per API route. Each turns the request into a [`Library`] call and its
//! result into JSON; errors become `{ "code", "message" }` with a matching status.
//!
//! [`Library`]: crate::library::Library

use std::path::PathBuf;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use seedbank_protocol::api::{
    AddRequest, ApiError, ArtifactDetail, ArtifactSummary, CancelReport, ErrorCode, ExportRequest,
    FetchJobSummary, FetchRequest, GcReport, GcRequest, PeerSummary, PinReport, ProvidersResponse,
    RemoveReport, RemoveRequest, StatusResponse,
};
use seedbank_protocol::hf_api::HfCacheRequest;
use seedbank_protocol::limits::MAX_API_REQUEST_BYTES;
use seedbank_protocol::preserve_api::PinRequest;

use super::ndjson::stream_operation;
use super::ApiState;
use crate::error::NodeError;
use crate::library::import::AddOptions;

/// An error response with the given status and code.
pub fn error_response(status: StatusCode, code: ErrorCode, message: String) -> Response {
    (status, Json(ApiError { code, message })).into_response()
}

fn status_for(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden | ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::AlreadyExists => StatusCode::CONFLICT,
        ErrorCode::DiskFull => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::Corrupt | ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Unreachable | ErrorCode::PeerMisbehaved => StatusCode::BAD_GATEWAY,
        ErrorCode::TimedOut => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Busy => StatusCode::SERVICE_UNAVAILABLE,
        // 499 is nginx's "client closed request"; the standard has no cancelled status.
        ErrorCode::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::CONFLICT),
    }
}

impl IntoResponse for NodeError {
    fn into_response(self) -> Response {
        let code = self.code();
        error_response(status_for(code), code, self.to_string())
    }
}

/// Turns a JSON body that failed to parse into a 400 that says why.
pub(super) fn body<T>(json: Result<Json<T>, JsonRejection>) -> Result<T, NodeError> {
    json.map(|Json(value)| value).map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            NodeError::RequestTooLarge {
                limit: MAX_API_REQUEST_BYTES,
            }
        } else {
            NodeError::BadRequest(format!("malformed request: {}", rejection.body_text()))
        }
    })
}

/// Turns a query string that failed to parse into a 400 that says why.
pub(super) fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, NodeError> {
    query.map(|Query(value)| value).map_err(|rejection| {
        NodeError::BadRequest(format!("malformed query: {}", rejection.body_text()))
    })
}

/// A path from a request must be absolute: the daemon's working directory is not the user's.
fn absolute_path(text: &str, what: &str) -> Result<PathBuf, NodeError> {
    let path = PathBuf::from(text);
    if path.is_absolute() {
        Ok(path)
    } else {
        Err(NodeError::BadRequest(format!(
            "{what} {text:?} must be an absolute path"
        )))
    }
}

/// Result of a handler: JSON on success, the error's status and body otherwise.
pub(super) type ApiResult<T> = Result<Json<T>, NodeError>;

/// `GET /v1/status`
pub async fn status(State(state): State<ApiState>) -> ApiResult<StatusResponse> {
    Ok(Json(state.node.status().await?))
}

/// `GET /v1/artifacts`
pub async fn list(State(state): State<ApiState>) -> ApiResult<Vec<ArtifactSummary>> {
    Ok(Json(state.node.list().await?))
}

/// `GET /v1/artifacts/{reference}`
pub async fn show(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> ApiResult<ArtifactDetail> {
    Ok(Json(state.node.detail(&reference).await?))
}

/// `POST /v1/artifacts`: streams progress, then the new artifact's summary.
pub async fn add(
    State(state): State<ApiState>,
    json: Result<Json<AddRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    let options = AddOptions {
        path: absolute_path(&request.path, "path")?,
        kind: request.kind,
        name: request.name,
        revision: request.revision,
        licence: request.licence,
        pin: request.pin,
        reference: request.reference,
        follow_symlinks: request.follow_symlinks,
        hf: None,
    };
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.add(options, &mut progress).await
    }))
}

/// `POST /v1/artifacts/{reference}/export`: streams progress, then a report.
pub async fn export(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    json: Result<Json<ExportRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    absolute_path(&request.dir, "export directory")?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.export(&reference, &request, &mut progress).await
    }))
}

/// `POST /v1/artifacts/{reference}/hf-cache`: streams progress, then a report.
pub async fn export_hf_cache(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    json: Result<Json<HfCacheRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    absolute_path(&request.hub_dir, "Hugging Face cache directory")?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.export_hf_cache(&reference, &request, &mut progress)
            .await
    }))
}

/// `PUT /v1/pins/{reference}?replicas=N&reason=…` (a replica target or reason also
/// fetches the artifact first if it is not here, without progress: `POST` streams it).
pub async fn pin(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    request: Result<Query<PinRequest>, QueryRejection>,
) -> ApiResult<PinReport> {
    let request = query(request)?;
    if request.replicas.is_none() && request.reason.is_none() {
        return Ok(Json(state.node.set_pinned(&reference, true).await?));
    }
    let mut progress = crate::progress::ProgressReporter::silent();
    Ok(Json(
        state
            .node
            .preserver()
            .pin_with(&reference, &request, &mut progress)
            .await?,
    ))
}

/// `DELETE /v1/pins/{reference}`
pub async fn unpin(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
) -> ApiResult<PinReport> {
    Ok(Json(state.node.set_pinned(&reference, false).await?))
}

/// `DELETE /v1/artifacts/{reference}?force=true`: removes one artifact.
pub async fn remove(
    State(state): State<ApiState>,
    Path(reference): Path<String>,
    request: Result<Query<RemoveRequest>, QueryRejection>,
) -> ApiResult<RemoveReport> {
    let request = query(request)?;
    Ok(Json(state.node.remove(&reference, request.force).await?))
}

/// `POST /v1/gc?dry_run=true`
pub async fn gc(
    State(state): State<ApiState>,
    request: Result<Query<GcRequest>, QueryRejection>,
) -> ApiResult<GcReport> {
    let request = query(request)?;
    Ok(Json(state.node.collect_garbage(request.dry_run).await?))
}

/// `POST /v1/verify`: streams progress, then the report.
pub async fn verify(State(state): State<ApiState>) -> Response {
    let node = state.node.clone();
    stream_operation(move |mut progress| async move { node.verify(&mut progress).await })
}

/// `POST /v1/fetch`: streams progress, then a report.
pub async fn fetch(
    State(state): State<ApiState>,
    json: Result<Json<FetchRequest>, JsonRejection>,
) -> Result<Response, NodeError> {
    let request = body(json)?;
    let node = state.node.clone();
    Ok(stream_operation(move |mut progress| async move {
        node.fetcher().fetch(request, &mut progress).await
    }))
}

/// `POST /v1/jobs`: starts a fetch in the background and answers at once.
pub async fn start_job(
    State(state): State<ApiState>,
    json: Result<Json<FetchRequest>, JsonRejection>,
) -> ApiResult<FetchJobSummary> {
    let request = body(json)?;
    Ok(Json(state.node.fetcher().fetch_detached(request).await?))
}

/// `GET /v1/jobs`
pub async fn jobs(State(state): State<ApiState>) -> ApiResult<Vec<FetchJobSummary>> {
    Ok(Json(state.node.fetcher().jobs()?))
}

/// `DELETE /v1/jobs/{id}`: cancels a fetch, running or saved.
pub async fn cancel_job(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<CancelReport> {
    let id = state.node.fetcher().cancel(&id).await?;
    Ok(Json(CancelReport { id }))
}

/// `GET /v1/peers`
pub async fn peers(State(state): State<ApiState>) -> ApiResult<Vec<PeerSummary>> {
    Ok(Json(state.node.peers().await?))
}

/// `GET /v1/providers/{id}`
pub async fn providers(
    State(state): State<ApiState>,
    Path(id): Path<String>,
) -> ApiResult<ProvidersResponse> {
    Ok(Json(state.node.providers(&id).await?))
}

/// Any other route.
pub async fn not_found() -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        "no such API route".into(),
    )
}
