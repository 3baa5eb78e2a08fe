//! End-to-end: the Hugging Face gateway and the fetches it starts cannot be turned
//! against the node that serves it. It resolves only through its own publishers, even
//! when a request names another publisher's key; a manifest's claim evicts nothing
//! before its bytes arrive; big repos are listed a page at a time; a hub ETag a manifest
//! claims is neither written into a client cache nor served unless the bytes have it;
//! slow readers and readers who left give their slots and downloads back; files asked
//! for one after another join the running download instead of restarting it.

use seedbank_protocol::hf::HubHasher;
use seedbank_protocol::{BlobHash, FileEntry, HfRevision, Manifest};
use seedbank_tests::fixtures::MIB;
use seedbank_tests::hf_client::HfClient;
use seedbank_tests::hostile::HostileSeeder;
use seedbank_tests::{model_dir, start_joined, write_random_file, write_small_files, Daemon};

/// `name`'s value among a response's headers, or "".
fn header(response: &reqwest::blocking::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

#[test]
fn a_gateway_serves_no_publisher_it_does_not_trust_even_when_asked_by_key() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    model_dir(&model, "untrusted", 2 * MIB);
    let publisher = Daemon::start();
    let gateway = start_joined(&publisher, &[]);
    publisher.publish(&model, "model", "v1");
    let key = publisher.publisher_key();
    // The release is on the network: the node resolves it when its own user asks.
    gateway.ok(&["resolve", &format!("{key}/model")]);

    let http = reqwest::blocking::Client::new();
    let endpoint = gateway.hf_endpoint();
    let info = http
        .get(format!("{endpoint}/api/models/{key}/model"))
        .send()
        .unwrap();
    assert_eq!(info.status(), 404, "{:?}", info.text());
    let file = http
        .get(format!("{endpoint}/{key}/model/resolve/main/config.json"))
        .send()
        .unwrap();
    assert_eq!(file.status(), 404);
    assert_eq!(header(&file, "x-error-code"), "RepoNotFound");
    assert!(
        gateway.artifacts().is_empty() && gateway.jobs().is_empty(),
        "the gateway fetched for an untrusted publisher: {:?} {:?}",
        gateway.artifacts(),
        gateway.jobs()
    );

    // Once its operator trusts the publisher, the same request is served.
    gateway.ok(&["trust", "add", "pat", &key]);
    let trusted = http
        .get(format!("{endpoint}/api/models/{key}/model"))
        .send()
        .unwrap();
    assert_eq!(trusted.status(), 200);
}

#[test]
fn a_manifest_claiming_a_big_file_evicts_nothing_before_its_bytes_arrive() {
    let work = tempfile::tempdir().unwrap();
    // A peer with a fresh key serves a root and a manifest listing one 40 MiB file, and
    // not one byte of the file.
    let mut liar = HostileSeeder::start();
    let claimed = FileEntry {
        path: "weights.bin".into(),
        size: 40 * MIB,
        hash: BlobHash([7; 32]),
    };
    let manifest = Manifest {
        files: vec![claimed.clone()],
        hf: None,
    };
    let root = liar
        .serve_artifact(manifest.encode().unwrap(), vec![claimed.hash])
        .to_string();

    let max = (48 * MIB).to_string();
    let node = Daemon::start_with(&["--bootstrap", &liar.peer_address(), "--max-storage", &max]);
    let own_dir = work.path().join("own");
    write_random_file(&own_dir.join("own.bin"), 30 * MIB, "own");
    let own = node.add_artifact(&own_dir);
    node.wait_for_routing_table(1);
    node.wait_for_providers(&root, &[liar.peer_id()]);

    node.ok(&["fetch", "--detach", &root]);
    // The transfer is under way once the job knows its size: room was made by then.
    node.wait_until(
        "the fetch to start its transfer",
        std::time::Duration::from_secs(30),
        || {
            let jobs = node.jobs();
            let started = jobs
                .iter()
                .any(|job| job["id"] == root.as_str() && job["total_bytes"] == 40 * MIB);
            if started {
                Ok(())
            } else {
                Err(format!("jobs: {jobs:?}"))
            }
        },
    );
    assert!(
        node.holds(&own),
        "the node evicted its own artifact for a claim no byte backed\n{}",
        node.log()
    );
    assert!(!node.log().contains("evicting"), "{}", node.log());
    node.ok(&["fetch", "--cancel", &root]);
    assert!(node.holds(&own));
}

