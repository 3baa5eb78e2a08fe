//! Pins with a reason and a replica target, the pins preservation keeps, and reading
//! the small files preservation needs (a collection's list).

use seedbank_protocol::api::PinReport;
use seedbank_protocol::collection::{Collection, COLLECTION_FILE, MAX_COLLECTION_BYTES};
use seedbank_protocol::ContentId;

use super::Library;
use crate::error::{NodeError, NodeResult};
use crate::library::meta::PinRecord;

impl Library {
    /// Pins `root` (which the node holds) with `reason` and `replica_target`, or updates
    /// the pin it has: a target or reason given replaces the old one, and one not given
    /// keeps it.
    pub async fn pin_with(
        &self,
        root: ContentId,
        reason: Option<String>,
        replica_target: Option<u32>,
    ) -> NodeResult<PinReport> {
        if self.meta.artifact(root)?.is_none() {
            return Err(NodeError::UnknownArtifact(root.to_string()));
        }
        let changed = match self.meta.pin_record(root)? {
            Some(mut pin) => {
                let before = pin.clone();
                pin.reason = reason.or(pin.reason);
                pin.replica_target = replica_target.or(pin.replica_target);
                self.meta.update_pin(root, &pin)?;
                pin != before
            }
            None => self.meta.pin(
                root,
                &PinRecord {
                    pinned_at: self.clock.now_secs(),
                    reason,
                    replica_target,
                },
            )?,
        };
        self.store.set_pinned(root, true).await?;
        self.meta.flush().await?;
        Ok(PinReport {
            id: root,
            pinned: true,
            changed,
            replica_target: self.meta.pin_record(root)?.and_then(|p| p.replica_target),
        })
    }

    /// Every pin.
    pub fn pins(&self) -> NodeResult<Vec<(ContentId, PinRecord)>> {
        self.meta.pins()
    }

    /// The pin of `root`, if it is pinned.
    pub fn pin_of(&self, root: ContentId) -> NodeResult<Option<PinRecord>> {
        self.meta.pin_record(root)
    }

    /// Whether the node holds `root` complete.
    pub async fn holds_complete(&self, root: ContentId) -> bool {
        match self.meta.artifact(root) {
            Ok(Some(record)) => self.is_complete(&record).await.unwrap_or(false),
            _ => false,
        }
    }

    /// The collection a stored collection artifact holds.
    pub async fn read_collection(&self, root: ContentId) -> NodeResult<Collection> {
        let stored = self.stored_root(root).await?;
        let file = stored.manifest.file(COLLECTION_FILE).ok_or_else(|| {
            NodeError::BadRequest(format!(
                "{root} is published as a collection but holds no {COLLECTION_FILE}"
            ))
        })?;
        if file.size > MAX_COLLECTION_BYTES {
            return Err(NodeError::BadRequest(format!(
                "the collection {root} is {} bytes; at most {MAX_COLLECTION_BYTES} are read",
                file.size
            )));
        }
        let bytes = self
            .store
            .read_small(file.hash, MAX_COLLECTION_BYTES as usize)
            .await?;
        Collection::decode(&bytes).map_err(|e| NodeError::BadRequest(format!("{root}: {e}")))
    }
}
