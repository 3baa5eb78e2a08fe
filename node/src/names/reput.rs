//! Keeping records alive after their publisher goes: the publisher and every node that
//! pins a named artifact put its name record and its publisher's catalog again on a
//! schedule kept in sled, and announce the words it is found by. A re-put sends the
//! highest sequence this node knows (after asking the DHT for a newer one), so it never
//! lowers anything.

use std::time::Duration;

use seedbank_protocol::catalog::{catalog_key, entry_words};
use seedbank_protocol::name_record::name_key;
use seedbank_protocol::{ContentId, DhtRecord};
use tokio_util::sync::CancellationToken;

use super::Names;
use crate::error::NodeResult;

/// How often the re-put task looks for records that are due.
const REPUT_CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// How often search words are announced again (provider records live 48 hours).
const WORD_REANNOUNCE_SECS: u64 = 12 * 3600;

impl Names {
    /// Starts the task that re-puts due records and re-announces search words, until
    /// `stop` is cancelled. The first pass runs at once and puts every kept record, not
    /// only those due: neither DHT records nor provider records of words survive a
    /// restart, and a lone publisher would otherwise be unresolvable until the next
    /// scheduled put.
    pub fn spawn_keeper(&self, stop: CancellationToken) {
        let names = self.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                let mut words_due = 0;
                let mut first_pass = true;
                loop {
                    let due_by = if first_pass {
                        u64::MAX
                    } else {
                        names.inner.clock.now_secs()
                    };
                    first_pass = false;
                    if let Err(e) = names.reput_due(due_by).await {
                        tracing::debug!(error = %e, "re-putting records failed; will retry");
                    }
                    if names.inner.clock.now_secs() >= words_due {
                        match names.inner.book.words() {
                            Ok(words) => names.announce_words(&words).await,
                            Err(e) => tracing::debug!(error = %e, "cannot list search words"),
                        }
                        words_due = names.inner.clock.now_secs() + WORD_REANNOUNCE_SECS;
                    }
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(REPUT_CHECK_INTERVAL) => {}
                    }
                }
            },
            tracing::info_span!("names_keeper"),
        ));
    }

    /// Puts again every record due by `due_by` (seconds since the epoch).
    async fn reput_due(&self, due_by: u64) -> NodeResult<()> {
        for key in self.inner.book.due_reputs(due_by)? {
            // Reading first picks up a newer record from the network, and caches it.
            let best = match self.lookup(key, "record").await {
                Ok(Some(found)) => Some(found.record),
                Ok(None) => None,
                Err(e) => {
                    tracing::debug!(error = %e, "no valid record to re-put");
                    None
                }
            };
            let Some(record) = best else {
                self.inner.book.forget_reput(&key)?;
                continue;
            };
            let replicas = self
                .put_and_keep(key, record.encode(), record.sequence())
                .await?;
            tracing::debug!(replicas, "re-put a record");
        }
        Ok(())
    }

    /// Starts keeping the names of a pinned artifact alive, in the background.
    pub fn adopt_soon(&self, root: ContentId) {
        let names = self.clone();
        tokio::spawn(tracing::Instrument::instrument(
            async move {
                if let Err(e) = names.adopt(root).await {
                    tracing::warn!(%root, error = %e, "cannot keep the names of a pinned artifact alive");
                }
            },
            tracing::info_span!("adopt", %root),
        ));
    }

    /// Takes on keeping `root`'s names alive: called when the node pins it. For each
    /// release of `root` this node has seen, schedules re-puts of its name record and
    /// of its publisher's catalog, serves that catalog, and announces its words.
    pub async fn adopt(&self, root: ContentId) -> NodeResult<()> {
        let releases = self.inner.book.releases(root)?;
        if releases.is_empty() {
            return Ok(());
        }
        let mut words = Vec::new();
        for release in &releases {
            let publisher = *release.signer();
            let body = release.body();
            let key = name_key(&publisher, &body.name);
            if let Ok(Some(found)) = self.lookup(key, "name record").await {
                if let DhtRecord::Name(_) = found.record {
                    self.put_and_keep(key, found.record.encode(), found.record.sequence())
                        .await?;
                }
            }
            if let Ok(Some((first, _))) = self.catalog_page(&publisher, 0).await {
                let pages = first.body().pages;
                self.put_and_keep(
                    catalog_key(&publisher, 0),
                    first.encode(),
                    first.body().sequence,
                )
                .await?;
                for number in 1..pages {
                    if let Ok(Some((page, _))) = self.catalog_page(&publisher, number).await {
                        self.put_and_keep(
                            catalog_key(&publisher, number),
                            page.encode(),
                            page.body().sequence,
                        )
                        .await?;
                    }
                }
                self.inner.book.serve_catalog(&publisher)?;
            }
            words.extend(entry_words(&body.name, &body.tags));
        }
        self.publish_directory().await?;
        self.announce_words(&words).await;
        tracing::info!(%root, names = releases.len(), "keeping the names of a pinned artifact alive");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::publish::next_sequence;

    #[test]
    fn sequences_grow_past_the_previous_and_with_the_clock() {
        let now = 1_700_000_000_000;
        assert_eq!(next_sequence(None, now), now);
        assert_eq!(next_sequence(Some(now), now), now + 1);
        assert_eq!(next_sequence(Some(u64::MAX - 1), now), u64::MAX);
        assert_eq!(next_sequence(Some(u64::MAX), now), u64::MAX);
        assert_eq!(next_sequence(Some(5), now), now);
        // A publisher whose clock went back still publishes above its last record.
        assert_eq!(next_sequence(Some(now + 10), now - 1000), now + 11);
    }
}
