//! End-to-end: a Hugging Face cache imported on one node is loaded by the real
//! `huggingface_hub` client through another node's gateway, which knows only a
//! bootstrap node: same bytes, same commit id, same ETags as the source cache.

use std::path::Path;

use seedbank_protocol::{HfRepo, HfRepoType};
use seedbank_tests::hf_cache::{tiny_model, write_snapshot, CachedFile};
use seedbank_tests::hf_client::HfClient;
use seedbank_tests::{start_joined, tree_hashes, Daemon};

const COMMIT: &str = "5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f1b3d5c7a";
const DATASET_COMMIT: &str = "0a1b2c3d4e5f60718293a4b5c6d7e8f901234567";

/// Python that logs every request the client sends, then runs `body`, and prints
/// `{"result": …, "requests": [[method, path], …]}`.
fn logged(body: &str) -> String {
    format!(
        r#"
import json, httpx2
from huggingface_hub import set_client_factory
from huggingface_hub.utils._http import hf_request_event_hook
requests = []
set_client_factory(lambda: httpx2.Client(
    event_hooks={{"request": [hf_request_event_hook, lambda r: requests.append([r.method, r.url.path])]}},
    follow_redirects=True, timeout=None))
from huggingface_hub import snapshot_download, hf_hub_download, scan_cache_dir
{body}
print(json.dumps({{"result": result, "requests": requests}}))
"#
    )
}

