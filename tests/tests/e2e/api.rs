//! End-to-end: the control API refuses requests without the token, requests from web
//! pages or naming foreign hosts, and malformed bodies; closes connections that send no
//! request; and answers the CLI's requests throughout.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use seedbank_tests::Daemon;

fn get(daemon: &Daemon, path: &str) -> reqwest::blocking::RequestBuilder {
    reqwest::blocking::Client::new().get(format!("http://{}{path}", daemon.api_addr()))
}

#[test]
fn requests_need_the_token_and_browsers_are_refused() {
    let daemon = Daemon::start();
    let token = daemon.token();

    let anonymous = get(&daemon, "/v1/status").send().unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = get(&daemon, "/v1/status")
        .bearer_auth("not-the-token")
        .send()
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let from_page = get(&daemon, "/v1/status")
        .bearer_auth(&token)
        .header("Origin", "https://evil.example")
        .send()
        .unwrap();
    assert_eq!(from_page.status(), 403);
    let body: serde_json::Value = from_page.json().unwrap();
    assert_eq!(body["code"], "forbidden");

    let ok = get(&daemon, "/v1/status")
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(ok.status(), 200);
    let status: serde_json::Value = ok.json().unwrap();
    assert!(
        status["node_id"].as_str().unwrap().starts_with("12D3KooW"),
        "{status}"
    );

    let metrics = get(&daemon, "/metrics")
        .bearer_auth(&token)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(metrics.contains("seedbank_artifacts"), "{metrics}");
}

#[cfg(unix)]
#[test]
fn secrets_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let daemon = Daemon::start();
    for file in ["api.token", "node.key"] {
        let mode = std::fs::metadata(daemon.data_dir().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file} is readable by others");
    }
}

#[test]
fn malformed_requests_get_a_400_that_says_why() {
    let daemon = Daemon::start();
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{}/v1/artifacts", daemon.api_addr());
    let send = |body: &str| {
        client
            .post(&url)
            .bearer_auth(daemon.token())
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .unwrap()
    };
    let response = send("{not json");
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("malformed request"));
    let response = send(
        r#"{"path":"relative/dir","kind":"model","pin":false,"reference":false,"follow_symlinks":false}"#,
    );
    assert_eq!(response.status(), 400);
    assert!(response.text().unwrap().contains("absolute"));
    let huge = format!(r#"{{"path":"/{}"}}"#, "a".repeat(200_000));
    assert_eq!(
        send(&huge).status(),
        413,
        "oversized bodies must be refused"
    );
}

/// Sends one `GET /v1/status` with the given `Host` (and extra header lines) on a fresh
/// connection; returns the status code and body.
fn status_with_host(daemon: &Daemon, host: &str, extra: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(daemon.api_addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!(
        "GET /v1/status HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n{extra}Connection: close\r\n\r\n",
        daemon.token()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let code = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (code, body)
}

#[test]
fn only_loopback_hosts_are_answered_unless_remote_access_is_allowed() {
    let daemon = Daemon::start();
    let port = daemon.api_addr().rsplit_once(':').unwrap().1.to_owned();

    let (code, body) = status_with_host(&daemon, "evil.example", "");
    assert_eq!(code, 403, "{body}");
    let error: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], "forbidden", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("evil.example"),
        "the refusal should name the host: {error}"
    );
    let (code, body) = status_with_host(&daemon, &format!("evil.example:{port}"), "");
    assert_eq!(code, 403, "{body}");
    let (code, body) = status_with_host(
        &daemon,
        &format!("localhost:{port}"),
        &format!("Origin: http://localhost:{port}\r\n"),
    );
    assert_eq!(
        code, 403,
        "a web page's request is refused even on loopback: {body}"
    );

    for host in [
        format!("localhost:{port}"),
        "localhost".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (code, body) = status_with_host(&daemon, &host, "");
        assert_eq!(code, 200, "Host {host}: {body}");
        assert!(body.contains("node_id"), "Host {host}: {body}");
    }

    // With remote access allowed, the API answers any host (it still needs the token).
    let remote = Daemon::start_configured("api_allow_remote = true\n", &[]);
    let (code, body) = status_with_host(&remote, "seedbank.example", "");
    assert_eq!(code, 200, "{body}\n{}", remote.log());
}

