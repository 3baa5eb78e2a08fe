//! End-to-end: the user decides what stays on a node (`rm`, `gc --dry-run`, `fetch
//! --pin`, where each artifact came from), and `/metrics` tells an operator what the
//! node did.

use std::path::Path;
use std::time::Duration;

use seedbank_tests::fixtures::MIB;
use seedbank_tests::{metric, start_joined, write_random_file, Daemon};

fn listed_names(daemon: &Daemon) -> Vec<String> {
    daemon
        .artifacts()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_owned())
        .collect()
}

fn add(daemon: &Daemon, dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["add", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    daemon.ok_json(&args)["id"].as_str().unwrap().to_owned()
}

/// The value of the sample `name` in `/metrics`, which must be there.
fn sample(text: &str, name: &str) -> f64 {
    metric(text, name).unwrap_or_else(|| panic!("no sample {name} in /metrics:\n{text}"))
}

#[test]
fn rm_frees_what_only_it_used_and_a_pinned_artifact_needs_force() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start();
    // Two artifacts sharing one file: removing one must keep the shared bytes.
    let (first, second) = (work.path().join("first"), work.path().join("second"));
    write_random_file(&first.join("shared.bin"), 2 * MIB, "shared");
    write_random_file(&second.join("shared.bin"), 2 * MIB, "shared");
    write_random_file(&first.join("own.bin"), MIB, "first");
    write_random_file(&second.join("own.bin"), MIB, "second");
    add(&daemon, &first, &[]);
    let second_id = add(&daemon, &second, &[]);
    let before = daemon.store_bytes();

    let removed = daemon.ok(&["rm", "first"]);
    assert!(
        removed.stdout.contains("removed first@main") && removed.stdout.contains("freed"),
        "{removed}"
    );
    assert_eq!(listed_names(&daemon), vec!["second"]);
    let freed = before - daemon.store_bytes();
    assert!(
        (MIB..2 * MIB).contains(&freed),
        "rm should free first's own file and keep the shared one: freed {freed} bytes"
    );
    let out = work.path().join("out");
    daemon.ok(&["export", &second_id, out.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(out.join("shared.bin")).unwrap(),
        std::fs::read(second.join("shared.bin")).unwrap()
    );

    daemon.ok(&["pin", "second"]);
    let refused = daemon.fails_with(&["rm", "second"], "--force");
    assert!(refused.stderr.contains("pinned"), "{refused}");
    assert_eq!(listed_names(&daemon), vec!["second"]);
    let forced = daemon.ok_json(&["rm", &second_id[..12], "--force"]);
    assert_eq!(forced["was_pinned"], true, "{forced}");
    assert_eq!(forced["artifact"]["id"], second_id.as_str());
    assert!(listed_names(&daemon).is_empty());
    assert_eq!(daemon.store_bytes(), 0);
    assert_eq!(daemon.ok_json(&["status"])["pins"], 0);
    daemon.fails_with(&["rm", "second"], "no artifact");
}

#[test]
fn gc_dry_run_lists_what_would_go_and_gc_names_what_it_removes() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start();
    let (scratch, keeper) = (work.path().join("scratch"), work.path().join("keeper"));
    write_random_file(&scratch.join("weights.bin"), 3 * MIB, "scratch");
    write_random_file(&keeper.join("weights.bin"), MIB, "keeper");
    let scratch_id = add(&daemon, &scratch, &[]);
    add(&daemon, &keeper, &["--pin"]);
    let before = daemon.store_bytes();

    let dry = daemon.ok(&["gc", "--dry-run"]);
    assert!(
        dry.stdout.contains("would remove scratch@main") && dry.stdout.contains(&scratch_id),
        "{dry}"
    );
    assert!(dry.stdout.contains("1 unpinned artifact,"), "{dry}");
    assert!(!dry.stdout.contains("keeper"), "{dry}");
    let dry_json = daemon.ok_json(&["gc", "--dry-run"]);
    assert_eq!(dry_json["dry_run"], true);
    assert_eq!(dry_json["artifacts_removed"][0]["name"], "scratch");
    assert!(
        dry_json["bytes_freed"].as_u64().unwrap() >= 3 * MIB,
        "{dry_json}"
    );
    assert_eq!(
        listed_names(&daemon).len(),
        2,
        "a dry run removed something"
    );
    assert_eq!(daemon.store_bytes(), before);

    let gc = daemon.ok(&["gc"]);
    assert!(
        gc.stdout.contains("removed scratch@main") && gc.stdout.contains(&scratch_id),
        "{gc}"
    );
    assert!(gc.stdout.contains("removed 1 unpinned artifact,"), "{gc}");
    assert_eq!(listed_names(&daemon), vec!["keeper"]);
}

