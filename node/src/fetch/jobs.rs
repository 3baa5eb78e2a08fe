//! Fetch jobs: the fetches running now and those saved to resume, keyed by artifact.
//!
//! Invariants:
//! - At most one job per artifact runs. A second request for it joins the running job;
//!   one selecting other files widens it: the try under way takes the new files on
//!   without starting over (or, if it was already ending, the job fetches again with the
//!   union of both selections before it ends).
//! - At most [`MAX_CONCURRENT_FETCHES`] jobs transfer at once; others wait for a slot.
//! - A job only readers asked for (the gateway, [`Origin::Streaming`]) is never saved,
//!   so never resumed, and is cancelled once nobody has read it for the reader grace
//!   ([`super::readers`]); a request of another origin that joins it makes it a saved
//!   job like any other.
//! - Any other job is saved in sled from its start until it ends. It ends for good (record and
//!   fetch tag removed) when it succeeds, is cancelled, or fails in a way no retry can
//!   mend (an invalid manifest, a selection matching nothing), and when it fails having
//!   obtained nothing (no ghost jobs for ids nobody has). A job that holds data and
//!   fails otherwise stays saved with its error and resumes at the next start, as does
//!   every job running when the daemon stops.
//! - Jobs the daemon resumed or the user detached retry with back-off, up to
//!   [`MAX_ATTEMPTS`] tries, since peers take a while to appear after a start; a fetch a
//!   user is watching does too when it stalled after getting its root (its peers may be
//!   rebooting), and otherwise fails after one try and says why.
//! - A job asked to pin (by its first request or one that joined it) pins the artifact
//!   when it succeeds, before its watchers hear the result; the wish is saved with the
//!   job, so it outlives a restart.

mod retry;
mod selection;
mod tries;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use seedbank_protocol::api::{ApiError, FetchJobState, FetchJobSummary, FetchReport, Progress};
use seedbank_protocol::ContentId;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::attempt::AttemptRunner;
use crate::error::{NodeError, NodeResult};
use crate::library::meta::{FetchJobRecord, Labels};
use crate::library::Library;
use retry::retry_may_mend;
use selection::widened;

use super::readers::Readers;

/// Most fetches transferring at once; each runs up to 32 streams.
pub const MAX_CONCURRENT_FETCHES: usize = 4;
/// Numbers the jobs this process runs, for their log spans.
static NEXT_JOB_ID: AtomicU64 = AtomicU64::new(1);

/// Tries a background job (resumed or detached) gets before it is left saved.
pub const MAX_ATTEMPTS: u32 = 6;

/// Who started a job, which decides how patient it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A client asked and is watching: one try, then the error.
    Watched,
    /// Resumed at start, or detached by the user: tries again with back-off.
    Background,
    /// A reader streams the files as they arrive (the Hugging Face gateway): tries
    /// again like [`Origin::Background`], and fetches each file from its start.
    Streaming,
}

/// What watchers of a job see.
#[derive(Debug, Clone)]
pub struct JobView {
    /// Where it stands.
    pub state: FetchJobState,
    /// Latest progress of the current try.
    pub progress: Option<Progress>,
    /// Tries so far.
    pub attempts: u32,
    /// Why the last try failed.
    pub last_error: Option<String>,
    /// Set once the job has ended.
    pub result: Option<Result<FetchReport, ApiError>>,
}

struct RunningJob {
    /// The selection, which requests widen while the job runs; its try follows it.
    include: watch::Sender<Vec<String>>,
    pin: bool,
    /// The labels of the release it was asked for by, recorded when it commits.
    labels: Option<Labels>,
    paused: Arc<AtomicBool>,
    started_at: u64,
    view: watch::Receiver<JobView>,
    cancel: CancellationToken,
    /// A reader streams it: later tries fetch in file order.
    in_order: bool,
    /// Its last try fetched all it was asked for and it is being recorded: it can no
    /// longer be widened, so a request for it waits for its end and starts afresh.
    finishing: bool,
    /// Only readers (the gateway) asked for it: it is not saved, so not resumed after
    /// a restart, and it is cancelled once nobody reads it.
    for_readers_only: bool,
}