/// Connections the test opens and never completes a request on: more than the daemon
/// serves at once (256), so the CLI gets in only because idle ones make room for it.
const HALF_OPEN_CONNECTIONS: usize = 300;
/// The daemon's cap on open API connections.
const MAX_API_CONNECTIONS: usize = 256;
/// How soon the daemon must close them (its header-read timeout is 10 s).
const HALF_OPEN_DEADLINE: Duration = Duration::from_secs(15);
/// How long the test watches the CLI being answered while they are all held: well
/// inside the daemon's 10 s header-read timeout.
const HELD_WINDOW: Duration = Duration::from_secs(6);
/// Pause between two samples of the CLI and the daemon's descriptors in that window.
const SAMPLE_PAUSE: Duration = Duration::from_millis(200);

#[test]
fn half_open_connections_are_closed_and_the_cli_keeps_answering() {
    let daemon = Daemon::start();
    let daemon_fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", daemon.pid().unwrap()))
            .map(|dir| dir.count())
            .unwrap_or(0)
    };
    let fds_before = daemon_fds();
    let opened = Instant::now();
    let mut half_open: Vec<TcpStream> = (0..HALF_OPEN_CONNECTIONS)
        .map(|i| {
            let mut stream = TcpStream::connect(daemon.api_addr()).unwrap();
            // Half send part of a request line, half send nothing at all.
            if i % 2 == 0 {
                stream.write_all(b"GET /v1/status HT").unwrap();
            }
            stream
        })
        .collect();

    // The CLI is answered, promptly, while they are all held, and the daemon holds no
    // more descriptors than its cap allows.
    let mut slowest = Duration::ZERO;
    let mut most_fds = 0;
    while opened.elapsed() < HELD_WINDOW {
        let asked = Instant::now();
        daemon.ok(&["status"]);
        slowest = slowest.max(asked.elapsed());
        most_fds = most_fds.max(daemon_fds());
        std::thread::sleep(SAMPLE_PAUSE);
    }
    // The cap, the CLI's own connection, and one accepted while another is closed.
    assert!(
        most_fds <= fds_before + MAX_API_CONNECTIONS + 2,
        "the daemon held {most_fds} descriptors ({fds_before} before the test's connections)"
    );
    assert!(
        slowest < Duration::from_secs(5),
        "`seedbank status` took {slowest:?} with {HALF_OPEN_CONNECTIONS} half-open connections"
    );

    // Every one of them is closed by the daemon: a read ends (0 bytes or an error)
    // instead of timing out.
    for (i, stream) in half_open.iter_mut().enumerate() {
        let left = HALF_OPEN_DEADLINE.saturating_sub(opened.elapsed());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(10))))
            .unwrap();
        let mut buffer = [0u8; 512];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                // Whatever the daemon says before closing (if anything) is not the point.
                Ok(_) => continue,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    panic!(
                        "connection {i} still open {:?} after it was opened\n{}",
                        opened.elapsed(),
                        daemon.log()
                    )
                }
                Err(_) => break,
            }
        }
    }
    let closed_after = opened.elapsed();
    eprintln!(
        "{HALF_OPEN_CONNECTIONS} half-open connections closed within {closed_after:?}; slowest `seedbank status` meanwhile {slowest:?}; daemon descriptors {fds_before} before, {most_fds} at most"
    );
    // And the API still answers afterwards.
    daemon.ok(&["status"]);
}

#[test]
fn a_daemon_logging_into_a_file_writes_plain_text() {
    let daemon = Daemon::start();
    daemon.ok(&["status"]);
    let log = daemon.log();
    assert!(log.contains("INFO"), "the daemon logged nothing:\n{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour escapes in a log file:\n{log:?}"
    );
}
