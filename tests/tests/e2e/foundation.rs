//! End-to-end: one machine, no network. A user adds, lists, shows, exports, pins,
//! collects garbage and verifies through the real CLI and a real daemon.

use std::path::Path;
use std::time::Duration;

use seedbank_tests::fixtures::MIB;
use seedbank_tests::{
    artifact_id, file_hash, tree_hashes, tree_size, write_random_file, Daemon, SmallDisk,
};

/// A model directory with nested folders, an empty file and one large file.
fn make_model(dir: &Path, large_bytes: u64) {
    std::fs::create_dir_all(dir.join("tokenizer/extra")).unwrap();
    std::fs::write(dir.join("README.md"), "# Tiny model\nA test card.\n").unwrap();
    std::fs::write(dir.join("config.json"), r#"{"hidden": 64}"#).unwrap();
    std::fs::write(dir.join("tokenizer/extra/empty.txt"), b"").unwrap();
    write_random_file(&dir.join("tokenizer/vocab.bin"), 100_000, "vocab");
    write_random_file(&dir.join("model.safetensors"), large_bytes, "weights");
}

#[test]
fn added_directory_lists_shows_and_exports_byte_identical() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("tiny-model");
    make_model(&model, 200 * MIB);
    let daemon = Daemon::start();

    let added = daemon.ok_json(&["add", model.to_str().unwrap(), "--licence", "Apache-2.0"]);
    let id = artifact_id(&added);
    assert!(id.starts_with("sb1"), "{added}");
    assert_eq!(added["files"], 5);
    assert_eq!(added["name"], "tiny-model");

    let list = daemon.ok_json(&["ls"]);
    let entry = &list.as_array().unwrap()[0];
    assert_eq!(entry["id"], id.as_str());
    assert_eq!(entry["state"], "complete");
    assert_eq!(entry["pinned"], false);
    assert_eq!(entry["size"].as_u64().unwrap(), tree_size(&model));
    let table = daemon.ok(&["ls"]).stdout;
    assert!(
        table.contains("tiny-model") && table.contains(&id),
        "{table}"
    );

    let shown = daemon.ok_json(&["show", "tiny-model"]);
    assert_eq!(shown["licence"], "Apache-2.0");
    assert_eq!(shown["card"], "README.md");
    let paths: Vec<_> = shown["manifest"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        paths,
        [
            "README.md",
            "config.json",
            "model.safetensors",
            "tokenizer/extra/empty.txt",
            "tokenizer/vocab.bin"
        ]
    );

    let out = work.path().join("export");
    let report = daemon.ok_json(&["export", &id, out.to_str().unwrap()]);
    assert_eq!(report["files"], 5);
    assert_eq!(
        tree_hashes(&out),
        tree_hashes(&model),
        "export differs from the original"
    );

    // A second export refuses to overwrite, and --force does.
    daemon.fails_with(&["export", &id, out.to_str().unwrap()], "already exists");
    daemon.ok(&["export", &id, out.to_str().unwrap(), "--force"]);
    assert_eq!(tree_hashes(&out), tree_hashes(&model));

    // --include exports matching files only, with their relative paths.
    let partial = work.path().join("partial");
    daemon.ok(&[
        "export",
        &id,
        partial.to_str().unwrap(),
        "--include",
        "tokenizer/**",
    ]);
    let got: Vec<_> = tree_hashes(&partial).into_iter().map(|(p, _)| p).collect();
    assert_eq!(got, ["tokenizer/extra/empty.txt", "tokenizer/vocab.bin"]);
    daemon.fails_with(
        &[
            "export",
            &id,
            partial.to_str().unwrap(),
            "--include",
            "*.gguf",
        ],
        "no file",
    );
}

