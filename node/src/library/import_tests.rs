//! Tests of [`super`]: walking, refusals, labels and ETag-checked imports.

use seedbank_protocol::LabelError;

use super::*;

#[test]
fn walks_nested_directories_in_path_order() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
    std::fs::write(dir.path().join("b/c/deep.bin"), b"x").unwrap();
    std::fs::write(dir.path().join("a.txt"), b"").unwrap();
    let files = collect_files(dir.path(), false).unwrap();
    let paths: Vec<_> = files.iter().map(|f| f.relative.as_str()).collect();
    assert_eq!(paths, ["a.txt", "b/c/deep.bin"]);
}

#[cfg(unix)]
#[test]
fn symlinks_are_refused_unless_followed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("real"), b"x").unwrap();
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    assert!(matches!(
        collect_files(dir.path(), false),
        Err(NodeError::SymlinkRefused(_))
    ));
    assert_eq!(collect_files(dir.path(), true).unwrap().len(), 2);
}

#[cfg(target_os = "linux")]
#[test]
fn a_file_whose_size_lies_is_refused_by_name() {
    // procfs files report size 0 and read as text.
    let error = collect_files(Path::new("/proc/self/status"), false)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("\"/proc/self/status\" reads more bytes than the 0"),
        "{error}"
    );
}

#[test]
fn a_path_with_a_bidi_control_is_refused_and_shown_escaped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("fine.txt"), b"x").unwrap();
    std::fs::write(dir.path().join("evil\u{202e}txt.exe"), b"x").unwrap();
    let error = collect_files(dir.path(), false).unwrap_err().to_string();
    assert!(error.contains("evil\\u{202e}txt.exe"), "{error}");
    assert!(error.contains("U+202E"), "{error}");
    assert!(
        !error.contains('\u{202e}'),
        "the message carries the raw control: {error}"
    );
}

/// An add with no storage limit.
async fn no_room(_bytes: u64) -> NodeResult<()> {
    Ok(())
}

#[tokio::test]
async fn labels_are_checked_before_any_file_is_walked() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("blobs")).await.unwrap();
    let meta = Meta::open(&dir.path().join("meta")).unwrap();
    let clock = Clock::system();
    let mut progress = ProgressReporter::silent();
    let options = |name: Option<&str>, revision: Option<&str>, licence: Option<&str>| AddOptions {
        // Walking this would fail with "path not found" first.
        path: dir.path().join("missing"),
        kind: ArtifactKind::Model,
        name: name.map(str::to_owned),
        revision: revision.map(str::to_owned),
        licence: licence.map(str::to_owned),
        pin: false,
        reference: false,
        follow_symlinks: false,
        hf: None,
    };
    for (bad, field) in [
        (options(Some("bad/name"), None, None), "name"),
        (options(Some("ok"), Some("v 1"), None), "revision"),
        (options(Some("ok"), None, Some("MIT;rm")), "licence"),
    ] {
        match add_artifact(&store, &meta, &clock, bad, &mut progress, no_room).await {
            Err(NodeError::Label(LabelError { field: got, .. })) => {
                assert_eq!(got, field)
            }
            other => panic!("expected an invalid {field}, got {other:?}"),
        }
    }
    assert!(matches!(
        add_artifact(
            &store,
            &meta,
            &clock,
            options(Some("ok"), None, None),
            &mut progress,
            no_room
        )
        .await,
        Err(NodeError::PathNotFound(_))
    ));
    store.shutdown().await;
}

#[tokio::test]
async fn a_snapshot_file_swapped_after_its_etag_check_is_not_published() {
    let dir = tempfile::tempdir().unwrap();
    let store = BlobStore::open(&dir.path().join("blobs")).await.unwrap();
    let meta = Meta::open(&dir.path().join("meta")).unwrap();
    let snapshot = dir.path().join("snapshot");
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::write(snapshot.join("config.json"), b"checked bytes").unwrap();
    let checked = CheckedEtag {
        etag: "a".repeat(40),
        hash: BlobHash(*blake3::hash(b"checked bytes").as_bytes()),
    };
    let options = |checked: &CheckedEtag| AddOptions {
        path: snapshot.clone(),
        kind: ArtifactKind::Model,
        name: Some("org--tiny".into()),
        revision: None,
        licence: None,
        pin: false,
        reference: true,
        follow_symlinks: true,
        hf: Some(HfSnapshotMeta {
            commit: "c".repeat(40),
            files: [("config.json".to_owned(), checked.clone())].into(),
        }),
    };
    let clock = Clock::system();
    let mut progress = ProgressReporter::silent();
    // Between the check and the import, the file became a link to other bytes.
    let private = dir.path().join("private");
    std::fs::write(&private, b"someone's private key").unwrap();
    std::fs::remove_file(snapshot.join("config.json")).unwrap();
    std::os::unix::fs::symlink(&private, snapshot.join("config.json")).unwrap();
    let refused = add_artifact(
        &store,
        &meta,
        &clock,
        options(&checked),
        &mut progress,
        no_room,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(
        refused.contains("config.json") && refused.contains(&checked.etag),
        "{refused}"
    );
    assert!(
        meta.artifacts().unwrap().is_empty(),
        "something was recorded"
    );
    // The checked bytes themselves are imported.
    std::fs::remove_file(snapshot.join("config.json")).unwrap();
    std::fs::write(snapshot.join("config.json"), b"checked bytes").unwrap();
    let record = add_artifact(
        &store,
        &meta,
        &clock,
        options(&checked),
        &mut progress,
        no_room,
    )
    .await
    .unwrap();
    assert_eq!(record.files, 1);
    store.shutdown().await;
}

#[test]
fn missing_and_empty_paths_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        collect_files(&dir.path().join("nope"), false),
        Err(NodeError::PathNotFound(_))
    ));
    let error = collect_files(dir.path(), false).unwrap_err().to_string();
    assert!(error.contains("no files"), "{error}");
}
