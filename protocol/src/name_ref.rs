//! Published names as people type them: `publisher/name[@revision]`, where `publisher`
//! is a key's text form (`sbp1…`) or an alias the user trusts.

use std::fmt;
use std::str::FromStr;

use crate::labels::{validate_name, validate_revision, LabelError};

/// A reference to a published name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NameRef {
    /// A publisher key's text form or a trusted alias.
    pub publisher: String,
    /// The name.
    pub name: String,
    /// A revision label; the latest when `None`.
    pub revision: Option<String>,
}

impl NameRef {
    /// True if `text` has the shape of a published name (it holds a `/`).
    pub fn looks_like_name(text: &str) -> bool {
        text.contains('/')
    }
}

impl FromStr for NameRef {
    type Err = LabelError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |reason: String| LabelError {
            field: "published name",
            reason,
        };
        let (publisher, rest) = text.split_once('/').ok_or_else(|| {
            bad(format!(
                "{text:?} has no publisher: write PUBLISHER/NAME[@REVISION]"
            ))
        })?;
        let (name, revision) = match rest.split_once('@') {
            Some((name, revision)) => (name, Some(revision)),
            None => (rest, None),
        };
        if publisher.is_empty() {
            return Err(bad(format!(
                "{text:?} has an empty publisher: write PUBLISHER/NAME[@REVISION]"
            )));
        }
        // An alias follows the rules of a name; a key's text form does too.
        validate_name(publisher).map_err(|e| bad(format!("publisher: {e}")))?;
        validate_name(name)?;
        if let Some(revision) = revision {
            validate_revision(revision)?;
        }
        Ok(Self {
            publisher: publisher.to_owned(),
            name: name.to_owned(),
            revision: revision.map(str::to_owned),
        })
    }
}

impl fmt::Display for NameRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.publisher, self.name)?;
        if let Some(revision) = &self.revision {
            write!(f, "@{revision}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_publisher_name_and_revision() {
        let r: NameRef = "alice/toy@v1".parse().unwrap();
        assert_eq!(
            (r.publisher.as_str(), r.name.as_str(), r.revision.as_deref()),
            ("alice", "toy", Some("v1"))
        );
        assert_eq!(r.to_string(), "alice/toy@v1");
        let r: NameRef = "alice/toy".parse().unwrap();
        assert_eq!(r.revision, None);
        for bad in ["toy", "/toy", "alice/", "alice/toy@", "a/b/c", "alice/to y"] {
            assert!(bad.parse::<NameRef>().is_err(), "{bad}");
        }
    }
}
