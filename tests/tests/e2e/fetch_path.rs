//! End-to-end: the fetch path under the conditions real use brings — idle peers
//! connected, seeders that stop or restart mid-transfer, `gc` and Ctrl-C and SIGTERM
//! during a fetch, fetches of ids nobody has, and a peer serving a hostile manifest.
//! (How much idle and silent peers slow a fetch is measured by `bench-transfer`.)

use std::path::Path;
use std::time::{Duration, Instant};

use seedbank_protocol::manifest::MANIFEST_FORMAT_VERSION;
use seedbank_protocol::{BlobHash, FileEntry, Manifest};
use seedbank_tests::fixtures::MIB;
use seedbank_tests::hostile::HostileSeeder;
use seedbank_tests::{
    file_hash, start_joined_at, tree_hashes, write_random_file, write_small_files, Daemon,
    SmallDisk, DIAL_LOG_FILTER, IMPATIENT_FETCHES,
};

/// Fetches a node transfers at once (the node's `MAX_CONCURRENT_FETCHES`).
const FETCH_SLOTS: u32 = 4;
/// A seeder's count of blob bytes it sent.
const SENT_BLOB_BYTES: &str = "seedbank_sent_bytes_total{protocol=\"blob\"}";

fn no_peer_banned(report: &serde_json::Value) {
    assert!(
        report["providers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["banned"] == false),
        "an honest peer was banned: {report}"
    );
}

/// Exports `id` from `daemon` and checks the files equal those under `original`.
fn assert_exports_identically(daemon: &Daemon, id: &str, original: &Path, work: &Path) {
    let out = work.join(format!("out-{}", &id[id.len() - 8..]));
    daemon.ok(&["export", id, out.to_str().unwrap(), "--force"]);
    assert_eq!(tree_hashes(&out), tree_hashes(original));
}

#[test]
fn a_fetch_of_many_small_files_with_idle_peers_connected_is_whole() {
    let work = tempfile::tempdir().unwrap();
    let dataset = work.path().join("dataset");
    write_small_files(&dataset, 2000, 30 * MIB, "small");
    let seeder = Daemon::start();
    let id = seeder.add_artifact(&dataset);
    let seed = seeder.peer_address();

    // Two empty peers connected to the fetcher.
    let fetcher = start_joined_at(&seed, &[]);
    let fetcher_address = fetcher.peer_address();
    let _idle: Vec<Daemon> = (0..2)
        .map(|_| start_joined_at(&fetcher_address, &[]))
        .collect();
    let connected = fetcher.connected_peers();
    assert!(
        connected >= 3,
        "the idle peers are not connected: {connected}"
    );
    fetcher.wait_for_providers(&id, &[seeder.peer_id()]);
    fetcher.ok(&["fetch", &id]);
    assert_exports_identically(&fetcher, &id, &dataset, work.path());
}

#[test]
fn a_seeder_killed_mid_fetch_is_not_banned_and_the_other_one_finishes() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 96 * MIB, "killed-seeder");
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let mut c = start_joined_at(&a.peer_address(), &[]);
    c.ok(&["fetch", &id]);
    let d = start_joined_at(&a.peer_address(), &["--download-limit", "24M"]);
    d.wait_for_providers(&id, &[c.peer_id()]);
    d.wait_for_providers(&id, &[a.peer_id()]);

    let fetch = d.cli_in_background(&["--json", "fetch", &id]);
    // Killed while it serves its part of the file: past the root and the manifest, which
    // it may have sent before any of the file's bytes.
    c.wait_until(
        "C to serve part of the file",
        Duration::from_secs(60),
        || match c.metric(SENT_BLOB_BYTES) {
            sent if sent >= (4 * MIB) as f64 => Ok(()),
            sent => Err(format!("C sent {sent} bytes; D's jobs: {:?}", d.jobs())),
        },
    );
    c.kill();
    let output = fetch.join().unwrap();
    assert!(
        output.success,
        "the fetch failed when one seeder died:\n{output}\n{}",
        d.log()
    );
    let report = output.json();
    no_peer_banned(&report);
    assert_exports_identically(&d, &id, &model, work.path());
}

