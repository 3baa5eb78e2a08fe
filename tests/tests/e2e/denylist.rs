//! End-to-end: denylists published by one node and followed by others. A subscriber
//! refuses to fetch a listed artifact (saying which list and why), keeps no part of
//! it, stops serving and announcing one it already held, and lifts all of it when it
//! unsubscribes or the list drops the entry; nodes that do not subscribe are untouched.

use std::time::Duration;

use seedbank_tests::fixtures::MIB;
use seedbank_tests::{model_dir, start_joined, Daemon};

/// Exit code of a denied request.
const EXIT_DENIED: i32 = 8;
/// How long a subscriber may take to read a new revision of a list it follows (it
/// reads every 10 s here, the shortest interval allowed).
const REFRESH_DEADLINE: Duration = Duration::from_secs(90);

/// Waits until `ls` shows `id` as announced (or not).
fn wait_announced(daemon: &Daemon, id: &str, announced: bool) {
    let what = format!("{id} to be announced={announced}");
    daemon.wait_until(&what, Duration::from_secs(60), || {
        let entry = daemon.listed(id).unwrap();
        if entry["announced"] == announced {
            Ok(())
        } else {
            Err(entry.to_string())
        }
    });
}

/// The holder's count of blob requests it refused for a denylist.
const REFUSED_DENIED: &str = "seedbank_blob_requests_refused_total{reason=\"denied\"}";

#[test]
fn a_denylisted_root_is_refused_by_a_subscriber_and_still_served_by_others() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    model_dir(&model, "listed", 2 * MIB);

    let lister = Daemon::start();
    let seeder = start_joined(&lister, &[]);
    let subscriber = start_joined(&lister, &[]);
    let other = start_joined(&lister, &[]);
    let x = seeder.ok_json(&["publish", model.to_str().unwrap(), "--name", "toy"])["release"]
        ["root"]
        .as_str()
        .unwrap()
        .to_owned();
    let seeder_key = seeder.publisher_key();
    let lister_key = lister.publisher_key();

    let report = lister.ok_json(&[
        "denylist",
        "publish",
        "bad-models",
        &x,
        "--reason",
        "leaked weights",
    ]);
    assert_eq!(report["revision"], 1, "{report}");
    assert_eq!(report["entries"], 1, "{report}");

    // A list is followed only from a publisher the node trusts.
    let by_key = format!("{lister_key}/bad-models");
    let refused = subscriber.fails_with(
        &["denylist", "subscribe", &by_key],
        "not a publisher this node trusts",
    );
    assert_eq!(refused.code, Some(EXIT_DENIED), "{refused}");
    assert_eq!(
        subscriber.ok_json(&["denylist", "list"]),
        serde_json::json!([])
    );
    subscriber.ok(&["trust", "add", "lists", &lister_key]);
    let subscription = subscriber.ok_json(&["denylist", "subscribe", "lists/bad-models"]);
    assert_eq!(subscription["entries"], 1, "{subscription}");
    assert_eq!(subscription["revision"], 1, "{subscription}");
    assert!(subscription["last_error"].is_null(), "{subscription}");

    // Refused by id, by name and in the background, saying which list and why.
    let refused = subscriber.fails_with(&["fetch", &x], "lists/bad-models");
    assert!(refused.stderr.contains("leaked weights"), "{refused}");
    assert_eq!(refused.code, Some(EXIT_DENIED), "{refused}");
    subscriber.fails_with(&["fetch", &format!("{seeder_key}/toy")], "leaked weights");
    subscriber.fails_with(&["fetch", "--detach", &x], "leaked weights");
    // The Hugging Face gateway refuses it too.
    subscriber.ok(&["trust", "add", "org", &seeder_key]);
    let answer =
        reqwest::blocking::get(format!("{}/api/models/org/toy", subscriber.hf_endpoint())).unwrap();
    assert_eq!(answer.status(), reqwest::StatusCode::FORBIDDEN);
    assert!(answer.text().unwrap().contains("leaked weights"));
    // And it holds no part of it: no artifact, no job, not even the root or manifest
    // (its store holds the small list alone).
    assert!(subscriber.listed(&x).is_none());
    assert_eq!(subscriber.ok_json(&["jobs"]), serde_json::json!([]));
    let stored = subscriber.ok_json(&["status"])["store_bytes"]
        .as_u64()
        .unwrap();
    assert!(stored < 64 * 1024, "the subscriber stored {stored} bytes");

    // A node that does not subscribe fetches it as usual.
    other.wait_for_providers(&x, &[seeder.peer_id()]);
    other.ok_json(&["fetch", &x]);
    assert_eq!(other.listed(&x).unwrap()["state"], "complete");

    // The denial outlives a restart, with no network needed to apply it. (Restarted
    // with lists read every 10 s, the shortest interval allowed.)
    let mut subscriber = subscriber;
    std::fs::write(
        subscriber.data_dir().join("config.toml"),
        "denylist_refresh = \"10s\"\n",
    )
    .unwrap();
    subscriber.restart();
    subscriber.fails_with(&["fetch", &x], "leaked weights");

    // A revision that drops the entry lifts the denial once the subscriber reads it, on
    // its schedule.
    let report = lister.ok_json(&["denylist", "publish", "bad-models", "--remove", &x]);
    assert_eq!(report["revision"], 2, "{report}");
    assert_eq!(report["removed"], 1, "{report}");
    assert_eq!(report["entries"], 0, "{report}");
    let lists = subscriber.wait_until(
        "the subscriber to read revision 2",
        REFRESH_DEADLINE,
        || {
            let lists = subscriber.ok_json(&["denylist", "list"]);
            if lists[0]["revision"] == 2 {
                Ok(lists)
            } else {
                Err(lists.to_string())
            }
        },
    );
    assert_eq!(lists[0]["entries"], 0, "{lists}");
    let refreshed = subscriber.ok_json(&["denylist", "refresh"]);
    assert_eq!(refreshed["denied"], 0, "{refreshed}");
    assert!(
        refreshed["subscriptions"][0]["last_error"].is_null(),
        "{refreshed}"
    );
    subscriber.ok_json(&["fetch", &x]);
    assert_eq!(subscriber.listed(&x).unwrap()["state"], "complete");
}

