//! Tests of the metadata database: records round-trip, and records written by
//! earlier versions still read.

use super::*;

fn record(byte: u8) -> ArtifactRecord {
    ArtifactRecord {
        root: ContentId(BlobHash([byte; 32])),
        manifest: BlobHash([0; 32]),
        name: "m".into(),
        kind: ArtifactKind::Model,
        revision: "main".into(),
        licence: None,
        card: None,
        size: 1,
        files: 1,
        added_at: 0,
        referenced: false,
    }
}

#[tokio::test]
async fn records_and_pins_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let root = record(1).root;
    {
        let meta = Meta::open(dir.path()).unwrap();
        meta.put_artifact(&record(1)).unwrap();
        let pin = PinRecord {
            pinned_at: 5,
            reason: None,
            replica_target: None,
        };
        assert!(meta.pin(root, &pin).unwrap());
        assert!(!meta.pin(root, &pin).unwrap(), "second pin changes nothing");
        meta.flush().await.unwrap();
    }
    let meta = Meta::open(dir.path()).unwrap();
    assert_eq!(meta.artifact(root).unwrap(), Some(record(1)));
    assert_eq!(meta.pin_count(), 1);
    meta.remove_artifact(root).unwrap();
    assert_eq!(meta.artifacts().unwrap(), vec![]);
    assert_eq!(meta.pin_count(), 0);
}

#[test]
fn references_are_kept_per_path() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::open(dir.path()).unwrap();
    let hash = BlobHash([3; 32]);
    for path in ["/a", "/b"] {
        let record = ReferenceRecord {
            path: path.into(),
            size: 1,
            modified_ns: 2,
            identity: Some(FileIdentity {
                device: 3,
                inode: 4,
                changed_ns: 5,
            }),
        };
        meta.put_reference(hash, &record).unwrap();
    }
    assert_eq!(meta.references(hash).unwrap().len(), 2);
    assert!(meta.references(BlobHash([4; 32])).unwrap().is_empty());
    meta.remove_references(hash).unwrap();
    assert!(meta.references(hash).unwrap().is_empty());
}

#[test]
fn fetch_jobs_saved_before_pins_or_labels_were_kept_still_read() {
    #[derive(Serialize)]
    struct BeforePins {
        root: ContentId,
        include: Vec<String>,
        started_at: u64,
        last_error: Option<String>,
    }
    #[derive(Serialize)]
    struct BeforeLabels {
        root: ContentId,
        include: Vec<String>,
        started_at: u64,
        last_error: Option<String>,
        pin: bool,
    }
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::open(dir.path()).unwrap();
    let oldest = ContentId(BlobHash([6; 32]));
    let before_pins = BeforePins {
        root: oldest,
        include: vec!["*.json".into()],
        started_at: 9,
        last_error: None,
    };
    meta.fetch_jobs
        .insert(oldest.hash().as_bytes(), encode(&before_pins).unwrap())
        .unwrap();
    let older = ContentId(BlobHash([8; 32]));
    let before_labels = BeforeLabels {
        root: older,
        include: Vec::new(),
        started_at: 11,
        last_error: None,
        pin: true,
    };
    meta.fetch_jobs
        .insert(older.hash().as_bytes(), encode(&before_labels).unwrap())
        .unwrap();
    let labelled = FetchJobRecord {
        root: ContentId(BlobHash([7; 32])),
        include: Vec::new(),
        started_at: 10,
        last_error: Some("x".into()),
        pin: true,
        labels: Some(Labels {
            name: "toy".into(),
            kind: Some(ArtifactKind::Model),
            revision: "v2".into(),
            licence: Some("MIT".into()),
            card: None,
        }),
    };
    meta.put_fetch_job(&labelled).unwrap();
    let jobs = meta.fetch_jobs().unwrap();
    assert_eq!(jobs.len(), 3, "{jobs:?}");
    assert!(jobs.contains(&labelled), "{jobs:?}");
    assert!(jobs
        .iter()
        .any(|j| j.root == oldest && !j.pin && j.started_at == 9 && j.labels.is_none()));
    assert!(jobs
        .iter()
        .any(|j| j.root == older && j.pin && j.started_at == 11 && j.labels.is_none()));
}

#[test]
fn the_first_origin_recorded_stays() {
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::open(dir.path()).unwrap();
    let root = record(2).root;
    assert_eq!(meta.origin(root).unwrap(), None);
    meta.note_origin(root, ArtifactOrigin::Added).unwrap();
    meta.note_origin(root, ArtifactOrigin::Fetched).unwrap();
    assert_eq!(meta.origin(root).unwrap(), Some(ArtifactOrigin::Added));
    meta.remove_artifact(root).unwrap();
    assert_eq!(meta.origin(root).unwrap(), None);
}

#[test]
fn references_written_before_identities_were_kept_still_read() {
    #[derive(Serialize)]
    struct Before {
        path: String,
        size: u64,
        modified_ns: i128,
    }
    let dir = tempfile::tempdir().unwrap();
    let meta = Meta::open(dir.path()).unwrap();
    let hash = BlobHash([5; 32]);
    let mut key = hash.as_bytes().to_vec();
    key.extend_from_slice(b"/old");
    let before = Before {
        path: "/old".into(),
        size: 7,
        modified_ns: 8,
    };
    meta.references
        .insert(key, encode(&before).unwrap())
        .unwrap();
    let read = meta.references(hash).unwrap();
    assert_eq!(
        read,
        vec![ReferenceRecord {
            path: "/old".into(),
            size: 7,
            modified_ns: 8,
            identity: None,
        }]
    );
}