#[test]
fn a_single_seeder_rebooting_for_35_s_mid_fetch_is_waited_for_and_taken_back() {
    // Longer than the scheduler's back-off takes to drop a failing peer (about 31 s of
    // failures), as a machine's reboot is, and shorter than the 45 s stall limit.
    const OUTAGE: Duration = Duration::from_secs(35);
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 64 * MIB, "restarting-seeder");
    // Seeder and fetcher join through B, as nodes join a network through its
    // bootstrap peers; the seeder comes back through B too, on new ports.
    let b = Daemon::start();
    let mut a = Daemon::start_in_with(&work.path().join("a"), &["--bootstrap", &b.peer_address()]);
    a.wait_for_routing_table(1);
    let id = a.add_artifact(&model);
    let d = Daemon::start_logging(
        Some(DIAL_LOG_FILTER),
        &["--bootstrap", &b.peer_address(), "--download-limit", "16M"],
    );
    d.wait_for_routing_table(1);
    d.wait_for_providers(&id, &[a.peer_id()]);

    let fetch = d.cli_in_background(&["--json", "fetch", &id]);
    d.wait_for_fetch_progress(&id, 0);
    a.kill();
    let gone_at = Instant::now();
    // While it is away the job says it is stalled, not that a peer serves it.
    d.wait_until("the fetch to say it is stalled", OUTAGE, || {
        let jobs = d.jobs();
        let activity = jobs[0]["activity"].as_str().unwrap_or_default().to_owned();
        if activity.starts_with("stalled: waiting for peers (") && activity.contains("last byte") {
            Ok(())
        } else {
            Err(format!("{jobs:?}"))
        }
    });
    // The outage is the condition under test: the seeder stays down this long.
    std::thread::sleep(OUTAGE.saturating_sub(gone_at.elapsed()));
    a.start_again();
    let output = fetch.join().unwrap();
    assert!(
        output.success,
        "the fetch gave up on a seeder that came back:\n{output}\n{}",
        d.log()
    );
    assert!(
        d.log().contains("failing peers may be back"),
        "the returning seeder was not taken back at once\n{}",
        d.log()
    );
    no_peer_banned(&output.json());
    assert_exports_identically(&d, &id, &model, work.path());
}

#[test]
fn gc_during_a_fetch_leaves_it_intact() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 64 * MIB, "gc-during-fetch");
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let d = start_joined_at(&a.peer_address(), &["--download-limit", "16M"]);
    d.wait_for_providers(&id, &[a.peer_id()]);
    let fetch = d.cli_in_background(&["--json", "fetch", &id]);
    let at_first_gc = d.wait_for_fetch_progress(&id, 0);
    d.ok(&["gc"]);
    // Again once the fetch has moved on.
    d.wait_for_fetch_progress(&id, at_first_gc + 1);
    d.ok(&["gc"]);
    let output = fetch.join().unwrap();
    assert!(output.success, "{output}\n{}", d.log());
    d.ok(&["verify"]);
    assert_exports_identically(&d, &id, &model, work.path());
}

#[test]
fn fetches_of_ids_nobody_has_leave_no_jobs_behind() {
    let mut lonely = Daemon::start_configured(IMPATIENT_FETCHES, &[]);
    // Twice as many as run at once, and one more: some wait for a slot.
    let count = 2 * FETCH_SLOTS + 1;
    let threads: Vec<_> = (0..count)
        .map(|i| {
            let hash = blake3::hash(&i.to_le_bytes());
            let id = seedbank_protocol::ContentId::from_hash(BlobHash(*hash.as_bytes()));
            lonely.cli_in_background(&["fetch", &id.to_string()])
        })
        .collect();
    for thread in threads {
        let output = thread.join().unwrap();
        assert!(!output.success, "{output}");
        assert!(output.stderr.contains("no provider"), "{output}");
    }
    assert!(lonely.jobs().is_empty(), "{:?}", lonely.jobs());
    lonely.restart();
    assert!(
        lonely.jobs().is_empty(),
        "ghost jobs after restart: {:?}",
        lonely.jobs()
    );
}

#[test]
fn cancel_ends_a_running_fetch_and_fetching_again_resumes() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    let size = 64 * MIB;
    write_random_file(&model.join("weights.bin"), size, "cancel");
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let d = start_joined_at(&a.peer_address(), &["--download-limit", "16M"]);
    d.wait_for_providers(&id, &[a.peer_id()]);
    d.ok(&["fetch", "--detach", &id]);
    let listed = d.jobs();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    d.wait_for_fetch_progress(&id, 0);
    d.ok(&["fetch", "--cancel", &id]);
    d.wait_until(
        "the cancelled job to leave the list",
        Duration::from_secs(10),
        || match d.jobs() {
            jobs if jobs.is_empty() => Ok(()),
            jobs => Err(format!("still listed: {jobs:?}")),
        },
    );
    d.fails_with(&["fetch", "--cancel", &id], "no fetch of it");

    let report = d.ok_json(&["fetch", &id]);
    let missing = report["bytes_missing_at_start"].as_u64().unwrap();
    assert!(
        missing < size,
        "nothing of the cancelled fetch was kept: {report}"
    );
}

