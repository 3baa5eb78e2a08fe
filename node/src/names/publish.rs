//! Publishing: sign a release and a name record for an artifact, put them in the DHT,
//! rebuild the publisher's catalog and this node's directory, and announce the words
//! the name can be found by.

use std::path::Path;

use seedbank_protocol::catalog::{
    catalog_key, directory_key, entry_words, paginate, word_key, CatalogEntry, Directory,
};
use seedbank_protocol::limits::MAX_EARLIER_REVISIONS;
use seedbank_protocol::name_record::name_key;
use seedbank_protocol::names_api::{PublishReport, PublishRequest};
use seedbank_protocol::{
    validate_labels, ArtifactKind, BlobHash, ContentId, DhtRecord, NameRecord, PublisherKey,
    PublisherSecret, Release, RevisionEntry, Signed,
};

use super::card::{card_facts, normalise_tags};
use super::Names;
use crate::error::{NodeError, NodeResult};
use crate::library::import::{AddOptions, DEFAULT_REVISION};
use crate::library::meta::Labels;
use crate::progress::ProgressReporter;

/// How often this node puts again the records it keeps alive.
pub const REPUT_INTERVAL_SECS: u64 = 6 * 3600;
/// When a put reached no peer, how soon it is tried again.
pub const REPUT_RETRY_SECS: u64 = 5 * 60;

/// A sequence number above `previous` that also grows with the clock (`now_millis`,
/// milliseconds since the Unix epoch), so a publisher that lost its local state (a
/// reinstall) still publishes above its old records.
pub(super) fn next_sequence(previous: Option<u64>, now_millis: u64) -> u64 {
    previous
        .map_or(now_millis, |p| p.saturating_add(1))
        .max(now_millis)
}

