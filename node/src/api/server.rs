//! The control API's accept loop: one task per connection, HTTP/1 only.
//!
//! Owns the listener, the connection slots, the table of open connections and their
//! tasks. Invariants: at most [`MAX_API_CONNECTIONS`] connections are served at once; a
//! connection that has not sent a complete request head within [`HEADER_READ_TIMEOUT`],
//! whether new, half-sent or idle between keep-alive requests, is closed; when a new
//! connection arrives with every slot taken, the oldest connection with no request in
//! progress is closed to make room (a program holding idle connections cannot lock the
//! CLI out; the CLI sends its request at once, so it is never the oldest idle one), and
//! only if every connection has a request in progress does the new one wait; once `stop`
//! resolves no connection is accepted, open ones finish their request and close, and
//! those still open after `grace` are dropped; a connection whose client takes no byte
//! of a response for the stall limit is closed ([`StallLimited`]). Called by the daemon
//! only.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::Request;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{service_fn, Service};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::held_body::hold_until_done;
use super::write_stall::StallLimited;

/// Most control-API connections served at once. The CLI opens one per command and a
/// script a handful; each costs a file descriptor and a task, so a local program
/// opening thousands must not exhaust the daemon's descriptors (which its peers and
/// blob store need too).
pub const MAX_API_CONNECTIONS: usize = 256;

/// How long a connection may take to send a complete request head, counted from when
/// the server starts waiting for one: at connect, and again after each response (so it
/// is also the keep-alive idle timeout). The CLI sends its head at once; a client that
/// dribbles or sends nothing only holds a connection slot.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may leave a response unread, taking no byte, before its
/// connection is closed (`client_stall_timeout` in config.toml).
pub const CLIENT_STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after a failed `accept` (out of descriptors, usually) before trying again, so
/// the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// One open connection, as the accept loop sees it.
struct OpenConnection {
    id: u64,
    /// Requests whose response is not yet fully sent.
    requests: Arc<AtomicUsize>,
    /// Cancelled to drop the connection at once (hyper's graceful shutdown would leave
    /// a connection that has not yet sent a request head open until its timeout).
    evict: CancellationToken,
}

/// The open connections, oldest first.
#[derive(Clone, Default)]
struct ConnectionTable(Arc<Mutex<VecDeque<OpenConnection>>>);

impl ConnectionTable {
    fn with<T>(&self, f: impl FnOnce(&mut VecDeque<OpenConnection>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Closes the oldest connection with no request in progress; false if there is none.
    fn evict_oldest_idle(&self) -> bool {
        self.with(|open| {
            let idle = open
                .iter()
                .position(|c| c.requests.load(Ordering::Acquire) == 0);
            idle.and_then(|i| open.remove(i))
                .map(|connection| connection.evict.cancel())
                .is_some()
        })
    }
}

/// How the accept loop times its connections.
#[derive(Debug, Clone, Copy)]
pub struct ServeTimes {
    /// After `stop`, how long open connections may take to finish.
    pub grace: Duration,
    /// How long a client may take no byte of a response before it is disconnected.
    pub stall: Duration,
}

/// Serves `app` on `listener` until `stop` resolves, then lets open connections finish
/// for up to `times.grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: impl Future<Output = ()>,
    times: ServeTimes,
) {
    let grace = times.grace;
    let slots = Arc::new(Semaphore::new(MAX_API_CONNECTIONS));
    let table = ConnectionTable::default();
    let closing = CancellationToken::new();
    let mut connections = JoinSet::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let mut next_id = 0u64;
    tokio::pin!(stop);
    loop {
        // Tasks that ended are only reaped here, so at most one accept's worth of them
        // (bounded by the slots) waits to be collected.
        while connections.try_join_next().is_some() {}
        let accepted = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                // Progress lines are small and must not wait for Nagle's algorithm.
                let _ = stream.set_nodelay(true);
                stream
            }
            Err(error) => {
                tracing::debug!(%error, "control API accept failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if table.evict_oldest_idle() {
                    tracing::debug!("control API connections full; closed the oldest idle one");
                }
                tokio::select! {
                    () = &mut stop => break,
                    slot = Arc::clone(&slots).acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                }
            }
        };
        let requests = Arc::new(AtomicUsize::new(0));
        let evict = CancellationToken::new();
        next_id += 1;
        let id = next_id;
        table.with(|open| {
            open.push_back(OpenConnection {
                id,
                requests: Arc::clone(&requests),
                evict: evict.clone(),
            })
        });
        let table = table.clone();
        let connection = serve_connection(
            http.clone(),
            StallLimited::new(stream, times.stall),
            app.clone(),
            requests,
            closing.clone(),
            evict,
        );
        connections.spawn(async move {
            connection.await;
            table.with(|open| open.retain(|c| c.id != id));
            drop(slot);
        });
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

/// Counts a request in progress on its connection until dropped.
struct InProgress(Arc<AtomicUsize>);

impl InProgress {
    fn start(requests: &Arc<AtomicUsize>) -> Self {
        requests.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(requests))
    }
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Serves one connection until it ends, until `closing` asks it to finish its request
/// and close, or until `evict` drops it. `requests` counts its requests in progress,
/// response bodies included.
async fn serve_connection(
    http: http1::Builder,
    stream: StallLimited<TcpStream>,
    app: Router,
    requests: Arc<AtomicUsize>,
    closing: CancellationToken,
    evict: CancellationToken,
) {
    let app = TowerToHyperService::new(app);
    let service = service_fn(move |request: Request<Incoming>| {
        let in_progress = InProgress::start(&requests);
        let response = app.call(request);
        async move {
            let response = response.await?;
            Ok::<_, std::convert::Infallible>(
                response.map(|body| hold_until_done(body, in_progress)),
            )
        }
    });
    let connection = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let ended = tokio::select! {
        ended = connection.as_mut() => ended,
        () = evict.cancelled() => return,
        () = closing.cancelled() => {
            // A connection between requests closes at once; a busy one after its
            // response; a new one that never sends a head at its header timeout (or
            // when the grace runs out).
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                ended = connection.as_mut() => ended,
                () = evict.cancelled() => return,
            }
        }
    };
    if let Err(error) = ended {
        // Timeouts and clients that hang up: a local program's doing, not the node's.
        tracing::debug!(%error, "control API connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_closes_the_oldest_connection_without_a_request() {
        let table = ConnectionTable::default();
        let connections: Vec<_> = (0..3)
            .map(|id| {
                let connection = OpenConnection {
                    id,
                    requests: Arc::new(AtomicUsize::new(0)),
                    evict: CancellationToken::new(),
                };
                let handles = (Arc::clone(&connection.requests), connection.evict.clone());
                table.with(|open| open.push_back(connection));
                handles
            })
            .collect();
        let _busy = InProgress::start(&connections[0].0);

        assert!(table.evict_oldest_idle());
        let evicted: Vec<bool> = connections.iter().map(|c| c.1.is_cancelled()).collect();
        assert_eq!(evicted, [false, true, false], "the oldest one is busy");
        assert!(table.evict_oldest_idle());
        assert!(connections[2].1.is_cancelled());
        assert!(!table.evict_oldest_idle(), "only the busy one is left");
        assert!(!connections[0].1.is_cancelled());
    }
}
