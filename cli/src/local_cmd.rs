//! The commands that need no running daemon: `daemon` runs one here, `config` shows the
//! settings one would start with, `completions` and `man` print from the command
//! line's own description (which the dispatcher hands them).

use std::time::Duration;

use anyhow::{Context, Result};
use seedbank_node::clock::Clock;
use seedbank_node::config::{ConfigOverrides, LoadedConfig};
use seedbank_node::DataDir;

use crate::exit::Exit;
use crate::output::{outln, print, print_table};

/// Log filter when `RUST_LOG` is unset. iroh-blobs' GC loop logs every skipped run at
/// info, which the store's on-demand collection turns into noise. Kademlia warns when
/// its own automatic bootstrap finds no peer, which is every first node of a network
/// (the event loop bootstraps on its own schedule), and libp2p's swarm logs the node id,
/// which the start-up block already shows.
const DEFAULT_LOG_FILTER: &str =
    "info,iroh_blobs=warn,libp2p_kad::behaviour=error,libp2p_swarm=warn";

/// `seedbank daemon`: runs a node in the foreground until Ctrl-C or SIGTERM, on the
/// wall clock, or with `test_clock` (seconds ahead to start at) on one the control API
/// can move forward.
pub(crate) fn daemon(
    data_dir: DataDir,
    overrides: ConfigOverrides,
    test_clock: Option<u64>,
    json_logs: bool,
) -> Result<Exit> {
    let clock = match test_clock {
        None => Clock::system(),
        Some(ahead) => {
            let clock = Clock::advanceable();
            clock
                .advance(Duration::from_secs(ahead))
                .context("--test-clock")?;
            clock
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json_logs {
        // One JSON object per line, for log shippers: no colour, fields kept apart.
        logs.json().with_ansi(false).init();
    } else {
        // Colour only for a person at a terminal: files and journald get plain text.
        logs.with_ansi(
            std::io::IsTerminal::is_terminal(&std::io::stderr())
                && std::env::var_os("NO_COLOR").is_none(),
        )
        .init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(seedbank_node::daemon::run(data_dir, overrides, clock))?;
    Ok(Exit::Ok)
}

/// `seedbank config`: the effective settings and their sources, computed here as the
/// daemon computes them at start (a running daemon may have been started otherwise).
pub(crate) fn config(data_dir: &DataDir, overrides: ConfigOverrides, json: bool) -> Result<Exit> {
    let loaded = LoadedConfig::load(&data_dir.config(), &overrides)?;
    let settings = loaded.settings()?;
    print(json, &settings, || {
        let rows: Vec<Vec<String>> = settings
            .iter()
            .map(|s| {
                let value = match &s.value {
                    serde_json::Value::Null => "(not set)".to_owned(),
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                vec![s.key.clone(), value, s.source.clone()]
            })
            .collect();
        outln!("config file: {}", data_dir.config().display());
        print_table(&["SETTING", "VALUE", "FROM"], &rows);
    })?;
    Ok(Exit::Ok)
}

/// `seedbank completions SHELL`: prints the completion script of `command` for `shell`.
pub(crate) fn completions(mut command: clap::Command, shell: clap_complete::Shell) -> Result<Exit> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "seedbank", &mut script);
    write_stdout(&script)
}

/// `seedbank man`: prints the man page of `command`, in roff.
pub(crate) fn man_page(command: clap::Command) -> Result<Exit> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .context("rendering the man page")?;
    write_stdout(&page)
}

/// Writes `bytes` to stdout; a closed pipe is left to `main`, which ends quietly.
fn write_stdout(bytes: &[u8]) -> Result<Exit> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .context("writing to stdout")?;
    Ok(Exit::Ok)
}