/// What a request found of the job for its root.
enum Joining {
    /// Joined (and if needed widened) the running job; its record, to save unless
    /// the job is only its readers'.
    Joined(watch::Receiver<JobView>, Option<FetchJobRecord>),
    /// The job is finishing; its view, to wait for its end.
    Finishing(watch::Receiver<JobView>),
    /// No job runs.
    NotRunning,
}

/// How many jobs ended each way since the node started, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobCounts {
    /// Jobs that fetched what they were asked for.
    pub finished: u64,
    /// Jobs that gave up with an error (saved ones among them resume at the next start).
    pub failed: u64,
    /// Jobs cancelled by the user or by the daemon stopping.
    pub cancelled: u64,
}

#[derive(Debug, Default)]
struct JobCounters {
    finished: AtomicU64,
    failed: AtomicU64,
    cancelled: AtomicU64,
}

/// The node's fetch jobs.
#[derive(Clone)]
pub struct FetchJobs {
    library: Library,
    runner: AttemptRunner,
    running: Arc<Mutex<HashMap<ContentId, RunningJob>>>,
    slots: Arc<Semaphore>,
    stopping: CancellationToken,
    counters: Arc<JobCounters>,
    readers: Readers,
}

impl std::fmt::Debug for FetchJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FetchJobs").finish_non_exhaustive()
    }
}

