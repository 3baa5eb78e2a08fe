//! End-to-end: preservation with real daemons. Pins with a replica target count the
//! copies that prove they exist (spot checks, not DHT claims); followers keep a
//! publisher's new releases; a followed collection's members are fetched least
//! replicated first, within the preservation budget.

use std::time::Duration;

use seedbank_tests::fixtures::MIB;
use seedbank_tests::{model_dir, start_joined, write_random_file, Daemon};

/// Settings of a node that follows: short rounds, no random wait.
const FOLLOWER_CONFIG: &str = "follow_interval = \"2s\"\nrepair_jitter = \"0s\"\n";

/// Starts a daemon joined to `seed` whose `config.toml` holds `config`.
fn start_configured(seed: &Daemon, config: &str) -> Daemon {
    let daemon = Daemon::start_configured(config, &["--bootstrap", &seed.peer_address()]);
    daemon.wait_for_routing_table(1);
    daemon
}

/// [`start_configured`] at the loopback address `ip`: a network of its own when `ip`
/// is in another /24 than the seed's (copies count once per network).
fn start_configured_at(ip: &str, seed: &Daemon, config: &str) -> Daemon {
    let bootstrap = seed.quic_peer_address();
    let daemon = Daemon::start_configured_at(ip, config, &["--bootstrap", &bootstrap]);
    daemon.wait_for_routing_table(1);
    daemon
}

