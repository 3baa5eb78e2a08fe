//! Adding a file or directory as an artifact: walk it, stream each file into the blob
//! store, write the manifest and the root HashSeq, tag the root, record it in sled.
//!
//! Nothing is visible to `ls` until the root is tagged and recorded, so an add that
//! fails half-way (bad file, full disk, killed daemon) leaves only untagged blobs,
//! which the next garbage collection frees.

use std::path::{Path, PathBuf};

use iroh_blobs::BlobFormat;
use seedbank_protocol::api::ArtifactOrigin;
use seedbank_protocol::limits::MAX_FILES_PER_ARTIFACT;
use seedbank_protocol::{
    escape_path, validate_artifact_path, validate_labels, ArtifactKind, ArtifactRoot, BlobHash,
    ContentId, FileEntry, HfRevision, Manifest,
};

use crate::clock::Clock;
use crate::error::{NodeError, NodeResult};
use crate::library::meta::{ArtifactRecord, Labels, Meta, PinRecord};
use crate::library::reference;
use crate::library::store::{from_iroh, BlobStore};
use crate::progress::ProgressReporter;

/// Revision label when none is given.
pub const DEFAULT_REVISION: &str = "main";

/// File names taken as the model or dataset card, in order of preference.
const CARD_FILE_NAMES: [&str; 3] = ["README.md", "readme.md", "README"];

/// What to add and how.
#[derive(Debug, Clone)]
pub struct AddOptions {
    /// The file or directory.
    pub path: PathBuf,
    /// Model or dataset.
    pub kind: ArtifactKind,
    /// Name; defaults to the file or directory name.
    pub name: Option<String>,
    /// Revision; defaults to [`DEFAULT_REVISION`].
    pub revision: Option<String>,
    /// SPDX licence.
    pub licence: Option<String>,
    /// Pin once added.
    pub pin: bool,
    /// Reference files in place rather than copying them.
    pub reference: bool,
    /// Follow symbolic links rather than refusing them.
    pub follow_symlinks: bool,
    /// Hub metadata to keep in the manifest (a snapshot of a Hugging Face cache).
    pub hf: Option<HfSnapshotMeta>,
}

/// The hub metadata of a snapshot being added: its commit and each file's ETag, with the
/// BLAKE3 hash of the bytes that ETag was checked against.
#[derive(Debug, Clone)]
pub struct HfSnapshotMeta {
    /// The hub commit id.
    pub commit: String,
    /// Each file's checked ETag, by path (relative to the snapshot, `/` separators).
    pub files: std::collections::HashMap<String, CheckedEtag>,
}

/// A file's hub ETag and the BLAKE3 hash of the bytes it was checked against: the add
/// refuses the file unless it imports exactly those bytes, so nothing can be swapped in
/// between the check and the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedEtag {
    /// The hub ETag (git blob sha1 or LFS sha256).
    pub etag: String,
    /// The BLAKE3 hash of the bytes whose hub hashes matched `etag`.
    pub hash: BlobHash,
}

/// One file found under the path being added.
#[derive(Debug, Clone)]
struct SourceFile {
    relative: String,
    absolute: PathBuf,
    size: u64,
}

