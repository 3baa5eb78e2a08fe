//! A real `seedbank daemon` process for end-to-end tests: started on a temporary data
//! directory (or one the test gives), its control API and gateway on free loopback
//! ports, its peers on loopback only with mDNS off, and its output in a log file beside
//! the data dir. The test drives it through the real CLI; every failure message shows
//! the command, its output and the daemon's log. Every daemon runs with the hidden
//! `--test-clock` flag, so a test moves its clock ([`Daemon::advance_clock`]) instead of
//! sleeping until the wall clock does.
//!
//! Invariants: at most one process per `Daemon`; dropping it kills the process. A
//! restarted daemon's clock starts as far ahead as the test had moved it, so its time
//! never goes back.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use seedbank_protocol::test_api::ClockAdvanceRequest;

use crate::cli::{artifact_id, run_cli, seedbank_binary, CliOutput};
use crate::fixtures::{metric, poll};

/// How long a daemon may take to write its API address after starting.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a daemon may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Flags every test daemon gets: peers on loopback only (TCP and QUIC, free ports), and
/// no mDNS, which would multicast out of the machine's network card.
pub const LOOPBACK_NETWORK_FLAGS: [&str; 5] = [
    "--no-mdns",
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--listen",
    "/ip4/127.0.0.1/udp/0/quic-v1",
];

/// A real daemon process on a temporary data dir and a free loopback port.
pub struct Daemon {
    data_dir: PathBuf,
    _temp: Option<tempfile::TempDir>,
    child: Option<Child>,
    log_path: PathBuf,
    api_addr: String,
    extra_args: Vec<String>,
    prefix: Vec<String>,
    network_flags: Vec<String>,
    log_filter: Option<String>,
    /// How far the test has moved the daemon's clock: where it starts when restarted.
    clock_advanced: Duration,
}

impl Daemon {
    /// Starts a daemon on a fresh temporary data directory.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a daemon on a fresh temporary data directory with extra daemon flags.
    pub fn start_with(args: &[&str]) -> Self {
        Self::start_logging(None, args)
    }

    /// Starts a daemon on a fresh temporary data directory with extra daemon flags,
    /// logging with the `RUST_LOG` filter `log_filter` (for tests that read what it
    /// logs at debug) or its own filter when `None`.
    pub fn start_logging(log_filter: Option<&str>, args: &[&str]) -> Self {
        Self::start_fresh(log_filter, None, args)
    }

    /// Starts a daemon on a fresh temporary data directory whose `config.toml` holds
    /// `config`, with extra daemon flags.
    pub fn start_configured(config: &str, args: &[&str]) -> Self {
        Self::start_fresh(None, Some(config), args)
    }

    /// Starts a daemon like [`Self::start_configured`] that talks to peers from the
    /// loopback address `ip` instead of 127.0.0.1, so others see it there: daemons at
    /// 127.0.1.1 and 127.0.2.1 sit in two networks as a node counts them (IPv4 /24).
    /// QUIC only: a TCP dial leaves from 127.0.0.1 whatever the listener's address, a
    /// QUIC dial from the listener's own socket. Join it through a QUIC address
    /// ([`Self::quic_peer_address`]). A node whose view of peers' networks a test
    /// asserts must be started this way too, or peers may reach it by TCP.
    pub fn start_configured_at(ip: &str, config: &str, args: &[&str]) -> Self {
        assert!(
            ip.starts_with("127."),
            "test daemons stay on loopback: {ip}"
        );
        let quic = format!("/ip4/{ip}/udp/0/quic-v1");
        let flags = ["--no-mdns", "--listen", &quic];
        Self::start_fresh_on(None, Some(config), args, &flags)
    }

    fn start_fresh(log_filter: Option<&str>, config: Option<&str>, args: &[&str]) -> Self {
        Self::start_fresh_on(log_filter, config, args, &LOOPBACK_NETWORK_FLAGS)
    }

    fn start_fresh_on(
        log_filter: Option<&str>,
        config: Option<&str>,
        args: &[&str],
        network_flags: &[&str],
    ) -> Self {
        let temp = tempfile::tempdir().expect("creating a temporary data dir");
        let mut daemon = Self::new(&temp.path().join("data"), args, &[], network_flags);
        if let Some(config) = config {
            std::fs::write(daemon.data_dir.join("config.toml"), config)
                .expect("writing config.toml");
        }
        daemon._temp = Some(temp);
        daemon.log_filter = log_filter.map(str::to_owned);
        daemon.launch();
        daemon
    }

