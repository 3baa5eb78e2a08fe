//! Runs a node in the foreground: opens the data dir, starts the control API, and on
//! SIGINT or SIGTERM stops taking requests, flushes metadata and closes the store.

use std::net::SocketAddr;
use std::sync::Arc;

use libp2p_identity::PeerId;

use crate::api::{self, token::load_or_create_token, ApiState};
use crate::config::NodeConfig;
use crate::data_dir::{write_private_file, DataDir};
use crate::error::{NodeError, NodeResult};
use crate::identity::load_or_create_keypair;
use crate::library::Library;

/// Settings given on the command line, which win over `config.toml`.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    /// `--api-addr`.
    pub api_addr: Option<SocketAddr>,
}

/// Loads the configuration: embedded defaults, then `config.toml`, then flags.
pub fn load_config(data_dir: &DataDir, overrides: &ConfigOverrides) -> NodeResult<NodeConfig> {
    let mut config = NodeConfig::load(&data_dir.config())?;
    if let Some(addr) = overrides.api_addr {
        config.api_addr = addr;
    }
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
        library: library.clone(),
        token: Arc::from(token),
    };
    let app = api::router(state, config.max_api_requests);
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await;
    tracing::info!("shutting down");
    let _ = std::fs::remove_file(data_dir.api_addr());
    library.close().await?;
    served.map_err(|e| NodeError::Io {
        context: "serving the control API".into(),
        source: e,
    })
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
