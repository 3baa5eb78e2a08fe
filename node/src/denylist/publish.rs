//! Publishing a denylist: the next revision (the latest one read back, changed as asked,
//! or a fresh list) is written as the one file of a new artifact and published under
//! the list's name with the publisher's key, like any release.

use seedbank_protocol::denylist::{Denylist, DENYLIST_FILE};
use seedbank_protocol::denylist_api::{DenylistPublishReport, DenylistPublishRequest};
use seedbank_protocol::names_api::PublishRequest;
use seedbank_protocol::{validate_labels, ArtifactKind, PublisherKey};

use super::read::read_latest;
use super::Denylists;
use crate::error::{NodeError, NodeResult};
use crate::names::NODE_KEY_ALIAS;
use crate::progress::ProgressReporter;

/// The licence denylists are published under: a list of ids and reasons is a fact
/// sheet anyone may copy.
pub const DENYLIST_LICENCE: &str = "CC0-1.0";

/// The tag denylists carry, so `seedbank search denylist` finds them.
pub const DENYLIST_TAG: &str = "denylist";

/// Where a revision's file is written before it is added (then removed).
const STAGING_DIR: &str = "denylist-staging";

/// Publishes the next revision of the list `request.name` signed by `request.key`.
pub async fn publish_list(
    lists: &Denylists,
    request: &DenylistPublishRequest,
    progress: &mut ProgressReporter,
) -> NodeResult<DenylistPublishReport> {
    validate_labels(&request.name, "r1", None)?;
    let publisher = own_key(lists, request.key.as_deref())?;
    let previous = match read_latest(lists, &publisher, &request.name).await {
        Ok(read) => Some(read.list),
        Err(NodeError::NotFound(_)) => None,
        Err(e) if request.replace => {
            tracing::info!(error = %e, "replacing a denylist whose latest revision cannot be read");
            None
        }
        Err(e) => {
            return Err(NodeError::Unreachable(format!(
                "cannot read the latest revision of {publisher}/{}, which the new one must \
                 extend: {e} (pass --replace to publish the given entries alone)",
                request.name
            )))
        }
    };
    let entries = request.entries.clone();
    let next = match (&previous, request.replace) {
        (Some(previous), false) => previous.revised(entries, &request.remove),
        (Some(previous), true) => {
            Denylist::new(&request.name, previous.revision.saturating_add(1), entries)
        }
        (None, _) => Denylist::new(&request.name, 1, entries),
    }
    .map_err(|e| NodeError::BadRequest(e.to_string()))?;
    let before = previous
        .as_ref()
        .map(|p| p.entries.clone())
        .unwrap_or_default();
    if previous.is_some() && before == next.entries {
        return Err(NodeError::BadRequest(format!(
            "{publisher}/{} already lists exactly these entries (revision {}); nothing to publish",
            request.name,
            next.revision - 1
        )));
    }
    let bytes = next
        .encode()
        .map_err(|e| NodeError::BadRequest(e.to_string()))?;
    let staging = lists
        .library()
        .data_root()
        .join(STAGING_DIR)
        .join(format!("{}-r{}", request.name, next.revision));
    // Publishing adds a path only when it is absolute.
    let staging = std::path::absolute(&staging)
        .map_err(|e| NodeError::io("locating the data directory", &staging, e))?;
    let written = write_staged(&staging, &bytes).await;
    let published = match written {
        Ok(()) => {
            let publish = PublishRequest {
                target: staging.display().to_string(),
                name: request.name.clone(),
                revision: Some(format!("r{}", next.revision)),
                kind: Some(ArtifactKind::Dataset),
                licence: Some(DENYLIST_LICENCE.to_owned()),
                card: None,
                tags: vec![DENYLIST_TAG.to_owned()],
                key: request.key.clone(),
                reference: false,
            };
            lists
                .seeding()
                .publish(lists.names(), &publish, progress)
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = tokio::fs::remove_dir_all(&staging).await {
        tracing::debug!(error = %e, "cannot remove the staged denylist");
    }
    let report = published?;
    let added = next
        .entries
        .iter()
        .filter(|e| !before.iter().any(|b| b.id == e.id))
        .count();
    let removed = before.iter().filter(|b| next.entry(b.id).is_none()).count();
    Ok(DenylistPublishReport {
        list: format!("{publisher}/{}", request.name),
        publisher,
        name: request.name.clone(),
        revision: next.revision,
        root: report.release.release.root,
        entries: next.entries.len() as u64,
        added: added as u64,
        removed: removed as u64,
        sequence: report.sequence,
    })
}

/// The public half of this node's key `alias` (the node key when `None`).
fn own_key(lists: &Denylists, alias: Option<&str>) -> NodeResult<PublisherKey> {
    let alias = alias.unwrap_or(NODE_KEY_ALIAS);
    lists
        .names()
        .keys()?
        .into_iter()
        .find(|key| key.alias == alias)
        .map(|key| key.public_key)
        .ok_or_else(|| {
            NodeError::NotFound(format!(
                "this node has no key {alias:?} (see `seedbank key list`)"
            ))
        })
}

async fn write_staged(dir: &std::path::Path, bytes: &[u8]) -> NodeResult<()> {
    let io = |e| NodeError::io("staging the denylist", dir, e);
    if tokio::fs::metadata(dir).await.is_ok() {
        tokio::fs::remove_dir_all(dir).await.map_err(io)?;
    }
    tokio::fs::create_dir_all(dir).await.map_err(io)?;
    tokio::fs::write(dir.join(DENYLIST_FILE), bytes)
        .await
        .map_err(io)
}
