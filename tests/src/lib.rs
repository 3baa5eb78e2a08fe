//! The end-to-end harness: starts real `seedbank daemon` processes on temporary data
//! directories and free loopback ports, and drives them through the real `seedbank` CLI.
//!
//! The `seedbank` binary belongs to another package, so Cargo does not hand it to these
//! tests; [`seedbank_binary`] builds it once with the same Cargo and profile and fails
//! loudly if it cannot. Every failure message includes the command, its output and the
//! daemon's log, so a red test explains itself.

pub mod attacker;
pub mod hf_cache;
pub mod hf_client;
pub mod hf_origin;
pub mod hostile;
pub mod publishing;
pub mod records;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a daemon may take to write its API address after starting.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a DHT lookup may take to list a new provider: generous, for a loaded
/// 2-core machine.
const DHT_DEADLINE: Duration = Duration::from_secs(90);
/// How long a daemon may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Path of the `seedbank` binary, built on first use with the caller's profile.
pub fn seedbank_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_binary().unwrap_or_else(|e| panic!("cannot build seedbank: {e:#}")))
}

fn build_binary() -> Result<PathBuf> {
    // The test executable lives in <target>/<profile>/deps/.
    let exe = std::env::current_exe().context("locating the test executable")?;
    // Tests live in <target>/<profile>/deps/, benchmark binaries in <target>/<profile>/.
    let mut profile_dir = exe.parent().context("executable has no directory")?;
    if profile_dir.file_name().is_some_and(|n| n == "deps") {
        profile_dir = profile_dir
            .parent()
            .context("test executable is not inside a target directory")?;
    }
    let release = profile_dir.file_name().is_some_and(|n| n == "release");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "build",
            "--quiet",
            "-p",
            "seedbank-cli",
            "--bin",
            "seedbank",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        command.arg("--release");
    }
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build -p seedbank-cli failed with {status}");
    }
    let binary = profile_dir.join(format!("seedbank{}", std::env::consts::EXE_SUFFIX));
    if !binary.exists() {
        bail!("built seedbank but found no binary at {}", binary.display());
    }
    Ok(binary)
}

/// What a CLI command printed and how it exited.
#[derive(Debug)]
pub struct CliOutput {
    /// The command line, for messages.
    pub command: String,
    /// Exit success.
    pub success: bool,
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    fn from_output(command: String, output: Output) -> Self {
        Self {
            command,
            success: output.status.success(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{self}", self.command))
    }
}

impl std::fmt::Display for CliOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\n--- exit: {}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.command,
            if self.success { "success" } else { "failure" },
            self.stdout,
            self.stderr
        )
    }
}

/// The content id in an artifact's JSON (from `add`, or an entry of `ls`).
pub fn artifact_id(json: &serde_json::Value) -> String {
    json["id"].as_str().expect("artifact id").to_owned()
}

/// Runs `seedbank` with `args` against `data_dir`.
pub fn run_cli(data_dir: &Path, args: &[&str]) -> CliOutput {
    let command = format!("seedbank {}", args.join(" "));
    let output = Command::new(seedbank_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
    CliOutput::from_output(command, output)
}

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
}

impl Daemon {
    /// Starts a daemon on a fresh temporary data directory.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a daemon on a fresh temporary data directory with extra daemon flags.
    pub fn start_with(args: &[&str]) -> Self {
        let temp = tempfile::tempdir().expect("creating a temporary data dir");
        let data_dir = temp.path().join("data");
        let mut daemon = Self::start_in_with(&data_dir, args);
        daemon._temp = Some(temp);
        daemon
    }

    /// Starts a daemon on `data_dir` (kept after the daemon ends).
    pub fn start_in(data_dir: &Path) -> Self {
        Self::start_in_with(data_dir, &[])
    }

    /// Starts a daemon on `data_dir` with extra daemon flags.
    pub fn start_in_with(data_dir: &Path, args: &[&str]) -> Self {
        Self::launch_new(data_dir, args, &[], &LOOPBACK_NETWORK_FLAGS)
    }

    /// Starts a daemon inside a network namespace (`ip netns exec NAMESPACE`) with the
    /// given network flags instead of the loopback ones; its CLI commands run there too.
    pub fn start_in_namespace(data_dir: &Path, namespace: &str, network_flags: &[&str]) -> Self {
        Self::launch_new(
            data_dir,
            &[],
            &["ip", "netns", "exec", namespace],
            network_flags,
        )
    }

