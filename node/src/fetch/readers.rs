//! Who still reads what a streaming fetch brings: the gateway holds a [`ReaderLease`]
//! on an artifact for each response it streams (and while it waits to vouch for an
//! ETag). A fetch started only for readers is cancelled once its artifact has had no
//! reader for the grace period, so downloads nobody reads do not hold the fetch slots.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use seedbank_protocol::ContentId;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a streaming fetch looks whether anyone still reads it.
const READER_POLL: Duration = Duration::from_millis(250);

/// Readers per artifact. Cheap to clone; clones share the counts.
#[derive(Debug, Clone, Default)]
pub struct Readers {
    counts: Arc<Mutex<HashMap<ContentId, usize>>>,
}

/// One reader of an artifact, counted until dropped.
#[derive(Debug)]
pub struct ReaderLease {
    readers: Readers,
    root: ContentId,
}

impl Drop for ReaderLease {
    fn drop(&mut self) {
        let mut counts = self.readers.lock();
        if let Some(count) = counts.get_mut(&self.root) {
            *count -= 1;
            if *count == 0 {
                counts.remove(&self.root);
            }
        }
    }
}

impl Readers {
    /// Counts a reader of `root` until the lease is dropped.
    pub fn lease(&self, root: ContentId) -> ReaderLease {
        *self.lock().entry(root).or_default() += 1;
        ReaderLease {
            readers: self.clone(),
            root,
        }
    }

    /// Readers of `root` now.
    pub fn count(&self, root: ContentId) -> usize {
        self.lock().get(&root).copied().unwrap_or(0)
    }

    /// Cancels `job` once `root` has had no reader for `grace` while `for_readers_only`
    /// says the job is still only theirs; returns when the job ends either way.
    pub async fn cancel_when_unread(
        &self,
        root: ContentId,
        grace: Duration,
        for_readers_only: impl Fn() -> bool,
        job: CancellationToken,
    ) {
        let mut unread_since: Option<Instant> = None;
        while !job.is_cancelled() {
            if !for_readers_only() {
                return;
            }
            if self.count(root) > 0 {
                unread_since = None;
            } else if unread_since.get_or_insert_with(Instant::now).elapsed() >= grace {
                tracing::info!(%root, ?grace, "nobody reads this streaming fetch any more; cancelling it");
                job.cancel();
                return;
            }
            tokio::select! {
                () = job.cancelled() => return,
                () = tokio::time::sleep(READER_POLL) => {}
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ContentId, usize>> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::BlobHash;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_fetch_nobody_reads_is_cancelled_after_the_grace_and_not_before() {
        let readers = Readers::default();
        let root = ContentId::from_hash(BlobHash([1; 32]));
        let grace = Duration::from_secs(30);
        let lease = readers.lease(root);
        assert_eq!(readers.count(root), 1);
        let job = CancellationToken::new();
        let watch = tokio::spawn({
            let (readers, job) = (readers.clone(), job.clone());
            async move { readers.cancel_when_unread(root, grace, || true, job).await }
        });
        tokio::time::sleep(grace * 2).await;
        assert!(!job.is_cancelled(), "cancelled while read");
        drop(lease);
        assert_eq!(readers.count(root), 0);
        tokio::time::sleep(grace / 2).await;
        assert!(!job.is_cancelled(), "cancelled within the grace");
        tokio::time::sleep(grace).await;
        assert!(job.is_cancelled());
        watch.await.unwrap();

        // A job someone else joined (a user's fetch) is never cancelled for readers.
        let kept = CancellationToken::new();
        readers
            .cancel_when_unread(root, grace, || false, kept.clone())
            .await;
        assert!(!kept.is_cancelled());
    }
}
