//! End-to-end: several real daemons on loopback find each other's artifacts through the
//! DHT and move them verified, from many peers, across crashes, under rate limits.

use std::path::Path;
use std::time::{Duration, Instant};

use seedbank_tests::fixtures::{provider_bytes, MIB};
use seedbank_tests::{
    file_hash, start_joined, tree_hashes, write_random_file, Daemon, IMPATIENT_FETCHES,
};

fn bootstrap_flags(seed: &Daemon) -> Vec<String> {
    vec!["--bootstrap".into(), seed.peer_address()]
}

/// A seeder A with a one-file artifact of `size` bytes, and a peer C that fetched it
/// from A (so both provide it). Returns (A, C, id, path of the original file).
fn two_providers(
    work: &Path,
    size: u64,
    seed: &str,
) -> (Daemon, Daemon, String, std::path::PathBuf) {
    let model = work.join(seed);
    write_random_file(&model.join("weights.bin"), size, seed);
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let c = start_joined(&a, &[]);
    c.ok(&["fetch", &id]);
    (a, c, id, model.join("weights.bin"))
}

#[test]
fn a_node_that_knows_only_a_bootstrap_peer_fetches_by_id() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    write_random_file(&model.join("weights.bin"), 12 * MIB, "no-central-server");
    std::fs::write(model.join("config.json"), b"{}").unwrap();

    let b = Daemon::start();
    let a = start_joined(&b, &[]);
    let id = a.add_artifact(&model);
    let c = start_joined(&b, &[]);
    c.wait_for_providers(&id, &[a.peer_id()]);

    let out = work.path().join("out");
    let report = c.ok_json(&["fetch", &id, "--out", out.to_str().unwrap()]);
    assert_eq!(tree_hashes(&out), tree_hashes(&model));
    assert!(
        provider_bytes(&report, &a.peer_id()) >= 12 * MIB,
        "{report}"
    );
    let listed = c.ok_json(&["ls"]);
    assert_eq!(listed[0]["state"], "complete", "{listed}");
    let peers = c.ok_json(&["peers"]);
    let from_a = peers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer"] == a.peer_id().as_str())
        .unwrap();
    assert!(
        from_a["bytes_down"].as_u64().unwrap() >= 12 * MIB,
        "{peers}"
    );

    // Having it, C now seeds it too.
    b.wait_for_providers(&id, &[a.peer_id(), c.peer_id()]);
}

#[test]
fn a_fetch_draws_on_every_provider() {
    let work = tempfile::tempdir().unwrap();
    let (a, c, id, original) = two_providers(work.path(), 200 * MIB, "swarm");
    let d = start_joined(&a, &[]);
    d.wait_for_providers(&id, &[a.peer_id(), c.peer_id()]);

    let out = work.path().join("out");
    let report = d.ok_json(&["fetch", &id, "--out", out.to_str().unwrap()]);
    assert_eq!(file_hash(&out.join("weights.bin")), file_hash(&original));
    let from_a = provider_bytes(&report, &a.peer_id());
    let from_c = provider_bytes(&report, &c.peer_id());
    assert!(
        from_a > 0 && from_c > 0,
        "both providers should have served bytes: {report}"
    );
    assert!(from_a + from_c >= 200 * MIB, "{report}");
}

#[test]
fn a_provider_with_a_corrupt_copy_cannot_make_a_fetch_store_bad_bytes() {
    let work = tempfile::tempdir().unwrap();
    let (a, c, id, original) = two_providers(work.path(), 24 * MIB, "corrupt");

    // Flip one byte in every MiB of C's stored copy.
    let hash = file_hash(&original).to_hex().to_string();
    let stored = c.data_dir().join("blobs/data").join(format!("{hash}.data"));
    let mut bytes = std::fs::read(&stored).unwrap();
    for i in (512..bytes.len()).step_by(MIB as usize) {
        bytes[i] ^= 0xff;
    }
    std::fs::write(&stored, bytes).unwrap();

    let d = start_joined(&a, &[]);
    d.wait_for_providers(&id, &[a.peer_id(), c.peer_id()]);
    let out = work.path().join("out");
    let report = d.ok_json(&["fetch", &id, "--out", out.to_str().unwrap()]);
    assert_eq!(file_hash(&out.join("weights.bin")), file_hash(&original));
    // iroh-blobs providers check what they send, so C stops at its first bad chunk
    // rather than sending it: a failure, not misbehaviour, and nothing bad is stored.
    assert!(
        provider_bytes(&report, &a.peer_id()) > 0,
        "the honest provider served nothing: {report}"
    );
    d.ok(&["verify"]);
    let own = c.cli(&["verify"]);
    assert!(!own.success, "C's own verify misses its corruption:\n{own}");
}

#[test]
fn a_killed_fetch_resumes_with_only_missing_ranges() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    let size = 240 * MIB;
    write_random_file(&model.join("weights.bin"), size, "resume");
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let d_dir = work.path().join("d");
    let flags = bootstrap_flags(&a);
    let mut d_args: Vec<&str> = flags.iter().map(String::as_str).collect();
    d_args.extend(["--download-limit", "40M"]);
    let mut d = Daemon::start_in_with(&d_dir, &d_args);
    d.wait_for_routing_table(1);

    let first = d.cli_in_background(&["fetch", &id]);
    // Killed once a quarter of it is here.
    d.wait_for_fetch_progress(&id, size / 4);
    d.kill();
    let interrupted = first.join().unwrap();
    assert!(
        !interrupted.success,
        "the fetch finished before the kill; make it slower:\n{interrupted}"
    );

    d.start_again();
    let report = d.ok_json(&["fetch", &id]);
    let missing = report["bytes_missing_at_start"].as_u64().unwrap();
    let downloaded = report["bytes_downloaded"].as_u64().unwrap();
    assert!(missing < size, "nothing survived the kill: {report}");
    let allowance = 16 * 1024 * 16;
    assert!(
        downloaded as f64 <= missing as f64 * 1.01 + allowance as f64,
        "re-downloaded {downloaded} bytes for {missing} missing: {report}"
    );
    let out = work.path().join("out");
    d.ok(&["export", &id, out.to_str().unwrap()]);
    assert_eq!(
        file_hash(&out.join("weights.bin")),
        file_hash(&model.join("weights.bin"))
    );
}

