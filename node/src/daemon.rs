//! Runs a node in the foreground: checks its settings, locks and opens the data dir,
//! starts the network and the control API, reports readiness (a start-up block in the
//! log, and to systemd), and on SIGINT or SIGTERM stops taking requests, flushes
//! metadata and closes the store.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};

use crate::api::{self, token::load_or_create_token, ApiState};
use crate::clock::Clock;
pub use crate::config::ConfigOverrides;
use crate::config::LoadedConfig;
use crate::daemon_lock::DaemonLock;
use crate::data_dir::{write_private_file, DataDir};
use crate::error::{NodeError, NodeResult};
use crate::identity::load_or_create_keypair;
use crate::library::Library;
use crate::net::{NetHandle, NetTransport};
use crate::node::{Node, NodeOptions, RateLimits};
use crate::startup_report::{startup_block, StartupFacts};

/// Serves the Hugging Face gateway on `listener` until `stop`, and writes its endpoint
/// into the data dir for scripts and the CLI.
fn serve_gateway(
    listener: tokio::net::TcpListener,
    node: &Node,
    config: &crate::config::NodeConfig,
    data_dir: &DataDir,
    stop: tokio_util::sync::CancellationToken,
) -> NodeResult<tokio::task::JoinHandle<()>> {
    let addr = listener
        .local_addr()
        .map_err(|e| NodeError::io("reading bound address", data_dir.root(), e))?;
    let state = crate::gateway::GatewayState {
        node: node.clone(),
        resolver: crate::gateway::resolver::Resolver::new(
            node.clone(),
            config.hf_publishers.clone(),
        ),
    };
    let hosts = if config.hf_gateway_allow_remote {
        api::HostPolicy::Any
    } else {
        api::HostPolicy::LoopbackOnly
    };
    let app = crate::gateway::router(state, hosts);
    let times = api::server::ServeTimes {
        grace: SHUTDOWN_GRACE,
        stall: config.client_stall_timeout,
    };
    let endpoint = format!("http://{addr}");
    write_private_file(&data_dir.hf_endpoint(), endpoint.as_bytes())?;
    tracing::info!(%endpoint, "Hugging Face gateway ready: HF_ENDPOINT={endpoint}");
    Ok(tokio::spawn(tracing::Instrument::instrument(
        async move {
            api::server::serve(listener, app, stop.cancelled_owned(), times).await;
        },
        tracing::info_span!("hf_gateway"),
    )))
}

/// How long start-up waits for the swarm to report its listen addresses.
const LISTEN_REPORT_WAIT: Duration = Duration::from_secs(3);

