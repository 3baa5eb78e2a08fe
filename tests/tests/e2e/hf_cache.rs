//! End-to-end: `seedbank fetch --hf-cache` writes the Hugging Face client's cache, and the
//! real `huggingface_hub` (pinned) loads from it offline with every daemon stopped:
//! models and datasets, by content id and by published name; a second fetch reuses the
//! blobs; a link planted where a blob goes is refused.

use std::path::{Path, PathBuf};

use seedbank_tests::fixtures::MIB;
use seedbank_tests::hf_client::HfClient;
use seedbank_tests::{
    file_hash, model_dir, start_joined, tree_hashes, tree_size, write_random_file, Daemon,
};

/// A directory shaped like a model repo on the hub: a model directory, a tokenizer and
/// a file in a sub-folder (five files); returns its size.
fn hub_model_dir(dir: &Path) -> u64 {
    model_dir(dir, "hf-cache", 3 * MIB + 17);
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("tokenizer.json"), r#"{"version": "1.0"}"#).unwrap();
    std::fs::write(dir.join("sub/extra.txt"), "one more file\n").unwrap();
    tree_size(dir)
}

/// A directory shaped like a dataset repo on the hub.
fn dataset_dir(dir: &Path) -> u64 {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("README.md"), "---\nlicense: mit\n---\n# set\n").unwrap();
    write_random_file(&dir.join("data/train.parquet"), MIB + 5, "hf-set");
    std::fs::write(dir.join("data/test.csv"), "a,b\n1,2\n").unwrap();
    tree_size(dir)
}

/// What the offline client finds: the snapshot folder, and `scan_cache_dir`'s view.
fn load_offline(client: &HfClient, repo: &str, repo_type: &str) -> serde_json::Value {
    let script = format!(
        r#"
import json
from huggingface_hub import snapshot_download, scan_cache_dir
path = snapshot_download("{repo}", repo_type="{repo_type}")
info = scan_cache_dir()
repos = [{{"id": r.repo_id, "type": r.repo_type, "files": r.nb_files, "size": r.size_on_disk,
           "revisions": [{{"commit": v.commit_hash, "refs": sorted(v.refs)}} for v in r.revisions]}}
         for r in info.repos]
print(json.dumps({{"path": path, "repos": repos, "warnings": [str(w) for w in info.warnings]}}))
"#
    );
    client.run(None, &script)
}

/// The one repo the scan lists, after checking there is one and no warning.
fn only_repo(loaded: &serde_json::Value) -> &serde_json::Value {
    assert_eq!(loaded["warnings"], serde_json::json!([]), "{loaded}");
    let repos = loaded["repos"].as_array().unwrap();
    assert_eq!(repos.len(), 1, "{loaded}");
    &repos[0]
}

/// Plants a link to `outside` at `relative` in a new cache's `org/tiny` folder, checks
/// that `fetch --hf-cache` into that cache fails naming the link and leaves `outside` as
/// it was, and returns the repo folder.
fn refused_with_planted_link(
    daemon: &Daemon,
    id: &str,
    work: &Path,
    relative: &str,
    outside: &Path,
) -> PathBuf {
    let hub = work.join(format!("planted-{}", relative.replace('/', "-")));
    let repo = hub.join("models--org--tiny");
    let link = repo.join(relative);
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    let before = std::fs::read(outside).unwrap();
    std::os::unix::fs::symlink(outside, &link).unwrap();
    let hub = hub.to_str().unwrap();
    daemon.fails_with(
        &["fetch", id, "--hf-cache", hub, "--hf-repo", "org/tiny"],
        &format!("refusing to write through symlink {}", link.display()),
    );
    assert_eq!(std::fs::read(outside).unwrap(), before);
    repo
}

