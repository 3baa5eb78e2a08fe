//! Streams a long operation as newline-delimited JSON: progress lines while it runs,
//! then one `done` or `error` line. The operation runs in its own task, so it finishes
//! (and leaves the store consistent) even if the client goes away.

use std::future::Future;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;
use bytes::Bytes;
use seedbank_protocol::api::{Progress, StreamLine, NDJSON_CONTENT_TYPE};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::error::NodeResult;
use crate::progress::ProgressReporter;

/// Progress lines buffered for a slow client before newer ones are dropped.
const PROGRESS_BUFFER: usize = 16;

/// Runs `operation` in a task and streams its progress and result.
pub fn stream_operation<T, F, Fut>(operation: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(ProgressReporter) -> Fut + Send + 'static,
    Fut: Future<Output = NodeResult<T>> + Send + 'static,
{
    let (progress_tx, mut progress_rx) = mpsc::channel::<Progress>(PROGRESS_BUFFER);
    let (line_tx, line_rx) = mpsc::channel::<Bytes>(PROGRESS_BUFFER);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            let task = tokio::spawn(tracing::Instrument::instrument(
                operation(ProgressReporter::new(progress_tx)),
                tracing::Span::current(),
            ));
            while let Some(progress) = progress_rx.recv().await {
                // A departed client is not an error: the operation still completes.
                let _ = line_tx
                    .send(encode_line(&StreamLine::<T>::Progress(progress)))
                    .await;
            }
            let last = match task.await {
                Ok(Ok(result)) => StreamLine::Done { result },
                Ok(Err(error)) => StreamLine::Error {
                    error: error.to_api(),
                },
                Err(join) => StreamLine::Error {
                    error: seedbank_protocol::api::ApiError {
                        code: seedbank_protocol::api::ErrorCode::Internal,
                        message: format!("operation failed: {join}"),
                    },
                },
            };
            let _ = line_tx.send(encode_line(&last)).await;
        },
        tracing::Span::current(),
    ));
    let body = futures_util::stream::unfold(line_rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, std::convert::Infallible>(line), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, NDJSON_CONTENT_TYPE)
        .body(Body::from_stream(body))
        .unwrap_or_default()
}

fn encode_line<T: Serialize>(line: &StreamLine<T>) -> Bytes {
    let mut bytes = serde_json::to_vec(line).unwrap_or_else(|e| {
        format!("{{\"type\":\"error\",\"error\":{{\"code\":\"internal\",\"message\":\"encoding: {e}\"}}}}").into_bytes()
    });
    bytes.push(b'\n');
    Bytes::from(bytes)
}