/// Runs the daemon until a shutdown signal arrives, on `clock` ([`Clock::system`],
/// or [`Clock::advanceable`] for `--test-clock`). Arguments and settings are checked
/// before anything is written; then the data dir is locked, so a second daemon on it
/// stops there and changes nothing.
pub async fn run(data_dir: DataDir, overrides: ConfigOverrides, clock: Clock) -> NodeResult<()> {
    let config = LoadedConfig::load(&data_dir.config(), &overrides)?.config;
    let _lock = DaemonLock::acquire(&data_dir)?;
    let listener = bind_api(config.api_addr).await?;
    let gateway_listener = match config.hf_gateway {
        true => Some(crate::gateway::bind(config.hf_gateway_addr).await?),
        false => None,
    };
    data_dir.create()?;
    let keypair = load_or_create_keypair(&data_dir.key())?;
    let peer_id = PeerId::from(keypair.public());
    let node_id = peer_id.to_string();
    let token = load_or_create_token(&data_dir.api_token())?;
    if clock.is_advanceable() {
        tracing::warn!("test clock: the control API may move this node's clock forward (--test-clock is for tests only)");
    }
    let library = Library::open(data_dir.clone(), node_id.clone(), clock)
        .await?
        .with_max_storage(config.max_storage.map(|size| size.bytes()));
    let limits = RateLimits {
        upload: config.upload_limit.map(|r| r.bytes_per_second()),
        download: config.download_limit.map(|r| r.bytes_per_second()),
    };
    let node = Node::start(
        library.clone(),
        keypair,
        config.net.clone(),
        NetTransport::Default,
        NodeOptions {
            limits,
            seed: true,
            seed_licences: config.seed_licences.clone(),
            preserve: config.preserve_options(),
            denylist_refresh: config.denylist_refresh,
            fetch_timings: config.fetch_timings(),
            mirror_low_speed: config.mirror_low_speed(),
        },
    )
    .await?;

    let api_addr = listener
        .local_addr()
        .map_err(|e| NodeError::io("reading bound address", data_dir.root(), e))?;
    let listen_addresses = reported_listen_addresses(node.net(), &config.net.listen).await;
    let block = startup_block(&StartupFacts {
        node_id: peer_id,
        data_dir: data_dir.root(),
        api_addr,
        listen_addresses: &listen_addresses,
        config: &config,
    });
    let gateway_stop = tokio_util::sync::CancellationToken::new();
    let gateway = match gateway_listener {
        Some(listener) => Some(serve_gateway(
            listener,
            &node,
            &config,
            &data_dir,
            gateway_stop.clone(),
        )?),
        None => None,
    };
    tracing::info!("seedbank daemon ready\n{block}");
    // The CLI finds the daemon through this file: written last, once all is ready.
    write_private_file(&data_dir.api_addr(), api_addr.to_string().as_bytes())?;
    notify_service_manager(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("serving; api on {api_addr}")),
    ]);

    let state = ApiState {
        node: node.clone(),
        token: Arc::from(token),
    };
    let hosts = if config.api_allow_remote {
        api::HostPolicy::Any
    } else {
        api::HostPolicy::LoopbackOnly
    };
    let app = api::router(state, config.max_api_requests, hosts);
    let (store_failed_tx, mut store_failed_rx) = tokio::sync::watch::channel(false);
    let watchdog = tokio::spawn(tracing::Instrument::instrument(
        watch_store(library.clone(), store_failed_tx),
        tracing::info_span!("store_watchdog"),
    ));
    let net = node.net().clone();
    let stop = async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = store_failed_rx.wait_for(|failed| *failed) => {}
        }
        notify_service_manager(&[sd_notify::NotifyState::Stopping]);
        // Running fetches end now (saved, to resume at next start), so the clients
        // watching them get their last line and let the server stop.
        node.stop_fetches();
        gateway_stop.cancel();
    };
    let times = api::server::ServeTimes {
        grace: SHUTDOWN_GRACE,
        stall: config.client_stall_timeout,
    };
    api::server::serve(listener, app, stop, times).await;
    if let Some(gateway) = gateway {
        let _ = gateway.await;
    }
    let _ = std::fs::remove_file(data_dir.hf_endpoint());
    watchdog.abort();
    let store_failed = !library.store_is_alive().await;
    tracing::info!("shutting down");
    // Port mappings on the home router go with the listeners.
    let _ = tokio::time::timeout(Duration::from_secs(3), net.stop_listening()).await;
    let _ = std::fs::remove_file(data_dir.api_addr());
    library.close().await?;
    if store_failed {
        return Err(NodeError::Store(
            "the blob store stopped (a full disk is the usual cause; see the log above); free space and start the daemon again".into(),
        ));
    }
    Ok(())
}

/// Binds the control API, saying what to do when the address is taken.
async fn bind_api(addr: SocketAddr) -> NodeResult<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            let mut other = addr;
            other.set_port(addr.port().wrapping_add(1).max(1));
            NodeError::InUse(format!(
                "the control API address {addr} (port {}) is already in use, probably by another seedbank daemon with another data dir; \
                 stop it, or give this one another address: --api-addr {other} (or api_addr in config.toml)",
                addr.port()
            ))
        } else {
            NodeError::Io {
                context: format!("binding the control API to {addr}"),
                source: e,
            }
        }
    })
}

/// The swarm's listen addresses once it has reported one for each address it was
/// asked to listen on (concrete IPs for wildcard listeners), else what it reported by
/// the deadline, else the addresses it was asked to listen on.
async fn reported_listen_addresses(net: &NetHandle, asked: &[Multiaddr]) -> Vec<Multiaddr> {
    let deadline = tokio::time::Instant::now() + LISTEN_REPORT_WAIT;
    let mut listening = Vec::new();
    loop {
        if let Ok(status) = net.status().await {
            listening = status
                .listen_addresses
                .iter()
                .filter_map(|a| a.parse().ok())
                .collect();
            if listening.len() >= asked.len() {
                return listening;
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return if listening.is_empty() {
                asked.to_vec()
            } else {
                listening
            };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Tells systemd (`Type=notify`) how the daemon is doing; nothing outside systemd.
fn notify_service_manager(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!(error = %e, "cannot notify the service manager");
    }
}

/// How long a stopping daemon waits for attached clients (an export, a verify) to finish
/// before it closes their connections; what they ran leaves the store consistent.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// How often the daemon checks that the blob store is still running.
const STORE_WATCH_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

/// Sets `failed` once the blob store has stopped, so the daemon exits with an error
/// instead of answering every request with one.
async fn watch_store(library: Library, failed: tokio::sync::watch::Sender<bool>) {
    loop {
        tokio::time::sleep(STORE_WATCH_INTERVAL).await;
        if !library.store_is_alive().await {
            tracing::error!("the blob store has stopped; shutting down");
            let _ = failed.send(true);
            return;
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the daemon");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
