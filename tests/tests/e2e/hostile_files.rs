//! End-to-end: the local filesystem as a hostile input. Links planted in an export
//! directory, files whose size lies, paths with invisible characters that reorder how
//! they are shown, referenced files rewritten behind the node's back. (A daemon killed
//! in the middle of an add is in `foundation.rs`.)

use std::time::Duration;

use seedbank_tests::fixtures::MIB;
use seedbank_tests::{artifact_id, file_hash, tree_hashes, write_random_file, Daemon};

#[cfg(unix)]
#[test]
fn export_refuses_planted_symlinks_and_leaves_their_targets_alone() {
    use std::os::unix::fs::symlink;

    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    write_random_file(&model.join("weights/a.bin"), MIB, "a");
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    let daemon = Daemon::start();
    let id = daemon.add_artifact(&model);

    // Someone who can write to the export directory plants a link named like the
    // partial file an export used to write, and a link in place of a sub-folder.
    let victim = work.path().join("victim.txt");
    std::fs::write(&victim, b"the victim's file").unwrap();
    let outside = work.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("a.bin"), b"someone else's a.bin").unwrap();
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    symlink(&victim, out.join(".config.json.seedbank-partial")).unwrap();
    symlink(&outside, out.join("weights")).unwrap();
    let outside_before = tree_hashes(&outside);

    for force in [false, true] {
        let mut args = vec!["export", &id, out.to_str().unwrap()];
        if force {
            args.push("--force");
        }
        daemon.fails_with(
            &args,
            &format!(
                "refusing to write through symlink {}",
                out.join("weights").display()
            ),
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"the victim's file");
        assert_eq!(
            tree_hashes(&outside),
            outside_before,
            "export wrote outside its directory"
        );
        assert!(
            !out.join("config.json").exists(),
            "a refused export left files behind"
        );
    }

    // Without the folder link the export goes ahead, and the other link stays a link to
    // an untouched file.
    std::fs::remove_file(out.join("weights")).unwrap();
    daemon.ok(&["export", &id, out.to_str().unwrap()]);
    assert_eq!(
        file_hash(&out.join("weights/a.bin")),
        file_hash(&model.join("weights/a.bin"))
    );
    assert_eq!(std::fs::read(out.join("config.json")).unwrap(), b"{}");
    assert_eq!(std::fs::read(&victim).unwrap(), b"the victim's file");
    assert!(
        std::fs::symlink_metadata(out.join(".config.json.seedbank-partial"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(tree_hashes(&outside), outside_before);
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_whose_size_lies_is_refused_by_name() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start();
    // procfs files say they are empty and read as text.
    daemon.fails_with(
        &["add", "/proc/version"],
        "\"/proc/version\" reads more bytes than the 0 its metadata gives",
    );
    let model = work.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    std::os::unix::fs::symlink("/proc/self/status", model.join("status")).unwrap();
    daemon.fails_with(
        &["add", model.to_str().unwrap(), "--follow-symlinks"],
        "status\" reads more bytes than the 0",
    );
    assert_eq!(daemon.ok_json(&["ls"]), serde_json::json!([]));
}

#[test]
fn a_path_with_a_bidi_control_is_refused_and_shown_escaped() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("model");
    std::fs::create_dir(&model).unwrap();
    std::fs::write(model.join("README.md"), b"# card").unwrap();
    // Shown raw, this name reads "invoice-fdp.exe" but ends in ".pdf".
    std::fs::write(model.join("invoice-\u{202e}exe.pdf"), b"x").unwrap();
    let daemon = Daemon::start();
    let output = daemon.fails_with(
        &["add", model.to_str().unwrap()],
        "invoice-\\u{202e}exe.pdf\" contains the invisible format character U+202E",
    );
    assert!(
        !output.stderr.contains('\u{202e}'),
        "the error shows the raw control character: {output}"
    );
    // The name is checked before the files are walked.
    daemon.fails_with(
        &["add", model.to_str().unwrap(), "--name", "bad/name"],
        "invalid name",
    );
    assert_eq!(daemon.ok_json(&["ls"]), serde_json::json!([]));
}

#[test]
fn a_referenced_file_rewritten_with_size_and_mtime_kept_is_modified() {
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("ref-model");
    let weights = model.join("weights.bin");
    write_random_file(&weights, MIB, "original");
    let daemon = Daemon::start();
    let id = artifact_id(&daemon.ok_json(&["add", "--reference", model.to_str().unwrap()]));
    assert_eq!(daemon.ok_json(&["ls"])[0]["state"], "complete");

    // Same length, other bytes, and the modification time set back as `touch -d` would.
    let modified = std::fs::metadata(&weights).unwrap().modified().unwrap();
    // ctime is stamped from a clock that ticks every few milliseconds.
    std::thread::sleep(Duration::from_millis(50));
    write_random_file(&weights, MIB, "tampered");
    std::fs::File::options()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let now = std::fs::metadata(&weights).unwrap();
    assert_eq!((now.len(), now.modified().unwrap()), (MIB, modified));

    let list = daemon.ok_json(&["ls"]);
    assert_eq!(list[0]["state"], "modified", "{list}");
    let out = work.path().join("out");
    daemon.fails_with(
        &["export", &id, out.to_str().unwrap()],
        "changed since it was added",
    );
}
