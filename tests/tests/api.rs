//! End-to-end: the control API refuses requests without the token, requests from web
//! pages, and malformed bodies, and answers the CLI's requests.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

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
