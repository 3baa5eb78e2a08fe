//! Validation of the relative paths of files inside an artifact.
//!
//! A path comes from a peer's manifest and is later joined onto a directory the user
//! chose for export, so anything that could escape that directory is refused here, and
//! so is anything that would make the path look like another when shown: control
//! characters and Unicode format characters (bidi overrides such as U+202E, zero-width
//! characters). Adding files and decoding fetched manifests both go through
//! [`validate_artifact_path`], so one rule holds for every path a node ever holds.

use crate::limits::MAX_PATH_BYTES;

/// Why a path cannot name a file inside an artifact.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArtifactPathError {
    /// The path is empty.
    #[error("empty file path")]
    Empty,
    /// The path is longer than [`MAX_PATH_BYTES`].
    #[error("file path of {0} bytes is longer than the limit of {MAX_PATH_BYTES}")]
    TooLong(usize),
    /// The path starts with `/`.
    #[error("file path {0:?} is absolute; artifact paths are relative")]
    Absolute(String),
    /// The path has an empty, `.` or `..` component.
    #[error("file path {0:?} has an empty, '.' or '..' component")]
    BadComponent(String),
    /// The path contains a backslash, NUL or another control character.
    #[error("file path \"{}\" contains a backslash or control character", escape_path(.0))]
    BadCharacter(String),
    /// The path contains an invisible Unicode format character (general category Cf),
    /// which can make it display as a different path.
    #[error(
        "file path \"{}\" contains the invisible format character U+{:04X}",
        escape_path(.0),
        u32::from(*.1)
    )]
    FormatCharacter(String, char),
}

/// Unicode general category Cf (format characters), as of Unicode 15.1: bidi embeddings,
/// overrides and isolates, zero-width joiners and spaces, the byte-order mark, tags and
/// the like. Inclusive ranges, sorted.
const FORMAT_CHARACTERS: [(char, char); 21] = [
    ('\u{00AD}', '\u{00AD}'),
    ('\u{0600}', '\u{0605}'),
    ('\u{061C}', '\u{061C}'),
    ('\u{06DD}', '\u{06DD}'),
    ('\u{070F}', '\u{070F}'),
    ('\u{0890}', '\u{0891}'),
    ('\u{08E2}', '\u{08E2}'),
    ('\u{180E}', '\u{180E}'),
    ('\u{200B}', '\u{200F}'),
    ('\u{202A}', '\u{202E}'),
    ('\u{2060}', '\u{2064}'),
    ('\u{2066}', '\u{206F}'),
    ('\u{FEFF}', '\u{FEFF}'),
    ('\u{FFF9}', '\u{FFFB}'),
    ('\u{110BD}', '\u{110BD}'),
    ('\u{110CD}', '\u{110CD}'),
    ('\u{13430}', '\u{1343F}'),
    ('\u{1BCA0}', '\u{1BCA3}'),
    ('\u{1D173}', '\u{1D17A}'),
    ('\u{E0001}', '\u{E0001}'),
    ('\u{E0020}', '\u{E007F}'),
];

/// Whether `c` is a Unicode format character (general category Cf).
pub fn is_format_character(c: char) -> bool {
    FORMAT_CHARACTERS
        .binary_search_by(|&(low, high)| {
            if high < c {
                std::cmp::Ordering::Less
            } else if low > c {
                std::cmp::Ordering::Greater
            } else {
                std::cmp::Ordering::Equal
            }
        })
        .is_ok()
}

/// `path` with control and format characters, and backslashes, written as `\u{..}`
/// escapes, so it can be shown in a message without reordering or hiding anything.
pub fn escape_path(path: &str) -> String {
    let mut shown = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_control() || is_format_character(c) || c == '\\' || c == '"' {
            shown.push_str(&format!("\\u{{{:x}}}", u32::from(c)));
        } else {
            shown.push(c);
        }
    }
    shown
}

/// Checks that `path` is a clean relative path with `/` separators: no absolute paths,
/// no `..`, no empty components, no backslashes, control or format characters, within
/// length.
pub fn validate_artifact_path(path: &str) -> Result<(), ArtifactPathError> {
    if path.is_empty() {
        return Err(ArtifactPathError::Empty);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(ArtifactPathError::TooLong(path.len()));
    }
    if path.starts_with('/') {
        return Err(ArtifactPathError::Absolute(path.to_owned()));
    }
    if path.chars().any(|c| c == '\\' || c.is_control()) {
        return Err(ArtifactPathError::BadCharacter(path.to_owned()));
    }
    if let Some(c) = path.chars().find(|c| is_format_character(*c)) {
        return Err(ArtifactPathError::FormatCharacter(path.to_owned(), c));
    }
    if path
        .split('/')
        .any(|component| component.is_empty() || component == "." || component == "..")
    {
        return Err(ArtifactPathError::BadComponent(path.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_nested_relative_paths() {
        for path in ["a", "config.json", "shards/00001.safetensors", "a/b/c.d"] {
            assert_eq!(validate_artifact_path(path), Ok(()), "{path}");
        }
    }

    #[test]
    fn refuses_escapes_and_junk() {
        for path in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "a/",
            "./a",
            "a\\b",
            "a\0b",
            "a\nb",
        ] {
            assert!(validate_artifact_path(path).is_err(), "{path:?}");
        }
    }

    #[test]
    fn format_characters_are_refused_and_shown_escaped() {
        // "harmless\u{202e}txt.exe" displays as "harmlessexe.txt".
        let error = validate_artifact_path("shards/harmless\u{202e}txt.exe").unwrap_err();
        assert_eq!(
            error,
            ArtifactPathError::FormatCharacter("shards/harmless\u{202e}txt.exe".into(), '\u{202e}')
        );
        let message = error.to_string();
        assert!(
            message.contains("shards/harmless\\u{202e}txt.exe"),
            "{message}"
        );
        assert!(message.contains("U+202E"), "{message}");
        assert!(!message.contains('\u{202e}'), "{message}");
        for c in [
            '\u{ad}',
            '\u{200b}',
            '\u{200d}',
            '\u{2066}',
            '\u{feff}',
            '\u{e0041}',
            '\u{1343f}',
        ] {
            assert!(validate_artifact_path(&format!("a{c}b")).is_err(), "{c:?}");
        }
        for c in ['é', 'ß', '中', '\u{2010}', '\u{1f600}'] {
            assert_eq!(validate_artifact_path(&format!("a{c}b")), Ok(()), "{c:?}");
        }
        let message = validate_artifact_path("a\nb").unwrap_err().to_string();
        assert!(message.contains("a\\u{a}b"), "{message}");
    }

    #[test]
    fn format_character_table_is_sorted_and_disjoint() {
        for pair in FORMAT_CHARACTERS.windows(2) {
            assert!(pair[0].0 <= pair[0].1 && pair[0].1 < pair[1].0, "{pair:?}");
        }
        assert!(is_format_character('\u{202e}'));
        assert!(!is_format_character('\u{202f}'));
        assert!(!is_format_character('a'));
    }

    #[test]
    fn length_limit_is_enforced() {
        let at_limit = "a".repeat(MAX_PATH_BYTES);
        assert_eq!(validate_artifact_path(&at_limit), Ok(()));
        let over = "a".repeat(MAX_PATH_BYTES + 1);
        assert_eq!(
            validate_artifact_path(&over),
            Err(ArtifactPathError::TooLong(MAX_PATH_BYTES + 1))
        );
    }
}