    /// Starts a daemon on `data_dir` (kept after the daemon ends).
    pub fn start_in(data_dir: &Path) -> Self {
        Self::start_in_with(data_dir, &[])
    }

    /// Starts a daemon on `data_dir` with extra daemon flags.
    pub fn start_in_with(data_dir: &Path, args: &[&str]) -> Self {
        let mut daemon = Self::new(data_dir, args, &[], &LOOPBACK_NETWORK_FLAGS);
        daemon.launch();
        daemon
    }

    /// Starts a daemon inside a network namespace (`ip netns exec NAMESPACE`) with the
    /// given network flags instead of the loopback ones; its CLI commands run there too.
    pub fn start_in_namespace(data_dir: &Path, namespace: &str, network_flags: &[&str]) -> Self {
        let prefix = ["ip", "netns", "exec", namespace];
        let mut daemon = Self::new(data_dir, &[], &prefix, network_flags);
        daemon.launch();
        daemon
    }

    fn new(data_dir: &Path, args: &[&str], prefix: &[&str], network_flags: &[&str]) -> Self {
        std::fs::create_dir_all(data_dir).expect("creating the data dir");
        let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        Self {
            data_dir: data_dir.to_owned(),
            _temp: None,
            child: None,
            log_path: data_dir.with_extension("log"),
            api_addr: String::new(),
            extra_args: owned(args),
            prefix: owned(prefix),
            network_flags: owned(network_flags),
            log_filter: None,
            clock_advanced: Duration::ZERO,
        }
    }

    /// A command running `seedbank` (inside this daemon's namespace, if any).
    fn seedbank_command(&self) -> Command {
        match self.prefix.split_first() {
            Some((program, rest)) => {
                let mut command = Command::new(program);
                command.args(rest).arg(seedbank_binary());
                command
            }
            None => Command::new(seedbank_binary()),
        }
    }

