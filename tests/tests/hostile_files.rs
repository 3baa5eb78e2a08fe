//! End-to-end: the local filesystem as a hostile input. Links planted in an export
//! directory, a daemon killed in the middle of an add, files whose size lies, and paths
//! with invisible characters that reorder how they are shown.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

use seedbank_tests::{file_hash, tree_hashes, write_random_file, Daemon};

const MIB: u64 = 1024 * 1024;

fn artifact_id(json: &serde_json::Value) -> String {
    json["id"].as_str().expect("artifact id").to_owned()
}

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
