//! The real Hugging Face client (`huggingface_hub`, pinned in `tests/requirements.txt`)
//! run from Python against a Seedbank gateway or a cache Seedbank wrote, in a home of
//! its own so nothing from the machine's own cache leaks in.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The client version the tests are written against.
pub const PINNED_VERSION: &str = "2.4.0";

/// A Python `huggingface_hub` with its own `HF_HOME`.
#[derive(Debug)]
pub struct HfClient {
    home: tempfile::TempDir,
}

impl Default for HfClient {
    fn default() -> Self {
        Self::new()
    }
}

impl HfClient {
    /// A client with an empty cache. Panics, saying how to install it, when Python or
    /// the pinned `huggingface_hub` is missing.
    pub fn new() -> Self {
        let version = Command::new("python3")
            .args([
                "-c",
                "import huggingface_hub; print(huggingface_hub.__version__)",
            ])
            .output();
        match version {
            Ok(out) if out.status.success() => {
                let found = String::from_utf8_lossy(&out.stdout).trim().to_owned();
                assert_eq!(
                    found, PINNED_VERSION,
                    "these tests are written against huggingface_hub {PINNED_VERSION}; \
                     run `python3 -m pip install -r tests/requirements.txt`"
                );
            }
            _ => panic!(
                "python3 with huggingface_hub {PINNED_VERSION} is needed for the Hugging Face \
                 tests; run `python3 -m pip install -r tests/requirements.txt`"
            ),
        }
        Self {
            home: tempfile::tempdir().expect("creating a client home"),
        }
    }

    /// `HF_HOME`.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The client's cache: `HF_HOME/hub`.
    pub fn hub_dir(&self) -> PathBuf {
        self.home.path().join("hub")
    }

    /// Runs `script` with the client pointed at `endpoint` (or offline when `None`) and
    /// returns the JSON its last line of output prints.
    pub fn run(&self, endpoint: Option<&str>, script: &str) -> serde_json::Value {
        self.try_run(endpoint, script)
            .unwrap_or_else(|e| panic!("the Hugging Face client failed: {e:#}"))
    }

    /// Like [`Self::run`], returning the client's error output when the script fails.
    pub fn try_run(&self, endpoint: Option<&str>, script: &str) -> Result<serde_json::Value> {
        let mut command = Command::new("python3");
        command
            .args(["-c", script])
            .env("HF_HOME", self.home.path())
            .env_remove("HF_HUB_CACHE")
            .env_remove("HF_TOKEN")
            .env("HF_HUB_DISABLE_TELEMETRY", "1")
            .env("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env_remove("HTTP_PROXY")
            .env_remove("HTTPS_PROXY");
        match endpoint {
            Some(endpoint) => {
                command
                    .env("HF_ENDPOINT", endpoint)
                    .env_remove("HF_HUB_OFFLINE");
            }
            None => {
                // Offline, and an endpoint nothing listens on, so a request would fail.
                command
                    .env("HF_HUB_OFFLINE", "1")
                    .env("HF_ENDPOINT", "http://127.0.0.1:9");
            }
        }
        let out = command.output().context("running python3")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() {
            bail!("exit {}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
        }
        let last = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(last).with_context(|| {
            format!("the script's last line is not JSON\nstdout:\n{stdout}\nstderr:\n{stderr}")
        })
    }
}
