//! Reading signed records: from the DHT, checked, the highest sequence kept, cached in
//! sled, and answered from the cache when the DHT has nothing to say.

use std::time::Duration;

use seedbank_protocol::catalog::catalog_key;
use seedbank_protocol::name_record::name_key;
use seedbank_protocol::names_api::{Catalog, History, HistoryEntry, RecordSource, Resolution};
use seedbank_protocol::{ContentId, DhtRecord, NameRef, PublisherKey};

use super::{labels_of, Names};
use crate::error::{NodeError, NodeResult};
use crate::library::meta::Labels;

/// Longest a record lookup waits for the DHT.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(25);
/// Catalog pages read at once.
const PAGE_READS_AT_ONCE: usize = 8;

/// Whether a record read from the network is written to the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keep {
    /// Cached: a record this node's user asked for or relies on.
    Cache,
    /// Held only while in use: what a search reads from publishers nobody here trusts,
    /// so that searching cannot grow the database with strangers' records.
    InMemory,
}

/// A checked record and where it came from.
#[derive(Debug, Clone)]
pub(super) struct Found {
    pub record: DhtRecord,
    pub source: RecordSource,
    pub seen_at: u64,
}

impl Names {
    /// Reads the record under `key`: every value the DHT returns is checked and the
    /// highest valid sequence wins, never lower than the one cached. `Ok(None)` when
    /// neither the DHT nor the cache has one. When values were found and every one
    /// failed its checks, says why.
    pub(super) async fn lookup(&self, key: [u8; 32], what: &str) -> NodeResult<Option<Found>> {
        self.read_record(key, what, Keep::Cache).await
    }

    /// [`Self::lookup`], writing the record to the cache only if `keep` says so.
    pub(super) async fn read_record(
        &self,
        key: [u8; 32],
        what: &str,
        keep: Keep,
    ) -> NodeResult<Option<Found>> {
        let book = &self.inner.book;
        let lookup = tokio::time::timeout(LOOKUP_TIMEOUT, self.inner.net.get_records(key))
            .await
            .unwrap_or_else(|_| Ok(Default::default()))?;
        let mut best: Option<DhtRecord> = None;
        let mut first_refusal = None;
        for value in &lookup.values {
            match DhtRecord::check(&key, value) {
                Ok(record) => {
                    if best
                        .as_ref()
                        .is_none_or(|b| record.sequence() > b.sequence())
                    {
                        best = Some(record);
                    }
                }
                Err(e) => {
                    tracing::debug!(what, error = %e, "refused a record from the DHT");
                    first_refusal.get_or_insert(e);
                }
            }
        }
        let cached = book.cached(&key)?;
        let newest_known = cached.as_ref().map_or(0, |c| c.sequence);
        match best {
            Some(record) if record.sequence() >= newest_known => {
                let now = self.inner.clock.now_secs();
                let seen_at = match keep {
                    Keep::Cache => {
                        book.cache(&key, record.encode(), record.sequence(), now)?
                            .seen_at
                    }
                    Keep::InMemory => now,
                };
                return Ok(Some(Found {
                    record,
                    source: RecordSource::Network,
                    seen_at,
                }));
            }
            // The network offers only an older record than one seen before: a replay,
            // or the newer one has not spread. The cached one answers.
            Some(_) => tracing::debug!(what, "the DHT offered an older record than the cached one"),
            None => {}
        }
        match cached {
            Some(cached) => {
                let record = DhtRecord::check(&key, &cached.bytes)
                    .map_err(|e| NodeError::Corrupt(format!("cached {what}: {e}")))?;
                Ok(Some(Found {
                    record,
                    source: RecordSource::Cache,
                    seen_at: cached.seen_at,
                }))
            }
            None => match first_refusal {
                Some(e) => Err(NodeError::BadRecord(format!(
                    "every {what} found was refused: {e}"
                ))),
                None => Ok(None),
            },
        }
    }