/// Adds `options.path` to the store and records it, stamped by `clock`; returns the
/// artifact's record. Before it copies anything, `make_room` is given the bytes the copy
/// will store (none when files are referenced in place); what it returns is held until
/// the artifact is recorded (the library's room reservation).
pub async fn add_artifact<F, Fut, Room>(
    store: &BlobStore,
    meta: &Meta,
    clock: &Clock,
    options: AddOptions,
    progress: &mut ProgressReporter,
    make_room: F,
) -> NodeResult<ArtifactRecord>
where
    F: FnOnce(u64) -> Fut,
    Fut: std::future::Future<Output = NodeResult<Room>>,
{
    let name = match &options.name {
        Some(name) => name.clone(),
        None => default_name(&options.path)?,
    };
    let revision = options
        .revision
        .clone()
        .unwrap_or_else(|| DEFAULT_REVISION.to_owned());
    // A bad label is refused before any file is walked or read, however many there are.
    validate_labels(&name, &revision, options.licence.as_deref())?;
    let root_path = options.path.clone();
    let follow = options.follow_symlinks;
    let files = tokio::task::spawn_blocking(move || collect_files(&root_path, follow))
        .await
        .map_err(|e| NodeError::Internal(format!("file walk task failed: {e}")))??;
    let total: u64 = files.iter().map(|f| f.size).sum();
    let _room = make_room(if options.reference { 0 } else { total }).await?;
    store.ensure_space_for(total, options.reference, "adding")?;
    progress.set_total(total);

    // Temp tags keep imported blobs alive until the root tag holds them.
    let mut temp_tags = Vec::with_capacity(files.len() + 2);
    let mut entries = Vec::with_capacity(files.len());
    let mut done = 0;
    for file in &files {
        let before = options
            .reference
            .then(|| reference::snapshot(&file.absolute))
            .transpose()?;
        progress.start_file(&file.relative, file.size, done);
        let imported = store
            .import_file(&file.absolute, options.reference, |bytes| {
                progress.report(done + bytes, &file.relative)
            })
            .await
            .map_err(|e| match e {
                // iroh-blobs reads exactly the size the metadata gave, and fails short of it.
                NodeError::Io { source, .. }
                    if source.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    size_mismatch(&file.absolute, file.size, "fewer")
                }
                other => other,
            })?;
        if imported.size != file.size {
            return Err(NodeError::BadRequest(format!(
                "{} changed size while being added; add it again once it is finished",
                shown(&file.absolute)
            )));
        }
        let hash = from_iroh(imported.temp_tag.hash());
        if let Some(hf) = &options.hf {
            check_same_bytes(hf, &file.relative, hash, &file.absolute)?;
        }
        // Small files are read whole, whatever their metadata says: compare what was read.
        match store.size(hash).await? {
            Some(read) if read < file.size => {
                return Err(size_mismatch(&file.absolute, file.size, "fewer"))
            }
            Some(read) if read > file.size => {
                return Err(size_mismatch(&file.absolute, file.size, "more"))
            }
            _ => {}
        }
        if let Some(before) = before {
            if reference::snapshot(&file.absolute)? != before {
                return Err(NodeError::BadRequest(format!(
                    "{} changed while being added; add it again once it is finished",
                    file.absolute.display()
                )));
            }
            meta.put_reference(hash, &before)?;
        }
        done += file.size;
        progress.report(done, &file.relative);
        entries.push(FileEntry {
            path: file.relative.clone(),
            size: file.size,
            hash,
        });
        temp_tags.push(imported.temp_tag);
    }

    let card = CARD_FILE_NAMES
        .iter()
        .find(|card| entries.iter().any(|e| e.path == **card))
        .map(|card| (*card).to_owned());
    let hf = options
        .hf
        .as_ref()
        .map(|hf| hf_revision(hf, &entries))
        .transpose()?;
    let manifest = Manifest { files: entries, hf };
    let labels = Labels {
        name,
        kind: Some(options.kind),
        revision,
        licence: options.licence.clone(),
        card,
    };
    let manifest_bytes = manifest.encode()?;
    let manifest_tag = store.add_bytes(manifest_bytes, BlobFormat::Raw).await?;
    let manifest_hash = from_iroh(manifest_tag.hash());

    let hash_seq = ArtifactRoot::new(manifest_hash, &manifest).encode();
    let root_tag = store.add_bytes(hash_seq, BlobFormat::HashSeq).await?;
    let root = ContentId::from_hash(from_iroh(root_tag.hash()));
    let record = commit_artifact(
        store,
        meta,
        clock,
        root,
        manifest_hash,
        &manifest,
        Some(labels),
        options.reference,
        ArtifactOrigin::Added,
    )
    .await?;
    if options.pin {
        let pin = PinRecord {
            pinned_at: clock.now_secs(),
            reason: None,
            replica_target: None,
        };
        meta.pin(root, &pin)?;
        store.set_pinned(root, true).await?;
        meta.flush().await?;
    }
    tracing::info!(%root, name = %record.name, files = record.files, bytes = record.size, "added artifact");
    drop((temp_tags, manifest_tag, root_tag));
    Ok(record)
}

