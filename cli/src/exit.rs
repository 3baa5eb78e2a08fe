//! How `seedbank` ends: the one table of exit codes, the kinds of failure scripts can
//! tell apart, and the error value that carries a failure's kind through `anyhow` from
//! where it is known (the API client) to `main`, which picks the exit code.
//!
//! The table is documented in README.md ("Scripting with seedbank"); keep the two in step.

use std::fmt;
use std::process::ExitCode;

use seedbank_protocol::api::{ApiError, ErrorCode};

/// The exit codes. Scripts depend on these numbers: never renumber one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// Done.
    Ok = 0,
    /// Anything not listed below: a failure inside the daemon or this command.
    Internal = 1,
    /// The command line or a value in it was wrong (clap's usage errors exit 2 too).
    BadInput = 2,
    /// No such artifact, file or path; `providers` found nobody.
    NotFound = 3,
    /// The network failed: no peer reachable, nothing arrived in time, peers misbehaved.
    Network = 4,
    /// The disk is full.
    DiskFull = 5,
    /// Stored data failed verification (`verify` found corruption).
    Corrupt = 6,
    /// No daemon answers for the data dir.
    DaemonNotRunning = 7,
    /// Not allowed: wrong API token, forbidden operation, or a path the daemon may not use.
    Denied = 8,
    /// The daemon is serving as many requests as it allows; try again shortly.
    Busy = 9,
    /// `health`: an artifact has fewer verified copies than its replica target.
    UnderTarget = 10,
    /// Interrupted (Ctrl-C) or cancelled; 128 + SIGINT, as shells report it.
    Interrupted = 130,
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit as u8)
    }
}

/// What went wrong, as a script sees it: the `code` of a `--json` error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The daemon reported an error of this kind.
    Api(ErrorCode),
    /// No daemon answers for the data dir.
    DaemonNotRunning,
    /// The command line was wrong.
    Usage,
    /// Anything else: local I/O, an answer this command could not read.
    Internal,
}

impl Failure {
    /// The exit code this failure ends the command with.
    pub fn exit(self) -> Exit {
        match self {
            Failure::Api(code) => match code {
                ErrorCode::BadRequest | ErrorCode::AlreadyExists | ErrorCode::TooLarge => {
                    Exit::BadInput
                }
                ErrorCode::NotFound => Exit::NotFound,
                ErrorCode::Unreachable | ErrorCode::TimedOut | ErrorCode::PeerMisbehaved => {
                    Exit::Network
                }
                ErrorCode::DiskFull => Exit::DiskFull,
                ErrorCode::Corrupt => Exit::Corrupt,
                ErrorCode::Unauthorized | ErrorCode::Forbidden | ErrorCode::PermissionDenied => {
                    Exit::Denied
                }
                ErrorCode::Busy => Exit::Busy,
                ErrorCode::Cancelled => Exit::Interrupted,
                ErrorCode::Internal => Exit::Internal,
            },
            Failure::DaemonNotRunning => Exit::DaemonNotRunning,
            Failure::Usage => Exit::BadInput,
            Failure::Internal => Exit::Internal,
        }
    }

    /// The snake_case name scripts match on: the API's own error code names, plus
    /// `daemon_not_running`, `usage` and `internal`.
    pub fn name(self) -> String {
        match self {
            Failure::Api(code) => serde_json::to_value(code)
                .ok()
                .and_then(|value| value.as_str().map(str::to_owned))
                .unwrap_or_else(|| "internal".into()),
            Failure::DaemonNotRunning => "daemon_not_running".into(),
            Failure::Usage => "usage".into(),
            Failure::Internal => "internal".into(),
        }
    }
}

/// An error whose kind is known; carried inside `anyhow::Error` and found again by
/// [`failure_of`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    /// What kind of failure.
    pub failure: Failure,
    /// One line a person can act on.
    pub message: String,
}

impl CliError {
    /// An error of kind `failure`.
    pub fn new(failure: Failure, message: impl Into<String>) -> Self {
        Self {
            failure,
            message: message.into(),
        }
    }
}

impl From<ApiError> for CliError {
    fn from(error: ApiError) -> Self {
        Self::new(Failure::Api(error.code), error.message)
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// The kind of `error`: that of the first typed error in its chain, else internal.
pub fn failure_of(error: &anyhow::Error) -> Failure {
    error
        .chain()
        .find_map(|cause| {
            cause
                .downcast_ref::<CliError>()
                .map(|typed| typed.failure)
                .or_else(|| {
                    cause
                        .downcast_ref::<seedbank_node::NodeError>()
                        .map(|node| Failure::Api(node.code()))
                })
        })
        .unwrap_or(Failure::Internal)
}

/// Whether `error` is stdout closing under us (`seedbank ls | head -1`): not a failure.
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The `--json` form of an error: `{"error": {"code": "...", "message": "..."}}`.
pub fn json_error(failure: Failure, message: &str) -> serde_json::Value {
    serde_json::json!({ "error": { "code": failure.name(), "message": message } })
}

#[cfg(test)]
mod tests {
    use anyhow::Context;

    use super::*;

    #[test]
    fn every_kind_has_its_exit_code() {
        let api = |code| Failure::Api(code).exit() as u8;
        assert_eq!(Exit::Ok as u8, 0);
        assert_eq!(api(ErrorCode::Internal), 1);
        assert_eq!(api(ErrorCode::BadRequest), 2);
        assert_eq!(Failure::Usage.exit() as u8, 2, "as clap's own usage errors");
        assert_eq!(api(ErrorCode::NotFound), 3);
        assert_eq!(api(ErrorCode::Unreachable), 4);
        assert_eq!(api(ErrorCode::TimedOut), 4);
        assert_eq!(api(ErrorCode::PeerMisbehaved), 4);
        assert_eq!(api(ErrorCode::DiskFull), 5);
        assert_eq!(api(ErrorCode::Corrupt), 6);
        assert_eq!(Failure::DaemonNotRunning.exit() as u8, 7);
        assert_eq!(api(ErrorCode::Unauthorized), 8);
        assert_eq!(api(ErrorCode::Busy), 9);
        assert_eq!(api(ErrorCode::Cancelled), 130);
        assert_eq!(Failure::Internal.exit() as u8, 1);
    }

    #[test]
    fn the_kind_survives_context_and_names_itself_in_json() {
        let error = anyhow::Error::new(CliError::from(ApiError {
            code: ErrorCode::DiskFull,
            message: "no room".into(),
        }))
        .context("exporting");
        assert_eq!(failure_of(&error), Failure::Api(ErrorCode::DiskFull));
        assert_eq!(
            json_error(failure_of(&error), "no room"),
            serde_json::json!({"error": {"code": "disk_full", "message": "no room"}})
        );
        assert_eq!(Failure::DaemonNotRunning.name(), "daemon_not_running");
        assert_eq!(failure_of(&anyhow::anyhow!("oops")), Failure::Internal);
    }

    #[test]
    fn a_closed_pipe_is_told_apart_from_other_io_errors() {
        let pipe: anyhow::Result<()> =
            Err(std::io::Error::from(std::io::ErrorKind::BrokenPipe)).context("printing");
        assert!(is_broken_pipe(&pipe.unwrap_err()));
        let other = anyhow::Error::new(std::io::Error::other("disk"));
        assert!(!is_broken_pipe(&other));
    }
}
