//! A client of the local daemon's control API: finds it through the data dir, sends
//! JSON, and reads streamed (newline-delimited JSON) responses line by line.
//!
//! The daemon's errors keep their kind: each becomes a [`CliError`] inside `anyhow`, so
//! `main` can pick the exit code and the `--json` error code.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::blocking::{Client, RequestBuilder, Response};
use reqwest::Method;
use seedbank_protocol::api::{ApiError, Progress, StreamLine};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::exit::{CliError, Failure};

/// How long to wait for the daemon to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Talks to one daemon.
#[derive(Clone)]
pub struct DaemonClient {
    http: Client,
    base: reqwest::Url,
    token: String,
    data_dir: PathBuf,
}

impl DaemonClient {
    /// Finds the daemon serving `data_dir`.
    pub fn connect(data_dir: &Path) -> Result<Self> {
        let addr = std::fs::read_to_string(data_dir.join("api.addr")).map_err(|e| {
            if e.kind() == std::io::ErrorKind::PermissionDenied {
                CliError::new(
                    Failure::Api(seedbank_protocol::api::ErrorCode::PermissionDenied),
                    format!(
                        "cannot read {}: permission denied; the data dir belongs to the user the daemon runs as \
                         (for the systemd unit: sudo -u seedbank seedbank --data-dir /var/lib/seedbank …)",
                        data_dir.join("api.addr").display()
                    ),
                )
                .into()
            } else {
                not_running(data_dir)
            }
        })?;
        let token = std::fs::read_to_string(data_dir.join("api.token"))
            .with_context(|| format!("reading the API token in {}", data_dir.display()))?;
        let base = reqwest::Url::parse(&format!("http://{}/", addr.trim())).with_context(|| {
            format!(
                "bad address {addr:?} in {}",
                data_dir.join("api.addr").display()
            )
        })?;
        let http = Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(None)
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base,
            token: token.trim().to_owned(),
            data_dir: data_dir.to_owned(),
        })
    }

    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder> {
        let mut url = self.base.clone();
        url.path_segments_mut()
            .map_err(|_| anyhow!("bad API address {}", self.base))?
            .extend(segments);
        Ok(self.http.request(method, url).bearer_auth(&self.token))
    }

    fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request.send().map_err(|e| {
            if e.is_connect() {
                not_running(&self.data_dir)
            } else {
                anyhow!("talking to the daemon: {e}")
            }
        })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let text = response.text().unwrap_or_default();
        match serde_json::from_str::<ApiError>(&text) {
            Ok(error) => Err(CliError::from(error).into()),
            Err(_) => bail!("daemon answered {status}: {text}"),
        }
    }

    /// Sends a request without a body and decodes the JSON answer.
    pub fn call<T: DeserializeOwned>(&self, method: Method, segments: &[&str]) -> Result<T> {
        let response = self.send(self.request(method, segments)?)?;
        response.json().context("decoding the daemon's answer")
    }

    /// Sends a request with `query` as its query string and decodes the JSON answer.
    pub fn call_with_query<Q: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &Q,
    ) -> Result<T> {
        let response = self.send(self.request(method, segments)?.query(query))?;
        response.json().context("decoding the daemon's answer")
    }

    /// Sends `body` as JSON and decodes the JSON answer.
    pub fn send_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        body: &B,
    ) -> Result<T> {
        let response = self.send(self.request(method, segments)?.json(body))?;
        response.json().context("decoding the daemon's answer")
    }

    /// Sends `body` and reads a streamed answer, handing each progress line to `on_progress`.
    pub fn stream<B: Serialize, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
        mut on_progress: impl FnMut(&Progress),
    ) -> Result<T> {
        let response = self.send(self.request(Method::POST, segments)?.json(body))?;
        let reader = BufReader::new(response);
        for line in reader.lines() {
            let line = line.context("reading the daemon's answer")?;
            if line.is_empty() {
                continue;
            }
            let parsed: StreamLine<T> =
                serde_json::from_str(&line).context("decoding the daemon's answer")?;
            match parsed {
                StreamLine::Progress(progress) => on_progress(&progress),
                StreamLine::Done { result } => return Ok(result),
                StreamLine::Error { error } => return Err(CliError::from(error).into()),
            }
        }
        bail!("the daemon stopped before finishing (is it still running?)")
    }
}

/// The error for a data dir whose daemon does not answer.
fn not_running(data_dir: &Path) -> anyhow::Error {
    CliError::new(
        Failure::DaemonNotRunning,
        format!(
            "the seedbank daemon is not running for data dir {} (start it with `seedbank daemon`)",
            data_dir.display()
        ),
    )
    .into()
}
