//! The labels people give artifacts: kind, name, revision and licence, and the rules
//! each is held to wherever it appears (local labels, release records, name records).

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_LICENCE_BYTES, MAX_NAME_BYTES, MAX_REVISION_BYTES, MAX_TAG_BYTES};

/// Whether an artifact is a model or a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArtifactKind {
    /// Model weights, configs and tokenizers.
    Model,
    /// A dataset.
    Dataset,
    /// A signed list of artifacts to preserve ([`crate::collection`]).
    Collection,
}

impl std::fmt::Display for ArtifactKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ArtifactKind::Model => "model",
            ArtifactKind::Dataset => "dataset",
            ArtifactKind::Collection => "collection",
        })
    }
}

impl std::str::FromStr for ArtifactKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "model" => Ok(ArtifactKind::Model),
            "dataset" => Ok(ArtifactKind::Dataset),
            "collection" => Ok(ArtifactKind::Collection),
            other => Err(format!(
                "unknown artifact kind {other:?}: expected \"model\", \"dataset\" or \"collection\""
            )),
        }
    }
}

/// A name, revision, tag or licence that breaks its rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {reason}")]
pub struct LabelError {
    /// Which field.
    pub field: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// Checks a name, revision and licence, so a node can refuse bad ones before doing any
/// work with files.
pub fn validate_labels(
    name: &str,
    revision: &str,
    licence: Option<&str>,
) -> Result<(), LabelError> {
    validate_name(name)?;
    validate_revision(revision)?;
    if let Some(licence) = licence {
        validate_licence(licence)?;
    }
    Ok(())
}

/// Checks a name on its own (also the rules of aliases and of publisher keys' text).
pub fn validate_name(name: &str) -> Result<(), LabelError> {
    validate_label("name", name, MAX_NAME_BYTES)
}

/// Checks a revision label on its own.
pub fn validate_revision(revision: &str) -> Result<(), LabelError> {
    validate_label("revision", revision, MAX_REVISION_BYTES)
}

/// Checks one tag (a word describing an artifact, such as `llama` or `text-generation`).
pub fn validate_tag(tag: &str) -> Result<(), LabelError> {
    validate_label("tag", tag, MAX_TAG_BYTES)
}

/// Names, revisions and tags: ASCII letters, digits, `.`, `_`, `-`; not starting with
/// `.`. `/` and `@` are reserved for `publisher/name@revision`.
fn validate_label(field: &'static str, value: &str, max: usize) -> Result<(), LabelError> {
    let bad = |reason: String| Err(LabelError { field, reason });
    if value.is_empty() {
        return bad("must not be empty".into());
    }
    if value.len() > max {
        return bad(format!(
            "{} bytes is longer than the limit of {max}",
            value.len()
        ));
    }
    if value.starts_with('.') {
        return bad(format!("{value:?} must not start with '.'"));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return bad(format!(
            "{value:?} contains {c:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

/// Licences: an SPDX id or expression, printable ASCII.
pub fn validate_licence(value: &str) -> Result<(), LabelError> {
    let bad = |reason: String| {
        Err(LabelError {
            field: "licence",
            reason,
        })
    };
    if value.is_empty() {
        return bad("must not be empty".into());
    }
    if value.len() > MAX_LICENCE_BYTES {
        return bad(format!(
            "{} bytes is longer than the limit of {MAX_LICENCE_BYTES}",
            value.len()
        ));
    }
    if let Some(c) = value.chars().find(|c| {
        !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '(' | ')' | ' ' | ':'))
    }) {
        return bad(format!(
            "{value:?} contains {c:?}, not allowed in an SPDX expression"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_names_and_licences() {
        for name in [
            "",
            "alice/llama",
            "llama@v1",
            ".hidden",
            &"n".repeat(MAX_NAME_BYTES + 1),
        ] {
            let error = validate_labels(name, "main", None).unwrap_err();
            assert_eq!(error.field, "name", "{name}: {error}");
        }
        assert_eq!(
            validate_labels("llama", "main", Some("MIT; rm -rf"))
                .unwrap_err()
                .field,
            "licence"
        );
        assert!(validate_labels("llama", "v1.2", Some("Apache-2.0 OR MIT")).is_ok());
        assert!(validate_tag("text-generation").is_ok());
        assert!(validate_tag("two words").is_err());
    }
}