/// Refuses an imported file unless its bytes are the ones its ETag was checked against.
fn check_same_bytes(
    hf: &HfSnapshotMeta,
    relative: &str,
    imported: BlobHash,
    path: &Path,
) -> NodeResult<()> {
    match hf.files.get(relative) {
        Some(checked) if checked.hash == imported => Ok(()),
        Some(checked) => Err(NodeError::BadRequest(format!(
            "{} changed between the check of its hub ETag {} and its import (or is a link \
             that now leads elsewhere); nothing was published, import it again once the \
             cache is settled",
            shown(path),
            checked.etag
        ))),
        None => Err(NodeError::BadRequest(format!(
            "{} appeared in the snapshot after its ETags were checked; nothing was \
             published, import it again",
            shown(path)
        ))),
    }
}

/// The manifest's hub metadata: the commit, and the ETag of each of `entries` in order.
fn hf_revision(hf: &HfSnapshotMeta, entries: &[FileEntry]) -> NodeResult<HfRevision> {
    let etags = entries
        .iter()
        .map(|entry| {
            hf.files
                .get(&entry.path)
                .map(|checked| checked.etag.clone())
                .ok_or_else(|| {
                    NodeError::BadRequest(format!("no hub ETag is known for {:?}", entry.path))
                })
        })
        .collect::<NodeResult<Vec<_>>>()?;
    Ok(HfRevision {
        commit: hf.commit.clone(),
        etags,
    })
}

/// Makes a stored artifact visible: tags its root so its blobs stay, makes the store
/// durable, and records it (keeping the first time it was added, by `clock`, and how).
/// Used by add and by fetch; the caller has checked that every blob it needs is
/// complete. Without `labels`, an artifact already recorded keeps its own.
#[allow(clippy::too_many_arguments)]
pub async fn commit_artifact(
    store: &BlobStore,
    meta: &Meta,
    clock: &Clock,
    root: ContentId,
    manifest_hash: BlobHash,
    manifest: &Manifest,
    labels: Option<Labels>,
    referenced: bool,
    origin: ArtifactOrigin,
) -> NodeResult<ArtifactRecord> {
    store.keep_artifact(root).await?;
    store.sync().await?;
    let existing = meta.artifact(root)?;
    let added_at = existing
        .as_ref()
        .map(|existing| existing.added_at)
        .unwrap_or_else(|| clock.now_secs());
    let labels = labels
        .or_else(|| {
            existing.map(|e| Labels {
                name: e.name,
                kind: Some(e.kind),
                revision: e.revision,
                licence: e.licence,
                card: e.card,
            })
        })
        .unwrap_or_default();
    let record = ArtifactRecord {
        root,
        manifest: manifest_hash,
        name: labels.name,
        kind: labels.kind.unwrap_or(ArtifactKind::Model),
        revision: labels.revision,
        licence: labels.licence,
        card: labels.card,
        size: manifest.total_size(),
        files: manifest.files.len() as u64,
        added_at,
        referenced,
    };
    meta.put_artifact(&record)?;
    meta.note_origin(root, origin)?;
    meta.flush().await?;
    Ok(record)
}

/// The name an artifact gets from its path: the file or directory name.
fn default_name(path: &Path) -> NodeResult<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| {
            NodeError::BadRequest(format!(
                "cannot take a name from {}; pass --name",
                path.display()
            ))
        })
}

