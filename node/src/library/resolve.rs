//! Turns what a user typed into one of the node's artifacts.
//!
//! Accepted forms: a full content id (`sb1…`), a unique prefix of one (at least
//! [`MIN_ID_PREFIX_CHARS`] characters after `sb1`), `name@revision`, or `name`. A name
//! matching several artifacts resolves to the one added most recently, like a branch
//! name resolving to its newest commit.

use seedbank_protocol::content_id::CONTENT_ID_PREFIX;
use seedbank_protocol::ContentId;

use crate::error::{NodeError, NodeResult};
use crate::library::meta::ArtifactRecord;

/// Shortest id prefix accepted, so that a prefix stays unique among many artifacts.
pub const MIN_ID_PREFIX_CHARS: usize = 6;

/// Finds the artifact `reference` names among `artifacts`.
pub fn resolve_local(reference: &str, artifacts: &[ArtifactRecord]) -> NodeResult<ArtifactRecord> {
    let unknown = || NodeError::UnknownArtifact(reference.to_owned());
    if ContentId::looks_like_id(reference) {
        if let Ok(id) = reference.parse::<ContentId>() {
            return artifacts
                .iter()
                .find(|a| a.root == id)
                .cloned()
                .ok_or_else(unknown);
        }
        let suffix = &reference[CONTENT_ID_PREFIX.len()..];
        if suffix.len() >= MIN_ID_PREFIX_CHARS {
            let matches: Vec<_> = artifacts
                .iter()
                .filter(|a| a.root.to_string().starts_with(reference))
                .collect();
            return match matches.as_slice() {
                [one] => Ok((*one).clone()),
                [] => Err(unknown()),
                many => Err(NodeError::AmbiguousName {
                    name: reference.to_owned(),
                    count: many.len(),
                }),
            };
        }
        if !artifacts.iter().any(|a| a.name == reference) {
            return Err(NodeError::BadRequest(format!(
                "the id prefix {reference:?} is too short: give at least {MIN_ID_PREFIX_CHARS} characters after {CONTENT_ID_PREFIX}"
            )));
        }
    }
    let (name, revision) = match reference.split_once('@') {
        Some((name, revision)) => (name, Some(revision)),
        None => (reference, None),
    };
    artifacts
        .iter()
        .filter(|a| a.name == name && revision.is_none_or(|r| a.revision == r))
        .max_by_key(|a| a.added_at)
        .cloned()
        .ok_or_else(unknown)
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::{ArtifactKind, BlobHash};

    use super::*;

    fn record(byte: u8, name: &str, revision: &str, added_at: u64) -> ArtifactRecord {
        ArtifactRecord {
            root: ContentId(BlobHash([byte; 32])),
            manifest: BlobHash([0; 32]),
            name: name.into(),
            kind: ArtifactKind::Model,
            revision: revision.into(),
            licence: None,
            card: None,
            size: 0,
            files: 0,
            added_at,
            referenced: false,
        }
    }

    #[test]
    fn resolves_ids_prefixes_and_names() {
        let all = vec![
            record(1, "llama", "main", 1),
            record(2, "llama", "v2", 2),
            record(3, "bert", "main", 3),
        ];
        let id = all[2].root.to_string();
        assert_eq!(resolve_local(&id, &all).unwrap().name, "bert");
        assert_eq!(resolve_local(&id[..12], &all).unwrap().name, "bert");
        assert_eq!(resolve_local("llama@main", &all).unwrap().revision, "main");
        assert_eq!(
            resolve_local("llama", &all).unwrap().revision,
            "v2",
            "newest wins"
        );
    }

    #[test]
    fn unknown_references_are_errors() {
        let all = vec![record(1, "llama", "main", 1)];
        assert!(matches!(
            resolve_local("gpt", &all),
            Err(NodeError::UnknownArtifact(_))
        ));
        assert!(matches!(
            resolve_local("llama@v9", &all),
            Err(NodeError::UnknownArtifact(_))
        ));
        let short = &all[0].root.to_string()[..CONTENT_ID_PREFIX.len() + 5];
        let too_short = resolve_local(short, &all).unwrap_err().to_string();
        assert!(too_short.contains("too short"), "{too_short}");
        let other = ContentId(BlobHash([9; 32])).to_string();
        assert!(matches!(
            resolve_local(&other, &all),
            Err(NodeError::UnknownArtifact(_))
        ));
    }
}
