//! Refuses requests without the token (401).

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use seedbank_protocol::api::ErrorCode;

use super::handlers::error_response;
use super::ApiState;

/// Middleware: every request must carry `Authorization: Bearer <token>`.
pub async fn require_token(
    State(state): State<ApiState>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token)
            if constant_time_eq::constant_time_eq(token.as_bytes(), state.token.as_bytes()) =>
        {
            next.run(request).await
        }
        _ => error_response(
            StatusCode::UNAUTHORIZED,
            ErrorCode::Unauthorized,
            "missing or wrong API token (the CLI reads it from <data dir>/api.token)".into(),
        ),
    }
}