#[test]
fn the_hf_client_lists_a_repo_of_thousands_of_files_a_page_at_a_time() {
    let work = tempfile::tempdir().unwrap();
    let many = work.path().join("many");
    write_small_files(&many, 2_100, 2_100 * 64, "many");
    let node = Daemon::start();
    node.publish(&many, "org--many", "v1");
    let client = HfClient::new();
    let listed = client.run(
        Some(&node.hf_endpoint()),
        r#"
import json
from huggingface_hub import list_repo_files, list_repo_tree
files = list_repo_files("org/many")
top = [entry.path for entry in list_repo_tree("org/many")]
print(json.dumps({"files": len(files), "distinct": len(set(files)), "top": len(top)}))
"#,
    );
    assert_eq!(listed["files"], 2_100, "{listed}");
    assert_eq!(listed["distinct"], 2_100, "{listed}");
    assert_eq!(listed["top"], 20, "the 20 folders: {listed}");

    // One page is at most a thousand entries, and links the next as the hub does.
    let first = reqwest::blocking::get(format!(
        "{}/api/models/org/many/tree/main?recursive=true",
        node.hf_endpoint()
    ))
    .unwrap();
    let link = header(&first, "link");
    assert!(
        link.contains("cursor=1000") && link.contains("rel=\"next\""),
        "{link}"
    );
    let page: Vec<serde_json::Value> = first.json().unwrap();
    assert_eq!(page.len(), 1000);
}

#[test]
fn a_file_claiming_another_files_hub_etag_is_neither_cached_nor_served_under_it() {
    let work = tempfile::tempdir().unwrap();
    // The hub ETag (git blob sha1) of the real config.json, which the attacker's
    // manifest claims for its own bytes.
    let real = b"{\"hidden_size\": 8}\n";
    let mut hasher = HubHasher::new(real.len() as u64);
    hasher.update(real);
    let (real_etag, _) = hasher.finish();
    let mut liar = HostileSeeder::start();
    let forged = b"{\"hidden_size\": 8, \"auto_map\": \"attacker.Model\"}\n".to_vec();
    let file = FileEntry {
        path: "config.json".into(),
        size: forged.len() as u64,
        hash: liar.serve_blob(forged.clone()),
    };
    let manifest = Manifest {
        files: vec![file.clone()],
        hf: Some(HfRevision {
            commit: "5f1c0a7e9b3d2c4a6e8f0b1d3c5a7e9f1b3d5c7a".into(),
            etags: vec![real_etag.clone()],
        }),
    };
    let root = liar
        .serve_artifact(manifest.encode().unwrap(), vec![file.hash])
        .to_string();
    let node = Daemon::start_with(&["--bootstrap", &liar.peer_address()]);
    node.wait_for_routing_table(1);
    node.wait_for_providers(&root, &[liar.peer_id()]);

    // fetch --hf-cache gets the bytes and refuses to name them by the claimed ETag.
    let hub = work.path().join("hub");
    let fetched = node.cli(&[
        "fetch",
        &root,
        "--hf-cache",
        hub.to_str().unwrap(),
        "--hf-repo",
        "org/tiny",
    ]);
    assert!(!fetched.success, "{fetched:?}");
    assert!(
        fetched.stderr.contains("config.json") && fetched.stderr.contains(&real_etag),
        "the error names the file and the ETag: {}",
        fetched.stderr
    );
    let blob = hub.join("models--org--tiny/blobs").join(&real_etag);
    assert!(
        !blob.exists(),
        "the forged bytes were cached under the hub's ETag"
    );

    // Served through the gateway (the node publishes what it fetched under its own
    // key), the claimed ETag is refused as well, HEAD and GET alike.
    node.ok(&["publish", &root, "--name", "org--tiny"]);
    let url = format!("{}/org/tiny/resolve/main/config.json", node.hf_endpoint());
    let http = reqwest::blocking::Client::new();
    for response in [
        http.head(&url).send().unwrap(),
        http.get(&url).send().unwrap(),
    ] {
        assert_eq!(response.status(), 502, "{response:?}");
        assert_ne!(header(&response, "etag"), format!("\"{real_etag}\""));
        assert!(
            header(&response, "x-error-message").contains(&real_etag),
            "{response:?}"
        );
    }
    // Nor does the tree listing name the file by the claimed ETag.
    let tree = format!("{}/api/models/org/tiny/tree/main", node.hf_endpoint());
    let listing: serde_json::Value = http.get(&tree).send().unwrap().json().unwrap();
    assert_eq!(listing[0]["path"], "config.json", "{listing}");
    assert_eq!(listing[0]["oid"], file.hash.to_hex(), "{listing}");
}