    /// A gateway on a free loopback port, unless the test chose otherwise.
    fn gateway_flags(&self) -> Vec<&'static str> {
        let chosen = self
            .extra_args
            .iter()
            .any(|a| a == "--no-hf-gateway" || a == "--hf-gateway-addr");
        if chosen {
            Vec::new()
        } else {
            vec!["--hf-gateway-addr", "127.0.0.1:0"]
        }
    }

    /// The `RUST_LOG` the daemon runs with: the test's filter, else `SEEDBANK_TEST_LOG`,
    /// else none (the daemon's own filter).
    fn rust_log(&self) -> Option<String> {
        self.log_filter
            .clone()
            .or_else(|| std::env::var("SEEDBANK_TEST_LOG").ok())
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(self.data_dir.join("api.addr"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("opening the daemon log");
        let child = self
            .seedbank_command()
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["daemon", "--api-addr", "127.0.0.1:0"])
            // Restarted, it starts as far ahead as the test had moved it.
            .arg(format!("--test-clock={}", self.clock_advanced.as_secs()))
            .args(self.gateway_flags())
            .args(&self.network_flags)
            .args(&self.extra_args)
            .env_remove("RUST_LOG")
            .envs(self.rust_log().map(|filter| ("RUST_LOG", filter)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning seedbank daemon");
        let child = self.child.insert(child);
        let addr_file = self.data_dir.join("api.addr");
        // Ok(Ok(address)) once written, Ok(Err(status)) if the daemon exited first.
        let started = poll(START_TIMEOUT, || {
            let written = std::fs::read_to_string(&addr_file).unwrap_or_default();
            if !written.trim().is_empty() {
                return Ok(Ok(written.trim().to_owned()));
            }
            match child.try_wait() {
                Ok(Some(status)) => Ok(Err(status)),
                _ => Err("no api.addr yet".to_owned()),
            }
        });
        match started {
            Ok(Ok(address)) => self.api_addr = address,
            Ok(Err(status)) => panic!(
                "daemon exited with {status} before it was ready\n{}",
                self.log()
            ),
            Err(_) => panic!(
                "daemon did not write api.addr within {START_TIMEOUT:?}\n{}",
                self.log()
            ),
        }
    }

    /// This daemon's TCP peer address with its peer id, for others to bootstrap from.
    pub fn peer_address(&self) -> String {
        self.peer_address_over("/tcp/")
    }

    /// This daemon's QUIC peer address with its peer id.
    pub fn quic_peer_address(&self) -> String {
        self.peer_address_over("/quic-v1")
    }

    fn peer_address_over(&self, transport: &str) -> String {
        let status = self.ok_json(&["status"]);
        let node_id = status["node_id"].as_str().expect("node id").to_owned();
        let listen = status["network"]["listen_addresses"]
            .as_array()
            .expect("listen addresses")
            .iter()
            .filter_map(|a| a.as_str())
            .find(|a| a.contains(transport))
            .unwrap_or_else(|| panic!("no {transport} listen address in {status}"))
            .to_owned();
        format!("{listen}/p2p/{node_id}")
    }

    /// The node's peer id.
    pub fn peer_id(&self) -> String {
        self.ok_json(&["status"])["node_id"]
            .as_str()
            .expect("node id")
            .to_owned()
    }

    /// Adds the directory `dir` and returns the new artifact's id.
    pub fn add_artifact(&self, dir: &Path) -> String {
        artifact_id(&self.ok_json(&["add", dir.to_str().expect("a UTF-8 path")]))
    }

    /// Starts `seedbank ARGS` against this daemon on another thread, for tests that act
    /// while it runs (kill the daemon, watch its status); join the handle for the
    /// command's output.
    pub fn cli_in_background(&self, args: &[&str]) -> std::thread::JoinHandle<CliOutput> {
        let data_dir = self.data_dir.clone();
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        std::thread::spawn(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_cli(&data_dir, &args)
        })
    }

    /// Starts `seedbank add DIR` on another thread (see [`Daemon::cli_in_background`]).
    pub fn add_in_background(&self, dir: &Path) -> std::thread::JoinHandle<CliOutput> {
        self.cli_in_background(&["add", dir.to_str().expect("a UTF-8 path")])
    }

    /// The Hugging Face gateway's endpoint (`http://127.0.0.1:PORT`), for `HF_ENDPOINT`.
    pub fn hf_endpoint(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("hf-endpoint"))
            .unwrap_or_else(|e| panic!("the daemon wrote no gateway endpoint: {e}\n{}", self.log()))
            .trim()
            .to_owned()
    }

    /// The daemon's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The control API's `host:port`.
    pub fn api_addr(&self) -> &str {
        &self.api_addr
    }

    /// The API token.
    pub fn token(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("api.token")).expect("reading api.token")
    }

    /// The daemon's log so far.
    pub fn log(&self) -> String {
        let mut text = String::new();
        if let Ok(mut file) = std::fs::File::open(&self.log_path) {
            let _ = file.read_to_string(&mut text);
        }
        format!("--- daemon log ({}):\n{text}", self.log_path.display())
    }

    /// Moves the daemon's clock forward by `by` (whole seconds), as if that much time
    /// had passed: what it stamps from now on is that much later. Time keeps flowing
    /// after the jump.
    pub fn advance_clock(&mut self, by: Duration) {
        assert!(
            by.subsec_nanos() == 0 && !by.is_zero(),
            "advance the clock by whole seconds, not {by:?}"
        );
        let url = format!("http://{}/v1/test/clock/advance", self.api_addr);
        let request = ClockAdvanceRequest { secs: by.as_secs() };
        let response = reqwest::blocking::Client::new()
            .post(&url)
            .bearer_auth(self.token())
            .json(&request)
            .send()
            .unwrap_or_else(|e| panic!("POST {url}: {e}\n{}", self.log()));
        let status = response.status();
        let text = response.text().unwrap_or_default();
        assert!(
            status.is_success(),
            "POST {url} {request:?}: {status} {text}\n{}",
            self.log()
        );
        self.clock_advanced += by;
    }

    /// The daemon's `/metrics` text, fetched with its API token.
    pub fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.api_addr);
        let response = reqwest::blocking::Client::new()
            .get(&url)
            .bearer_auth(self.token())
            .send()
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        assert!(response.status().is_success(), "GET {url}: {response:?}");
        response.text().expect("reading /metrics")
    }

    /// The sample `name` (with its labels, if any) of `/metrics`; 0 when the daemon
    /// reports none yet (a labelled counter appears once it first counts).
    pub fn metric(&self, name: &str) -> f64 {
        metric(&self.metrics(), name).unwrap_or(0.0)
    }

    /// Runs a CLI command against this daemon.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        if self.prefix.is_empty() {
            return run_cli(&self.data_dir, args);
        }
        let mut command = self.seedbank_command();
        command.arg("--data-dir").arg(&self.data_dir).args(args);
        let shown = format!("{} seedbank {}", self.prefix.join(" "), args.join(" "));
        CliOutput::run(shown, command)
    }

    /// Runs a CLI command that must succeed; returns its output.
    pub fn ok(&self, args: &[&str]) -> CliOutput {
        let output = self.cli(args);
        assert!(
            output.success,
            "expected success:\n{output}\n{}",
            self.log()
        );
        output
    }

    /// Runs a CLI command with `--json` that must succeed; returns the parsed JSON.
    pub fn ok_json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        self.ok(&with_json).json()
    }

    /// Runs a CLI command that must fail with one error line containing `expected`.
    pub fn fails_with(&self, args: &[&str], expected: &str) -> CliOutput {
        let output = self.cli(args);
        assert!(!output.success, "expected failure:\n{output}");
        assert!(
            output.stderr.contains(expected),
            "expected the error to mention {expected:?}:\n{output}"
        );
        assert!(
            !output.stderr.contains("panicked"),
            "the CLI panicked instead of reporting an error:\n{output}"
        );
        output
    }

    /// Waits like [`crate::wait_until`], and adds this daemon's log to the failure.
    pub fn wait_until<T>(
        &self,
        what: &str,
        within: Duration,
        condition: impl FnMut() -> Result<T, String>,
    ) -> T {
        poll(within, condition).unwrap_or_else(|last| {
            panic!(
                "waited {within:?} for {what} in vain; last seen: {last}\n{}",
                self.log()
            )
        })
    }

    /// Stops the daemon with SIGTERM and waits for it to exit cleanly.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let exited: Result<ExitStatus, String> = poll(STOP_TIMEOUT, || match child.try_wait() {
            Ok(Some(status)) => Ok(status),
            Ok(None) => Err("still running".to_owned()),
            Err(e) => Err(format!("cannot wait for it: {e}")),
        });
        match exited {
            Ok(status) => assert!(
                status.success(),
                "daemon exited with {status} on SIGTERM\n{}",
                self.log()
            ),
            Err(last) => {
                let _ = child.kill();
                panic!(
                    "daemon did not stop within {STOP_TIMEOUT:?} of SIGTERM ({last})\n{}",
                    self.log()
                );
            }
        }
    }

    /// Kills the daemon with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same data directory.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts the daemon again after [`Daemon::kill`] or [`Daemon::stop`].
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "daemon is still running");
        self.launch();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Starts a daemon that joins the network through `seed` (with `extra` daemon flags)