/// The entry of `id` in a health report.
fn entry_of(report: &serde_json::Value, id: &str) -> serde_json::Value {
    report["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("{id} is not in the health report: {report}"))
        .clone()
}

/// `health` (with `args`) as JSON; it exits 10 exactly when an artifact is under target.
fn health_report(daemon: &Daemon, args: &[&str]) -> serde_json::Value {
    let mut line = vec!["--json", "health"];
    line.extend_from_slice(args);
    let output = daemon.cli(&line);
    let report = output.json();
    let under = report["under_target"].as_u64().unwrap();
    let expected = if under > 0 { 10 } else { 0 };
    assert_eq!(output.code, Some(expected), "{output}");
    report
}

/// The check of `peer` in a health entry, which must be there.
fn check_of(health: &serde_json::Value, peer: &str) -> serde_json::Value {
    health["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["peer"] == peer)
        .unwrap_or_else(|| panic!("{peer} was not checked: {health}"))
        .clone()
}

/// The health entry of `id` after a fresh round of spot checks.
fn checked_health(daemon: &Daemon, id: &str) -> serde_json::Value {
    entry_of(&health_report(daemon, &["--refresh"]), id)
}

/// Waits until the first follow of `p`, whose rounds run every 2 s, has been checked
/// twice more.
fn wait_for_two_more_rounds(p: &Daemon) {
    let checked_at = |p: &Daemon| {
        p.ok_json(&["following"])["follows"][0]["checked_at"]
            .as_u64()
            .unwrap_or(0)
    };
    let after = checked_at(p);
    p.wait_until(
        "the follow to be checked twice more",
        Duration::from_secs(30),
        || match checked_at(p) {
            seen if seen >= after + 4 => Ok(()),
            seen => Err(format!("checked at {seen}, {after} before")),
        },
    );
}

#[test]
fn replica_targets_count_verified_copies_and_followers_keep_new_releases() {
    let work = tempfile::tempdir().unwrap();
    // A counts the copies, so it is QUIC-only too: a peer reaching it by TCP would come
    // from 127.0.0.1 and B and C would look like one network.
    let a = Daemon::start_configured_at("127.0.3.1", "", &[]);
    // B and C in networks of their own: three copies in three places.
    let b = start_configured_at("127.0.1.1", &a, FOLLOWER_CONFIG);
    let c = start_configured_at("127.0.2.1", &a, FOLLOWER_CONFIG);
    let v1_dir = work.path().join("v1");
    model_dir(&v1_dir, "toy-v1", 2 * MIB);
    let v1 = a.publish(&v1_dir, "toy", "v1");

    // One copy, this node's own: pinned with a target of 3, it is under target.
    let pinned = a.ok_json(&["pin", &v1, "--replicas", "3"]);
    assert_eq!(pinned["replica_target"], 3, "{pinned}");
    let health = checked_health(&a, &v1);
    assert_eq!(health["verified"], 1, "{health}");
    assert_eq!(health["under_target"], true, "{health}");
    let text = a.cli(&["health"]).stdout;
    assert!(text.contains("UNDER TARGET"), "{text}");

    // Two followers pick it up: three verified copies.
    let key = a.publisher_key();
    let target = format!("{key}/toy");
    for follower in [&b, &c] {
        let entry = follower.ok_json(&["follow", &target]);
        assert_eq!(entry["target"], target.as_str(), "{entry}");
    }
    for follower in [&b, &c] {
        follower.wait_until_complete(&v1, Duration::from_secs(60));
    }
    a.wait_for_providers(&v1, &[b.peer_id(), c.peer_id()]);
    let health = checked_health(&a, &v1);
    assert_eq!(health["verified"], 3, "{health}");
    assert_eq!(health["under_target"], false, "{health}");
    let following = b.ok_json(&["following"]);
    assert_eq!(
        following["follows"][0]["kept"][0],
        v1.as_str(),
        "{following}"
    );

    // C deletes its copy: the DHT still lists it, but it no longer proves anything.
    c.ok(&["unfollow", &target]);
    c.ok(&["rm", &v1]);
    let health = checked_health(&a, &v1);
    assert_eq!(health["verified"], 2, "{health}");
    assert!(health["providers"].as_u64().unwrap() >= 3, "{health}");
    let c_check = check_of(&health, &c.peer_id());
    assert_eq!(c_check["verified"], false, "{c_check}");
    assert_eq!(health["under_target"], true, "{health}");

    // A new revision reaches the follower within a few of its 2 s rounds.
    let v2_dir = work.path().join("v2");
    model_dir(&v2_dir, "toy-v2", 2 * MIB);
    let v2 = a.publish(&v2_dir, "toy", "v2");
    b.wait_until_complete(&v2, Duration::from_secs(60));
    let listed = b.ok_json(&["ls"]);
    let v2_entry = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == v2.as_str())
        .unwrap()
        .clone();
    assert_eq!(v2_entry["pinned"], true, "{v2_entry}");
    assert!(b.holds(&v1), "the follower dropped the earlier release");
    // C no longer follows: it does not fetch v2.
    assert!(!c.holds(&v2));
}

#[test]
fn a_node_that_dropped_a_revision_but_kept_its_shared_shard_is_never_counted_for_it() {
    let work = tempfile::tempdir().unwrap();
    let a = Daemon::start_configured_at("127.0.3.1", "", &[]);
    let l2 = start_configured_at("127.0.1.1", &a, "");
    // Two revisions sharing a 4 MiB shard, each with a small file of its own: revisions
    // of a model usually share most of their bytes.
    let revision = |name: &str| {
        let dir = work.path().join(name);
        write_random_file(&dir.join("shard-1.bin"), 4 * MIB, "shared shard");
        write_random_file(&dir.join("shard-2.bin"), 64 * 1024, name);
        a.publish(&dir, "toy", name)
    };
    let v1 = revision("v1");
    let v2 = revision("v2");
    a.ok(&["pin", &v1, "--replicas", "2"]);
    l2.ok(&["fetch", &v1]);
    l2.ok(&["fetch", &v2]);
    a.wait_for_providers(&v1, &[l2.peer_id()]);
    let health = checked_health(&a, &v1);
    assert_eq!(health["verified"], 2, "both hold v1: {health}");

    // L2 drops v1; the shard stays for v2, and the DHT still lists L2 for v1.
    l2.ok(&["rm", &v1]);
    for round in 0..10 {
        let health = checked_health(&a, &v1);
        assert_eq!(
            health["verified"], 1,
            "round {round}: only A holds v1: {health}"
        );
        assert_eq!(health["under_target"], true, "{health}");
        let l2_check = check_of(&health, &l2.peer_id());
        assert_eq!(l2_check["verified"], false, "round {round}: {l2_check}");
        assert!(
            l2_check["error"].as_str().unwrap().contains("shard-2.bin"),
            "the check names the missing file: {l2_check}"
        );
    }
    let shown = a.cli(&["health"]);
    assert_eq!(shown.code, Some(10), "{shown}");
    assert!(
        shown
            .stdout
            .contains(&format!("not counted: {}", l2.peer_id())),
        "{shown}"
    );
}

#[test]
fn a_followed_collection_is_kept_least_replicated_first_within_the_budget() {
    let work = tempfile::tempdir().unwrap();
    let s1 = Daemon::start();
    // Three holders in three networks: copies count once per network.
    let s2 = start_configured_at("127.0.1.1", &s1, "");
    let s3 = start_configured_at("127.0.2.1", &s1, "");
    // M1 has one copy, M2 two, M3 three.
    let mut members = Vec::new();
    for (i, holders) in [vec![&s1], vec![&s1, &s2], vec![&s1, &s2, &s3]]
        .into_iter()
        .enumerate()
    {
        let dir = work.path().join(format!("m{i}"));
        write_random_file(&dir.join("data.bin"), MIB, &format!("member-{i}"));
        let mut id = String::new();
        for holder in &holders {
            id = holder.add_artifact(&dir);
        }
        // A node's lookup does not list itself; s3 sees the others.
        let peers: Vec<String> = holders
            .iter()
            .map(|h| h.peer_id())
            .filter(|p| *p != s3.peer_id())
            .collect();
        s3.wait_for_providers(&id, &peers);
        members.push(id);
    }
    let mut args = vec!["collection", "publish", "keep-these", "--replicas", "4"];
    args.extend(members.iter().map(String::as_str));
    let report = s1.ok_json(&args);
    assert_eq!(report["release"]["kind"], "collection", "{report}");

    // Room for two of the three 1 MiB members (and the small list itself).
    let config = format!(
        "{FOLLOWER_CONFIG}preserve_budget = \"{}\"\nrepairs_per_round = 5\n",
        2 * MIB + 64 * 1024
    );
    // The follower counts the copies: QUIC-only at an address of its own, so that S2
    // and S3 cannot reach it by TCP from 127.0.0.1 and look like S1's network.
    let p = start_configured_at("127.0.3.1", &s1, &config);
    let target = format!("{}/keep-these", s1.publisher_key());
    p.ok(&["follow", &target]);
    for id in &members[..2] {
        p.wait_until_complete(id, Duration::from_secs(60));
    }
    // Two more rounds after that: the third never fits.
    wait_for_two_more_rounds(&p);
    assert!(
        !p.holds(&members[2]),
        "the most replicated member was fetched past the budget"
    );
    let following = p.ok_json(&["following"]);
    let used = following["budget_used"].as_u64().unwrap();
    assert!(used <= 2 * MIB + 64 * 1024, "{following}");
    assert_eq!(
        following["follows"][0]["watched"].as_array().unwrap().len(),
        3,
        "{following}"
    );
    for id in &members[..2] {
        let listed = p.ok_json(&["ls"]);
        let entry = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == id.as_str())
            .unwrap()
            .clone();
        assert_eq!(entry["pinned"], true, "{entry}");
    }
    // Health lists the watched member that is not here, with its copies.
    let third = entry_of(&health_report(&p, &[]), &members[2]);
    assert_eq!(third["held_here"], false, "{third}");
    assert_eq!(third["replica_target"], 4, "{third}");
}

