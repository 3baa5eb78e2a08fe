//! The JSON the hub answers repo-info and tree requests with, built from a manifest.

use std::collections::BTreeSet;

use seedbank_protocol::hf::{etag_for, is_lfs_etag};
use seedbank_protocol::{HfRepo, Manifest};
use serde_json::{json, Value};

use super::resolver::Target;
use crate::library::meta::Labels;

/// Size the hub gives an LFS pointer file.
const LFS_POINTER_BYTES: u64 = 134;

/// `GET /api/{models|datasets}/{repo}[/revision/{rev}]`.
pub fn repo_info(repo: &HfRepo, target: &Target, labels: Option<&Labels>) -> Value {
    let siblings: Vec<Value> = target
        .manifest
        .files
        .iter()
        .map(|file| json!({ "rfilename": file.path }))
        .collect();
    let mut info = json!({
        "_id": target.root.to_string(),
        "id": repo.id,
        "sha": target.commit,
        "private": false,
        "gated": false,
        "disabled": false,
        "siblings": siblings,
        "usedStorage": target.manifest.total_size(),
    });
    if repo.repo_type == seedbank_protocol::HfRepoType::Model {
        info["modelId"] = json!(repo.id);
    }
    if let Some(licence) = labels.and_then(|l| l.licence.as_deref()) {
        info["cardData"] = json!({ "license": licence.to_ascii_lowercase() });
    }
    info
}

/// Most entries in one page of a tree listing; the next page is linked as the hub
/// links it, so one request never builds a huge answer.
pub const TREE_PAGE: usize = 1000;

/// One page of a tree listing.
#[derive(Debug)]
pub struct TreePage {
    /// Its entries: folders first, then files.
    pub entries: Vec<Value>,
    /// Where the next page starts, if there is one.
    pub next: Option<usize>,
    /// Whether anything at all is below the folder.
    pub found: bool,
}

/// `GET /api/{…}/tree/{rev}[/{dir}]`: up to [`TREE_PAGE`] files (and, unless
/// recursive, folders) below `dir`, from entry `cursor` on. A file's hub ETag (and its
/// LFS entry) is listed only when `vouched(index, etag)` says this node has hashed its
/// bytes and found that ETag; otherwise its BLAKE3 hash stands in, as for downloads.
pub fn tree_page(
    manifest: &Manifest,
    dir: &str,
    recursive: bool,
    cursor: usize,
    vouched: impl Fn(usize, &str) -> bool,
) -> TreePage {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let below = || {
        manifest
            .files
            .iter()
            .enumerate()
            .filter_map(|(index, file)| Some((index, file, file.path.strip_prefix(&prefix)?)))
    };
    // Folder paths borrow from the file paths: memory grows with the page, not the repo.
    let folders: BTreeSet<&str> = if recursive {
        BTreeSet::new()
    } else {
        below()
            .filter_map(|(_, file, rest)| {
                let (folder, _) = rest.split_once('/')?;
                Some(&file.path[..prefix.len() + folder.len()])
            })
            .collect()
    };
    let files = below().filter(|(_, _, rest)| recursive || !rest.contains('/'));
    let found = !folders.is_empty() || files.clone().next().is_some();
    let folder_entries = folders
        .iter()
        .map(|path| json!({ "type": "directory", "path": path, "oid": "", "size": 0 }));
    let file_entries = files.map(|(index, file, _)| {
        let hub_etag = etag_for(manifest, index).filter(|etag| vouched(index, etag));
        let etag = hub_etag.clone().unwrap_or_else(|| file.hash.to_hex());
        let mut entry = json!({
            "type": "file",
            "path": file.path,
            "oid": etag,
            "size": file.size,
        });
        if hub_etag.is_some_and(|e| is_lfs_etag(&e)) {
            entry["lfs"] =
                json!({ "oid": etag, "size": file.size, "pointerSize": LFS_POINTER_BYTES });
        }
        entry
    });
    let mut entries: Vec<Value> = folder_entries
        .chain(file_entries)
        .skip(cursor)
        .take(TREE_PAGE + 1)
        .collect();
    let next = (entries.len() > TREE_PAGE).then(|| {
        entries.truncate(TREE_PAGE);
        cursor + TREE_PAGE
    });
    TreePage {
        entries,
        next,
        found,
    }
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::{BlobHash, FileEntry, HfRevision};

    use super::*;

    fn manifest() -> Manifest {
        let file = |path: &str, size| FileEntry {
            path: path.into(),
            size,
            hash: BlobHash([1; 32]),
        };
        Manifest {
            files: vec![file("a/b.bin", 5), file("config.json", 2)],
            hf: Some(HfRevision {
                commit: "c".repeat(40),
                etags: vec!["e".repeat(64), "f".repeat(40)],
            }),
        }
    }

    #[test]
    fn trees_list_files_with_lfs_and_folders_when_not_recursive() {
        let all = tree_page(&manifest(), "", true, 0, |_, _| true).entries;
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["lfs"]["oid"], "e".repeat(64));
        assert!(all[1].get("lfs").is_none());
        let top = tree_page(&manifest(), "", false, 0, |_, _| true).entries;
        assert_eq!(top[0]["type"], "directory");
        assert_eq!(top[0]["path"], "a");
        assert_eq!(top[1]["path"], "config.json");
        let sub = tree_page(&manifest(), "a", false, 0, |_, _| true);
        assert_eq!(sub.entries.len(), 1);
        assert_eq!(sub.entries[0]["path"], "a/b.bin");
        assert!(!tree_page(&manifest(), "absent", false, 0, |_, _| true).found);
    }

    #[test]
    fn a_hub_etag_not_vouched_for_by_hashed_bytes_is_not_listed() {
        let all = tree_page(&manifest(), "", true, 0, |index, _| index == 1).entries;
        assert_eq!(all[0]["oid"], BlobHash([1; 32]).to_hex());
        assert!(all[0].get("lfs").is_none(), "{}", all[0]);
        assert_eq!(all[1]["oid"], "f".repeat(40));
    }

    #[test]
    fn big_trees_come_in_linked_pages_that_together_list_every_entry_once() {
        let files = (0..2500)
            .map(|i| FileEntry {
                path: if i % 2 == 0 {
                    format!("d{}/f{i}", i % 7)
                } else {
                    format!("f{i}")
                },
                size: 1,
                hash: BlobHash([1; 32]),
            })
            .collect();
        let big = Manifest { files, hf: None };
        for recursive in [true, false] {
            let mut seen = Vec::new();
            let mut cursor = Some(0);
            while let Some(at) = cursor {
                let page = tree_page(&big, "", recursive, at, |_, _| true);
                assert!(page.entries.len() <= TREE_PAGE);
                seen.extend(
                    page.entries
                        .iter()
                        .map(|e| e["path"].as_str().unwrap().to_owned()),
                );
                cursor = page.next;
            }
            let expected = if recursive { 2500 } else { 7 + 1250 };
            assert_eq!(seen.len(), expected);
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), expected, "no entry twice");
        }
    }
}