#[test]
fn a_second_fetch_with_other_globs_gets_its_files() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 32 * MIB, "globs-weights");
    std::fs::write(model.join("config.json"), b"{\"layers\": 2}").unwrap();
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let d = start_joined_at(&a.peer_address(), &["--download-limit", "16M"]);
    d.wait_for_providers(&id, &[a.peer_id()]);
    d.ok(&["fetch", "--detach", "--include", "*.bin", &id]);
    d.wait_for_fetch_progress(&id, 0);
    d.ok(&["fetch", "--include", "*.json", &id]);
    let out = work.path().join("out");
    d.ok(&["export", &id, out.to_str().unwrap(), "--include", "*.json"]);
    assert_eq!(
        std::fs::read(out.join("config.json")).unwrap(),
        b"{\"layers\": 2}"
    );
    d.wait_until_complete(&id, Duration::from_secs(60));
}

#[test]
fn sigterm_stops_a_daemon_with_a_client_attached_and_the_fetch_resumes() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 64 * MIB, "sigterm");
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let seed = a.peer_address();
    let mut d = Daemon::start_in_with(
        &work.path().join("d"),
        &["--bootstrap", &seed, "--download-limit", "8M"],
    );
    d.wait_for_routing_table(1);
    d.wait_for_providers(&id, &[a.peer_id()]);
    let attached = d.cli_in_background(&["fetch", &id]);
    d.wait_for_fetch_progress(&id, 0);
    let stopping = Instant::now();
    d.stop();
    let took = stopping.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "SIGTERM took {took:?} with a client attached"
    );
    let output = attached.join().unwrap();
    assert!(!output.success, "{output}");
    assert!(output.stderr.contains("stopping"), "{output}");

    // The fetch resumes on its own at the next start.
    d.start_again();
    d.wait_until_complete(&id, Duration::from_secs(90));
    assert!(d.jobs().is_empty(), "{:?}", d.jobs());
}

#[test]
fn a_manifest_listing_a_two_to_the_56_byte_file_is_refused_and_the_daemon_stays_up() {
    let mut hostile = HostileSeeder::start();
    let huge = FileEntry {
        path: "weights.bin".into(),
        size: 1 << 56,
        hash: BlobHash([7; 32]),
    };
    let manifest = Manifest {
        files: vec![huge.clone()],
        hf: None,
    };
    // Encoded as a hostile peer would: the codec's own format, no validation.
    let mut bytes = vec![MANIFEST_FORMAT_VERSION];
    bytes.extend(postcard::to_stdvec(&manifest.files).unwrap());
    let id = hostile.serve_artifact(bytes, vec![huge.hash]).to_string();

    let mut d = Daemon::start_with(&["--bootstrap", &hostile.peer_address()]);
    d.wait_for_routing_table(1);
    d.fails_with(&["fetch", &id], "more than the limit");
    d.ok(&["status"]);
    assert!(d.jobs().is_empty(), "{:?}", d.jobs());
    d.restart();
    assert!(d.jobs().is_empty(), "{:?}", d.jobs());
    d.ok(&["status"]);
}

#[test]
fn a_fetch_bigger_than_the_disk_is_refused_and_one_that_fills_it_pauses() {
    let work = tempfile::tempdir().unwrap();
    let mount_point = work.path().join("small-disk");
    let Some(disk) = SmallDisk::mount(&mount_point, 256, "fetch disk-space check") else {
        return;
    };
    let too_big = work.path().join("too-big");
    let fits = work.path().join("fits");
    write_random_file(&too_big.join("w.bin"), 300 * MIB, "too-big");
    write_random_file(&fits.join("w.bin"), 96 * MIB, "fits");
    let a = Daemon::start();
    let too_big_id = a.add_artifact(&too_big);
    let fits_id = a.add_artifact(&fits);
    let seed = a.peer_address();
    let d = Daemon::start_in_with(
        &mount_point.join("data"),
        &["--bootstrap", &seed, "--download-limit", "16M"],
    );
    d.wait_for_routing_table(1);
    d.wait_for_providers(&too_big_id, &[a.peer_id()]);
    d.fails_with(&["fetch", &too_big_id], "disk full");
    d.ok(&["status"]);

    // A fetch that fits pauses while something else fills the disk, and resumes.
    d.wait_for_providers(&fits_id, &[a.peer_id()]);
    d.ok(&["fetch", "--detach", &fits_id]);
    d.wait_for_fetch_progress(&fits_id, 0);
    let filler = mount_point.join("filler");
    write_random_file(
        &filler,
        disk.free_bytes().saturating_sub(40 * MIB),
        "filler",
    );
    d.wait_until("the fetch to pause", Duration::from_secs(30), || {
        let listed = d.jobs();
        if listed.iter().any(|j| j["state"] == "paused_disk_full") {
            Ok(())
        } else {
            Err(format!("jobs: {listed:?}"))
        }
    });
    std::fs::remove_file(&filler).unwrap();
    d.wait_until_complete(&fits_id, Duration::from_secs(90));
    d.ok(&["verify"]);
    assert_exports_identically(&d, &fits_id, &fits, work.path());
}

