//! Control-API types of the hooks end-to-end tests drive, which a daemon serves only when
//! started with the hidden `--test-clock` flag.

use serde::{Deserialize, Serialize};

/// Body of `POST /v1/test/clock/advance`: how far to move the node's clock forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockAdvanceRequest {
    /// Seconds to add; the daemon refuses more than ten years at once.
    pub secs: u64,
}

/// Answer of `POST /v1/test/clock/advance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockReport {
    /// The node's time now, in seconds since the Unix epoch.
    pub now_secs: u64,
    /// How far the clock has been moved ahead of the wall clock since the daemon started,
    /// in seconds.
    pub advanced_secs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_needs_whole_seconds_and_nothing_else() {
        let ok: ClockAdvanceRequest = serde_json::from_str(r#"{"secs": 2}"#).unwrap();
        assert_eq!(ok, ClockAdvanceRequest { secs: 2 });
        for bad in [
            r#"{}"#,
            r#"{"secs": -1}"#,
            r#"{"secs": 1.5}"#,
            r#"{"secs": "2"}"#,
            r#"{"secs": 2, "nanos": 1}"#,
            r#"{"secs": 18446744073709551616}"#,
        ] {
            assert!(
                serde_json::from_str::<ClockAdvanceRequest>(bad).is_err(),
                "{bad} was accepted"
            );
        }
    }
}
