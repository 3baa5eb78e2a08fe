//! Refuses (403) requests that a web page could have sent: any with a browser `Origin`
//! header, and, unless `api_allow_remote` is set, any whose `Host` is not a loopback
//! name. The second stops DNS rebinding: a page on `evil.example` that re-points its
//! name at 127.0.0.1 reaches the port, but its requests still say `Host: evil.example`.
//! Runs before the token check, so a refusal says nothing about the token.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use seedbank_protocol::api::ErrorCode;

use super::handlers::error_response;

/// Which hosts a request may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostPolicy {
    /// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
    LoopbackOnly,
    /// Any host: the API listens for other machines (`api_allow_remote`).
    Any,
}

/// Middleware: the checks in the module doc.
pub async fn refuse_foreign_requests(
    State(policy): State<HostPolicy>,
    request: Request,
    next: Next,
) -> Response {
    if request.headers().contains_key(header::ORIGIN) {
        return forbidden("requests from web pages (with an Origin header) are refused".into());
    }
    if policy == HostPolicy::LoopbackOnly {
        // An absolute-form target (`GET http://host/…`) names the host that counts.
        let host = match request.uri().authority() {
            Some(authority) => Some(authority.as_str()),
            None => request
                .headers()
                .get(header::HOST)
                .and_then(|value| value.to_str().ok()),
        };
        match host {
            Some(host) if is_loopback_host(host) => {}
            Some(host) => {
                return forbidden(format!(
                    "Host {host:?} is not a loopback name (localhost, 127.x.x.x or [::1]); other hosts are answered only when the server is set to allow them (api_allow_remote, hf_gateway_allow_remote)"
                ))
            }
            None => return forbidden("requests without a Host header are refused".into()),
        }
    }
    next.run(request).await
}

fn forbidden(message: String) -> Response {
    error_response(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
}

/// Whether a `Host` value (`name[:port]`, `[v6][:port]`) names this machine's loopback.
fn is_loopback_host(host: &str) -> bool {
    if let Some(bracketed) = host.strip_prefix('[') {
        let Some((address, rest)) = bracketed.split_once(']') else {
            return false;
        };
        return is_port_suffix(rest)
            && address.parse::<Ipv6Addr>().is_ok_and(|ip| ip.is_loopback());
    }
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.parse::<u16>().is_ok() => name,
        Some(_) => return false,
        None => host,
    };
    name.eq_ignore_ascii_case("localhost")
        || name.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Empty, or `:` and a port number.
fn is_port_suffix(rest: &str) -> bool {
    match rest.strip_prefix(':') {
        None => rest.is_empty(),
        Some(port) => port.parse::<u16>().is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_pass_and_others_do_not() {
        for host in [
            "localhost",
            "LocalHost:5150",
            "127.0.0.1",
            "127.0.0.1:5150",
            "127.8.9.10:80",
            "[::1]",
            "[::1]:5150",
        ] {
            assert!(is_loopback_host(host), "{host} should pass");
        }
        for host in [
            "evil.example",
            "evil.example:5150",
            "localhost.evil.example",
            "10.0.0.1:5150",
            "0.0.0.0",
            "128.0.0.1",
            "127.1",
            "[::2]:5150",
            "[::1",
            "[::1]x",
            "::1",
            "localhost:99999",
            "localhost:",
            "localhost:5150:1",
            "",
        ] {
            assert!(!is_loopback_host(host), "{host:?} should be refused");
        }
    }
}
