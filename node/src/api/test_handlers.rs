//! The hooks end-to-end tests drive through the control API. Each answers only on a
//! daemon started with the hidden `--test-clock` flag; on any other it is a 404 that
//! says so, so a real daemon offers no way to move its clock.

use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::Json;
use seedbank_protocol::test_api::{ClockAdvanceRequest, ClockReport};

use super::handlers::{body, ApiResult};
use super::ApiState;
use crate::clock::{Clock, ClockError};
use crate::error::NodeError;

/// `POST /v1/test/clock/advance`: moves the node's clock forward by `secs` seconds.
pub async fn advance_clock(
    State(state): State<ApiState>,
    json: Result<Json<ClockAdvanceRequest>, JsonRejection>,
) -> ApiResult<ClockReport> {
    advance(state.node.clock(), json)
}

/// Moves `clock` as `json` asks. Whether the clock may move is checked before the body
/// is read, so a daemon without the flag answers the same whatever it is sent.
fn advance(
    clock: &Clock,
    json: Result<Json<ClockAdvanceRequest>, JsonRejection>,
) -> ApiResult<ClockReport> {
    if !clock.is_advanceable() {
        return Err(refused(ClockError::NotAdvanceable));
    }
    let request = body(json)?;
    let advanced = clock
        .advance(Duration::from_secs(request.secs))
        .map_err(refused)?;
    tracing::info!(
        secs = request.secs,
        advanced_secs = advanced.as_secs(),
        "test clock moved forward"
    );
    Ok(Json(ClockReport {
        now_secs: clock.now_secs(),
        advanced_secs: advanced.as_secs(),
    }))
}

/// Why the clock did not move, as the API says it: a daemon without the flag has no such
/// route (404); too far a jump is a bad request (400).
fn refused(error: ClockError) -> NodeError {
    match error {
        ClockError::NotAdvanceable => NodeError::NotFound(
            "no such API route: this daemon's clock cannot be moved (it was not started with \
             --test-clock)"
                .into(),
        ),
        too_far @ ClockError::TooFar { .. } => NodeError::BadRequest(too_far.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::response::IntoResponse;
    use axum::routing::post;
    use axum::Router;
    use tower::Service;

    use super::*;
    use crate::clock::MAX_ADVANCE;

    /// Posts `body` to a router serving only the hook, on `clock`; the status and the
    /// JSON answer.
    async fn post_advance(clock: &Clock, body: &str) -> (StatusCode, serde_json::Value) {
        let served = clock.clone();
        let mut app = Router::new().route(
            "/advance",
            post(move |json| async move { advance(&served, json).into_response() }),
        );
        let request = Request::post("/advance")
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let response = app.call(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn the_wall_clock_of_a_daemon_without_the_flag_is_a_404_that_names_the_flag() {
        let clock = Clock::system();
        for body in [r#"{"secs": 2}"#, "not json"] {
            let (status, answer) = post_advance(&clock, body).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{answer}");
            assert_eq!(answer["code"], "not_found", "{answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains("--test-clock"), "{message}");
        }
        assert_eq!(clock.advanced(), Duration::ZERO);
    }

    #[tokio::test]
    async fn a_test_clock_moves_and_says_where_it_stands() {
        let clock = Clock::manual(Duration::from_secs(1_000));
        let (status, answer) = post_advance(&clock, r#"{"secs": 2}"#).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(answer["now_secs"], 1_002);
        assert_eq!(answer["advanced_secs"], 2);
        let (_, answer) = post_advance(&clock, r#"{"secs": 3}"#).await;
        assert_eq!(answer["now_secs"], 1_005);
        assert_eq!(answer["advanced_secs"], 5);
    }

    #[tokio::test]
    async fn bad_or_too_far_advances_are_refused_with_the_reason() {
        let clock = Clock::manual(Duration::from_secs(1_000));
        let too_far = format!(r#"{{"secs": {}}}"#, MAX_ADVANCE.as_secs() + 1);
        for (body, expected) in [
            (too_far.as_str(), "at most"),
            (r#"{"secs": -1}"#, "malformed request"),
            (r#"{"secs": "2"}"#, "malformed request"),
            (r#"{"seconds": 2}"#, "malformed request"),
            ("", "malformed request"),
        ] {
            let (status, answer) = post_advance(&clock, body).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {answer}");
            let message = answer["message"].as_str().unwrap();
            assert!(message.contains(expected), "{body}: {message}");
        }
        assert_eq!(clock.now_secs(), 1_000, "nothing refused moved the clock");
    }
}
