//! Runs a node in the foreground: opens the data dir, starts the control API, and on
//! SIGINT or SIGTERM stops taking requests, flushes metadata and closes the store.

use std::net::SocketAddr;
use std::sync::Arc;

use libp2p::{Multiaddr, PeerId};

use crate::api::{self, token::load_or_create_token, ApiState};
use crate::config::NodeConfig;
use crate::data_dir::{write_private_file, DataDir};
use crate::error::{NodeError, NodeResult};
use crate::identity::load_or_create_keypair;
use crate::library::Library;
use crate::net::NetTransport;
use crate::node::{Node, NodeOptions, RateLimits};

/// Settings given on the command line, which win over `config.toml`.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// `--api-addr`.
    pub api_addr: Option<SocketAddr>,
    /// `--listen` (replaces the configured list when given).
    pub listen: Vec<Multiaddr>,
    /// `--bootstrap` (added to the configured list).
    pub bootstrap: Vec<Multiaddr>,
    /// `--no-mdns`.
    pub no_mdns: bool,
    /// `--kad-server`.
    pub kad_server: bool,
    /// `--upload-limit`.
    pub upload_limit: Option<u64>,
    /// `--download-limit`.
    pub download_limit: Option<u64>,
}

/// Loads the configuration: embedded defaults, then `config.toml`, then flags.
pub fn load_config(data_dir: &DataDir, overrides: &ConfigOverrides) -> NodeResult<NodeConfig> {
    let mut config = NodeConfig::load(&data_dir.config())?;
    if let Some(addr) = overrides.api_addr {
        config.api_addr = addr;
    }
    if !overrides.listen.is_empty() {
        config.net.listen = overrides.listen.clone();
    }
    config
        .net
        .bootstrap
        .extend(overrides.bootstrap.iter().cloned());
    config.net.mdns &= !overrides.no_mdns;
    config.net.kad_server |= overrides.kad_server;
    config.upload_limit = overrides.upload_limit.or(config.upload_limit);
    config.download_limit = overrides.download_limit.or(config.download_limit);
    config.validate()?;
    Ok(config)
}

/// Runs the daemon until a shutdown signal arrives.
pub async fn run(data_dir: DataDir, overrides: ConfigOverrides) -> NodeResult<()> {
    data_dir.create()?;
    let config = load_config(&data_dir, &overrides)?;
    let keypair = load_or_create_keypair(&data_dir.key())?;
    let node_id = PeerId::from(keypair.public()).to_string();
    let token = load_or_create_token(&data_dir.api_token())?;
    let library = Library::open(data_dir.clone(), node_id.clone()).await?;
    let limits = RateLimits {
        upload: config.upload_limit,
        download: config.download_limit,
    };
    let node = Node::start(
        library.clone(),
        keypair,
        config.net.clone(),
        NetTransport::Default,
        NodeOptions { limits, seed: true },
    )
    .await?;

    let listener = tokio::net::TcpListener::bind(config.api_addr)
        .await
        .map_err(|e| NodeError::Io {
            context: format!("binding the control API to {}", config.api_addr),
            source: e,
        })?;
    let api_addr = listener
        .local_addr()
        .map_err(|e| NodeError::io("reading bound address", data_dir.root(), e))?;
    write_private_file(&data_dir.api_addr(), api_addr.to_string().as_bytes())?;
    tracing::info!(%node_id, %api_addr, data_dir = %data_dir.root().display(), "seedbank daemon running");

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
    let watchdog = tokio::spawn(watch_store(library.clone(), store_failed_tx));
    let stop = async move {
        tokio::select! {
            _ = shutdown_signal() => {}
            _ = store_failed_rx.wait_for(|failed| *failed) => {}
        }
        // Running fetches end now (saved, to resume at next start), so the clients
        // watching them get their last line and let the server stop.
        node.stop_fetches();
    };
    api::server::serve(listener, app, stop, SHUTDOWN_GRACE).await;
    watchdog.abort();
    let store_failed = !library.store_is_alive().await;
    tracing::info!("shutting down");
    let _ = std::fs::remove_file(data_dir.api_addr());
    library.close().await?;
    if store_failed {
        return Err(NodeError::Store(
            "the blob store stopped (a full disk is the usual cause; see the log above); free space and start the daemon again".into(),
        ));
    }
    Ok(())
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
