//! The control API's accept loop: one task per connection, HTTP/1 only.
//!
//! Owns the listener, the connection slots and the connection tasks. Invariants: at most
//! [`MAX_API_CONNECTIONS`] connections are open at once (beyond that the loop stops
//! accepting, so new ones wait in the kernel's backlog instead of being refused); a
//! connection that has not sent a complete request head within [`HEADER_READ_TIMEOUT`],
//! whether new, half-sent or idle between keep-alive requests, is closed; once `stop`
//! resolves no connection is accepted, open ones finish their request and close, and
//! those still open after `grace` are dropped. Called by the daemon only.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Most control-API connections open at once. The CLI opens one per command and a
/// script a handful; each costs a file descriptor and a task, so a local program
/// opening thousands must not exhaust the daemon's descriptors (which its peers and
/// blob store need too).
pub const MAX_API_CONNECTIONS: usize = 256;

/// How long a connection may take to send a complete request head, counted from when
/// the server starts waiting for one: at connect, and again after each response (so it
/// is also the keep-alive idle timeout). The CLI sends its head at once; a client that
/// dribbles or sends nothing only holds a connection slot.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (out of descriptors, usually) before trying again, so
/// the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `app` on `listener` until `stop` resolves, then lets open connections finish
/// for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: impl Future<Output = ()>,
    grace: Duration,
) {
    let slots = Arc::new(Semaphore::new(MAX_API_CONNECTIONS));
    let closing = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    tokio::pin!(stop);
    loop {
        // Tasks that ended are only reaped here, so at most one accept's worth of them
        // (bounded by the slots) waits to be collected.
        while connections.try_join_next().is_some() {}
        let slot = tokio::select! {
            () = &mut stop => break,
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                connections.spawn(serve_connection(
                    http.clone(),
                    stream,
                    app.clone(),
                    closing.clone(),
                    slot,
                ));
            }
            Err(error) => {
                tracing::debug!(%error, "control API accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    drop(listener);
    closing.cancel();
    let drained = tokio::time::timeout(grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::info!(
            clients = connections.len(),
            "clients still attached after {grace:?}; closing their connections"
        );
        connections.shutdown().await;
    }
}

/// Serves one connection until it ends, or until `closing` asks it to finish its
/// request and close. `_slot` is its place among [`MAX_API_CONNECTIONS`].
async fn serve_connection(
    http: http1::Builder,
    stream: TcpStream,
    app: Router,
    closing: CancellationToken,
    _slot: OwnedSemaphorePermit,
) {
    // Progress lines are small and must not wait for Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = closing.cancelled() => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(error) = ended {
        // Timeouts and clients that hang up: a local program's doing, not the node's.
        tracing::debug!(%error, "control API connection ended");
    }
}
