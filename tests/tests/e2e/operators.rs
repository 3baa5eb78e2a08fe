//! Running Seedbank as a service: the start-up block, readiness for systemd, reconnecting
//! to a restarted bootstrap peer, and clear errors when the data dir or a port is taken.

use std::collections::BTreeMap;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use seedbank_tests::{
    free_port, run_cli, seedbank_binary, Daemon, DIAL_FAILED, DIAL_LOG_FILTER,
    LOOPBACK_NETWORK_FLAGS,
};

/// The `--bootstrap` lines of a daemon's start-up block, as printed.
fn bootstrap_lines(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|line| line.trim().strip_prefix("--bootstrap "))
        .map(str::to_owned)
        .collect()
}

/// The names in `dir` and the bytes of its files (the key, the token, the API address,
/// the lock with its pid); the running daemon's own databases below are left out.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|entry| {
            let path = entry.path();
            let bytes = if path.is_file() {
                std::fs::read(&path).unwrap_or_default()
            } else {
                Vec::new()
            };
            (entry.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect()
}

#[test]
fn the_start_up_block_gives_a_bootstrap_line_another_daemon_can_use_as_printed() {
    let first = Daemon::start();
    let log = first.log();
    assert!(log.contains("seedbank daemon ready"), "{log}");
    let lines = bootstrap_lines(&log);
    assert!(
        !lines.is_empty(),
        "no --bootstrap line in the start-up block:\n{log}"
    );
    assert!(
        lines[0].ends_with(&format!("/p2p/{}", first.peer_id())),
        "{lines:?}"
    );
    assert_eq!(
        log.matches(&first.peer_id()).count(),
        // The block names the node once and once per bootstrap line; "created node key"
        // names it once more on the first start.
        2 + lines.len(),
        "the node id is repeated in the log:\n{log}"
    );
    let second = Daemon::start_with(&["--bootstrap", &lines[0]]);
    second.wait_for_a_connected_peer(
        "a connection through the printed line",
        Duration::from_secs(60),
    );
    let peers = second.ok_json(&["peers"]);
    let listed = peers.as_array().unwrap();
    assert_eq!(listed[0]["peer"], first.peer_id());
    for address in listed[0]["addresses"].as_array().unwrap() {
        let address = address.as_str().unwrap();
        assert!(!address.contains("/p2p/"), "peer id repeated in {address}");
    }
}

#[test]
fn a_node_reconnects_to_its_bootstrap_peer_after_it_restarts_on_the_same_address() {
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let mut bootstrap = Daemon::start_with(&["--listen", &listen]);
    let address = format!("{listen}/p2p/{}", bootstrap.peer_id());
    let node = Daemon::start_logging(Some(DIAL_LOG_FILTER), &["--bootstrap", &address]);
    node.wait_for_a_connected_peer("a first connection", Duration::from_secs(60));

    let failed = node.log().matches(DIAL_FAILED).count();
    bootstrap.stop();
    node.wait_until(
        "the stopped peer to show as disconnected",
        Duration::from_secs(30),
        || match node.connected_peers() {
            0 => Ok(()),
            connected => Err(format!("{connected} connected")),
        },
    );
    // Down long enough for several failed dials (at once, then 1 s and 2 s apart), so
    // the back-off has grown.
    node.wait_for_log(DIAL_FAILED, failed + 3, Duration::from_secs(30));
    bootstrap.start_again();
    let restarted = Instant::now();
    node.wait_for_a_connected_peer(
        "a reconnection to the restarted bootstrap peer",
        Duration::from_secs(30),
    );
    let took = restarted.elapsed();
    eprintln!("reconnected {took:?} after the bootstrap peer restarted");
}