/// Lists the regular files under `root` (or `root` itself), sorted by relative path,
/// checking that each is readable and has a valid artifact path.
fn collect_files(root: &Path, follow_symlinks: bool) -> NodeResult<Vec<SourceFile>> {
    let top = std::fs::symlink_metadata(root).map_err(|e| NodeError::io("reading", root, e))?;
    if top.file_type().is_symlink() && !follow_symlinks {
        return Err(NodeError::SymlinkRefused(root.to_owned()));
    }
    let top = std::fs::metadata(root).map_err(|e| NodeError::io("reading", root, e))?;
    let mut files = Vec::new();
    if top.is_file() {
        let relative = default_name(root)?;
        files.push(source_file(root, relative, top.len())?);
    } else if top.is_dir() {
        let walk = walkdir::WalkDir::new(root)
            .follow_links(follow_symlinks)
            .min_depth(1);
        for entry in walk {
            let entry = entry.map_err(|e| walk_error(root, e))?;
            let file_type = entry.file_type();
            if file_type.is_symlink() {
                return Err(NodeError::SymlinkRefused(entry.path().to_owned()));
            }
            if file_type.is_dir() {
                continue;
            }
            if !file_type.is_file() {
                return Err(NodeError::NotAFile(entry.path().to_owned()));
            }
            let relative = relative_path(root, entry.path())?;
            let size = entry.metadata().map_err(|e| walk_error(root, e))?.len();
            files.push(source_file(entry.path(), relative, size)?);
            if files.len() > MAX_FILES_PER_ARTIFACT {
                return Err(NodeError::BadRequest(format!(
                    "{} holds more than {MAX_FILES_PER_ARTIFACT} files, the most one artifact may have",
                    root.display()
                )));
            }
        }
    } else {
        return Err(NodeError::NotAFile(root.to_owned()));
    }
    if files.is_empty() {
        return Err(NodeError::BadRequest(format!(
            "{} holds no files to add",
            root.display()
        )));
    }
    files.sort_by(|a, b| a.relative.as_bytes().cmp(b.relative.as_bytes()));
    Ok(files)
}

fn source_file(path: &Path, relative: String, size: u64) -> NodeResult<SourceFile> {
    validate_artifact_path(&relative)
        .map_err(|e| NodeError::BadRequest(format!("cannot add {}: {e}", shown(path))))?;
    // Opening now turns an unreadable file into a clear error before any work is done.
    let file = std::fs::File::open(path).map_err(|e| NodeError::io("opening", path, e))?;
    // A byte past the size its metadata gives means the size lies (procfs files say 0),
    // and the import, which reads that many bytes, would store the wrong content.
    let mut probe = [0u8; 1];
    let beyond = std::os::unix::fs::FileExt::read_at(&file, &mut probe, size)
        .map_err(|e| NodeError::io("reading", path, e))?;
    if beyond > 0 {
        return Err(size_mismatch(path, size, "more"));
    }
    Ok(SourceFile {
        relative,
        absolute: path.to_owned(),
        size,
    })
}

/// `path` for a message: control and format characters escaped, so a name cannot
/// reorder or hide part of what the user reads.
fn shown(path: &Path) -> String {
    format!("\"{}\"", escape_path(&path.to_string_lossy()))
}

/// The error for a file whose bytes do not match the size its metadata gives; `read` is
/// "more" or "fewer".
fn size_mismatch(path: &Path, size: u64, read: &str) -> NodeError {
    NodeError::BadRequest(format!(
        "{} reads {read} bytes than the {size} its metadata gives; only regular files whose \
         size is true can be added (not files such as those under /proc or /sys, nor files \
         being written)",
        shown(path)
    ))
}

fn relative_path(root: &Path, path: &Path) -> NodeResult<String> {
    let relative = path.strip_prefix(root).map_err(|_| {
        NodeError::BadRequest(format!("{} is outside {}", path.display(), root.display()))
    })?;
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    parts.map(|p| p.join("/")).ok_or_else(|| {
        NodeError::BadRequest(format!(
            "{} has a name that is not valid UTF-8",
            path.display()
        ))
    })
}

fn walk_error(root: &Path, error: walkdir::Error) -> NodeError {
    let path = error.path().unwrap_or(root).to_owned();
    if error.loop_ancestor().is_some() {
        return NodeError::BadRequest(format!("{} is a symbolic link loop", path.display()));
    }
    match error.into_io_error() {
        Some(io) => NodeError::io("reading", &path, io),
        None => NodeError::BadRequest(format!("cannot walk {}", path.display())),
    }
}

#[cfg(test)]
#[path = "import_tests.rs"]
mod tests;