impl FetchJobs {
    /// Jobs of `library`'s node, each try run by `runner`.
    pub fn new(library: Library, runner: AttemptRunner) -> Self {
        Self {
            library,
            runner,
            running: Arc::default(),
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_FETCHES)),
            stopping: CancellationToken::new(),
            counters: Arc::default(),
            readers: Readers::default(),
        }
    }

    /// The readers of streaming jobs.
    pub fn readers(&self) -> &Readers {
        &self.readers
    }

    /// How many jobs ended each way since the node started.
    pub fn counts(&self) -> JobCounts {
        JobCounts {
            finished: self.counters.finished.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            cancelled: self.counters.cancelled.load(Ordering::Relaxed),
        }
    }

    /// Starts a job for `root`, or joins (and if needed widens) the one running, and
    /// returns what watchers see. With `pin`, the artifact is pinned once fetched.
    pub async fn start(
        &self,
        root: ContentId,
        include: Vec<String>,
        pin: bool,
        origin: Origin,
        labels: Option<Labels>,
    ) -> NodeResult<watch::Receiver<JobView>> {
        if self.stopping.is_cancelled() {
            return Err(NodeError::Cancelled("the daemon is stopping".into()));
        }
        loop {
            match self.join_running(root, &include, pin, origin, &labels) {
                Joining::Joined(view, record) => {
                    if let Some(record) = record {
                        self.library.save_fetch_job(&record).await?;
                    }
                    return Ok(view);
                }
                Joining::Finishing(mut view) => {
                    // Removed before its result is published: afterwards, start afresh.
                    if view.wait_for(|v| v.result.is_some()).await.is_err() {
                        return Err(NodeError::Internal(
                            "the fetch task ended without a result".into(),
                        ));
                    }
                }
                Joining::NotRunning => break,
            }
        }
        let started_at = self
            .library
            .fetch_jobs()?
            .into_iter()
            .find(|job| job.root == root)
            .map_or_else(|| self.runner.clock.now_secs(), |job| job.started_at);
        let (tx, rx) = watch::channel(JobView {
            state: FetchJobState::Waiting,
            progress: None,
            attempts: 0,
            last_error: None,
            result: None,
        });
        let cancel = self.stopping.child_token();
        let job = RunningJob {
            include: watch::Sender::new(include.clone()),
            pin,
            labels: labels.clone(),
            paused: Arc::default(),
            started_at,
            view: rx.clone(),
            cancel: cancel.clone(),
            in_order: origin == Origin::Streaming,
            finishing: false,
            for_readers_only: origin == Origin::Streaming,
        };
        let record = record_of(root, &job);
        let raced = {
            let mut running = self.lock();
            let raced = running.contains_key(&root);
            if !raced {
                running.insert(root, job);
            }
            raced
        };
        if raced {
            // Another request started it meanwhile: join that one.
            return match self.join_running(root, &include, pin, origin, &labels) {
                Joining::Joined(view, record) => {
                    if let Some(record) = record {
                        self.library.save_fetch_job(&record).await?;
                    }
                    Ok(view)
                }
                Joining::Finishing(_) | Joining::NotRunning => Err(NodeError::Unreachable(
                    format!("the fetch of {root} ended as this request joined it; fetch again"),
                )),
            };
        }
        // Saved before it runs, so that its end (which removes the record) comes after;
        // a job only for readers is not saved.
        if origin != Origin::Streaming {
            if let Err(e) = self.library.save_fetch_job(&record).await {
                self.lock().remove(&root);
                return Err(e);
            }
        } else {
            let jobs = self.clone();
            let watch = self.readers.clone();
            let grace = self.runner.timings.reader_grace;
            let job_cancel = cancel.clone();
            tokio::spawn(async move {
                let only = move || {
                    jobs.lock()
                        .get(&root)
                        .is_some_and(|job| job.for_readers_only)
                };
                watch
                    .cancel_when_unread(root, grace, only, job_cancel)
                    .await;
            });
        }
        let job_id = NEXT_JOB_ID.fetch_add(1, Ordering::Relaxed);
        let span = tracing::info_span!("fetch", job = job_id, %root, ?origin);
        tokio::spawn(
            self.clone()
                .run_job(root, origin, cancel, tx)
                .instrument(span),
        );
        Ok(rx)
    }

    /// Joins the running job of `root`, widening it if `include` selects more (and
    /// making it pin if `pin`, and fetch in file order for a streaming reader); returns
    /// its view and its record to save.
    fn join_running(
        &self,
        root: ContentId,
        include: &[String],
        pin: bool,
        origin: Origin,
        labels: &Option<Labels>,
    ) -> Joining {
        let mut running = self.lock();
        let Some(job) = running.get_mut(&root) else {
            return Joining::NotRunning;
        };
        if job.finishing {
            return Joining::Finishing(job.view.clone());
        }
        job.pin |= pin;
        if labels.is_some() {
            // Asked for by name now: the release's labels are the better ones.
            job.labels.clone_from(labels);
        }
        job.in_order |= origin == Origin::Streaming;
        job.for_readers_only &= origin == Origin::Streaming;
        let wider = widened(&job.include.borrow(), include);
        if let Some(wider) = wider {
            tracing::info!(%root, ?wider, "widening a running fetch");
            // The try under way takes the new files on.
            job.include.send_replace(wider);
        }
        let record = (!job.for_readers_only).then(|| record_of(root, job));
        Joining::Joined(job.view.clone(), record)
    }

    /// Cancels the job of `root`, running or saved. Verified bytes stay in the store
    /// until garbage collection, so fetching again resumes.
    pub async fn cancel(&self, root: ContentId) -> NodeResult<()> {
        let running = self.lock().get(&root).map(|job| job.cancel.clone());
        match running {
            Some(cancel) => {
                cancel.cancel();
                Ok(())
            }
            None if self
                .library
                .fetch_jobs()?
                .iter()
                .any(|job| job.root == root) =>
            {
                self.library.end_fetch(root).await
            }
            None => Err(NodeError::UnknownArtifact(format!(
                "{root} (no fetch of it is running or saved; see `seedbank jobs`)"
            ))),
        }
    }

    /// Every job: running ones with their progress, then saved ones.
    pub fn list(&self) -> NodeResult<Vec<FetchJobSummary>> {
        let mut jobs: Vec<FetchJobSummary> = self
            .lock()
            .iter()
            .map(|(root, job)| {
                let view = job.view.borrow();
                let paused = job.paused.load(Ordering::Relaxed);
                FetchJobSummary {
                    id: *root,
                    include: job.include.borrow().clone(),
                    state: if paused && view.state == FetchJobState::Running {
                        FetchJobState::PausedDiskFull
                    } else {
                        view.state
                    },
                    done_bytes: view.progress.as_ref().map_or(0, |p| p.done_bytes),
                    total_bytes: view.progress.as_ref().map_or(0, |p| p.total_bytes),
                    attempts: view.attempts,
                    last_error: view.last_error.clone(),
                    started_at: job.started_at,
                    pin: job.pin,
                    activity: view.progress.as_ref().and_then(|p| p.current.clone()),
                }
            })
            .collect();
        for record in self.library.fetch_jobs()? {
            if !jobs.iter().any(|job| job.id == record.root) {
                jobs.push(FetchJobSummary {
                    id: record.root,
                    include: record.include,
                    state: FetchJobState::Saved,
                    done_bytes: 0,
                    total_bytes: 0,
                    attempts: 0,
                    last_error: record.last_error,
                    started_at: record.started_at,
                    pin: record.pin,
                    activity: None,
                });
            }
        }
        jobs.sort_by_key(|job| (job.started_at, job.id.to_string()));
        Ok(jobs)
    }

    /// Cancels every job without ending it: they stay saved and resume at next start.
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Whether the daemon is stopping.
    pub fn is_stopping(&self) -> bool {
        self.stopping.is_cancelled()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContentId, RunningJob>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The job's selection as it grows, marked seen as it is now.
    fn include_of(&self, root: ContentId) -> watch::Receiver<Vec<String>> {
        self.lock().get(&root).map_or_else(
            || watch::channel(Vec::new()).1,
            |job| job.include.subscribe(),
        )
    }

    /// Marks the job finishing if its selection is still `include`, in one step with the
    /// check, so no request widens it after the check and is left unfetched.
    fn finish_unless_widened(&self, root: ContentId, include: &[String]) -> bool {
        let mut running = self.lock();
        match running.get_mut(&root) {
            Some(job) if *job.include.borrow() == include => {
                job.finishing = true;
                true
            }
            Some(_) => false,
            None => true,
        }
    }

    fn paused_flag(&self, root: ContentId) -> Arc<AtomicBool> {
        self.lock()
            .get(&root)
            .map(|job| job.paused.clone())
            .unwrap_or_default()
    }

    async fn run_job(
        self,
        root: ContentId,
        origin: Origin,
        cancel: CancellationToken,
        view: watch::Sender<JobView>,
    ) {
        let result = self.attempts(root, origin, &cancel, &view).await;
        let pin = self.lock().get(&root).is_some_and(|job| job.pin);
        let result = match result {
            Ok(report) if pin => self.pin(report).await,
            other => other,
        };
        let counter = match &result {
            Ok(_) => &self.counters.finished,
            Err(NodeError::Cancelled(_)) => &self.counters.cancelled,
            Err(_) => &self.counters.failed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let outcome = self.settle(root, &result).await;
        if let Err(e) = outcome {
            tracing::warn!(%root, error = %e, "cannot record how the fetch ended");
        }
        match &result {
            Ok(report) => tracing::info!(bytes = report.bytes_downloaded, "fetch complete"),
            Err(e) => tracing::info!(error = %e, "fetch ended"),
        }
        // Remove before publishing the result, so a new request after it starts afresh.
        self.lock().remove(&root);
        view.send_modify(|v| v.result = Some(result.map_err(|e| e.to_api())));
    }

    /// Pins what a job asked to pin fetched.
    async fn pin(&self, mut report: FetchReport) -> NodeResult<FetchReport> {
        self.library
            .set_pinned(&report.id.to_string(), true)
            .await?;
        report.pinned = true;
        Ok(report)
    }

    /// Ends the job's record, or keeps it saved, as the module doc says.
    async fn settle(&self, root: ContentId, result: &NodeResult<FetchReport>) -> NodeResult<()> {
        let for_readers_only = self
            .lock()
            .get(&root)
            .is_some_and(|job| job.for_readers_only);
        let keep = match result {
            _ if for_readers_only => false,
            Ok(_) => false,
            Err(NodeError::Cancelled(_)) => self.stopping.is_cancelled(),
            Err(e) if !retry_may_mend(e) && !matches!(e, NodeError::DiskFull(_)) => false,
            // Kept only if it got somewhere: no ghost jobs for ids nobody has.
            Err(_) => self.library.stored_root(root).await.is_ok(),
        };
        if !keep {
            return self.library.end_fetch(root).await;
        }
        if let Err(e) = result {
            let record = {
                let running = self.lock();
                running.get(&root).map(|job| {
                    let mut record = record_of(root, job);
                    record.last_error = Some(e.to_string());
                    record
                })
            };
            if let Some(record) = record {
                self.library.save_fetch_job(&record).await?;
            }
        }
        Ok(())
    }
}

fn record_of(root: ContentId, job: &RunningJob) -> FetchJobRecord {
    FetchJobRecord {
        root,
        include: job.include.borrow().clone(),
        started_at: job.started_at,
        last_error: job.view.borrow().last_error.clone(),
        pin: job.pin,
        labels: job.labels.clone(),
    }
}
