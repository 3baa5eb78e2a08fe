//! A job's tries: run one, then retry with back-off, try again at once when it was
//! widened as its try ended, or give up, as the jobs' module doc says.

use seedbank_protocol::api::{FetchJobState, FetchReport, Progress, STALLED};
use seedbank_protocol::ContentId;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::retry::retry_may_mend;
use super::{FetchJobs, JobView, Origin, MAX_ATTEMPTS};
use crate::error::{NodeError, NodeResult};
use crate::fetch::attempt::Attempt;
use crate::progress::ProgressReporter;

impl FetchJobs {
    /// Runs tries until one succeeds, the job is cancelled, or it gives up.
    pub(super) async fn attempts(
        &self,
        root: ContentId,
        origin: Origin,
        cancel: &CancellationToken,
        view: &watch::Sender<JobView>,
    ) -> NodeResult<FetchReport> {
        let mut delay = self.runner.timings.retry_delay;
        loop {
            let _slot = tokio::select! {
                () = cancel.cancelled() => return Err(self.cancelled()),
                slot = self.slots.clone().acquire_owned() => slot
                    .map_err(|_| NodeError::Cancelled("the daemon is stopping".into()))?,
            };
            let include = self.include_of(root);
            view.send_modify(|v| {
                v.state = FetchJobState::Running;
                v.attempts += 1;
            });
            let (progress_tx, progress_rx) = mpsc::channel(16);
            let (in_order, labels) = self
                .lock()
                .get(&root)
                .map(|job| (job.in_order, job.labels.clone()))
                .unwrap_or_default();
            let attempt = Attempt {
                root,
                include,
                cancel: cancel.clone(),
                progress: ProgressReporter::new(progress_tx),
                paused: self.paused_flag(root),
                in_order,
                labels,
            };
            let (result, ()) = tokio::join!(
                self.runner.run(attempt),
                forward_progress(progress_rx, view)
            );
            let result = match result {
                Err(NodeError::Cancelled(_)) if cancel.is_cancelled() => Err(self.cancelled()),
                other => other,
            };
            match result {
                Ok(tried) if self.finish_unless_widened(root, &tried.include) => {
                    return Ok(tried.report)
                }
                // Widened as the try ended: fetch again with the wider selection.
                Ok(_) => continue,
                Err(e) if !retry_may_mend(&e) => return Err(e),
                // A watched fetch that stalled after getting somewhere waits for its
                // peers as long as a detached one would; other failures end it at once.
                Err(e)
                    if origin == Origin::Watched
                        && !(matches!(e, NodeError::TimedOut(_))
                            && self.runner.library.stored_root(root).await.is_ok()) =>
                {
                    return Err(e)
                }
                Err(e) => {
                    let attempts = view.borrow().attempts;
                    if attempts >= MAX_ATTEMPTS {
                        return Err(e);
                    }
                    tracing::info!(error = %e, retry_in = ?delay, "fetch failed; will try again");
                    view.send_modify(|v| {
                        v.state = FetchJobState::Waiting;
                        v.last_error = Some(e.to_string());
                        if let Some(progress) = &mut v.progress {
                            progress.current = Some(format!(
                                "{STALLED}: trying again in {} s ({e})",
                                delay.as_secs()
                            ));
                        }
                    });
                }
            }
            drop(_slot);
            tokio::select! {
                () = cancel.cancelled() => return Err(self.cancelled()),
                () = tokio::time::sleep(delay) => {}
            }
            delay *= 2;
        }
    }

    pub(super) fn cancelled(&self) -> NodeError {
        if self.stopping.is_cancelled() {
            NodeError::Cancelled(
                "the daemon is stopping; the fetch resumes when it starts again".into(),
            )
        } else {
            NodeError::Cancelled(
                "the fetch was cancelled; verified bytes are kept until gc, fetch again to resume"
                    .into(),
            )
        }
    }
}

async fn forward_progress(mut progress: mpsc::Receiver<Progress>, view: &watch::Sender<JobView>) {
    while let Some(p) = progress.recv().await {
        view.send_modify(|v| v.progress = Some(p));
    }
}