#[test]
fn a_second_daemon_on_a_data_dir_in_use_says_so_and_changes_nothing() {
    let first = Daemon::start();
    let before = snapshot(first.data_dir());
    let output = Command::new(seedbank_binary())
        .arg("--data-dir")
        .arg(first.data_dir())
        .args(["daemon", "--api-addr", "127.0.0.1:0"])
        .args(LOOPBACK_NETWORK_FLAGS)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(9), "in use is busy: {stderr}");
    assert!(
        stderr.contains("is in use by another seedbank daemon")
            && stderr.contains(&format!("pid {}", first.pid().unwrap())),
        "{stderr}"
    );
    assert_eq!(
        snapshot(first.data_dir()),
        before,
        "the second daemon changed the data dir"
    );
    first.ok(&["status"]);
}

#[test]
fn a_port_in_use_is_named_and_nothing_is_left_listening() {
    let port = free_port();
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let _first = Daemon::start_with(&["--listen", &listen]);
    let work = tempfile::tempdir().unwrap();
    for flags in [
        vec!["--listen", listen.as_str(), "--api-addr", "127.0.0.1:0"],
        vec![
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--api-addr",
            &format!("127.0.0.1:{port}"),
        ],
    ] {
        let output = Command::new(seedbank_binary())
            .arg("--data-dir")
            .arg(work.path().join("second"))
            .args(["daemon", "--no-mdns"])
            .args(&flags)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "started beside a daemon on port {port}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("port {port}")) && stderr.contains("already in use"),
            "{stderr}"
        );
    }
}

#[test]
fn readiness_reaches_systemd_once_the_api_answers() {
    let work = tempfile::tempdir().unwrap();
    let socket_path = work.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let data_dir = work.path().join("data");
    let mut child = Command::new(seedbank_binary())
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["daemon", "--api-addr", "127.0.0.1:0"])
        .args(LOOPBACK_NETWORK_FLAGS)
        .env("NOTIFY_SOCKET", &socket_path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buffer = [0u8; 512];
    let received = socket.recv(&mut buffer);
    let message = received
        .as_ref()
        .map(|n| String::from_utf8_lossy(&buffer[..*n]).into_owned());
    // Ready means ready: the API answers at once.
    let status = run_cli(&data_dir, &["status"]);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let stopping = socket
        .recv(&mut buffer)
        .map(|n| String::from_utf8_lossy(&buffer[..n]).into_owned());
    let _ = child.wait();
    let message = message.expect("no readiness notice within 60 s");
    assert!(message.lines().any(|l| l == "READY=1"), "{message}");
    assert!(
        status.success,
        "not answering when it said it was ready: {status}"
    );
    assert!(stopping.is_ok_and(|m| m.contains("STOPPING=1")));
}

#[test]
fn config_shows_each_setting_and_where_it_came_from() {
    let work = tempfile::tempdir().unwrap();
    let data_dir = work.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join("config.toml"), "download_limit = \"2M\"\n").unwrap();
    let output = Command::new(seedbank_binary())
        .arg("--data-dir")
        .arg(&data_dir)
        .args(["--json", "config", "--no-mdns"])
        .env("SEEDBANK_UPLOAD_LIMIT", "5M")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let settings: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let find = |key: &str| {
        settings
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .cloned()
            .unwrap_or_else(|| panic!("no {key} in {settings}"))
    };
    assert_eq!(find("upload_limit")["value"], "5M");
    assert_eq!(find("upload_limit")["source"], "SEEDBANK_UPLOAD_LIMIT");
    assert_eq!(find("download_limit")["value"], "2M");
    assert!(find("download_limit")["source"]
        .as_str()
        .unwrap()
        .starts_with("config.toml"));
    assert_eq!(find("net.mdns")["source"], "command line");
    assert_eq!(find("api_addr")["source"], "default");

    let bad = Command::new(seedbank_binary())
        .arg("--data-dir")
        .arg(&data_dir)
        .arg("config")
        .env("SEEDBANK_UPLOAD_LIMIT", "fast")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(
        bad.status.code(),
        Some(2),
        "a bad value is bad input: {stderr}"
    );
    assert!(
        stderr.contains("SEEDBANK_UPLOAD_LIMIT") && stderr.contains("fast"),
        "{stderr}"
    );
}