#[test]
fn a_fetched_model_loads_offline_from_the_cache_and_blobs_are_reused() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("tiny");
    let size = hub_model_dir(&model);
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let mut b = start_joined(&a, &[]);
    b.wait_for_providers(&id, &[a.peer_id()]);
    let client = HfClient::new();
    let hub = client.hub_dir();
    let hub_arg = hub.to_str().unwrap();

    // Fetched by content id, it has no name to take a repo id from.
    b.fails_with(&["fetch", &id, "--hf-cache", hub_arg], "pass --hf-repo");

    let first = b.ok_json(&["fetch", &id, "--hf-cache", hub_arg, "--hf-repo", "org/tiny"]);
    let cached = &first["hf_cache"];
    assert_eq!(first["id"], id.as_str(), "{first}");
    assert_eq!(cached["repo"]["id"], "org/tiny", "{first}");
    assert_eq!(cached["files"], 5, "{first}");
    assert_eq!(cached["blobs_written"], 5, "{first}");
    assert_eq!(cached["blobs_reused"], 0, "{first}");
    assert_eq!(cached["bytes_written"], size, "{first}");
    assert_eq!(cached["ref_name"], "main", "{first}");
    let commit = cached["commit"].as_str().unwrap().to_owned();
    let snapshot = hub.join("models--org--tiny/snapshots").join(&commit);
    assert_eq!(
        cached["snapshot_dir"],
        snapshot.to_str().unwrap(),
        "{first}"
    );

    // Again: every blob is already right, so nothing is written.
    let again = b.ok_json(&["fetch", &id, "--hf-cache", hub_arg, "--hf-repo", "org/tiny"]);
    assert_eq!(again["hf_cache"]["blobs_reused"], 5, "{again}");
    assert_eq!(again["hf_cache"]["bytes_written"], 0, "{again}");
    assert_eq!(again["hf_cache"]["commit"], commit.as_str(), "{again}");
    let human = b.ok(&["fetch", &id, "--hf-cache", hub_arg, "--hf-repo", "org/tiny"]);
    assert!(
        human.stdout.contains(snapshot.to_str().unwrap()),
        "the output does not say where the snapshot is:\n{human}"
    );

    // The cache it wrote names files by BLAKE3 (they never came from the hub), and
    // another node seeds from it: import-hf takes it as it is.
    let importer = Daemon::start();
    let imported = importer.ok_json(&["import-hf", "--cache", hub_arg]);
    assert_eq!(imported["skipped"], serde_json::json!([]), "{imported}");
    assert_eq!(importer.ok_json(&["ls"])[0]["files"], 5, "{imported}");

    // A link planted where a blob goes is refused, and what it points at is untouched.
    let outside = work.path().join("precious");
    std::fs::write(&outside, b"keep me").unwrap();
    let etag = file_hash(&model.join("model.safetensors"))
        .to_hex()
        .to_string();
    let blob = format!("blobs/{etag}");
    let planted = refused_with_planted_link(&b, &id, work.path(), &blob, &outside);
    assert!(std::fs::symlink_metadata(planted.join(&blob))
        .unwrap()
        .file_type()
        .is_symlink());
    // A blob linked elsewhere (as a client's cache may link into another cache) that
    // leads to the right bytes is kept, link and all.
    let linked_hub = work.path().join("linked-hub");
    let linked_blob = linked_hub.join("models--org--tiny").join(&blob);
    std::fs::create_dir_all(linked_blob.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(model.join("model.safetensors"), &linked_blob).unwrap();
    let linked = b.ok_json(&[
        "fetch",
        &id,
        "--hf-cache",
        linked_hub.to_str().unwrap(),
        "--hf-repo",
        "org/tiny",
    ]);
    assert_eq!(linked["hf_cache"]["blobs_reused"], 1, "{linked}");
    assert_eq!(linked["hf_cache"]["blobs_written"], 4, "{linked}");
    assert!(std::fs::symlink_metadata(&linked_blob)
        .unwrap()
        .file_type()
        .is_symlink());
    // So is one planted at the ref, before any blob is written.
    let planted = refused_with_planted_link(&b, &id, work.path(), "refs/main", &outside);
    assert!(!planted.join("blobs").exists());

    // With every daemon stopped, the unmodified client loads it offline.
    b.stop();
    drop(a);
    let loaded = load_offline(&client, "org/tiny", "model");
    let path = Path::new(loaded["path"].as_str().unwrap());
    assert_eq!(path, snapshot);
    assert_eq!(tree_hashes(path), tree_hashes(&model));
    let repo = only_repo(&loaded);
    assert_eq!(
        (&repo["id"], &repo["type"], &repo["files"], &repo["size"]),
        (
            &serde_json::json!("org/tiny"),
            &serde_json::json!("model"),
            &serde_json::json!(5),
            &serde_json::json!(size)
        ),
        "{loaded}"
    );
    assert_eq!(
        repo["revisions"],
        serde_json::json!([{"commit": commit, "refs": ["main"]}]),
        "{loaded}"
    );
    let extra = client.run(
        None,
        r#"
import json
from huggingface_hub import hf_hub_download
print(json.dumps(hf_hub_download("org/tiny", "sub/extra.txt")))
"#,
    );
    let extra = std::fs::read(extra.as_str().unwrap()).unwrap();
    assert_eq!(extra, std::fs::read(model.join("sub/extra.txt")).unwrap());
}