#[test]
fn a_member_nobody_holds_is_reported_and_tried_less_often_while_the_rest_are_listed() {
    let work = tempfile::tempdir().unwrap();
    let s1 = Daemon::start();
    let mut s2 = start_joined(&s1, &[]);
    let dir = work.path().join("gone");
    write_random_file(&dir.join("data.bin"), MIB, "gone");
    let gone = s2.add_artifact(&dir);
    s1.wait_for_providers(&gone, &[s2.peer_id()]);
    s1.ok(&["collection", "publish", "keep-this", &gone]);
    // Its only holder leaves before anyone else ever read it.
    s2.stop();

    let p = start_configured(&s1, FOLLOWER_CONFIG);
    p.ok(&["follow", &format!("{}/keep-this", s1.publisher_key())]);
    p.wait_until("the collection to be read", Duration::from_secs(60), || {
        let following = p.ok_json(&["following"]);
        let watched = following["follows"][0]["watched"].as_array();
        match watched {
            Some(w) if w.len() == 1 => Ok(()),
            _ => Err(following.to_string()),
        }
    });
    // The keeper tries it once, then waits a health_interval (1 h) before trying again,
    // however many rounds run meanwhile.
    let member_of = |health: &serde_json::Value| entry_of(health, &gone);
    let started = std::time::Instant::now();
    p.wait_until(
        "the keeper to try the member",
        Duration::from_secs(60),
        || {
            let member = member_of(&health_report(&p, &[]));
            match member["failed_checks"].as_u64() {
                Some(n) if n > 0 => Ok(()),
                _ => Err(member.to_string()),
            }
        },
    );
    wait_for_two_more_rounds(&p);
    let member = member_of(&health_report(&p, &[]));
    assert_eq!(
        member["failed_checks"], 1,
        "checked again too soon: {member}"
    );
    eprintln!("tried once in {:?}", started.elapsed());

    // Asked to, it checks now, and says why it could not.
    let text = p.cli(&["health", "--refresh"]).stdout;
    assert!(text.contains("CHECK FAILED"), "{text}");
    assert!(text.contains(&format!("could not check {gone}")), "{text}");
    assert!(
        text.contains(&format!("{gone}: no provider answered the last 2 checks")),
        "{text}"
    );
    let health = health_report(&p, &[]);
    let member = member_of(&health);
    assert_eq!(member["failed_checks"], 2, "{member}");
    assert_eq!(member["verified"], 0, "{member}");
    // The collection itself, pinned for the follow, is checked as usual.
    let collection = health["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] != gone.as_str())
        .unwrap_or_else(|| panic!("{health}"))
        .clone();
    assert!(collection["checked_at"].is_u64(), "{collection}");
    assert_eq!(collection["failed_checks"], 0, "{collection}");
    assert!(
        collection["verified"].as_u64().unwrap() >= 1,
        "{collection}"
    );
}

#[test]
fn a_release_that_understates_its_size_is_not_kept_beyond_the_budget() {
    use seedbank_protocol::name_record::name_key;
    use seedbank_protocol::{ContentId, PublisherSecret};
    use seedbank_tests::records::{name_record, RecordPeer};

    let work = tempfile::tempdir().unwrap();
    let seeder = Daemon::start();
    let big = work.path().join("big");
    write_random_file(&big.join("weights.bin"), 12 * MIB, "understated");
    let root: ContentId = seeder.add_artifact(&big).parse().unwrap();
    // A publisher's release of those real 12 MiB, claiming one byte.
    let mallory = PublisherSecret::from_seed([88; 32]);
    let record = name_record(&mallory, root, "small", 1);
    assert_eq!(record.body().latest.body().size, 1);
    let records = RecordPeer::start();
    records.serve(name_key(&mallory.public(), "small"), record.encode());

    let config = format!("{FOLLOWER_CONFIG}preserve_budget = \"{}\"\n", 10 * MIB);
    let p = Daemon::start_configured(
        &config,
        &[
            "--bootstrap",
            &seeder.peer_address(),
            "--bootstrap",
            &records.peer_address(),
        ],
    );
    p.wait_for_routing_table(2);
    p.wait_for_providers(&root.to_string(), &[seeder.peer_id()]);
    p.ok(&["follow", &format!("{}/small", mallory.public())]);
    let refusal = p.wait_until(
        "the follow to refuse the release",
        Duration::from_secs(30),
        || {
            let following = p.ok_json(&["following"]);
            match following["follows"][0]["last_error"].as_str() {
                Some(error) if error.contains("preservation budget") => Ok(error.to_owned()),
                _ => Err(format!("following: {following}")),
            }
        },
    );
    assert!(refusal.contains(&(12 * MIB).to_string()), "{refusal}");
    assert!(!p.holds(&root.to_string()));
    assert!(p.jobs().is_empty(), "{:?}", p.jobs());
}

#[test]
fn providers_that_relay_the_challenge_back_to_the_checker_prove_nothing() {
    use seedbank_tests::hostile::HostileSeeder;

    let work = tempfile::tempdir().unwrap();
    let a = Daemon::start();
    let dir = work.path().join("only-here");
    write_random_file(&dir.join("data.bin"), 2 * MIB, "only here");
    let id = a.add_artifact(&dir);
    a.ok(&["pin", &id, "--replicas", "4"]);
    // Four sybils hold nothing; each claims the artifact and answers any blob request
    // by asking A for the same bytes and passing them on.
    let root = id.parse().unwrap();
    let address = a.peer_address();
    let sybils: Vec<HostileSeeder> = (0..4)
        .map(|_| {
            let sybil = HostileSeeder::start_relaying_to(&address);
            sybil.claim(root);
            sybil
        })
        .collect();
    let ids: Vec<String> = sybils.iter().map(HostileSeeder::peer_id).collect();
    a.wait_for_providers(&id, &ids);

    let health = checked_health(&a, &id);
    assert_eq!(health["verified"], 1, "only A's own copy exists: {health}");
    assert_eq!(health["verified_peers"], 1, "{health}");
    assert_eq!(health["under_target"], true, "{health}");
    for sybil in &ids {
        let check = check_of(&health, sybil);
        assert_eq!(check["verified"], false, "{check}");
    }
    // Between checks, A serves the same ranges to anyone as before.
    let fetcher = start_joined(&a, &[]);
    fetcher.ok(&["fetch", &id]);
}

#[test]
fn providers_that_never_answer_cost_one_spot_check_timeout_per_round() {
    use seedbank_node::preserve::health::ARTIFACTS_AT_ONCE;
    use seedbank_node::preserve::spot_check::SPOT_CHECK_TIMEOUT;
    use seedbank_tests::hostile::HostileSeeder;

    // Twelve peers that accept blob requests and never answer, claiming every artifact
    // A pins: more artifacts than A checks at once.
    let silent: Vec<HostileSeeder> = (0..12).map(|_| HostileSeeder::start_silent()).collect();
    let addresses: Vec<String> = silent.iter().map(HostileSeeder::peer_address).collect();
    let mut args = Vec::new();
    for address in &addresses {
        args.extend(["--bootstrap", address.as_str()]);
    }
    let a = Daemon::start_with(&args);
    a.wait_for_routing_table(12);
    let work = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..ARTIFACTS_AT_ONCE + 2)
        .map(|i| {
            let dir = work.path().join(format!("a{i}"));
            write_random_file(&dir.join("data.bin"), 256 * 1024, &format!("silent {i}"));
            let id = a.add_artifact(&dir);
            a.ok(&["pin", &id, "--replicas", "2"]);
            for peer in &silent {
                peer.claim(id.parse().unwrap());
            }
            id
        })
        .collect();
    let silent_ids: Vec<String> = silent.iter().map(HostileSeeder::peer_id).collect();
    for id in &ids {
        a.wait_for_providers(id, &silent_ids);
    }

    let started = std::time::Instant::now();
    let report = health_report(&a, &["--refresh"]);
    eprintln!(
        "health --refresh of {} artifacts, each claimed by 12 silent peers: {:?}",
        ids.len(),
        started.elapsed()
    );
    let timeout_text = format!("sent nothing for {} s", SPOT_CHECK_TIMEOUT.as_secs());
    let (mut timed_out, mut skipped) = (0, 0);
    for id in &ids {
        let health = entry_of(&report, id);
        assert_eq!(health["verified"], 1, "only A's own copy exists: {health}");
        assert_eq!(health["under_target"], true, "{health}");
        let peers = health["peers"].as_array().unwrap();
        assert_eq!(peers.len(), 12, "every silent peer was checked: {health}");
        for peer in peers {
            assert_eq!(peer["verified"], false, "{peer}");
            let error = peer["error"].as_str().unwrap_or_default();
            if error.contains(&timeout_text) {
                timed_out += 1;
            } else if error.contains("let another spot check of this round time out") {
                skipped += 1;
            } else {
                panic!("unexpected failure: {peer}");
            }
        }
    }
    // The first artifacts waited for the silent peers once; those checked after them
    // did not wait again.
    assert!(timed_out >= 12, "{timed_out} timeouts: {report}");
    assert!(
        skipped >= 12,
        "no check skipped a peer already silent: {report}"
    );
}
