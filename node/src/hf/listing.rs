//! The tree listing an HF-compatible origin sends for a commit, checked entry by entry
//! before anything is downloaded: the origin is not trusted.

use reqwest::header::{HeaderMap, LINK};
use seedbank_protocol::hf::{is_etag, is_lfs_etag};
use seedbank_protocol::limits::MAX_FILE_BYTES;
use seedbank_protocol::validate_artifact_path;
use serde::Deserialize;

/// One file of a commit's listing, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Its path in the repo.
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its hub ETag: the sha256 of an LFS file, else the git blob sha1.
    pub etag: String,
    /// Whether the origin stores it with LFS (its ETag is then a sha256).
    pub lfs: bool,
}

/// One entry of `GET /api/…/tree/{sha}`.
#[derive(Debug, Deserialize)]
pub struct TreeEntry {
    /// `file` or `directory`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its path in the repo.
    pub path: String,
    /// The git blob sha1.
    #[serde(default)]
    pub oid: Option<String>,
    /// Its size (of the pointer, for an LFS file).
    #[serde(default)]
    pub size: Option<u64>,
    /// The LFS object, for a file stored with LFS.
    #[serde(default)]
    pub lfs: Option<LfsInfo>,
}

/// The LFS part of a tree entry.
#[derive(Debug, Deserialize)]
pub struct LfsInfo {
    /// The sha256 of the content.
    pub oid: String,
    /// The content's size.
    pub size: u64,
}

/// `entry` as a listed file, checked: a valid path, an ETag of the right form (sha256
/// for an LFS file, git blob sha1 otherwise), a size within the limit. The error says
/// what is wrong with it.
pub fn check_entry(entry: TreeEntry) -> Result<ListedFile, String> {
    let path = entry.path;
    validate_artifact_path(&path).map_err(|e| format!("lists the bad path {path:?}: {e}"))?;
    let (etag, size, lfs) = match (entry.lfs, entry.oid, entry.size) {
        (Some(lfs), _, _) => (lfs.oid, lfs.size, true),
        (None, Some(oid), Some(size)) => (oid, size, false),
        _ => return Err(format!("lists {path:?} without an oid and size")),
    };
    if !is_etag(&etag) || is_lfs_etag(&etag) != lfs {
        return Err(format!(
            "lists {path:?} with {etag:?}, which is not a {}",
            if lfs { "sha256" } else { "git blob sha1" }
        ));
    }
    if size > MAX_FILE_BYTES {
        return Err(format!(
            "lists {path:?} at {size} bytes, over the limit of {MAX_FILE_BYTES}"
        ));
    }
    Ok(ListedFile {
        path,
        size,
        etag,
        lfs,
    })
}

/// The target of a `Link: <…>; rel="next"` header.
pub fn next_page(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let is_next = params
                .split(';')
                .any(|p| matches!(p.trim(), "rel=\"next\"" | "rel=next"));
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_owned())
        })
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn next_links_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static("<https://h/p1>; rel=\"prev\", <https://h/p3>; rel=\"next\""),
        );
        assert_eq!(next_page(&headers).as_deref(), Some("https://h/p3"));
        assert_eq!(next_page(&HeaderMap::new()), None);
    }

    #[test]
    fn listed_entries_are_checked() {
        let entry = |path: &str, oid: &str, lfs: Option<&str>, size: u64| TreeEntry {
            kind: "file".into(),
            path: path.into(),
            oid: Some(oid.into()),
            size: Some(size),
            lfs: lfs.map(|oid| LfsInfo {
                oid: oid.into(),
                size,
            }),
        };
        let sha1 = "1".repeat(40);
        let sha256 = "2".repeat(64);
        let small = check_entry(entry("a.json", &sha1, None, 3)).unwrap();
        assert_eq!((small.etag.as_str(), small.lfs), (sha1.as_str(), false));
        let big = check_entry(entry("w.bin", &sha1, Some(&sha256), 9)).unwrap();
        assert_eq!(
            (big.etag.as_str(), big.size, big.lfs),
            (sha256.as_str(), 9, true)
        );
        assert!(check_entry(entry("../x", &sha1, None, 3)).is_err());
        assert!(check_entry(entry("a", "../../x", None, 3)).is_err());
        assert!(check_entry(entry("a", &sha1, Some(&sha1), 3)).is_err());
        assert!(check_entry(entry("a", &sha1, None, MAX_FILE_BYTES + 1)).is_err());
    }
}