#[test]
fn a_node_stops_serving_and_announcing_what_it_held_while_it_follows_a_list_naming_it() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    model_dir(&model, "held-before", 2 * MIB);

    let lister = Daemon::start();
    let holder = start_joined(&lister, &[]);
    let x = holder.add_artifact(&model);
    wait_announced(&holder, &x, true);
    lister.ok(&[
        "denylist",
        "publish",
        "bad-models",
        &x,
        "--reason",
        // With a bidi override that would show the rest of the line reversed.
        "malware in a pickle\u{202e}lkp.sdrow",
    ]);
    holder.ok(&["trust", "add", "lists", &lister.publisher_key()]);
    holder.ok(&["denylist", "subscribe", "lists/bad-models"]);

    // Still on disk, marked denied, and its announcement withdrawn.
    let entry = holder.listed(&x).unwrap();
    assert_eq!(entry["state"], "complete", "{entry}");
    assert_eq!(entry["denied"][0]["list"], "lists/bad-models", "{entry}");
    assert_eq!(
        entry["denied"][0]["reason"], "malware in a pickle\u{202e}lkp.sdrow",
        "{entry}"
    );
    assert_eq!(entry["announced"], false, "{entry}");
    let shown = holder.ok(&["show", &x]).stdout;
    assert!(
        shown.contains("denied:   by the denylist lists/bad-models"),
        "{shown}"
    );
    // Shown to a person, the override is escaped, not obeyed.
    assert!(
        shown.contains("malware in a pickle\\u{202e}lkp.sdrow") && !shown.contains('\u{202e}'),
        "{shown}"
    );

    // A fetcher that can get it only from the holder fails: the holder refuses it.
    let fetcher = start_joined(&holder, &[]);
    let refused_before = holder.metric(REFUSED_DENIED);
    let failed = fetcher.cli(&["fetch", &x]);
    assert!(
        !failed.success,
        "the holder served a denied artifact:\n{failed}"
    );
    assert!(fetcher.listed(&x).is_none());
    let refused_after = holder.metric(REFUSED_DENIED);
    assert!(
        refused_after > refused_before,
        "the holder's seed gate refused nothing ({refused_before} -> {refused_after}):\n{failed}"
    );

    // Unsubscribing lifts it: announced again, and served.
    let ended = holder.ok_json(&["denylist", "unsubscribe", "lists/bad-models"]);
    assert_eq!(ended["list"], "lists/bad-models", "{ended}");
    assert_eq!(holder.listed(&x).unwrap()["denied"], serde_json::json!([]));
    wait_announced(&holder, &x, true);
    fetcher.ok_json(&["fetch", &x]);
    assert_eq!(fetcher.listed(&x).unwrap()["state"], "complete");
}