#[test]
fn no_provider_and_dead_provider_fail_clearly() {
    let work = tempfile::tempdir().unwrap();
    let lonely = Daemon::start_configured(IMPATIENT_FETCHES, &[]);
    let unknown = "sb1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    lonely.fails_with(&["fetch", unknown], "no provider");

    let model = work.path().join("m");
    write_random_file(&model.join("w.bin"), MIB, "dead");
    let b = Daemon::start();
    let mut a = start_joined(&b, &[]);
    let id = a.add_artifact(&model);
    b.wait_for_providers(&id, &[a.peer_id()]);
    a.kill();
    let d = start_joined(&b, &[]);
    // The network answered (a peer is connected, the DHT lists nobody): not found, 3.
    let nobody = d.cli(&["fetch", unknown]);
    assert_eq!(nobody.code, Some(3), "{nobody}");
    assert!(nobody.stderr.contains("nobody has"), "{nobody}");
    let started = Instant::now();
    let output = d.cli(&["fetch", &id]);
    // A provider is listed but cannot be reached: a network failure, 4.
    assert_eq!(output.code, Some(4), "{output}");
    assert!(
        output.stderr.contains("no provider") || output.stderr.contains("could not"),
        "{output}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn upload_limit_is_honoured() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    let size = 8 * MIB;
    write_random_file(&model.join("w.bin"), size, "limited");
    let limit = 2 * MIB;
    let a = Daemon::start_with(&["--upload-limit", "2M"]);
    let id = a.add_artifact(&model);
    let c = start_joined(&a, &[]);
    let started = Instant::now();
    c.ok(&["fetch", &id]);
    let elapsed = started.elapsed().as_secs_f64();
    let floor = 0.9 * size as f64 / limit as f64;
    assert!(
        elapsed >= floor,
        "fetched {size} bytes in {elapsed:.2}s under a {limit} B/s limit (floor {floor:.2}s)"
    );
}

#[test]
fn a_restarted_seeder_announces_again() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("w.bin"), MIB, "reannounce");
    let b_dir = work.path().join("b");
    let mut b = Daemon::start_in(&b_dir);
    let a_dir = work.path().join("a");
    let flags = bootstrap_flags(&b);
    let a_args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut a = Daemon::start_in_with(&a_dir, &a_args);
    a.wait_for_routing_table(1);
    let id = a.add_artifact(&model);
    b.wait_for_providers(&id, &[a.peer_id()]);

    // B forgets every record when it restarts; only A announcing again can restore it.
    a.stop();
    b.restart();
    let flags = bootstrap_flags(&b);
    let a_args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let a = Daemon::start_in_with(&a_dir, &a_args);
    let c = start_joined(&b, &[]);
    c.wait_for_providers(&id, &[a.peer_id()]);
}

/// The path of the file `daemon`'s store keeps the blob of `original` in.
fn stored_copy(daemon: &Daemon, original: &Path) -> std::path::PathBuf {
    let hash = file_hash(original).to_hex().to_string();
    daemon
        .data_dir()
        .join("blobs/data")
        .join(format!("{hash}.data"))
}

#[test]
fn fetch_out_moves_the_files_out_of_the_store_seeds_them_from_there_and_refetches_one_removed() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("moved");
    let weights = model.join("weights.bin");
    write_random_file(&weights, 8 * MIB, "moved");
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    let mut a = Daemon::start();
    let id = a.add_artifact(&model);
    let b = start_joined(&a, &[]);

    let out = work.path().join("out");
    let report = b.ok_json(&["fetch", &id, "--out", out.to_str().unwrap()]);
    assert_eq!(tree_hashes(&out), tree_hashes(&model));
    // The weights moved; config.json is small enough to live in the store's database.
    assert_eq!(report["export"]["moved"], 1, "{report}");
    assert!(
        !stored_copy(&b, &weights).exists(),
        "the store kept a second copy of what it moved out"
    );
    b.ok(&["verify"]);

    // B seeds from the directory: with A gone, C gets every byte from B.
    a.stop();
    let c = start_joined(&b, &[]);
    let fetched = c.ok_json(&["fetch", &id]);
    assert!(
        provider_bytes(&fetched, &b.peer_id()) >= 8 * MIB,
        "{fetched}"
    );

    // The user removes the file: B says so, and fetching again brings it back.
    std::fs::remove_file(out.join("weights.bin")).unwrap();
    assert_eq!(b.ok_json(&["ls"])[0]["state"], "modified");
    b.ok(&["fetch", &id]);
    assert_eq!(b.ok_json(&["ls"])[0]["state"], "complete");
    assert_eq!(file_hash(&stored_copy(&b, &weights)), file_hash(&weights));

    // --copy leaves the store its own copy.
    let copied = work.path().join("copied");
    let report = c.ok_json(&["fetch", &id, "--out", copied.to_str().unwrap(), "--copy"]);
    assert_eq!(report["export"]["moved"], 0, "{report}");
    assert_eq!(tree_hashes(&copied), tree_hashes(&model));
    assert!(stored_copy(&c, &weights).exists());
}