    fn launch_new(data_dir: &Path, args: &[&str], prefix: &[&str], network_flags: &[&str]) -> Self {
        std::fs::create_dir_all(data_dir).expect("creating the data dir");
        let owned = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        let mut daemon = Self {
            data_dir: data_dir.to_owned(),
            _temp: None,
            child: None,
            log_path: data_dir.with_extension("log"),
            api_addr: String::new(),
            extra_args: owned(args),
            prefix: owned(prefix),
            network_flags: owned(network_flags),
        };
        daemon.launch();
        daemon
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

    /// This daemon's TCP peer address with its peer id, for others to bootstrap from.
    pub fn peer_address(&self) -> String {
        let status = self.ok_json(&["status"]);
        let node_id = status["node_id"].as_str().expect("node id").to_owned();
        let listen = status["network"]["listen_addresses"]
            .as_array()
            .expect("listen addresses")
            .iter()
            .filter_map(|a| a.as_str())
            .find(|a| a.contains("/tcp/"))
            .unwrap_or_else(|| panic!("no TCP listen address in {status}"))
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

    /// Starts `seedbank add DIR` on another thread, for tests that act while it runs
    /// (kill the daemon, watch its status); join the handle for the command's output.
    pub fn add_in_background(&self, dir: &Path) -> std::thread::JoinHandle<CliOutput> {
        let data_dir = self.data_dir.clone();
        let dir = dir.to_str().expect("a UTF-8 path").to_owned();
        std::thread::spawn(move || run_cli(&data_dir, &["add", &dir]))
    }

    /// Waits until this node's DHT lookup of `id` lists every peer in `expected`.
    pub fn wait_for_providers(&self, id: &str, expected: &[String]) {
        let deadline = Instant::now() + DHT_DEADLINE;
        loop {
            let found = self.ok_json(&["providers", id]);
            let listed = |peer: &String| {
                found["providers"]
                    .as_array()
                    .is_some_and(|all| all.iter().any(|p| p == peer.as_str()))
            };
            if expected.iter().all(listed) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "DHT never listed {expected:?} for {id}: {found}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Waits until the node lists `id` as complete.
    pub fn wait_until_complete(&self, id: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let listed = self.ok_json(&["ls"]);
            let complete = listed.as_array().is_some_and(|all| {
                all.iter()
                    .any(|a| a["id"] == id && a["state"] == "complete")
            });
            if complete {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{id} never became complete: {listed}\njobs: {}\n{}",
                self.ok_json(&["jobs"]),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the node has at least `peers` peers in its DHT routing table.
    pub fn wait_for_routing_table(&self, peers: u64) {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let status = self.ok_json(&["status"]);
            if status["network"]["routing_table_size"]
                .as_u64()
                .unwrap_or(0)
                >= peers
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "routing table never reached {peers} peers: {status}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
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

    /// The Hugging Face gateway's endpoint (`http://127.0.0.1:PORT`), for `HF_ENDPOINT`.
    pub fn hf_endpoint(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("hf-endpoint"))
            .unwrap_or_else(|e| panic!("the daemon wrote no gateway endpoint: {e}\n{}", self.log()))
            .trim()
            .to_owned()
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
            .args(self.gateway_flags())
            .args(&self.network_flags)
            .args(&self.extra_args)
            // The daemon's own log filter unless SEEDBANK_TEST_LOG asks for another.
            .env_remove("RUST_LOG")
            .envs(std::env::var("SEEDBANK_TEST_LOG").map(|filter| ("RUST_LOG", filter)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning the log handle"))
            .stderr(log)
            .spawn()
            .expect("spawning seedbank daemon");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(addr) = std::fs::read_to_string(self.data_dir.join("api.addr")) {
                if !addr.trim().is_empty() {
                    self.api_addr = addr.trim().to_owned();
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "daemon exited with {status} before it was ready\n{}",
                    self.log()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "daemon did not write api.addr within {START_TIMEOUT:?}\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
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

    /// Runs a CLI command against this daemon.
    pub fn cli(&self, args: &[&str]) -> CliOutput {
        if self.prefix.is_empty() {
            return run_cli(&self.data_dir, args);
        }
        let command = format!("{} seedbank {}", self.prefix.join(" "), args.join(" "));
        let output = self
            .seedbank_command()
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {command}: {e}"));
        CliOutput::from_output(command, output)
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

    /// Stops the daemon with SIGTERM and waits for it to exit cleanly.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    assert!(
                        status.success(),
                        "daemon exited with {status} on SIGTERM\n{}",
                        self.log()
                    );
                    return;
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = child.kill();
                    panic!(
                        "daemon did not stop within {STOP_TIMEOUT:?} of SIGTERM\n{}",
                        self.log()
                    );
                }
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

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("finding a free loopback port")
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

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks; USER_HZ is 100 on every mainstream configuration.
    Some((utime + stime) / 100.0)
}

/// Resident memory of a process in bytes, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Writes `size` bytes of deterministic pseudo-random data (BLAKE3 XOF of `seed`).
pub fn write_random_file(path: &Path, size: u64, seed: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("creating parent directory");
    }
    let mut reader = blake3::Hasher::new().update(seed.as_bytes()).finalize_xof();
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(path).expect("creating test file"));
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buffer.len() as u64) as usize;
        reader.fill(&mut buffer[..n]);
        file.write_all(&buffer[..n]).expect("writing test file");
        left -= n as u64;
    }
    file.flush().expect("flushing test file");
}

/// BLAKE3 of a file's bytes, for comparing files without holding them in memory.
pub fn file_hash(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    hasher.update_reader(file).expect("hashing file");
    hasher.finalize()
}

/// Every regular file under `dir`, as (relative path, BLAKE3), sorted.
pub fn tree_hashes(dir: &Path) -> Vec<(String, blake3::Hash)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        for entry in std::fs::read_dir(&current).expect("reading directory") {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path
                    .strip_prefix(dir)
                    .expect("inside dir")
                    .to_string_lossy()
                    .into_owned();
                out.push((relative, file_hash(&path)));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A small tmpfs mounted for a test, unmounted when dropped.
pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB at `dir`, or prints why `check` is skipped and
    /// returns `None` where this machine does not allow it (mounting needs root).
    pub fn mount(dir: &Path, mib: u64, check: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("creating the mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output();
        match output {
            Ok(out) if out.status.success() => Some(Self {
                dir: dir.to_owned(),
            }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED {check}: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED {check}: cannot run mount ({e})");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
