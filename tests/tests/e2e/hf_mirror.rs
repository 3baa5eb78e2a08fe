//! End-to-end: `seedbank mirror-hf` against a Hugging Face-compatible origin in the test
//! process: repos arrive checked against the origin's listing and are published under
//! their familiar names; a file whose bytes do not match its listed sha256 publishes
//! nothing; a dropped transfer is resumed with a `Range` request.

use std::path::Path;

use seedbank_node::hf::download;
use seedbank_protocol::hf::HubHasher;
use seedbank_tests::hf_cache::pseudo_random;
use seedbank_tests::hf_origin::{HfOrigin, OriginFile, OriginRepo};
use seedbank_tests::{relative_files, start_joined, Daemon};

const MIB: usize = 1024 * 1024;

fn file(path: &str, bytes: impl Into<Vec<u8>>) -> OriginFile {
    OriginFile {
        path: path.to_owned(),
        bytes: bytes.into(),
    }
}

/// A small model: config, tokenizer, 3 MiB of LFS weights, a card, a file in a sub-folder.
fn model_repo() -> OriginRepo {
    OriginRepo {
        plural: "models",
        id: "org/tiny".into(),
        commit: "0123456789abcdef0123456789abcdef01234567".into(),
        files: vec![
            file(
                "config.json",
                r#"{"model_type": "llama", "hidden_size": 64}"#,
            ),
            file(
                "tokenizer.json",
                r#"{"version": "1.0", "model": {"type": "BPE"}}"#,
            ),
            file("model.safetensors", pseudo_random(3 * MIB, 1)),
            file("README.md", "---\nlicense: mit\n---\n# tiny\n"),
            file("onnx/extra.json", r#"{"opset": 17}"#),
        ],
    }
}

fn dataset_repo() -> OriginRepo {
    OriginRepo {
        plural: "datasets",
        id: "org/set".into(),
        commit: "89abcdef0123456789abcdef0123456789abcdef".into(),
        files: vec![
            file("README.md", "---\nlicense: cc-by-4.0\n---\n# set\n"),
            file("data/train.csv", "a,b\n1,2\n3,4\n"),
            file("data/train.parquet", pseudo_random(MIB + 17, 2)),
        ],
    }
}

fn mirror(daemon: &Daemon, origin: &HfOrigin, repo: &str) -> serde_json::Value {
    daemon.ok_json(&["mirror-hf", repo, "--origin", &origin.url()])
}

/// Every file of `repo` is in `dir` with the origin's bytes, and nothing else is.
fn assert_same_files(dir: &Path, repo: &OriginRepo) {
    let found = relative_files(dir);
    let mut expected: Vec<String> = repo.files.iter().map(|f| f.path.clone()).collect();
    expected.sort();
    assert_eq!(found, expected, "files in {}", dir.display());
    for f in &repo.files {
        let bytes = std::fs::read(dir.join(&f.path)).unwrap();
        assert!(bytes == f.bytes, "{} differs from the origin's", f.path);
    }
}

fn root_of(report: &serde_json::Value) -> String {
    report["import"]["imported"][0]["release"]["root"]
        .as_str()
        .unwrap_or_else(|| panic!("no published root in {report}"))
        .to_owned()
}

#[test]
fn a_model_and_a_dataset_are_mirrored_checked_published_and_not_downloaded_twice() {
    let (model, dataset) = (model_repo(), dataset_repo());
    let origin = HfOrigin::start(vec![model.clone(), dataset.clone()]);
    origin.page_size(2); // the listing comes in pages linked by `Link: rel="next"`
    let a = Daemon::start();

    let report = mirror(&a, &origin, "org/tiny");
    assert_eq!(report["commit"], model.commit.as_str());
    assert_eq!(report["verified_files"], 5);
    let listed: Vec<(String, String)> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_owned(),
                f["etag"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut expected: Vec<(String, String)> = model
        .files
        .iter()
        .map(|f| (f.path.clone(), f.etag()))
        .collect();
    expected.sort();
    assert_eq!(listed, expected, "each file checked against its hub ETag");
    let weights_etag = &model.files[2].etag();
    assert_eq!(
        weights_etag.len(),
        64,
        "the weights are an LFS file (sha256)"
    );
    let total: usize = model.files.iter().map(|f| f.bytes.len()).sum();
    assert_eq!(report["downloaded_bytes"], total as u64);

    // The repo is published under its familiar name, at the mirrored commit.
    let model_root = root_of(&report);
    let resolved = a.ok_json(&["resolve", "node/org--tiny"]);
    assert_eq!(resolved["root"], model_root.as_str());
    assert_eq!(resolved["revision"], model.commit.as_str());

    // A second node fetches it by name over the network, byte for byte.
    let key = a.publisher_key();
    let b = start_joined(&a, &[]);
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("model");
    b.ok(&[
        "fetch",
        &format!("{key}/org--tiny"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_same_files(&out, &model);

    // Datasets work like models.
    let report = mirror(&a, &origin, "datasets/org/set");
    assert_eq!(report["verified_files"], 3);
    let dataset_root = root_of(&report);
    assert_eq!(
        a.ok_json(&["resolve", "node/datasets--org--set"])["root"],
        dataset_root.as_str()
    );
    let out = work.path().join("set");
    a.ok(&["export", &dataset_root, out.to_str().unwrap()]);
    assert_same_files(&out, &dataset);

    // Mirroring again downloads nothing and publishes the same root.
    let served = origin.served().total_bytes();
    let again = a.ok_json(&[
        "mirror-hf",
        "org/tiny",
        "--origin",
        &origin.url(),
        "--limit-rate",
        "50M",
    ]);
    assert_eq!(again["downloaded_bytes"], 0, "{again}");
    assert_eq!(again["verified_files"], 5);
    assert_eq!(root_of(&again), model_root);
    assert_eq!(
        origin.served().total_bytes(),
        served,
        "no file body was sent again"
    );

    // The human report names the files and what was published.
    let text = a
        .ok(&["mirror-hf", "org/tiny", "--origin", &origin.url()])
        .stdout;
    assert!(text.contains("5 files checked"), "{text}");
    assert!(text.contains("onnx/extra.json"), "{text}");
    assert!(text.contains(weights_etag.as_str()), "{text}");
}

#[test]
fn a_file_that_does_not_match_its_listed_sha256_publishes_nothing() {
    let model = model_repo();
    let origin = HfOrigin::start(vec![model.clone()]);
    origin.corrupt("model.safetensors");
    let a = Daemon::start();

    let weights = &model.files[2];
    let mut corrupted = weights.bytes.clone();
    let middle = corrupted.len() / 2;
    corrupted[middle] ^= 0xff;
    let mut hasher = HubHasher::new(corrupted.len() as u64);
    hasher.update(&corrupted);
    let (_, actual) = hasher.finish();

    let failed = a.fails_with(
        &["mirror-hf", "org/tiny", "--origin", &origin.url()],
        "model.safetensors",
    );
    let message = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        message.contains(&weights.etag()),
        "names the expected sha256: {message}"
    );
    assert!(
        message.contains(&actual),
        "names the actual sha256: {message}"
    );

    let unresolved = a.cli(&["resolve", "node/org--tiny"]);
    assert!(
        !unresolved.success,
        "nothing may be published: {}",
        unresolved.stdout
    );
    let listed = a.ok_json(&["ls"]);
    assert_eq!(
        listed.as_array().unwrap().len(),
        0,
        "nothing imported: {listed}"
    );
    // The bad bytes are not kept, neither as a blob nor as a partial download.
    let blobs = a.data_dir().join("hf-mirror/hub/models--org--tiny/blobs");
    let kept: Vec<String> = relative_files(&blobs)
        .into_iter()
        .filter(|name| name.starts_with(&weights.etag()))
        .collect();
    assert!(kept.is_empty(), "corrupt bytes kept: {kept:?}");
}

#[test]
fn a_dropped_transfer_is_resumed_with_a_range_request() {
    let model = model_repo();
    let origin = HfOrigin::start(vec![model.clone()]);
    origin.drop_first_get_after("model.safetensors", MIB);
    let a = Daemon::start();

    let report = mirror(&a, &origin, "org/tiny");
    let served = origin.served();
    assert_eq!(
        served.range_gets.get("model.safetensors").copied(),
        Some(1),
        "the rest was asked for with Range: {served:?}"
    );
    assert_eq!(served.gets.get("model.safetensors").copied(), Some(2));
    let weights = model.files[2].bytes.len() as u64;
    assert_eq!(
        served.bytes.get("model.safetensors").copied(),
        Some(weights),
        "the bytes before the drop were not sent again"
    );

    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("model");
    a.ok(&["export", &root_of(&report), out.to_str().unwrap()]);
    assert_same_files(&out, &model);
}

#[test]
fn an_origin_cannot_redirect_the_node_to_a_service_on_this_machine() {
    let model = model_repo();
    let origin = HfOrigin::start(vec![model.clone()]);
    // Another local service, which the origin tries to make the node request.
    let decoy = HfOrigin::start(vec![model.clone()]);
    origin.redirect(
        "model.safetensors",
        &format!("{}/org/tiny/resolve/main/model.safetensors", decoy.url()),
    );
    let a = Daemon::start();

    let failed = a.fails_with(
        &["mirror-hf", "org/tiny", "--origin", &origin.url()],
        "model.safetensors",
    );
    let message = format!("{}{}", failed.stdout, failed.stderr);
    assert!(message.contains("redirected off itself"), "{message}");
    assert!(
        decoy.served().gets.is_empty(),
        "the node followed the redirect: {:?}",
        decoy.served()
    );
}

#[test]
fn an_origin_that_trickles_is_given_up_on_and_the_mirror_resumes_later() {
    let model = model_repo();
    let origin = HfOrigin::start(vec![model.clone()]);
    // Five bytes a second: a read timeout never fires, a floor of 1 KiB/s over 1 s does.
    origin.trickle("model.safetensors");
    let a = Daemon::start_configured("mirror_low_speed_time = \"1s\"\n", &[]);

    let failed = a.fails_with(
        &["mirror-hf", "org/tiny", "--origin", &origin.url()],
        "model.safetensors",
    );
    let message = format!("{}{}", failed.stdout, failed.stderr);
    assert!(
        message.contains("under the floor of 1024 bytes/s"),
        "{message}"
    );
    assert_eq!(
        origin.served().gets.get("model.safetensors").copied(),
        Some(download::MAX_ATTEMPTS as u64),
        "each attempt was dropped once it was too slow, then the mirror gave up"
    );
    assert!(
        a.ok_json(&["ls"]).as_array().unwrap().is_empty(),
        "nothing is published from a repo not fully mirrored"
    );

    // At full speed again, the same command finishes from the bytes already here.
    origin.stop_trickle();
    let report = mirror(&a, &origin, "org/tiny");
    assert!(
        origin.served().range_gets.contains_key("model.safetensors"),
        "the trickled bytes were kept and the rest asked for with Range"
    );
    let work = tempfile::tempdir().unwrap();
    let out = work.path().join("model");
    a.ok(&["export", &root_of(&report), out.to_str().unwrap()]);
    assert_same_files(&out, &model);
}