/// and waits until its routing table holds a peer.
pub fn start_joined(seed: &Daemon, extra: &[&str]) -> Daemon {
    start_joined_at(&seed.peer_address(), extra)
}

/// Starts a daemon that joins the network through the peer at `bootstrap` (a multiaddr
/// ending in `/p2p/<id>`, with `extra` daemon flags) and waits until its routing table
/// holds a peer.
pub fn start_joined_at(bootstrap: &str, extra: &[&str]) -> Daemon {
    let mut args = vec!["--bootstrap", bootstrap];
    args.extend_from_slice(extra);
    let daemon = Daemon::start_with(&args);
    daemon.wait_for_routing_table(1);
    daemon
}

/// The `RUST_LOG` filter under which a daemon logs its network's dial failures
/// ("outgoing connection failed", at debug) beside what it logs by default (the
/// daemon's own filter, which quiets iroh-blobs and libp2p).
pub const DIAL_LOG_FILTER: &str =
    "info,iroh_blobs=warn,libp2p_kad::behaviour=error,libp2p_swarm=warn,seedbank_node::net=debug";
/// Settings of a daemon that fetches what nobody has: it gives up looking for
/// providers after 1 s instead of 7 s (lookups at once and after 1 s).
pub const IMPATIENT_FETCHES: &str = "fetch_patience = \"1s\"\n";
/// What a daemon logs under [`DIAL_LOG_FILTER`] each time a dial fails.
pub const DIAL_FAILED: &str = "outgoing connection failed";
