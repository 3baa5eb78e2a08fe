//! What a follow asks for: the latest release of each name it covers (one name, or
//! every name in the publisher's signed catalog), and for a release of kind
//! `collection`, the members the collection lists.

use seedbank_protocol::{ArtifactKind, ContentId, PublisherKey};

use crate::error::{NodeError, NodeResult};
use crate::names::Names;

/// A follow's target, read: `PUBLISHER` or `PUBLISHER/NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowTarget {
    /// The publisher's key (an alias is looked up).
    pub publisher: PublisherKey,
    /// The name, if one.
    pub name: Option<String>,
}

impl FollowTarget {
    /// Reads `text`; the publisher may be a key or an alias known here.
    pub fn parse(names: &Names, text: &str) -> NodeResult<Self> {
        let text = text.trim();
        let (publisher, name) = match text.split_once('/') {
            Some((publisher, name)) => (publisher, Some(name)),
            None => (text, None),
        };
        if publisher.is_empty() {
            return Err(NodeError::BadRequest(format!(
                "{text:?}: follow PUBLISHER or PUBLISHER/NAME, where PUBLISHER is a key (sbp1…) or a trusted alias"
            )));
        }
        let key = names.publisher(publisher)?;
        if let Some(name) = name {
            let parsed = Names::parse_name(&format!("{key}/{name}"))?;
            if parsed.revision.is_some() {
                return Err(NodeError::BadRequest(format!(
                    "{text:?}: a follow keeps every new revision, so it names no revision (drop the @…)"
                )));
            }
        }
        Ok(Self {
            publisher: key,
            name: name.map(str::to_owned),
        })
    }

    /// The canonical text: the key's text form, then `/NAME`.
    pub fn text(&self) -> String {
        match &self.name {
            Some(name) => format!("{}/{name}", self.publisher),
            None => self.publisher.to_string(),
        }
    }
}

/// The latest release of one name a follow covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    /// `PUBLISHER/NAME@REVISION`, to fetch it by (so it gets its labels).
    pub reference: String,
    /// Its root.
    pub root: ContentId,
    /// Model, dataset or collection.
    pub kind: ArtifactKind,
    /// Its size, as the signed release says.
    pub size: u64,
    /// Its licence, as the signed release says.
    pub licence: Option<String>,
}

/// The latest release of every name `target` covers. A name that cannot be resolved
/// fails the whole read (the follow keeps what it had and says why).
pub async fn latest_releases(names: &Names, target: &FollowTarget) -> NodeResult<Vec<Latest>> {
    let publisher = target.publisher.to_string();
    match &target.name {
        Some(name) => {
            let resolution = names.resolve(&format!("{publisher}/{name}")).await?;
            let release = resolution.release.release;
            Ok(vec![Latest {
                reference: format!("{publisher}/{name}@{}", resolution.revision),
                root: resolution.root,
                kind: release.kind,
                size: release.size,
                licence: release.licence,
            }])
        }
        None => {
            let catalog = names.catalog(&publisher).await?;
            Ok(catalog
                .entries
                .into_iter()
                .map(|entry| Latest {
                    reference: format!("{publisher}/{}@{}", entry.name, entry.revision),
                    root: entry.root,
                    kind: entry.kind,
                    size: entry.size,
                    licence: entry.licence,
                })
                .collect())
        }
    }
}
