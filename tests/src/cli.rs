//! The real `seedbank` CLI as the tests run it: the binary, built once with the caller's
//! Cargo and profile (it belongs to another package, so Cargo does not hand it to these
//! tests), one command's output, and the message that shows it when a check fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// Path of the `seedbank` binary, built on first use with the caller's profile.
pub fn seedbank_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| build_binary().unwrap_or_else(|e| panic!("cannot build seedbank: {e:#}")))
}

fn build_binary() -> Result<PathBuf> {
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
    command.current_dir(env!("CARGO_MANIFEST_DIR"));
    if release {
        // The benchmarks: only the binary.
        command.args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "seedbank-cli",
            "--bin",
            "seedbank",
        ]);
    } else {
        // The same selection `cargo test --workspace` builds, so the dependencies resolve
        // to the same features and are reused: building the binary alone resolves them
        // anew and recompiled a good part of them (minutes of every CI run). After a
        // `cargo test --workspace` only the binary itself is left to build.
        command.args(["build", "--quiet", "--workspace", "--all-targets"]);
    }
    let status = command.status().context("running cargo build")?;
    if !status.success() {
        bail!("cargo build of the seedbank binary failed with {status}");
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
    /// Runs `command` (its line shown as `shown`) to its end and keeps what it printed.
    pub(crate) fn run(shown: String, mut command: Command) -> Self {
        let output = command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {shown}: {e}"));
        Self::from_output(shown, output)
    }

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
        self.try_json()
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{self}", self.command))
    }

    /// Parses stdout as JSON, whatever the exit code (commands print JSON on failure
    /// too, such as `providers` finding none).
    pub fn try_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::from_str(&self.stdout)
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
    let mut command = Command::new(seedbank_binary());
    command.arg("--data-dir").arg(data_dir).args(args);
    CliOutput::run(format!("seedbank {}", args.join(" ")), command)
}
