//! Refuses (403) requests that a web page could have sent: any with a browser `Origin`
//! header, and, unless `api_allow_remote` is set, any whose `Host` is not a loopback
//! name. The second stops DNS rebinding: a page on `evil.example` that re-points its
//! name at 127.0.0.1 reaches the port, but its requests still say `Host: evil.example`.
//! Runs before the token check, so a refusal says nothing about the token.

use std::net::{Ipv4Addr, Ipv6Addr};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
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
    if let Some(refusal) = refusal(policy, request.uri(), request.headers()) {
        return forbidden(refusal);
    }
    next.run(request).await
}

/// Why a request with this target and these headers is refused, if it is.
fn refusal(policy: HostPolicy, uri: &Uri, headers: &HeaderMap) -> Option<String> {
    if headers.contains_key(header::ORIGIN) {
        return Some("requests from web pages (with an Origin header) are refused".into());
    }
    if policy == HostPolicy::Any {
        return None;
    }
    let hosts: Vec<&str> = headers
        .get_all(header::HOST)
        .iter()
        .map(|value| value.to_str().unwrap_or("(not text)"))
        .collect();
    if hosts.len() > 1 {
        return Some(format!(
            "requests with more than one Host header are refused ({hosts:?})"
        ));
    }
    // An absolute-form target (`GET http://host/…`) names the host too: both must agree.
    let authority = uri.authority().map(|a| a.as_str());
    if let (Some(authority), Some(host)) = (authority, hosts.first()) {
        if !authority.eq_ignore_ascii_case(host) {
            return Some(format!(
                "the request line names host {authority:?} but the Host header says {host:?}"
            ));
        }
    }
    match authority.or(hosts.first().copied()) {
        Some(host) if is_loopback_host(host) => None,
        Some(host) => Some(format!(
            "Host {host:?} is not a loopback name (localhost, 127.x.x.x or [::1]); other hosts are answered only when the server is set to allow them (api_allow_remote, hf_gateway_allow_remote)"
        )),
        None => Some("requests without a Host header are refused".into()),
    }
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

    #[test]
    fn a_second_host_or_a_request_line_naming_another_host_is_refused() {
        let headers = |hosts: &[&str]| {
            let mut map = HeaderMap::new();
            for host in hosts {
                map.append(header::HOST, host.parse().unwrap());
            }
            map
        };
        let origin: Uri = "/v1/status".parse().unwrap();
        let loopback = HostPolicy::LoopbackOnly;
        assert_eq!(
            refusal(loopback, &origin, &headers(&["127.0.0.1:5150"])),
            None
        );
        let twice = refusal(
            loopback,
            &origin,
            &headers(&["127.0.0.1:5150", "evil.example"]),
        );
        assert!(twice.unwrap().contains("more than one Host"));
        let absolute: Uri = "http://127.0.0.1:5150/v1/status".parse().unwrap();
        assert_eq!(
            refusal(loopback, &absolute, &headers(&["127.0.0.1:5150"])),
            None
        );
        let differs = refusal(loopback, &absolute, &headers(&["evil.example"]));
        assert!(differs.unwrap().contains("but the Host header says"));
        let foreign: Uri = "http://evil.example/v1/status".parse().unwrap();
        assert!(refusal(loopback, &foreign, &headers(&[])).is_some());
        assert_eq!(
            refusal(HostPolicy::Any, &foreign, &headers(&["a", "b"])),
            None
        );
    }
}