/// The blob names (ETags) of a repo in a hub cache.
fn blob_names(hub: &Path, repo: &HfRepo) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(hub.join(repo.cache_folder()).join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A: imports the cache. C: the bootstrap node. B: knows only C, trusts A, serves the
/// gateway. Returns (A, C, B) so the caller keeps them alive.
fn network_with_import(cache_hub: &Path) -> (Daemon, Daemon, Daemon) {
    let bootstrap = Daemon::start();
    let a = start_joined(&bootstrap, &[]);
    let report = a.ok_json(&["import-hf", "--cache", cache_hub.to_str().unwrap()]);
    assert_eq!(report["skipped"], serde_json::json!([]), "{report}");
    let b = start_joined(&bootstrap, &[]);
    let key = a.publisher_key();
    b.ok(&["trust", "add", "alice", &key]);
    (a, bootstrap, b)
}

#[test]
fn the_hf_client_loads_an_imported_model_and_dataset_through_a_gateway_with_the_hubs_ids() {
    let work = tempfile::tempdir().unwrap();
    let hub = work.path().join("hub");
    let model = HfRepo::new(HfRepoType::Model, "org/tiny").unwrap();
    let model_files = tiny_model(3 * 1024 * 1024 + 123, 7);
    write_snapshot(&hub, &model, COMMIT, &model_files, true);
    let dataset = HfRepo::new(HfRepoType::Dataset, "org/rows").unwrap();
    let dataset_files = vec![
        CachedFile::git("README.md", "---\nlicense: cc0-1.0\n---\n# Rows\n"),
        CachedFile::lfs("data/train.csv", "id,text\n1,hello\n2,world\n".repeat(500)),
    ];
    write_snapshot(&hub, &dataset, DATASET_COMMIT, &dataset_files, true);
    let (_a, _bootstrap, b) = network_with_import(&hub);
    let endpoint = b.hf_endpoint();
    let client = HfClient::new();

    // snapshot_download and hf_hub_download through B, which holds nothing yet.
    let first = client.run(
        Some(&endpoint),
        &logged(
            r#"
path = snapshot_download("org/tiny")
one = hf_hub_download("org/tiny", "extra/notes.txt")
data = snapshot_download("org/rows", repo_type="dataset")
from transformers import AutoConfig
config = AutoConfig.from_pretrained("org/tiny")
result = {"path": path, "one": one, "data": data, "hidden_size": config.hidden_size}
"#,
        ),
    );
    assert_eq!(
        first["result"]["hidden_size"], 8,
        "transformers loads the config"
    );
    let snapshot = Path::new(first["result"]["path"].as_str().unwrap());
    assert!(
        snapshot.ends_with(COMMIT),
        "same commit id as the hub: {snapshot:?}"
    );
    let mut expected: Vec<(String, blake3::Hash)> = model_files
        .iter()
        .map(|f| (f.path.clone(), blake3::hash(&f.bytes)))
        .collect();
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(tree_hashes(snapshot), expected, "byte-identical files");
    assert_eq!(
        std::fs::read(first["result"]["one"].as_str().unwrap()).unwrap(),
        b"a file in a sub-folder\n"
    );
    // The client named its blobs by the ETags the gateway sent: the source cache's.
    assert_eq!(
        blob_names(&client.hub_dir(), &model),
        blob_names(&hub, &model)
    );
    let main_ref = client
        .hub_dir()
        .join(model.cache_folder())
        .join("refs/main");
    assert_eq!(std::fs::read_to_string(main_ref).unwrap(), COMMIT);
    // Datasets work like models.
    let data = Path::new(first["result"]["data"].as_str().unwrap());
    assert!(data.ends_with(DATASET_COMMIT));
    assert_eq!(
        std::fs::read(data.join("data/train.csv")).unwrap(),
        dataset_files[1].bytes
    );
    assert_eq!(
        blob_names(&client.hub_dir(), &dataset),
        blob_names(&hub, &dataset)
    );

    // A second snapshot_download finds everything in its cache: no file is asked for.
    let second = client.run(
        Some(&endpoint),
        &logged(r#"result = snapshot_download("org/tiny")"#),
    );
    assert_eq!(second["result"], first["result"]["path"]);
    let file_requests: Vec<&serde_json::Value> = second["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r[1].as_str().unwrap().contains("/resolve/"))
        .collect();
    assert!(
        file_requests.is_empty(),
        "the second download asked for files: {file_requests:?}"
    );
}

#[test]
fn the_gateway_answers_ranges_missing_files_and_foreign_requests_as_the_client_expects() {
    let work = tempfile::tempdir().unwrap();
    let hub = work.path().join("hub");
    let model = HfRepo::new(HfRepoType::Model, "org/tiny").unwrap();
    let files = tiny_model(2 * 1024 * 1024, 11);
    write_snapshot(&hub, &model, COMMIT, &files, true);
    let (_a, _bootstrap, b) = network_with_import(&hub);
    let endpoint = b.hf_endpoint();
    let http = reqwest::blocking::Client::new();
    let weights = files
        .iter()
        .find(|f| f.path == "model.safetensors")
        .unwrap();
    let url = format!("{endpoint}/org/tiny/resolve/main/model.safetensors");

    // HEAD answers from the manifest, before any byte is local, with the hub's headers.
    let head = http.head(&url).send().unwrap();
    assert_eq!(head.status(), 200);
    let header = |r: &reqwest::blocking::Response, name: &str| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    };
    assert_eq!(header(&head, "x-repo-commit"), COMMIT);
    assert_eq!(header(&head, "etag"), format!("\"{}\"", weights.etag()));
    assert_eq!(
        header(&head, "x-linked-size"),
        weights.bytes.len().to_string()
    );
    assert_eq!(header(&head, "accept-ranges"), "bytes");
    assert!(
        header(&head, "x-xet-hash").is_empty(),
        "nothing that turns on Xet"
    );

    // A resumed download: Range from an offset gives 206 and exactly those bytes.
    let offset = 1_000_000;
    let partial = http
        .get(&url)
        .header("Range", format!("bytes={offset}-"))
        .send()
        .unwrap();
    assert_eq!(partial.status(), 206);
    let total = weights.bytes.len();
    assert_eq!(
        header(&partial, "content-range"),
        format!("bytes {offset}-{}/{total}", total - 1)
    );
    assert_eq!(partial.bytes().unwrap().as_ref(), &weights.bytes[offset..]);
    let beyond = http
        .get(&url)
        .header("Range", format!("bytes={total}-"))
        .send()
        .unwrap();
    assert_eq!(beyond.status(), 416);

    // Missing things: 404 with the code the client turns into its own exceptions.
    let missing = http
        .head(format!("{endpoint}/org/tiny/resolve/main/missing.bin"))
        .send()
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(header(&missing, "x-error-code"), "EntryNotFound");
    assert_eq!(header(&missing, "x-repo-commit"), COMMIT);
    let no_repo = http
        .get(format!("{endpoint}/api/models/org/absent"))
        .send()
        .unwrap();
    assert_eq!(no_repo.status(), 404);
    assert_eq!(header(&no_repo, "x-error-code"), "RepoNotFound");
    let no_revision = http
        .get(format!("{endpoint}/api/models/org/tiny/revision/v9"))
        .send()
        .unwrap();
    assert_eq!(no_revision.status(), 404);
    assert_eq!(header(&no_revision, "x-error-code"), "RevisionNotFound");
    let client = HfClient::new();
    let refused = client
        .try_run(
            Some(&endpoint),
            "from huggingface_hub import hf_hub_download\nhf_hub_download('org/tiny', 'missing.bin')",
        )
        .unwrap_err()
        .to_string();
    assert!(refused.contains("EntryNotFoundError"), "{refused}");

    // Read-only, and not for web pages or other hosts.
    assert_eq!(http.post(&url).send().unwrap().status(), 405);
    let from_page = http
        .get(&url)
        .header("Origin", "https://evil.example")
        .send()
        .unwrap();
    assert_eq!(from_page.status(), 403);
    let rebound = http
        .get(&url)
        .header("Host", "evil.example")
        .send()
        .unwrap();
    assert_eq!(rebound.status(), 403);
}
