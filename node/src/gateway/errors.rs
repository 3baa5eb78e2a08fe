//! Gateway errors, answered the way the hub answers them: a status, `X-Error-Code` and
//! `X-Error-Message` headers the client reads, and a JSON body `{"error": …}`.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// Why the gateway could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HfError {
    /// No publisher the gateway resolves through has published the repo.
    #[error("{0}")]
    RepoNotFound(String),
    /// The repo is known, the revision is not.
    #[error("{0}")]
    RevisionNotFound(String),
    /// The revision has no such file.
    #[error("{message}")]
    EntryNotFound {
        /// What was asked for.
        message: String,
        /// The revision's commit, sent as `X-Repo-Commit`.
        commit: String,
    },
    /// The request is not one the gateway serves.
    #[error("{0}")]
    BadRequest(String),
    /// A `Range` outside the file.
    #[error("range not satisfiable for a file of {0} bytes")]
    RangeNotSatisfiable(u64),
    /// The network could not supply what was needed (no provider, a timeout).
    #[error("{0}")]
    Upstream(String),
    /// A denylist this node follows names the artifact.
    #[error("{0}")]
    Denied(String),
}

impl IntoResponse for HfError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            HfError::RepoNotFound(_) => (StatusCode::NOT_FOUND, Some("RepoNotFound")),
            HfError::RevisionNotFound(_) => (StatusCode::NOT_FOUND, Some("RevisionNotFound")),
            HfError::EntryNotFound { .. } => (StatusCode::NOT_FOUND, Some("EntryNotFound")),
            HfError::BadRequest(_) => (StatusCode::BAD_REQUEST, None),
            HfError::RangeNotSatisfiable(_) => (StatusCode::RANGE_NOT_SATISFIABLE, None),
            HfError::Upstream(_) => (StatusCode::BAD_GATEWAY, None),
            HfError::Denied(_) => (StatusCode::FORBIDDEN, None),
        };
        let message = self.to_string();
        let mut response = (status, Json(serde_json::json!({ "error": message }))).into_response();
        let headers = response.headers_mut();
        if let Some(code) = code {
            headers.insert("x-error-code", HeaderValue::from_static(code));
        }
        // Header values must be visible ASCII; anything else is left to the body.
        let ascii: String = message
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(value) = HeaderValue::from_str(&ascii) {
            headers.insert("x-error-message", value);
        }
        if let HfError::EntryNotFound { commit, .. } = &self {
            if let Ok(value) = HeaderValue::from_str(commit) {
                headers.insert("x-repo-commit", value);
            }
        }
        if let HfError::RangeNotSatisfiable(size) = &self {
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{size}")) {
                headers.insert(axum::http::header::CONTENT_RANGE, value);
            }
        }
        response
    }
}