#[test]
fn a_fetch_beside_peers_that_claim_everything_and_send_nothing_completes() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 24 * MIB, "silent-peer");
    let seeder = Daemon::start();
    let id = seeder.add_artifact(&model);
    let seed = seeder.peer_address();

    // Eight silent peers: with all their streams they would fill every slot a fetch has.
    let silent: Vec<HostileSeeder> = (0..8).map(|_| HostileSeeder::start_silent()).collect();
    let root: seedbank_protocol::ContentId = id.parse().unwrap();
    let addresses: Vec<String> = silent.iter().map(HostileSeeder::peer_address).collect();
    let mut args = vec!["--bootstrap", seed.as_str()];
    for address in &addresses {
        args.extend(["--bootstrap", address.as_str()]);
    }
    let fetcher = Daemon::start_with(&args);
    fetcher.wait_for_routing_table(9);
    for peer in &silent {
        peer.claim(root);
    }
    let silent_ids: Vec<String> = silent.iter().map(HostileSeeder::peer_id).collect();
    fetcher.wait_for_providers(&id, &silent_ids);
    fetcher.wait_for_providers(&id, &[seeder.peer_id()]);
    let report = fetcher.ok_json(&["fetch", &id]);
    no_peer_banned(&report);
    assert_exports_identically(&fetcher, &id, &model, work.path());
}

#[test]
fn a_fetch_right_after_the_daemon_starts_finds_its_seeder() {
    let work = tempfile::tempdir().unwrap();
    let dataset = work.path().join("dataset");
    write_small_files(&dataset, 2000, 8 * MIB, "early");
    let seeder = Daemon::start();
    let id = seeder.add_artifact(&dataset);

    // Straight after start: no waiting for the DHT to list the seeder.
    let early = start_joined_at(&seeder.peer_address(), &[]);
    early.ok(&["fetch", &id]);
    assert_exports_identically(&early, &id, &dataset, work.path());
}

#[test]
fn a_blob_damaged_on_disk_is_marked_by_verify_and_repaired_by_fetch() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 8 * MIB, "damaged");
    write_random_file(&model.join("healthy.bin"), 8 * MIB, "healthy");
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    let a = Daemon::start();
    let id = a.add_artifact(&model);
    let d = start_joined_at(&a.peer_address(), &[]);
    d.wait_for_providers(&id, &[a.peer_id()]);
    d.ok(&["fetch", &id]);
    d.ok(&["pin", &id]);
    let hash = file_hash(&model.join("weights.bin")).to_hex().to_string();
    let stored = d.data_dir().join("blobs/data").join(format!("{hash}.data"));
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[5 * MIB as usize] ^= 0xff;
    std::fs::write(&stored, bytes).unwrap();

    let started = Instant::now();
    let verify = d.cli(&["verify"]);
    eprintln!("verify took {:?}", started.elapsed());
    assert!(!verify.success, "verify missed the damage:\n{verify}");
    let listed = d.ok_json(&["ls"]);
    assert_eq!(listed[0]["state"], "damaged", "{listed}");
    let started = Instant::now();
    let report = d.ok_json(&["fetch", &id]);
    eprintln!("repairing fetch took {:?}", started.elapsed());
    let downloaded = report["bytes_downloaded"].as_u64().unwrap();
    assert!(
        (8 * MIB..9 * MIB).contains(&downloaded),
        "the repair should fetch the damaged file again and nothing else: {report}\n{}",
        d.log()
    );
    d.ok(&["verify"]);
    let listed = d.ok_json(&["ls"]);
    assert_eq!(listed[0]["state"], "complete", "{listed}");
    assert_eq!(
        listed[0]["pinned"], true,
        "the repair lost the pin: {listed}"
    );
    assert_exports_identically(&d, &id, &model, work.path());
}
