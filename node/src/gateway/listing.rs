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

/// `GET /api/{…}/tree/{rev}[/{dir}]`: files (and, unless recursive, folders) below `dir`.
pub fn tree_entries(manifest: &Manifest, dir: &str, recursive: bool) -> Vec<Value> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut folders = BTreeSet::new();
    let mut entries = Vec::new();
    for (index, file) in manifest.files.iter().enumerate() {
        let Some(rest) = file.path.strip_prefix(&prefix) else {
            continue;
        };
        if !recursive {
            if let Some((folder, _)) = rest.split_once('/') {
                folders.insert(format!("{prefix}{folder}"));
                continue;
            }
        }
        let etag = etag_for(manifest, index).unwrap_or_default();
        let mut entry = json!({
            "type": "file",
            "path": file.path,
            "oid": etag,
            "size": file.size,
        });
        if manifest.hf.is_some() && is_lfs_etag(&etag) {
            entry["lfs"] =
                json!({ "oid": etag, "size": file.size, "pointerSize": LFS_POINTER_BYTES });
        }
        entries.push(entry);
    }
    let mut listing: Vec<Value> = folders
        .into_iter()
        .map(|path| json!({ "type": "directory", "path": path, "oid": "", "size": 0 }))
        .collect();
    listing.extend(entries);
    listing
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
        let all = tree_entries(&manifest(), "", true);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0]["lfs"]["oid"], "e".repeat(64));
        assert!(all[1].get("lfs").is_none());
        let top = tree_entries(&manifest(), "", false);
        assert_eq!(top[0]["type"], "directory");
        assert_eq!(top[0]["path"], "a");
        assert_eq!(top[1]["path"], "config.json");
        let sub = tree_entries(&manifest(), "a", false);
        assert_eq!(sub.len(), 1);
        assert_eq!(sub[0]["path"], "a/b.bin");
    }
}
