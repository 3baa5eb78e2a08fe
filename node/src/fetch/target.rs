//! What a fetch request names: a content id, a published name (resolved and checked
//! through its signed records), or a local label.

use seedbank_protocol::api::FetchRequest;
use seedbank_protocol::{ContentId, NameRef};

use crate::error::{NodeError, NodeResult};
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

/// The root a fetch asks for: a content id, a published name (resolved and checked
/// through its signed records, with a warning if this node will not seed it), or, with
/// `allow_unsigned`, a local label.
pub async fn fetch_target(
    library: &Library,
    names: &Names,
    request: &FetchRequest,
) -> NodeResult<(ContentId, Option<String>)> {
    let id = request.id.as_str();
    if let Ok(root) = id.parse::<ContentId>() {
        return Ok((root, None));
    }
    if NameRef::looks_like_name(id) {
        return names.resolve_for_fetch(id).await;
    }
    match library.find(id) {
        Ok(record) if request.allow_unsigned => Ok((record.root, None)),
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
