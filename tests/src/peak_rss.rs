//! What benchmarks do around a measurement: sample the peak resident memory of
//! processes while it runs (every 10 ms, on a thread of its own), and flush earlier
//! writes to disk before it starts, so that no measurement pays for another's.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::rss_bytes;

/// How often resident memory is read.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// Watches processes' resident memory until [`PeakRss::stop`].
pub struct PeakRss {
    done: Arc<AtomicBool>,
    sampler: JoinHandle<Vec<u64>>,
}

impl PeakRss {
    /// Starts sampling the processes `pids`.
    pub fn watch(pids: Vec<u32>) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let stop = done.clone();
        let sampler = std::thread::spawn(move || {
            let mut peaks = vec![0; pids.len()];
            while !stop.load(Ordering::Relaxed) {
                for (peak, pid) in peaks.iter_mut().zip(&pids) {
                    *peak = (*peak).max(rss_bytes(*pid).unwrap_or(0));
                }
                std::thread::sleep(SAMPLE_EVERY);
            }
            peaks
        });
        Self { done, sampler }
    }

    /// Stops sampling; the peak bytes of each process, in the order given.
    pub fn stop(self) -> Vec<u64> {
        self.done.store(true, Ordering::Relaxed);
        self.sampler.join().unwrap_or_default()
    }
}

/// Writes every dirty page to disk (`sync`), so that the next measurement neither
/// waits behind an earlier one's writes nor is throttled by them.
pub fn flush_disk_writes() -> anyhow::Result<()> {
    let status = std::process::Command::new("sync").status()?;
    anyhow::ensure!(status.success(), "sync failed");
    Ok(())
}