#[test]
fn pins_survive_restart_and_gc_frees_only_unpinned() {
    let work = tempfile::tempdir().unwrap();
    let keep = work.path().join("keep");
    let drop = work.path().join("drop");
    write_random_file(&keep.join("weights.bin"), 3 * MIB, "keep");
    write_random_file(&drop.join("weights.bin"), 5 * MIB, "drop");
    let mut daemon = Daemon::start();
    let keep_id = artifact_id(&daemon.ok_json(&["add", keep.to_str().unwrap(), "--pin"]));
    let drop_id =
        artifact_id(&daemon.ok_json(&["add", drop.to_str().unwrap(), "--kind", "dataset"]));

    daemon.restart();
    let list = daemon.ok_json(&["ls"]);
    let pinned: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["pinned"] == true)
        .map(artifact_id)
        .collect();
    assert_eq!(
        pinned,
        std::slice::from_ref(&keep_id),
        "pin did not survive the restart: {list}"
    );

    let report = daemon.ok_json(&["gc"]);
    assert_eq!(report["artifacts_removed"][0]["id"], drop_id.as_str());
    assert_eq!(report["artifacts_removed"].as_array().unwrap().len(), 1);
    assert!(
        report["bytes_freed"].as_u64().unwrap() >= 5 * MIB,
        "{report}"
    );
    let list = daemon.ok_json(&["ls"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    daemon.fails_with(&["show", &drop_id], "no artifact");

    let out = work.path().join("out");
    daemon.ok(&["export", &keep_id, out.to_str().unwrap()]);
    assert_eq!(
        file_hash(&out.join("weights.bin")),
        file_hash(&keep.join("weights.bin"))
    );

    // Unpinned, it goes at the next gc; pin and unpin say when nothing changed.
    let again = daemon.ok_json(&["pin", &keep_id]);
    assert_eq!(again["changed"], false);
    daemon.ok(&["unpin", &keep_id]);
    let report = daemon.ok_json(&["gc"]);
    assert_eq!(report["artifacts_removed"][0]["id"], keep_id.as_str());
    assert_eq!(report["artifacts_removed"].as_array().unwrap().len(), 1);
    let status = daemon.ok_json(&["status"]);
    assert_eq!(status["artifacts"], 0);
    assert_eq!(status["store_bytes"], 0);
}

#[test]
fn verify_finds_a_flipped_byte_and_export_refuses_it() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("m");
    write_random_file(&model.join("weights.bin"), 4 * MIB, "flip");
    let daemon = Daemon::start();
    let id = artifact_id(&daemon.ok_json(&["add", model.to_str().unwrap()]));
    daemon.ok(&["verify"]);

    let hash = file_hash(&model.join("weights.bin")).to_hex().to_string();
    let stored = daemon
        .data_dir()
        .join("blobs/data")
        .join(format!("{hash}.data"));
    let mut bytes =
        std::fs::read(&stored).unwrap_or_else(|e| panic!("no blob file {}: {e}", stored.display()));
    bytes[1_000_000] ^= 0x01;
    std::fs::write(&stored, bytes).unwrap();

    let output = daemon.fails_with(&["verify"], "");
    assert!(
        output.stdout.contains("CORRUPT") && output.stdout.contains(&hash),
        "{output}"
    );
    assert!(output.stdout.contains("m@main:weights.bin"), "{output}");

    let out = work.path().join("out");
    daemon.fails_with(&["export", &id, out.to_str().unwrap()], "do not match");
    assert!(
        !out.join("weights.bin").exists(),
        "a corrupt file was exported"
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(
        leftovers.is_empty(),
        "export left partial files behind: {leftovers:?}"
    );
}

#[test]
fn referenced_files_are_not_copied_and_changes_are_noticed() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("ref-model");
    write_random_file(&model.join("weights.bin"), 2 * MIB, "ref");
    let daemon = Daemon::start();
    let id = artifact_id(&daemon.ok_json(&["add", "--reference", model.to_str().unwrap()]));
    let hash = file_hash(&model.join("weights.bin")).to_hex().to_string();
    assert!(
        !daemon
            .data_dir()
            .join("blobs/data")
            .join(format!("{hash}.data"))
            .exists(),
        "--reference copied the file into the store"
    );
    let out = work.path().join("out");
    daemon.ok(&["export", &id, out.to_str().unwrap()]);

    write_random_file(&model.join("weights.bin"), 2 * MIB, "changed");
    let list = daemon.ok_json(&["ls"]);
    assert_eq!(list[0]["state"], "modified", "{list}");
    daemon.fails_with(
        &["export", &id, out.to_str().unwrap(), "--force"],
        "changed since it was added",
    );
    let output = daemon.fails_with(&["verify"], "");
    assert!(
        output.stdout.contains("changed since it was added"),
        "{output}"
    );
}

#[test]
fn bad_input_gets_a_clear_error_and_leaves_the_store_intact() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("good");
    write_random_file(&model.join("w.bin"), MIB, "good");
    let daemon = Daemon::start();
    let id = artifact_id(&daemon.ok_json(&["add", model.to_str().unwrap(), "--pin"]));
    let before = daemon.ok_json(&["ls"]);

    daemon.fails_with(&["show", "no-such-model"], "no artifact \"no-such-model\"");
    daemon.fails_with(
        &[
            "show",
            "sb1aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ],
        "no artifact",
    );
    daemon.fails_with(&["pin", "nothing"], "no artifact");
    let missing = work.path().join("missing");
    daemon.fails_with(&["add", missing.to_str().unwrap()], "path not found");
    daemon.fails_with(
        &["add", model.to_str().unwrap(), "--name", "bad/name"],
        "invalid name",
    );
    daemon.fails_with(
        &["add", model.to_str().unwrap(), "--licence", "MIT;rm"],
        "invalid licence",
    );
    let empty = work.path().join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    daemon.fails_with(&["add", empty.to_str().unwrap()], "no files");

    #[cfg(unix)]
    {
        let linked = work.path().join("linked");
        std::fs::create_dir(&linked).unwrap();
        std::fs::write(linked.join("real.bin"), b"real").unwrap();
        std::os::unix::fs::symlink(linked.join("real.bin"), linked.join("alias.bin")).unwrap();
        daemon.fails_with(&["add", linked.to_str().unwrap()], "--follow-symlinks");
        let followed = daemon.ok_json(&["add", linked.to_str().unwrap(), "--follow-symlinks"]);
        assert_eq!(followed["files"], 2);
    }

    // Export into a path that is a file, not a directory.
    let blocker = work.path().join("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    daemon.fails_with(&["export", &id, blocker.to_str().unwrap()], "blocker");

    let after = daemon.ok_json(&["ls"]);
    assert!(
        after
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["id"] == id.as_str()),
        "the original artifact is gone: {after}"
    );
    assert_eq!(
        after.as_array().unwrap().len(),
        before.as_array().unwrap().len() + 1
    );
    daemon.ok(&["verify"]);
    let out = work.path().join("out");
    daemon.ok(&["export", &id, out.to_str().unwrap()]);
    assert_eq!(
        file_hash(&out.join("w.bin")),
        file_hash(&model.join("w.bin"))
    );
}