#[test]
fn readers_that_stop_reading_lose_their_slots_and_other_clients_are_served() {
    use std::io::{Read, Write};

    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("big");
    write_random_file(&dir.join("weights.bin"), 16 * MIB, "stalled");
    std::fs::write(dir.join("config.json"), b"{\"hidden_size\": 8}\n").unwrap();
    let node = Daemon::start_configured("client_stall_timeout = \"2s\"\n", &[]);
    node.publish(&dir, "org--big", "v1");
    let endpoint = node.hf_endpoint();
    let address = endpoint.trim_start_matches("http://").to_owned();
    // As many readers as the gateway has request slots ask for the big file, read its
    // first bytes and then never read again, keeping their connections open.
    let request =
        format!("GET /org/big/resolve/main/weights.bin HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let stalled: Vec<std::net::TcpStream> = (0..64)
        .map(|_| {
            let mut reader = std::net::TcpStream::connect(&address).unwrap();
            reader.write_all(request.as_bytes()).unwrap();
            let mut first = [0u8; 64];
            let read = reader.read(&mut first).unwrap();
            assert!(
                first[..read].starts_with(b"HTTP/1.1 200"),
                "{:?}",
                &first[..read]
            );
            reader
        })
        .collect();

    // Another client is served once the stalled readers' time is up, well before it
    // would be turned away for want of a slot (10 s).
    let config = reqwest::blocking::Client::new()
        .get(format!("{endpoint}/org/big/resolve/main/config.json"))
        .timeout(std::time::Duration::from_secs(60))
        .send()
        .unwrap();
    assert_eq!(config.status(), 200, "{config:?}");
    assert_eq!(config.text().unwrap(), "{\"hidden_size\": 8}\n");
    drop(stalled);
}

#[test]
fn a_download_started_for_readers_who_left_is_cancelled_and_not_resumed() {
    use std::io::Read;

    let work = tempfile::tempdir().unwrap();
    // A seeder slow enough that the download outlasts its reader.
    let seeder = Daemon::start_with(&["--upload-limit", "1M"]);
    let dir = work.path().join("big");
    write_random_file(&dir.join("weights.bin"), 32 * MIB, "unread");
    let root = seeder.publish(&dir, "org--big", "v1");
    let mut gateway = Daemon::start_configured(
        "fetch_reader_grace = \"2s\"\n",
        &["--bootstrap", &seeder.peer_address()],
    );
    gateway.wait_for_routing_table(1);
    gateway.ok(&["trust", "add", "pat", &seeder.publisher_key()]);

    // A reader takes the first bytes of the file and leaves.
    let url = format!("{}/org/big/resolve/main/weights.bin", gateway.hf_endpoint());
    let mut response = reqwest::blocking::get(&url).unwrap();
    assert_eq!(response.status(), 200);
    let mut first = [0u8; 4096];
    response.read_exact(&mut first).unwrap();
    assert!(!gateway.jobs().is_empty(), "the gateway started no fetch");
    drop(response);

    // Nobody reads it any more: the download ends within the grace, long before the
    // 32 s the transfer would take, and leaves no job to resume.
    gateway.wait_until(
        "the unread download to be cancelled",
        std::time::Duration::from_secs(20),
        || match gateway.jobs() {
            jobs if jobs.is_empty() => Ok(()),
            jobs => Err(format!("jobs: {jobs:?}")),
        },
    );
    assert!(!gateway.holds(&root));
    gateway.restart();
    assert!(
        gateway.jobs().is_empty(),
        "resumed after a restart: {:?}",
        gateway.jobs()
    );
}

#[test]
fn files_asked_for_one_after_another_join_the_running_download_without_restarting_it() {
    use std::io::Read;

    let work = tempfile::tempdir().unwrap();
    // A seeder slow enough that the big file is still arriving while the others are asked.
    let seeder = Daemon::start_with(&["--upload-limit", "1M"]);
    let dir = work.path().join("repo");
    write_random_file(&dir.join("weights.bin"), 8 * MIB, "widened");
    for i in 0..12 {
        std::fs::write(
            dir.join(format!("part-{i}.json")),
            format!("{{\"part\": {i}}}"),
        )
        .unwrap();
    }
    seeder.publish(&dir, "org--parts", "v1");
    let gateway = start_joined(&seeder, &[]);
    gateway.ok(&["trust", "add", "pat", &seeder.publisher_key()]);
    let base = format!("{}/org/parts/resolve/main", gateway.hf_endpoint());

    let reader = {
        let url = format!("{base}/weights.bin");
        std::thread::spawn(move || {
            let mut response = reqwest::blocking::get(&url).unwrap();
            assert_eq!(response.status(), 200);
            let mut bytes = Vec::new();
            response.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    gateway.wait_until(
        "the download to start",
        std::time::Duration::from_secs(20),
        || match gateway.jobs() {
            jobs if jobs.is_empty() => Err("no job yet".into()),
            _ => Ok(()),
        },
    );
    // Each request widens the running job: it takes the file on and keeps its one try.
    for i in 0..12 {
        let body = reqwest::blocking::get(format!("{base}/part-{i}.json"))
            .unwrap()
            .text()
            .unwrap();
        assert_eq!(body, format!("{{\"part\": {i}}}"));
        // Each came ahead of the big file's queue: that download is still running.
        let jobs = gateway.jobs();
        assert_eq!(jobs.len(), 1, "{jobs:?}");
        assert_eq!(
            jobs[0]["attempts"], 1,
            "the download started over: {jobs:?}"
        );
    }
    let weights = reader.join().unwrap();
    assert_eq!(
        blake3::hash(&weights),
        blake3::hash(&std::fs::read(dir.join("weights.bin")).unwrap())
    );
}
