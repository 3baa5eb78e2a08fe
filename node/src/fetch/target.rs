//! What a fetch request names: a content id, a published name (resolved and checked
//! through its signed records), or a local label.

use seedbank_protocol::api::FetchRequest;
use seedbank_protocol::{ContentId, NameRef};

use crate::error::{NodeError, NodeResult};
use crate::library::meta::Labels;
use crate::library::Library;
use crate::names::Names;

/// The root `id` names among content ids, names resolved here before, and this node's
/// artifacts.
pub fn root_of(library: &Library, names: &Names, id: &str) -> NodeResult<ContentId> {
    if let Ok(root) = id.parse::<ContentId>() {
        return Ok(root);
    }
    if NameRef::looks_like_name(id) {
        return names.cached_root(id)?.ok_or_else(|| {
            NodeError::NotFound(format!(
                "{id} has not been resolved on this node; use its content id"
            ))
        });
    }
    match library.find(id) {
        Ok(record) => Ok(record.root),
        Err(_) => Err(NodeError::BadRequest(format!(
            "{id:?} is neither a content id (sb1…) nor the name of a local artifact"
        ))),
    }
}

/// What a fetch asks for, resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// The artifact.
    pub root: ContentId,
    /// The labels of the release it was named by (none for a content id or label).
    pub labels: Option<Labels>,
    /// Said to the user who asked (a licence this node will not seed, say).
    pub warning: Option<String>,
}

impl Target {
    fn root(root: ContentId) -> Self {
        Self {
            root,
            labels: None,
            warning: None,
        }
    }
}

/// The root a fetch asks for: a content id, a published name (resolved and checked
/// through its signed records, with its release's labels and a warning if this node
/// will not seed it), or, with `allow_unsigned`, a local label.
pub async fn fetch_target(
    library: &Library,
    names: &Names,
    request: &FetchRequest,
) -> NodeResult<Target> {
    let id = request.id.as_str();
    if let Ok(root) = id.parse::<ContentId>() {
        return Ok(Target::root(root));
    }
    if NameRef::looks_like_name(id) {
        let (root, labels, warning) = names.resolve_for_fetch(id).await?;
        return Ok(Target {
            root,
            labels: Some(labels),
            warning,
        });
    }
    match library.find(id) {
        Ok(record) if request.allow_unsigned => Ok(Target::root(record.root)),
        Ok(_) => Err(NodeError::BadRequest(format!(
            "{id:?} is a local label, which no signature backs: fetch PUBLISHER/{id}, the \
             content id, or pass --allow-unsigned"
        ))),
        Err(_) => Err(NodeError::BadRequest(format!(
            "{id:?} is neither a content id (sb1…), a published name (PUBLISHER/NAME) nor \
             the name of a local artifact"
        ))),
    }
}