    /// The checked name record of `publisher`'s `name`.
    pub(super) async fn name_record(
        &self,
        publisher: &PublisherKey,
        name: &str,
        shown: &str,
    ) -> NodeResult<(seedbank_protocol::SignedNameRecord, RecordSource, u64)> {
        let found = self
            .lookup(name_key(publisher, name), "name record")
            .await?
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "no name record for {shown} on the network (is the publisher's node or a \
                     node pinning it reachable?)"
                ))
            })?;
        match found.record {
            DhtRecord::Name(record) => Ok((*record, found.source, found.seen_at)),
            _ => Err(NodeError::BadRecord(format!(
                "the record under {shown} is not a name record"
            ))),
        }
    }

    /// Resolves `publisher/name[@revision]` to a root.
    pub async fn resolve(&self, text: &str) -> NodeResult<Resolution> {
        let name_ref = Self::parse_name(text)?;
        self.resolve_ref(&name_ref).await
    }

    async fn resolve_ref(&self, name_ref: &NameRef) -> NodeResult<Resolution> {
        let publisher = self.publisher(&name_ref.publisher)?;
        let (record, source, seen_at) = self
            .name_record(&publisher, &name_ref.name, &name_ref.to_string())
            .await?;
        let body = record.body();
        let (root, revision) = body.revision(name_ref.revision.as_deref()).ok_or_else(|| {
            let known: Vec<&str> = std::iter::once(body.latest.body().revision.as_str())
                .chain(body.earlier.iter().map(|e| e.revision.as_str()))
                .collect();
            NodeError::NotFound(format!(
                "{}/{} has no revision {:?}; it has {}",
                name_ref.publisher,
                name_ref.name,
                name_ref.revision.as_deref().unwrap_or(""),
                known.join(", ")
            ))
        })?;
        self.inner.book.put_release(&body.latest)?;
        Ok(Resolution {
            release: self.release_info(&body.latest)?,
            root,
            revision: revision.to_owned(),
            sequence: body.sequence,
            seen_at,
            source,
        })
    }

    /// Resolves what a fetch was asked for by name, and remembers the labels the
    /// artifact gets. Returns the root and a warning when the node will not seed it.
    pub async fn resolve_for_fetch(
        &self,
        text: &str,
    ) -> NodeResult<(ContentId, Labels, Option<String>)> {
        let resolution = self.resolve(text).await?;
        // For an earlier revision the record carries only its root and label; the rest
        // comes from the latest release.
        let mut labels = labels_of(&resolution.release.release);
        labels.revision = resolution.revision.clone();
        let warning = (!self.seeds(labels.licence.as_deref())).then(|| {
            format!(
                "{}: fetched, but not seeded from here: {}",
                text,
                self.inner.policy.refusal(labels.licence.as_deref())
            )
        });
        Ok((resolution.root, labels, warning))
    }

    /// The root `text` (`PUBLISHER/NAME[@REVISION]`) named when this node last resolved
    /// it, from its cache alone: for cancelling a fetch by the name it was started with.
    pub fn cached_root(&self, text: &str) -> NodeResult<Option<ContentId>> {
        let name_ref = Self::parse_name(text)?;
        let publisher = self.publisher(&name_ref.publisher)?;
        let key = name_key(&publisher, &name_ref.name);
        let Some(cached) = self.inner.book.cached(&key)? else {
            return Ok(None);
        };
        match DhtRecord::check(&key, &cached.bytes) {
            Ok(DhtRecord::Name(record)) => Ok(record
                .body()
                .revision(name_ref.revision.as_deref())
                .map(|(root, _)| root)),
            _ => Ok(None),
        }
    }

    /// The revisions of `publisher/name`, newest first.
    pub async fn history(&self, text: &str) -> NodeResult<History> {
        let name_ref = Self::parse_name(text)?;
        let publisher = self.publisher(&name_ref.publisher)?;
        let (record, source, _) = self.name_record(&publisher, &name_ref.name, text).await?;
        let body = record.body();
        let latest = body.latest.body();
        let revisions = std::iter::once(HistoryEntry {
            revision: latest.revision.clone(),
            root: latest.root,
            published_at: latest.published_at,
        })
        .chain(body.earlier.iter().map(|e| HistoryEntry {
            revision: e.revision.clone(),
            root: e.root,
            published_at: e.published_at,
        }))
        .collect();
        Ok(History {
            latest: self.release_info(&body.latest)?,
            revisions,
            sequence: body.sequence,
            source,
        })
    }

    /// Every name `publisher` offers, from its signed catalog pages.
    pub async fn catalog(&self, publisher_text: &str) -> NodeResult<Catalog> {
        let publisher = self.publisher(publisher_text)?;
        let first = self.catalog_page(&publisher, 0).await?.ok_or_else(|| {
            NodeError::NotFound(format!(
                "no catalog for {publisher_text} on the network: it has published nothing, or \
                 no node holding its records is reachable"
            ))
        })?;
        let (page0, source) = first;
        let pages = page0.body().pages;
        let mut entries = page0.body().entries.clone();
        let mut missing_pages = 0;
        let numbers: Vec<u16> = (1..pages).collect();
        for chunk in numbers.chunks(PAGE_READS_AT_ONCE) {
            let reads = chunk.iter().map(|&n| self.catalog_page(&publisher, n));
            for result in futures::future::join_all(reads).await {
                match result {
                    Ok(Some((page, _))) => entries.extend(page.body().entries.iter().cloned()),
                    Ok(None) | Err(_) => missing_pages += 1,
                }
            }
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        entries.dedup_by(|a, b| a.name == b.name);
        let (alias, trusted) = self.describe(&publisher)?;
        Ok(Catalog {
            publisher,
            alias,
            trusted,
            sequence: page0.body().sequence,
            entries,
            missing_pages,
            source,
        })
    }

    /// Page `page` of `publisher`'s catalog.
    pub(super) async fn catalog_page(
        &self,
        publisher: &PublisherKey,
        page: u16,
    ) -> NodeResult<Option<(seedbank_protocol::catalog::SignedCatalogPage, RecordSource)>> {
        self.catalog_page_kept(publisher, page, Keep::Cache).await
    }

    /// [`Self::catalog_page`], cached only if `keep` says so.
    pub(super) async fn catalog_page_kept(
        &self,
        publisher: &PublisherKey,
        page: u16,
        keep: Keep,
    ) -> NodeResult<Option<(seedbank_protocol::catalog::SignedCatalogPage, RecordSource)>> {
        match self
            .read_record(catalog_key(publisher, page), "catalog page", keep)
            .await?
        {
            Some(Found {
                record: DhtRecord::Catalog(page),
                source,
                ..
            }) => Ok(Some((page, source))),
            Some(_) => Err(NodeError::BadRecord("not a catalog page".into())),
            None => Ok(None),
        }
    }
}
