//! Progress of long operations, sent to whoever is watching (the API streams it to the
//! CLI's progress bar). Reports are throttled and dropped when the watcher is slow:
//! progress is advisory, and a slow reader must never slow the operation down.

use std::time::{Duration, Instant};

use seedbank_protocol::api::Progress;
use tokio::sync::mpsc;

/// Least time between two progress reports.
const REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// Sends throttled progress reports.
#[derive(Debug)]
pub struct ProgressReporter {
    sender: Option<mpsc::Sender<Progress>>,
    total_bytes: u64,
    last_sent: Option<Instant>,
}

impl ProgressReporter {
    /// Reports into `sender`.
    pub fn new(sender: mpsc::Sender<Progress>) -> Self {
        Self {
            sender: Some(sender),
            total_bytes: 0,
            last_sent: None,
        }
    }

    /// Reports nowhere.
    pub fn silent() -> Self {
        Self {
            sender: None,
            total_bytes: 0,
            last_sent: None,
        }
    }

    /// Sets the total the operation will reach.
    pub fn set_total(&mut self, total_bytes: u64) {
        self.total_bytes = total_bytes;
    }

    /// Reports `done_bytes` so far while working on `current`, unless a report went out
    /// very recently.
    pub fn report(&mut self, done_bytes: u64, current: &str) {
        let Some(sender) = &self.sender else { return };
        let now = Instant::now();
        if self
            .last_sent
            .is_some_and(|last| now.duration_since(last) < REPORT_INTERVAL)
        {
            return;
        }
        self.last_sent = Some(now);
        let _ = sender.try_send(Progress {
            done_bytes,
            total_bytes: self.total_bytes,
            current: Some(current.to_owned()),
        });
    }
}
