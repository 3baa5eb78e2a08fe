//! End-to-end: a node with `max_storage` evicts unpinned artifacts least recently used
//! first to make room for a fetch or an add, never a pinned one, remembers the order
//! across a restart, and refuses with the numbers what cannot fit.

use seedbank_tests::fixtures::MIB;
use seedbank_tests::{artifact_id, start_joined, write_random_file, Daemon};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// Adds a directory holding one file of `bytes` pseudo-random bytes seeded by `name`.
fn add_sized(daemon: &Daemon, work: &Path, name: &str, bytes: u64) -> String {
    let dir = work.join(name);
    write_random_file(&dir.join(format!("{name}.bin")), bytes, name);
    daemon.add_artifact(&dir)
}

/// The ids of the artifacts `daemon` holds.
fn held(daemon: &Daemon) -> BTreeSet<String> {
    daemon.artifacts().iter().map(artifact_id).collect()
}

fn ids(list: &[&String]) -> BTreeSet<String> {
    list.iter().map(|id| (*id).clone()).collect()
}

/// Checks the node stays within its limit, and says so in `status`.
fn assert_within(daemon: &Daemon, max: u64) {
    let status = daemon.ok_json(&["status"]);
    assert_eq!(status["max_storage"], max, "{status}");
    let used = status["storage_used"].as_u64().unwrap();
    assert!(
        used <= max,
        "{used} bytes stored over a max of {max}: {status}"
    );
    let text = daemon.ok(&["status"]).stdout;
    assert!(text.contains("of max_storage"), "{text}");
    let metrics = daemon.metrics();
    assert!(
        metrics.contains(&format!("\nseedbank_max_storage_bytes {max}\n")),
        "{metrics}"
    );
}

/// Writes an artifact out, which counts as using it.
fn use_it(daemon: &Daemon, id: &str, work: &Path) {
    let dir = work.join(format!("export-{}", &id[..12]));
    daemon.ok(&["export", id, dir.to_str().unwrap()]);
}

#[test]
fn fetches_evict_the_least_recently_used_unpinned_artifacts_in_an_order_that_outlives_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let seeder = Daemon::start();
    let [pinned, b, c, d, e] =
        ["pinned", "b", "c", "d", "e"].map(|name| add_sized(&seeder, work.path(), name, MIB));
    // Room for three of them (and their small manifests), not four.
    let max = 3 * MIB + MIB / 2;
    let max_flag = max.to_string();
    let mut fetcher = start_joined(&seeder, &["--max-storage", &max_flag]);

    fetcher.ok(&["fetch", &pinned, "--pin"]);
    fetcher.ok(&["fetch", &b]);
    fetcher.ok(&["fetch", &c]);
    // Reading b makes c the least recently used.
    use_it(&fetcher, &b, work.path());
    fetcher.ok(&["fetch", &d]);
    assert_eq!(held(&fetcher), ids(&[&pinned, &b, &d]));
    assert_within(&fetcher, max);
    assert!(
        fetcher
            .log()
            .contains("evicting the least recently used artifact"),
        "{}",
        fetcher.log()
    );

    // Added (fetched) at a later second than d, so the order by arrival alone differs
    // from the order of use below.
    let d_added = fetcher.listed(&d).unwrap()["added_at"].as_u64().unwrap();
    fetcher.advance_clock(Duration::from_secs(2));
    fetcher.ok(&["fetch", &e]);
    assert_eq!(held(&fetcher), ids(&[&pinned, &d, &e]));
    let e_added = fetcher.listed(&e).unwrap()["added_at"].as_u64().unwrap();
    assert!(e_added > d_added, "e added at {e_added}, d at {d_added}");
    use_it(&fetcher, &d, work.path());

    // The order of use is kept in the node's database: after a restart, e (fetched
    // after d but used before it) goes, and c, evicted before, comes back whole.
    fetcher.restart();
    fetcher.ok(&["fetch", &c]);
    assert_eq!(held(&fetcher), ids(&[&pinned, &d, &c]));
    assert_within(&fetcher, max);
    let verify = fetcher.ok_json(&["verify"]);
    assert_eq!(verify["corrupt"].as_array().unwrap().len(), 0, "{verify}");
    let listed = fetcher.ok_json(&["ls"]);
    let pinned_entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == pinned.as_str())
        .unwrap();
    assert_eq!(pinned_entry["pinned"], true);
    assert_eq!(pinned_entry["state"], "complete");
}

#[test]
fn what_cannot_fit_is_refused_with_the_numbers_and_an_add_evicts_too() {
    let work = tempfile::tempdir().unwrap();
    let seeder = Daemon::start();
    let pinned = add_sized(&seeder, work.path(), "pinned", MIB);
    let cached = add_sized(&seeder, work.path(), "cached", MIB / 2);
    let big = add_sized(&seeder, work.path(), "big", 2 * MIB);
    let max = 2 * MIB + MIB / 2;
    let fetcher = start_joined(&seeder, &["--max-storage", "2560KiB"]);
    fetcher.ok(&["fetch", &pinned, "--pin"]);
    fetcher.ok(&["fetch", &cached]);

    // Evicting the cached artifact would not make room for 2 MiB beside the pinned one:
    // the fetch (and the pin it asks for) is refused, and nothing is evicted for it.
    let refused = fetcher.fails_with(
        &["fetch", &big, "--pin"],
        "needs 2.0 MiB more but max_storage is 2.5 MiB and 1.0 MiB is held by pins",
    );
    assert!(
        refused
            .stderr
            .contains("raise max_storage or unpin something"),
        "{refused}"
    );
    assert_eq!(held(&fetcher), ids(&[&pinned, &cached]));
    let jobs = fetcher.ok_json(&["status"])["fetches"].clone();
    assert_eq!(jobs.as_array().unwrap().len(), 0, "{jobs}");
    fetcher.ok(&["verify"]);
    assert_within(&fetcher, max);

    // Adding 1 MiB here evicts the cached artifact, never the pinned one.
    let added = add_sized(&fetcher, work.path(), "local", MIB);
    assert_eq!(held(&fetcher), ids(&[&pinned, &added]));
    assert_within(&fetcher, max);
    fetcher.ok(&["verify"]);

    // Once unpinned, the old pin is as evictable as anything: now the big one fits.
    fetcher.ok(&["unpin", &pinned]);
    fetcher.ok(&["fetch", &big]);
    assert!(held(&fetcher).contains(&big));
    assert!(!held(&fetcher).contains(&pinned));
    assert_within(&fetcher, max);
}