#[test]
fn fetch_pin_pins_ls_tells_fetched_from_added_and_metrics_count_the_transfer() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    write_random_file(&model.join("weights.bin"), 4 * MIB, "metrics");
    let seeder = Daemon::start();
    let id = seeder.add_artifact(&model);
    let fetcher = start_joined(&seeder, &[]);

    let report = fetcher.ok_json(&["fetch", &id, "--pin"]);
    assert_eq!(report["pinned"], true, "{report}");
    let listed = fetcher.ok_json(&["ls"]);
    assert_eq!(listed[0]["pinned"], true, "{listed}");
    assert_eq!(listed[0]["origin"], "fetched", "{listed}");
    assert_eq!(seeder.ok_json(&["ls"])[0]["origin"], "added");
    let table = fetcher.ok(&["ls"]).stdout;
    assert!(
        table.contains("ORIGIN") && table.contains("fetched"),
        "{table}"
    );

    let served = seeder.metrics();
    assert!(
        sample(&served, "seedbank_sent_bytes_total{protocol=\"blob\"}") >= (4 * MIB) as f64,
        "{served}"
    );
    assert!(
        sample(&served, "seedbank_blob_requests_served_total") > 0.0,
        "{served}"
    );
    assert!(
        sample(&served, "seedbank_connected_peers") >= 1.0,
        "{served}"
    );
    let fetched = fetcher.metrics();
    assert_eq!(sample(&fetched, "seedbank_fetches_finished_total"), 1.0);
    assert_eq!(sample(&fetched, "seedbank_fetches_failed_total"), 0.0);
    assert!(
        sample(&fetched, "seedbank_received_bytes_total{protocol=\"blob\"}") >= (4 * MIB) as f64,
        "{fetched}"
    );
    assert!(
        sample(&fetched, "seedbank_fetched_bytes_total") >= (4 * MIB) as f64,
        "{fetched}"
    );
    assert!(sample(&fetched, "seedbank_routing_table_peers") >= 1.0);
    assert!(sample(&fetched, "seedbank_dht_queries_total") >= 1.0);
    assert!(sample(&fetched, "seedbank_store_bytes") >= (4 * MIB) as f64);
    assert_eq!(sample(&fetched, "seedbank_pins"), 1.0);
    for name in [
        "seedbank_blob_requests_refused_total{reason=\"busy\"}",
        "seedbank_blob_requests_refused_total{reason=\"banned\"}",
        "seedbank_blob_streams_closed_total{reason=\"deadline\"}",
        "seedbank_peer_bans_total",
        "seedbank_banned_peers",
        "seedbank_fetches_running",
        "seedbank_fetches_cancelled_total",
        "seedbank_dht_queries_running",
    ] {
        assert_eq!(sample(&fetched, name), 0.0, "{name}");
    }
}

#[test]
fn a_detached_fetch_keeps_its_pin_through_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    write_random_file(&model.join("weights.bin"), 6 * MIB, "detached-pin");
    let seeder = Daemon::start();
    let id = seeder.add_artifact(&model);
    // Slow enough that the daemon stops in the middle of the fetch.
    let mut fetcher = start_joined(&seeder, &["--download-limit", "512K"]);

    let job = fetcher.ok_json(&["fetch", "--detach", "--pin", &id]);
    assert_eq!(job["pin"], true, "{job}");
    fetcher.wait_for_fetch_progress(&id, 0);
    fetcher.restart();
    let jobs = fetcher.ok_json(&["jobs"]);
    assert_eq!(jobs[0]["pin"], true, "the saved job forgot its pin: {jobs}");

    fetcher.wait_until_complete(&id, Duration::from_secs(60));
    let listed = fetcher.ok_json(&["ls"]);
    assert_eq!(
        listed[0]["pinned"], true,
        "the resumed fetch did not pin: {listed}"
    );
    assert!(fetcher.ok_json(&["jobs"]).as_array().unwrap().is_empty());
}

/// Bytes the files under `dir` take on disk, as `du` counts them (sparse parts free).
fn disk_use(dir: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|entry| match entry.file_type() {
            Ok(kind) if kind.is_dir() => disk_use(&entry.path()),
            Ok(kind) if kind.is_file() => entry.metadata().map_or(0, |meta| meta.blocks() * 512),
            _ => 0,
        })
        .sum()
}

#[test]
fn store_size_gc_and_disk_use_agree_after_a_cancelled_fetch() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 64 * MIB, "cancelled");
    let a = Daemon::start();
    let id = add(&a, &model, &[]);
    let d = start_joined(&a, &["--download-limit", "16M"]);
    d.wait_for_providers(&id, &[a.peer_id()]);
    d.ok(&["fetch", "--detach", &id]);
    d.wait_for_fetch_progress(&id, 16 * MIB);
    d.ok(&["fetch", "--cancel", &id]);
    d.wait_until(
        "the cancelled job to end",
        Duration::from_secs(30),
        || match d.jobs().as_slice() {
            [] => Ok(()),
            jobs => Err(format!("{jobs:?}")),
        },
    );

    // What the cancelled fetch left is counted, as the disk holds it (the BLAKE3
    // outboard beside the data is 1/256 of it).
    let stored = d.store_bytes();
    let data = d.data_dir().join("blobs");
    let on_disk = disk_use(&data);
    assert!(stored >= 16 * MIB, "status counts {stored} bytes");
    let slack = stored / 100 + stored / 256 + MIB;
    assert!(
        stored.abs_diff(on_disk) <= slack,
        "status says {stored} bytes, the store's files take {on_disk}"
    );
    let dry = d.ok_json(&["gc", "--dry-run"]);
    let would_free = dry["bytes_freed"].as_u64().unwrap();
    assert!(
        would_free.abs_diff(stored) <= stored / 100,
        "gc --dry-run would free {would_free} of {stored} bytes: {dry}"
    );
    let gc = d.ok_json(&["gc"]);
    assert_eq!(gc["bytes_freed"], would_free, "{gc}");
    assert_eq!(d.store_bytes(), 0);
    let left = disk_use(&data);
    assert!(
        on_disk - left >= would_free - would_free / 100,
        "gc said it freed {would_free} bytes; the store's files went from {on_disk} to {left}"
    );
}