impl Names {
    /// Signs and announces `request.target` under `request.name`. Returns the report
    /// and the artifact's root.
    pub async fn publish(
        &self,
        request: &PublishRequest,
        progress: &mut ProgressReporter,
    ) -> NodeResult<PublishReport> {
        let inner = &self.inner;
        let secret = inner.keys.secret(request.key.as_deref())?;
        let revision_given = request.revision.clone();
        validate_labels(
            &request.name,
            revision_given.as_deref().unwrap_or(DEFAULT_REVISION),
            request.licence.as_deref(),
        )?;
        let path = Path::new(&request.target);
        let record = if path.is_absolute() {
            if let Some(licence) = request.licence.as_deref() {
                if !self.seeds(Some(licence)) {
                    return Err(NodeError::Denied(format!(
                        "not published: {}",
                        inner.policy.refusal(Some(licence))
                    )));
                }
            }
            let summary = inner
                .library
                .add(
                    AddOptions {
                        path: path.to_path_buf(),
                        kind: request.kind.unwrap_or(ArtifactKind::Model),
                        name: Some(request.name.clone()),
                        revision: revision_given.clone(),
                        licence: request.licence.clone(),
                        pin: false,
                        reference: request.reference,
                        follow_symlinks: false,
                        hf: None,
                    },
                    progress,
                )
                .await?;
            inner
                .library
                .artifact(summary.id)?
                .ok_or_else(|| NodeError::UnknownArtifact(summary.id.to_string()))?
        } else {
            inner.library.find(&request.target)?
        };
        let root = record.root;
        let detail = inner.library.detail(&root.to_string()).await?;
        if detail.summary.state != seedbank_protocol::api::Completeness::Complete {
            return Err(NodeError::BadRequest(format!(
                "{root} is not complete here; fetch all of it before publishing it"
            )));
        }
        let card = match &request.card {
            Some(card) => {
                let card = card.trim_start_matches("./").to_owned();
                if detail.manifest.file(&card).is_none() {
                    return Err(NodeError::BadRequest(format!(
                        "card {card:?} is not one of the artifact's files"
                    )));
                }
                Some(card)
            }
            None => record.card.clone(),
        };
        let facts = match &card {
            Some(card) => inner
                .library
                .card_text(&detail.manifest, card)
                .await
                .map(|text| card_facts(&text))
                .unwrap_or_default(),
            None => Default::default(),
        };
        let licence = request
            .licence
            .clone()
            .or(record.licence.clone())
            .or(facts.licence.clone());
        if !self.seeds(licence.as_deref()) {
            return Err(NodeError::Denied(format!(
                "not published: {}",
                inner.policy.refusal(licence.as_deref())
            )));
        }
        let mut tags = facts.tags.clone();
        for tag in &request.tags {
            seedbank_protocol::labels::validate_tag(tag)?;
            tags.push(tag.clone());
        }
        normalise_tags(&mut tags);
        let revision = revision_given
            .or_else(|| (!record.revision.is_empty()).then(|| record.revision.clone()))
            .unwrap_or_else(|| DEFAULT_REVISION.to_owned());
        let kind = request.kind.unwrap_or(record.kind);

        let publisher = secret.public();
        let key = name_key(&publisher, &request.name);
        let previous = match self.lookup(key, "name record").await {
            Ok(Some(found)) => match found.record {
                DhtRecord::Name(previous) => Some(previous),
                _ => None,
            },
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, "ignoring unreadable earlier records of this name");
                None
            }
        };
        let (parent, earlier, previous_sequence) = match &previous {
            Some(previous) => {
                let body = previous.body();
                let latest = body.latest.body();
                let mut earlier = vec![RevisionEntry {
                    revision: latest.revision.clone(),
                    root: latest.root,
                    published_at: latest.published_at,
                }];
                earlier.extend(body.earlier.iter().cloned());
                earlier.retain(|e| e.revision != revision);
                earlier.truncate(MAX_EARLIER_REVISIONS);
                let parent = (latest.root != root).then_some(latest.root);
                (parent, earlier, Some(body.sequence))
            }
            None => (None, Vec::new(), None),
        };
        let release = Release {
            root,
            kind,
            name: request.name.clone(),
            revision: revision.clone(),
            licence: licence.clone(),
            card: card.clone(),
            tags: tags.clone(),
            parent,
            size: record.size,
            files: record.files,
            published_at: inner.clock.now_secs(),
        };
        let signed_release =
            Signed::sign(release, &secret).map_err(|e| NodeError::BadRequest(e.to_string()))?;
        let sequence = next_sequence(previous_sequence, inner.clock.now_millis());
        let name_record = Signed::sign(
            NameRecord {
                name: request.name.clone(),
                sequence,
                latest: signed_release.clone(),
                earlier,
            },
            &secret,
        )
        .map_err(|e| NodeError::BadRequest(e.to_string()))?;
        let record_bytes = name_record.encode();
        let replicas = self
            .put_and_keep(key, record_bytes.clone(), sequence)
            .await?;
        let kept_by = self.copies_kept(key, &record_bytes, replicas).await?;
        inner.book.put_release(&signed_release)?;
        inner.book.mark_published(&publisher, &request.name)?;
        inner
            .library
            .set_labels(
                root,
                Labels {
                    name: request.name.clone(),
                    kind: Some(kind),
                    revision: revision.clone(),
                    licence,
                    card,
                },
            )
            .await?;
        let catalog_pages = self.publish_catalog(&secret).await?;
        inner.book.serve_catalog(&publisher)?;
        self.publish_directory().await?;
        let words = entry_words(&request.name, &tags);
        self.announce_words(&words).await;
        inner.library.flush().await?;
        tracing::info!(%root, name = %request.name, %revision, sequence, replicas, kept_by, "published");
        Ok(PublishReport {
            release: self.release_info(&signed_release)?,
            sequence,
            replicas,
            kept_by,
            catalog_pages,
            words,
        })
    }

    /// Puts a record this node signed (or keeps alive) into the DHT, caches it, and
    /// schedules its re-put. Returns how many peers stored it.
    pub(super) async fn put_and_keep(
        &self,
        key: [u8; 32],
        bytes: Vec<u8>,
        sequence: u64,
    ) -> NodeResult<u32> {
        let book = &self.inner.book;
        book.cache(&key, bytes.clone(), sequence, self.inner.clock.now_secs())?;
        let replicas = self.inner.net.put_record(key, bytes).await?;
        // Stored nowhere but here (no peer yet, as just after a start): try again soon.
        let next = if replicas == 0 {
            REPUT_RETRY_SECS
        } else {
            REPUT_INTERVAL_SECS
        };
        book.schedule_reput(&key, self.inner.clock.now_secs() + next)?;
        Ok(replicas)
    }

    /// How many other nodes hand back `bytes` under `key` right after it was put: a
    /// node acknowledges every put, even one it then refuses to keep (its record store
    /// full or flooded), so only reading it back tells. When peers answered the put
    /// and none kept it, the re-put is brought forward to [`REPUT_RETRY_SECS`].
    async fn copies_kept(&self, key: [u8; 32], bytes: &[u8], replicas: u32) -> NodeResult<u32> {
        if replicas == 0 {
            return Ok(0);
        }
        let lookup = self.inner.net.get_records(key).await?;
        let kept = lookup
            .values
            .iter()
            .position(|v| v == bytes)
            .and_then(|i| lookup.copies.get(i).copied())
            .unwrap_or(0);
        if kept == 0 {
            tracing::warn!(
                replicas,
                "no node kept the name record it was sent: their record stores refused it"
            );
            self.inner
                .book
                .schedule_reput(&key, self.inner.clock.now_secs() + REPUT_RETRY_SECS)?;
        }
        Ok(kept)
    }

    /// Rebuilds and puts `secret`'s catalog from the names this node publishes under
    /// it. Returns the number of pages.
    async fn publish_catalog(&self, secret: &PublisherSecret) -> NodeResult<u32> {
        let publisher = secret.public();
        let mut entries = Vec::new();
        for name in self.inner.book.published_names(&publisher)? {
            let key = name_key(&publisher, &name);
            let Some(cached) = self.inner.book.cached(&key)? else {
                continue;
            };
            let Ok(DhtRecord::Name(record)) = DhtRecord::check(&key, &cached.bytes) else {
                continue;
            };
            let latest = record.body().latest.body();
            entries.push(CatalogEntry {
                name: latest.name.clone(),
                revision: latest.revision.clone(),
                root: latest.root,
                kind: latest.kind,
                size: latest.size,
                licence: latest.licence.clone(),
                tags: latest.tags.clone(),
            });
        }
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        let previous = self
            .inner
            .book
            .cached(&catalog_key(&publisher, 0))?
            .map(|c| c.sequence);
        let pages = paginate(
            entries,
            next_sequence(previous, self.inner.clock.now_millis()),
        )
        .map_err(|e| NodeError::BadRequest(e.to_string()))?;
        let count = pages.len() as u32;
        for page in pages {
            let number = page.page;
            let sequence = page.sequence;
            let signed =
                Signed::sign(page, secret).map_err(|e| NodeError::BadRequest(e.to_string()))?;
            self.put_and_keep(catalog_key(&publisher, number), signed.encode(), sequence)
                .await?;
        }
        Ok(count)
    }

    /// Puts this node's directory: the publishers whose catalogs it serves.
    pub(super) async fn publish_directory(&self) -> NodeResult<()> {
        let node = &self.inner.node_key;
        let mut publishers = self.inner.book.served_catalogs()?;
        publishers.sort();
        publishers.dedup();
        publishers.truncate(seedbank_protocol::limits::MAX_DIRECTORY_PUBLISHERS);
        let key = directory_key(&node.public());
        let previous = self.inner.book.cached(&key)?.map(|c| c.sequence);
        let sequence = next_sequence(previous, self.inner.clock.now_millis());
        let signed = Signed::sign(
            Directory {
                sequence,
                publishers,
            },
            node,
        )
        .map_err(|e| NodeError::BadRequest(e.to_string()))?;
        self.put_and_keep(key, signed.encode(), sequence).await?;
        Ok(())
    }

    /// Announces this node as a keeper of catalogs using each of `words`.
    pub(super) async fn announce_words(&self, words: &[String]) {
        for word in words {
            if let Err(e) = self.inner.book.add_word(word) {
                tracing::warn!(word, error = %e, "cannot record a search word");
            }
            let key = ContentId(BlobHash(word_key(word)));
            if let Err(e) = self.inner.net.start_providing(key).await {
                tracing::debug!(word, error = %e, "announcing a search word failed; will retry");
            }
        }
    }

    /// The key this node signs its directory with.
    pub fn node_publisher(&self) -> PublisherKey {
        self.inner.node_key.public()
    }
}