#[test]
fn datasets_by_id_and_by_published_name_load_offline() {
    let work = tempfile::tempdir().unwrap();
    let set = work.path().join("set");
    let size = dataset_dir(&set);
    let a = Daemon::start();
    let published = a.ok_json(&[
        "publish",
        set.to_str().unwrap(),
        "--name",
        "org--set",
        "--revision",
        "v1",
        "--kind",
        "dataset",
    ]);
    let id = published["release"]["root"].as_str().unwrap().to_owned();
    let key = a.publisher_key();
    let mut b = start_joined(&a, &[]);
    b.wait_for_providers(&id, &[a.peer_id()]);

    // By content id, the repo named on the command line.
    let by_id = HfClient::new();
    let report = b.ok_json(&[
        "fetch",
        &id,
        "--hf-cache",
        by_id.hub_dir().to_str().unwrap(),
        "--hf-repo",
        "datasets/org/set",
    ]);
    assert_eq!(
        report["hf_cache"]["repo"]["repo_type"], "dataset",
        "{report}"
    );

    // By published name and revision: the repo from the name, a dataset by its kind,
    // and the ref named after the revision.
    let by_name = HfClient::new();
    let report = b.ok_json(&[
        "fetch",
        &format!("{key}/org--set@v1"),
        "--hf-cache",
        by_name.hub_dir().to_str().unwrap(),
    ]);
    assert_eq!(
        report["hf_cache"]["repo"],
        serde_json::json!({"repo_type": "dataset", "id": "org/set"}),
        "{report}"
    );
    assert_eq!(report["hf_cache"]["ref_name"], "v1", "{report}");
    let commit = report["hf_cache"]["commit"].as_str().unwrap().to_owned();

    b.stop();
    drop(a);
    let loaded = load_offline(&by_id, "org/set", "dataset");
    assert_eq!(
        tree_hashes(Path::new(loaded["path"].as_str().unwrap())),
        tree_hashes(&set)
    );
    let repo = only_repo(&loaded);
    assert_eq!(
        (&repo["type"], &repo["size"]),
        (&serde_json::json!("dataset"), &serde_json::json!(size))
    );

    let script = r#"
import json
from huggingface_hub import snapshot_download
print(json.dumps(snapshot_download("org/set", repo_type="dataset", revision="v1")))
"#;
    let path = by_name.run(None, script);
    let path = Path::new(path.as_str().unwrap());
    assert!(path.ends_with(&commit), "{}", path.display());
    assert_eq!(tree_hashes(path), tree_hashes(&set));
}
