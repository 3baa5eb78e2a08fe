//! Progress of long operations, sent to whoever is watching (the API streams it to the
//! CLI's progress bar). Reports are throttled and dropped when the watcher is slow:
//! progress is advisory, and a slow reader must never slow the operation down.

use std::time::{Duration, Instant};

use seedbank_protocol::api::{FileProgress, Progress};
use tokio::sync::mpsc;

/// Least time between two progress reports.
const REPORT_INTERVAL: Duration = Duration::from_millis(100);

/// Sends throttled progress reports.
#[derive(Debug)]
pub struct ProgressReporter {
    sender: Option<mpsc::Sender<Progress>>,
    total_bytes: u64,
    last_sent: Option<Instant>,
    /// The file worked on now: its path, the overall bytes done when it started, its size.
    file: Option<(String, u64, u64)>,
}

impl ProgressReporter {
    /// Reports into `sender`.
    pub fn new(sender: mpsc::Sender<Progress>) -> Self {
        Self {
            sender: Some(sender),
            total_bytes: 0,
            last_sent: None,
            file: None,
        }
    }

    /// Reports nowhere.
    pub fn silent() -> Self {
        Self {
            sender: None,
            total_bytes: 0,
            last_sent: None,
            file: None,
        }
    }

    /// Sets the total the operation will reach.
    pub fn set_total(&mut self, total_bytes: u64) {
        self.total_bytes = total_bytes;
    }

    /// Starts work on the file `path` of `size` bytes, when `done_before` bytes of the
    /// whole are done: reports naming it carry its own progress too, for per-file bars.
    pub fn start_file(&mut self, path: &str, size: u64, done_before: u64) {
        self.file = Some((path.to_owned(), done_before, size));
    }

    /// Reports `done_bytes` so far while working on `current`, unless a report went out
    /// very recently.
    pub fn report(&mut self, done_bytes: u64, current: &str) {
        let files = match &self.file {
            Some((path, start, size)) if path == current => vec![FileProgress {
                path: path.clone(),
                done_bytes: done_bytes.saturating_sub(*start).min(*size),
                total_bytes: *size,
            }],
            _ => Vec::new(),
        };
        self.report_files(done_bytes, current, files);
    }

    /// Reports `done_bytes` so far while working on `current`, with the progress of the
    /// files under way (several at once in a fetch), unless a report went out very recently.
    pub fn report_files(&mut self, done_bytes: u64, current: &str, files: Vec<FileProgress>) {
        self.send(Progress {
            done_bytes,
            total_bytes: self.total_bytes,
            current: Some(current.to_owned()),
            files,
        });
    }

    /// Passes on a report made elsewhere (a fetch job's, to a client following it),
    /// unless a report went out very recently.
    pub fn forward(&mut self, progress: Progress) {
        self.total_bytes = progress.total_bytes;
        self.send(progress);
    }

    fn send(&mut self, progress: Progress) {
        let Some(sender) = &self.sender else { return };
        let now = Instant::now();
        if self
            .last_sent
            .is_some_and(|last| now.duration_since(last) < REPORT_INTERVAL)
        {
            return;
        }
        self.last_sent = Some(now);
        let _ = sender.try_send(progress);
    }
}