#[test]
fn cli_without_a_daemon_says_how_to_start_one() {
    let dir = tempfile::tempdir().unwrap();
    let output = seedbank_tests::run_cli(dir.path(), &["ls"]);
    assert!(!output.success, "{output}");
    assert!(
        output.stderr.contains("not running") && output.stderr.contains("seedbank daemon"),
        "{output}"
    );
    assert_eq!(
        output.stderr.lines().count(),
        1,
        "error is not one line:\n{output}"
    );
}

/// Bytes of the files directly in `dir` (iroh-blobs keeps its temp folder flat).
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|entry| entry.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

#[test]
fn killed_daemon_mid_add_leaves_a_consistent_store_and_an_empty_temp() {
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small");
    let big = work.path().join("big");
    write_random_file(&small.join("s.bin"), MIB, "small");
    write_random_file(&big.join("b.bin"), 300 * MIB, "big");
    let mut daemon = Daemon::start();
    let small_id = artifact_id(&daemon.ok_json(&["add", small.to_str().unwrap()]));
    let temp = daemon.data_dir().join("blobs/temp");

    let adder = daemon.add_in_background(&big);
    // Kill only once the import is copying into temp and status counts it.
    let status = daemon.wait_until("the add to copy into temp", Duration::from_secs(60), || {
        let status = daemon.ok_json(&["status"]);
        assert!(
            !adder.is_finished(),
            "the add finished before anything was seen in temp: {status}"
        );
        match status["temp_bytes"].as_u64() {
            Some(0) | None => Err(status.to_string()),
            Some(_) => Ok(status),
        }
    });
    let reported = status["temp_bytes"].as_u64().unwrap();
    assert!(reported <= 300 * MIB + 300 * MIB / 256 + MIB, "{status}");
    daemon.kill();
    let interrupted = adder.join().unwrap();
    assert!(
        !interrupted.success,
        "the add survived kill -9: {interrupted}"
    );
    assert!(
        folder_bytes(&temp) > 0,
        "the killed add left nothing in temp to clean up"
    );

    daemon.start_again();
    let names: Vec<_> = std::fs::read_dir(&temp)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(names.is_empty(), "temp still holds {names:?} after restart");
    assert!(
        daemon.log().contains("freed what interrupted imports left"),
        "{}",
        daemon.log()
    );
    let status = daemon.ok_json(&["status"]);
    assert_eq!(status["temp_bytes"], 0, "{status}");
    assert_eq!(status["artifacts"], 1, "{status}");
    assert!(
        status["store_bytes"].as_u64().unwrap() < 10 * MIB,
        "the killed add's bytes are counted in the store: {status}"
    );
    let list = daemon.ok_json(&["ls"]);
    let ids: Vec<_> = list.as_array().unwrap().iter().map(artifact_id).collect();
    assert_eq!(
        ids,
        [small_id],
        "earlier artifact lost, or a half-added one listed"
    );

    daemon.ok(&["verify"]);
    let again = daemon.ok_json(&["add", big.to_str().unwrap()]);
    let out = work.path().join("out");
    daemon.ok(&["export", &artifact_id(&again), out.to_str().unwrap()]);
    assert_eq!(file_hash(&out.join("b.bin")), file_hash(&big.join("b.bin")));
}

#[cfg(target_os = "linux")]
#[test]
fn full_disk_is_reported_and_loses_nothing() {
    let work = tempfile::tempdir().unwrap();
    let mount_point = work.path().join("small-disk");
    let Some(_disk) = SmallDisk::mount(&mount_point, 128, "disk-full check") else {
        return;
    };

    let small = work.path().join("small");
    let big = work.path().join("big");
    write_random_file(&small.join("s.bin"), MIB, "fits");
    write_random_file(&big.join("b.bin"), 100 * MIB, "does-not-fit");
    let mut daemon = Daemon::start_in(&mount_point.join("data"));
    let small_id = artifact_id(&daemon.ok_json(&["add", small.to_str().unwrap()]));

    daemon.fails_with(&["add", big.to_str().unwrap()], "disk full");
    let list = daemon.ok_json(&["ls"]);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    daemon.ok(&["verify"]);
    let out = work.path().join("out");
    daemon.ok(&["export", &small_id, out.to_str().unwrap()]);
    assert_eq!(
        file_hash(&out.join("s.bin")),
        file_hash(&small.join("s.bin"))
    );
    daemon.ok(&["gc"]);
    daemon.stop();
}
