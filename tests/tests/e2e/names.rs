//! End-to-end: content ids that depend on content only, and names that real daemons
//! publish, resolve, list, search and keep alive, checked against forged, replayed and
//! oversized records from a misbehaving DHT peer in the test process.

use std::time::Duration;

use seedbank_protocol::name_record::name_key;
use seedbank_protocol::{ContentId, PublisherSecret, SignedNameRecord};
use seedbank_tests::fixtures::{provider_bytes, MIB};
use seedbank_tests::records::{name_record, RecordPeer};
use seedbank_tests::{model_dir, start_joined, tree_hashes, write_random_file, Daemon};

#[test]
fn the_same_files_added_on_two_nodes_at_different_times_get_one_id_and_both_serve_it() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    write_random_file(&model.join("weights.bin"), 96 * MIB, "same-files");
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    let copy = work.path().join("copy-elsewhere");
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["weights.bin", "config.json"] {
        std::fs::copy(model.join(file), copy.join(file)).unwrap();
    }

    let a = Daemon::start();
    let mut b = start_joined(&a, &[]);
    let from_a = a.ok_json(&[
        "add",
        model.to_str().unwrap(),
        "--name",
        "llama",
        "--licence",
        "MIT",
    ]);
    // Added on B at a later second than on A: B's clock moves ahead of A's.
    let id = from_a["id"].as_str().unwrap();
    let added_on_a = a.listed(id).unwrap()["added_at"].as_u64().unwrap();
    b.advance_clock(Duration::from_secs(2));
    let from_b = b.ok_json(&[
        "add",
        copy.to_str().unwrap(),
        "--name",
        "my-copy",
        "--revision",
        "v9",
        "--kind",
        "dataset",
    ]);
    assert_eq!(from_a["id"], from_b["id"], "same files, one content id");
    let added_on_b = b.listed(id).unwrap()["added_at"].as_u64().unwrap();
    assert!(
        added_on_b > added_on_a,
        "added on B at {added_on_b}, on A at {added_on_a}"
    );
    let again = a.ok_json(&["add", model.to_str().unwrap(), "--name", "llama"]);
    assert_eq!(again["id"], from_a["id"], "adding again gives the same id");

    let c = start_joined(&a, &[]);
    c.wait_for_providers(id, &[a.peer_id(), b.peer_id()]);
    let out = work.path().join("out");
    let report = c.ok_json(&["fetch", id, "--out", out.to_str().unwrap()]);
    assert_eq!(tree_hashes(&out), tree_hashes(&model));
    assert!(
        provider_bytes(&report, &a.peer_id()) > 0 && provider_bytes(&report, &b.peer_id()) > 0,
        "both nodes should have served bytes: {report}"
    );
}

