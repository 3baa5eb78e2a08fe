//! The one owner of fetching: where a fetch request goes (content id, published name or
//! local label), the jobs that run and resume fetches, one try of a job, and finding an
//! artifact's root.
//!
//! [`Fetcher`] is the door: the node, the gateway, preservation and denylists all fetch
//! through it. It is given the parts it needs (library, network, names, what is denied,
//! seeding) and never calls back up. The jobs own an [`attempt::AttemptRunner`], so a
//! try is a value, not a closure into the node. See [`jobs`] for the invariants of jobs.

pub mod attempt;
pub mod jobs;
pub mod readers;
pub mod root_search;
mod target;
mod timings;

use seedbank_protocol::api::{FetchJobSummary, FetchReport, FetchRequest};
use seedbank_protocol::{ContentId, Manifest};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::error::{NodeError, NodeResult};
use crate::progress::ProgressReporter;
use attempt::AttemptRunner;
use jobs::{FetchJobs, JobCounts, JobView, Origin};
use root_search::find_root;
pub use target::{root_of, Target};
pub use timings::FetchTimings;

/// Fetching for the whole node. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Fetcher {
    runner: AttemptRunner,
    jobs: FetchJobs,
}

impl Fetcher {
    /// Fetching with `runner`'s parts; no job runs until asked (see [`Self::resume_saved`]).
    pub fn new(runner: AttemptRunner) -> Self {
        Self {
            jobs: FetchJobs::new(runner.library.clone(), runner.clone()),
            runner,
        }
    }

    /// Counts a reader of `root` (a gateway response) until the lease is dropped: a
    /// fetch started only for readers ends once none is left for the grace period.
    pub fn reader_lease(&self, root: ContentId) -> readers::ReaderLease {
        self.jobs.readers().lease(root)
    }

    /// Resumes the jobs saved when the node last stopped, in the background.
    pub async fn resume_saved(&self) -> NodeResult<()> {
        for job in self.runner.library.fetch_jobs()? {
            tracing::info!(root = %job.root, "resuming unfinished fetch");
            if let Err(e) = self
                .jobs
                .start(
                    job.root,
                    job.include,
                    job.pin,
                    Origin::Background,
                    job.labels,
                )
                .await
            {
                tracing::warn!(root = %job.root, error = %e, "cannot resume fetch");
            }
        }
        Ok(())
    }

    /// Fetch jobs, running and saved.
    pub fn jobs(&self) -> NodeResult<Vec<FetchJobSummary>> {
        self.jobs.list()
    }

    /// Whether a job for `root` runs or is saved.
    pub fn job_of(&self, root: ContentId) -> NodeResult<Option<FetchJobSummary>> {
        Ok(self.jobs.list()?.into_iter().find(|job| job.id == root))
    }

    /// How jobs ended since start.
    pub fn counts(&self) -> JobCounts {
        self.jobs.counts()
    }

    /// Verified bytes fetched since start.
    pub fn bytes_fetched(&self) -> u64 {
        self.runner
            .bytes_fetched
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Ends running jobs (they stay saved and resume at the next start).
    pub fn stop(&self) {
        self.jobs.stop();
    }

    /// The root `id` names among content ids, resolved names and local artifacts.
    pub fn root_of(&self, id: &str) -> NodeResult<ContentId> {
        root_of(&self.runner.library, &self.runner.names, id)
    }

    /// Cancels the fetch of `id`, running or saved.
    pub async fn cancel(&self, id: &str) -> NodeResult<ContentId> {
        let root = self.root_of(id)?;
        self.cancel_root(root).await?;
        Ok(root)
    }

    /// Cancels the fetch of `root`, running or saved.
    pub async fn cancel_root(&self, root: ContentId) -> NodeResult<()> {
        self.jobs.cancel(root).await
    }

    /// Starts a fetch in the background (or joins the running one) and returns at once.
    pub async fn fetch_detached(&self, request: FetchRequest) -> NodeResult<FetchJobSummary> {
        let target = self.target(&request).await?;
        let root = target.root;
        if let Some(warning) = target.warning {
            tracing::warn!("{warning}");
        }
        self.jobs
            .start(
                root,
                request.include,
                request.pin,
                Origin::Background,
                target.labels,
            )
            .await?;
        self.job_of(root)?
            .ok_or_else(|| NodeError::Internal(format!("the fetch of {root} ended at once")))
    }

    /// Fetches an artifact from the network, or follows the fetch of it already running
    /// (widening it if this request selects other files). A pinned artifact's names are
    /// kept alive from then on.
    pub async fn fetch(
        &self,
        request: FetchRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<FetchReport> {
        let target = self.target(&request).await?;
        let root = target.root;
        let view = self
            .jobs
            .start(
                root,
                request.include,
                request.pin,
                Origin::Watched,
                target.labels,
            )
            .await?;
        let mut report = follow_job(view, progress).await?;
        report.warnings.extend(target.warning);
        if report.pinned {
            self.runner.names.adopt_soon(root);
        }
        Ok(report)
    }

    /// The manifest of `root`: from the store, else got from the peers that have it
    /// (the root and manifest only, no file), for answers that need the file list
    /// before any file is fetched.
    pub async fn fetch_manifest(&self, root: ContentId) -> NodeResult<Manifest> {
        if let Ok(stored) = self.runner.library.stored_root(root).await {
            return Ok(stored.manifest);
        }
        self.runner.denied.check(root)?;
        let found = find_root(
            &self.runner.client(),
            &self.runner.net,
            &self.runner.peers,
            &self.runner.timings,
            root,
            &CancellationToken::new(),
        )
        .await?;
        Ok(found.fetched.manifest)
    }

    /// Starts fetching the files at `paths` of `root` in the background (or widens the
    /// fetch running), for a reader that streams them as they arrive.
    pub async fn fetch_files_in_background(
        &self,
        root: ContentId,
        paths: &[&str],
    ) -> NodeResult<()> {
        let include = paths.iter().map(|path| globset::escape(path)).collect();
        self.jobs
            .start(root, include, false, Origin::Streaming, None)
            .await
            .map(drop)
    }

    /// What a request names, refused when a denylist names its root.
    async fn target(&self, request: &FetchRequest) -> NodeResult<Target> {
        let target =
            target::fetch_target(&self.runner.library, &self.runner.names, request).await?;
        self.runner.denied.check(target.root)?;
        Ok(target)
    }
}

/// Forwards a job's progress until its result.
async fn follow_job(
    mut view: watch::Receiver<JobView>,
    progress: &mut ProgressReporter,
) -> NodeResult<FetchReport> {
    loop {
        let current = view.borrow_and_update().clone();
        if let Some(result) = current.result {
            return result.map_err(NodeError::from_api);
        }
        if let Some(p) = current.progress {
            progress.forward(p);
        }
        if view.changed().await.is_err() {
            return Err(NodeError::Internal(
                "the fetch task ended without a result".into(),
            ));
        }
    }
}