#[test]
fn published_names_resolve_list_search_and_outlive_their_publisher() {
    let work = tempfile::tempdir().unwrap();
    let (v1, v2) = (work.path().join("v1"), work.path().join("v2"));
    model_dir(&v1, "toy-v1", 2 * MIB);
    model_dir(&v2, "toy-v2", 3 * MIB);

    let p = Daemon::start();
    let f = start_joined(&p, &[]);
    let s = start_joined(&p, &[]);
    let q = start_joined(&p, &[]);
    let v1_id = p.publish(&v1, "toy-model", "v1");
    let v2_id = p.publish(&v2, "toy-model", "v2");
    assert_ne!(v1_id, v2_id);
    let key = p.publisher_key();

    // F trusts P as "pat" and resolves the bare name to the latest revision.
    f.ok(&["trust", "add", "pat", &key]);
    let resolved = f.ok_json(&["resolve", "pat/toy-model"]);
    assert_eq!(resolved["root"], v2_id);
    assert_eq!(resolved["revision"], "v2");
    assert_eq!(resolved["release"]["publisher"], key.as_str());
    assert_eq!(resolved["release"]["licence"], "mit");
    assert_eq!(resolved["release"]["parent"], v1_id.as_str());
    assert_eq!(f.ok_json(&["resolve", "pat/toy-model@v1"])["root"], v1_id);
    f.fails_with(&["resolve", "pat/toy-model@v7"], "has no revision \"v7\"");

    let (out1, out2) = (work.path().join("out1"), work.path().join("out2"));
    let fetched = f.ok_json(&["fetch", "pat/toy-model", "--out", out2.to_str().unwrap()]);
    assert_eq!(fetched["id"], v2_id);
    assert_eq!(fetched["revision"], "v2");
    assert_eq!(tree_hashes(&out2), tree_hashes(&v2));
    f.ok(&["fetch", "pat/toy-model@v1", "--out", out1.to_str().unwrap()]);
    assert_eq!(tree_hashes(&out1), tree_hashes(&v1));
    let history = f.ok_json(&["history", "pat/toy-model"]);
    let revisions: Vec<_> = history["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["revision"].as_str().unwrap(), r["root"].as_str().unwrap()))
        .collect();
    assert_eq!(revisions, [("v2", v2_id.as_str()), ("v1", v1_id.as_str())]);
    let shown = f.ok_json(&["show", &v2_id]);
    assert_eq!(shown["summary"]["name"], "toy-model");
    assert_eq!(shown["licence"], "mit");
    assert_eq!(shown["releases"][0]["alias"], "pat");

    // What P offers, without knowing its names.
    let catalog = f.ok_json(&["ls-remote", "pat"]);
    let entries = catalog["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{catalog}");
    assert_eq!(entries[0]["name"], "toy-model");
    assert_eq!(entries[0]["revision"], "v2");
    assert_eq!(entries[0]["root"], v2_id);

    // A fourth node that knows nothing of P finds it by a word of the name.
    let found = q.ok_json(&["search", "toy"]);
    let results = found["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{found}");
    assert_eq!(results[0]["entry"]["name"], "toy-model");
    assert_eq!(results[0]["entry"]["revision"], "v2");
    assert_eq!(results[0]["publisher"], key.as_str());
    assert_eq!(results[0]["trusted"], false, "Q never trusted P");
    assert_eq!(
        q.ok_json(&["search", "generation"])["results"][0]["entry"]["name"],
        "toy-model"
    );
    // What the table prints for an untrusted publisher is what `fetch` takes.
    let table = q.ok(&["search", "toy"]).stdout;
    assert!(table.contains(&format!("{key}/toy-model")), "{table}");
    let none = q.cli(&["--json", "search", "zebra"]);
    assert_eq!(none.code, Some(3), "{none}");

    // S pins the latest revision, so it keeps the name and its bytes alive.
    s.ok(&["fetch", &format!("{key}/toy-model"), "--pin"]);
    s.wait_for_log(
        "keeping the names of a pinned artifact alive",
        1,
        Duration::from_secs(60),
    );
    let mut p = p;
    let p_id = p.peer_id();
    p.stop();

    let after = q.ok_json(&["resolve", &format!("{key}/toy-model")]);
    assert_eq!(after["root"], v2_id);
    let out3 = work.path().join("out3");
    let report = q.ok_json(&[
        "fetch",
        &format!("{key}/toy-model"),
        "--out",
        out3.to_str().unwrap(),
    ]);
    assert_eq!(tree_hashes(&out3), tree_hashes(&v2));
    assert!(
        report["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["peer"] != p_id.as_str() || r["bytes"] == 0),
        "{report}"
    );
    assert_eq!(
        q.ok_json(&["ls-remote", &key])["entries"][0]["name"],
        "toy-model"
    );
}

fn sequence_of(bytes: &[u8]) -> u64 {
    SignedNameRecord::decode(bytes).unwrap().body().sequence
}

#[test]
fn a_storing_node_keeps_only_valid_records_and_never_an_older_one() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    model_dir(&model, "stored", 64 * 1024);
    let n = Daemon::start();
    let p = start_joined(&n, &[]);
    p.publish(&model, "toy", "v1");
    let key = p.publisher_key();
    let alice: seedbank_protocol::PublisherKey = key.parse().unwrap();
    let dht_key = name_key(&alice, "toy");
    let attacker = RecordPeer::start();
    let held = attacker.get_from(&n.peer_address(), dht_key);
    assert_eq!(held.len(), 1, "N should hold P's record");
    let genuine = held[0].clone();

    // Forged: Mallory's record for P's name.
    let mallory = PublisherSecret::from_seed([66; 32]);
    let root = ContentId(seedbank_protocol::BlobHash([1; 32]));
    let forged = name_record(&mallory, root, "toy", u64::MAX);
    attacker.put_to(&n.peer_address(), dht_key, forged.encode());
    let after_forgery = attacker.get_from(&n.peer_address(), dht_key);
    assert_eq!(
        after_forgery,
        std::slice::from_ref(&genuine),
        "N replaced P's record with a forgery"
    );

    // Oversized, under a key of Mallory's own.
    let big_key = name_key(&mallory.public(), "big");
    let mut oversized = name_record(&mallory, root, "big", 1).encode();
    oversized.resize(seedbank_protocol::limits::MAX_NAME_RECORD_BYTES + 1024, 0);
    attacker.put_to(&n.peer_address(), big_key, oversized);
    assert!(attacker.get_from(&n.peer_address(), big_key).is_empty());

    // Replayed: P publishes again; the old record sent back is refused.
    let model2 = work.path().join("model2");
    model_dir(&model2, "stored-2", 64 * 1024);
    p.publish(&model2, "toy", "v2");
    let newer = attacker.get_from(&n.peer_address(), dht_key);
    assert!(sequence_of(&newer[0]) > sequence_of(&genuine));
    attacker.put_to(&n.peer_address(), dht_key, genuine.clone());
    let after_replay = attacker.get_from(&n.peer_address(), dht_key);
    assert_eq!(after_replay, newer, "N went back to an older record");
}

#[test]
fn a_reader_refuses_forged_tampered_oversized_and_replayed_records_before_fetching() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    model_dir(&model, "reader", 256 * 1024);
    // S holds the real bytes; the attacker holds the only records of Alice's names.
    let s = Daemon::start();
    let id = s.add_artifact(&model);
    let root: ContentId = id.parse().unwrap();
    let attacker = RecordPeer::start();
    let f = start_joined(&s, &["--bootstrap", &attacker.peer_address()]);
    f.wait_for_routing_table(2);

    let alice = PublisherSecret::from_seed([11; 32]);
    let mallory = PublisherSecret::from_seed([12; 32]);
    let a = alice.public().to_string();

    // Forged: Mallory's record under Alice's name.
    let forged = name_record(&mallory, root, "forged", 5);
    attacker.serve(name_key(&alice.public(), "forged"), forged.encode());
    let refused = f.fails_with(&["fetch", &format!("{a}/forged")], "refused");
    assert_eq!(refused.code, Some(6), "{refused}");

    // Tampered: Alice's record, with one bit of her release's signature flipped.
    let genuine = name_record(&alice, root, "tampered", 5);
    let release_bytes = genuine.body().latest.encode();
    let mut bytes = genuine.encode();
    let at = bytes
        .windows(release_bytes.len())
        .position(|w| w == release_bytes.as_slice())
        .unwrap()
        + release_bytes.len()
        - 1;
    bytes[at] ^= 1;
    attacker.serve(name_key(&alice.public(), "tampered"), bytes);
    let refused = f.fails_with(&["fetch", &format!("{a}/tampered")], "bad signature");
    assert_eq!(refused.code, Some(6), "{refused}");

    // Oversized.
    let mut oversized = name_record(&alice, root, "big", 5).encode();
    oversized.resize(seedbank_protocol::limits::MAX_NAME_RECORD_BYTES + 1, 0);
    attacker.serve(name_key(&alice.public(), "big"), oversized);
    f.fails_with(&["resolve", &format!("{a}/big")], "exceeds the limit");

    // Nothing was downloaded for any of them.
    assert_eq!(f.ok_json(&["ls"]).as_array().unwrap().len(), 0);
    assert_eq!(f.ok_json(&["status"])["store_bytes"], 0);

    // Replayed: once F has seen sequence 9, sequence 3 does not take its place.
    let dht_key = name_key(&alice.public(), "replayed");
    attacker.serve(dht_key, name_record(&alice, root, "replayed", 9).encode());
    assert_eq!(
        f.ok_json(&["resolve", &format!("{a}/replayed")])["sequence"],
        9
    );
    attacker.serve(dht_key, name_record(&alice, root, "replayed", 3).encode());
    let again = f.ok_json(&["resolve", &format!("{a}/replayed")]);
    assert_eq!(again["sequence"], 9, "{again}");

    // The genuine article fetches.
    let out = work.path().join("out");
    attacker.serve(
        name_key(&alice.public(), "real"),
        name_record(&alice, root, "real", 1).encode(),
    );
    f.ok(&[
        "fetch",
        &format!("{a}/real"),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(tree_hashes(&out), tree_hashes(&model));

    // With every other node gone, F answers from its cache and says so.
    drop(attacker);
    let mut s = s;
    s.stop();
    let cached = f.ok_json(&["resolve", &format!("{a}/real")]);
    assert_eq!(cached["root"], id.as_str());
    assert_eq!(cached["source"], "cache", "{cached}");
    let text = f.ok(&["resolve", &format!("{a}/real")]).stdout;
    assert!(text.contains("from this node's cache"), "{text}");
}

#[test]
fn a_node_seeds_only_the_licences_it_allows() {
    let work = tempfile::tempdir().unwrap();
    let (mit, gpl) = (work.path().join("mit"), work.path().join("gpl"));
    model_dir(&mit, "mit", 64 * 1024);
    write_random_file(&gpl.join("weights.bin"), 64 * 1024, "gpl");

    let strict = Daemon::start_configured("seed_licences = [\"MIT\", \"Apache-2.0\"]\n", &[]);
    let refused = strict.fails_with(
        &[
            "publish",
            gpl.to_str().unwrap(),
            "--name",
            "copyleft",
            "--licence",
            "GPL-3.0-only",
        ],
        "seeds only MIT, Apache-2.0",
    );
    assert_eq!(refused.code, Some(8), "{refused}");
    // The card says `license: mit`.
    strict.publish(&mit, "permissive", "v1");

    // Fetched from an open publisher, a disallowed licence warns and is not seeded.
    let open = start_joined(&strict, &[]);
    let open_key = open.publisher_key();
    open.ok(&[
        "publish",
        gpl.to_str().unwrap(),
        "--name",
        "copyleft",
        "--licence",
        "GPL-3.0-only",
    ]);
    let report = strict.ok_json(&["fetch", &format!("{open_key}/copyleft")]);
    let warning = report["warnings"][0].as_str().unwrap_or_default();
    assert!(warning.contains("not seeded"), "{report}");
    let id = report["id"].as_str().unwrap();
    assert_eq!(strict.ok_json(&["show", id])["seeding"], false);
    let mit_id = strict.ok_json(&["resolve", &format!("{}/permissive", strict.publisher_key())])
        ["root"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(strict.ok_json(&["show", &mit_id])["seeding"], true);

    // A third node sees the strict node provide the MIT artifact, never the GPL one.
    let third = start_joined(&strict, &[]);
    third.wait_for_providers(&mit_id, &[strict.peer_id()]);
    let providers = third.ok_json(&["providers", id]);
    assert!(
        !providers["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == strict.peer_id().as_str()),
        "{providers}"
    );

    // Nor does it serve it to a connected peer that asks without a DHT lookup.
    let mut open = open;
    open.stop();
    third.ok(&["fetch", "--detach", id]);
    let refused = "seedbank_blob_requests_refused_total{reason=\"licence\"}";
    strict.wait_until(
        "the strict node to refuse the GPL artifact",
        Duration::from_secs(60),
        || match strict.metric(refused) {
            count if count > 0.0 => Ok(()),
            _ => Err(format!(
                "no refusal counted; the third node's jobs: {:?}",
                third.jobs()
            )),
        },
    );
    assert_eq!(third.ok_json(&["status"])["store_bytes"], 0);
}

#[test]
fn a_publisher_is_told_when_the_nodes_it_puts_to_keep_nothing() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("m");
    model_dir(&dir, "kept?", MIB);
    // The publisher's only DHT peer acknowledges every put and keeps nothing.
    let hole = RecordPeer::start_keeping_nothing();
    let p = Daemon::start_with(&["--bootstrap", &hole.peer_address()]);
    p.wait_for_routing_table(1);
    let report = p.publish_report(&dir, "toy", "v1");
    assert!(report["replicas"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(report["kept_by"], 0, "{report}");
    let text = p
        .ok(&[
            "publish",
            dir.to_str().unwrap(),
            "--name",
            "toy",
            "--revision",
            "v2",
        ])
        .stdout;
    assert!(text.contains("did not keep the name record"), "{text}");

    // With an honest node beside it, the next revision is kept, and said to be.
    let _honest = start_joined(&p, &[]);
    p.wait_for_routing_table(2);
    let report = p.publish_report(&dir, "toy", "v3");
    assert!(report["kept_by"].as_u64().unwrap() >= 1, "{report}");
}
