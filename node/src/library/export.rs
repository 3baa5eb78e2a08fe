//! Writing an artifact's files out of the store into a directory, verified, never
//! through a symbolic link.
//!
//! The export directory is the user's choice and is taken as given (links in its own
//! path are followed). Below it nothing is followed: each folder is opened relative to
//! its parent's descriptor with `O_NOFOLLOW` and created with `mkdirat` when missing;
//! each file streams into a partial file with a random name beside its target, created
//! exclusively (`O_CREAT | O_EXCL | O_NOFOLLOW`), and is renamed into place only once
//! its bytes hash to the manifest's hash. A symbolic link met anywhere below the export
//! directory (a folder, or a target name) fails the export with an error naming it; all
//! of them are looked for before anything is written, and because every later step works
//! on descriptors, a link planted after that check is refused rather than followed.
//!
//! A failed or interrupted export never leaves a wrong file under a real name, and a
//! failed one removes what it wrote: its partial file, the files it put in place that
//! did not exist before, and the folders it created, again relative to descriptors, so
//! removal never goes through a link either.

mod hand_over;
mod selection;
mod verified_bytes;

pub use selection::select_files;
use verified_bytes::{same_bytes, write_verified};

use std::collections::HashSet;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use seedbank_protocol::{BlobHash, FileEntry};

use crate::error::{NodeError, NodeResult};
use crate::library::meta::ReferenceRecord;
use crate::library::store::BlobStore;
use crate::progress::ProgressReporter;

/// Permissions asked for new folders and files; the umask narrows them, as for any
/// other program writing files for the user.
const NEW_FOLDER_MODE: u32 = 0o777;
const NEW_FILE_MODE: u32 = 0o666;

/// Bytes of the target's name kept in its partial file's name, so that the dot, random
/// part and suffix still fit the 255-byte name limit of common filesystems.
const PARTIAL_NAME_KEPT_BYTES: usize = 200;

/// Suffix of partial files, so a user who finds one knows what left it.
const PARTIAL_SUFFIX: &str = ".seedbank-partial";

/// What an export did: the bytes it put in `dir`, and the files it moved there from the
/// store rather than copying, with what they looked like then.
#[derive(Debug, Default)]
pub struct Exported {
    /// Bytes written or moved.
    pub bytes: u64,
    /// Blobs whose store file now lives in the export directory.
    pub moved: Vec<(BlobHash, ReferenceRecord)>,
}

/// Writes `files` under `dir`, refusing to overwrite existing files unless `force` and
/// refusing symbolic links below `dir` always. The blobs in `movable` are moved out of
/// the store where it can (see `hand_over`), the rest copied.
///
/// The folder and name calls here run on the async thread: each is one system call on
/// a descriptor, as quick as the store calls around it. File bytes go through tokio.
pub async fn export_files(
    store: &BlobStore,
    files: &[&FileEntry],
    dir: &Path,
    force: bool,
    movable: &HashSet<BlobHash>,
    progress: &mut ProgressReporter,
) -> NodeResult<Exported> {
    let mut export = ExportDir::create(dir).await?;
    for file in files {
        export.check_target(&file.path, force)?;
    }
    progress.set_total(files.iter().map(|f| f.size).sum());
    let mut exported = Exported::default();
    for file in files {
        progress.start_file(&file.path, file.size, exported.bytes);
        if let Err(e) = export_one(
            &mut export,
            store,
            file,
            force,
            movable,
            &mut exported,
            progress,
        )
        .await
        {
            export.remove_written();
            return Err(e);
        }
        exported.bytes += file.size;
        progress.report(exported.bytes, &file.path);
    }
    Ok(exported)
}

/// Moves `file` out of the store when it is `movable` and can be, else copies it.
async fn export_one(
    export: &mut ExportDir,
    store: &BlobStore,
    file: &FileEntry,
    force: bool,
    movable: &HashSet<BlobHash>,
    exported: &mut Exported,
    progress: &mut ProgressReporter,
) -> NodeResult<()> {
    if movable.contains(&file.hash) {
        if let Some(record) = export
            .hand_over_file(store, file, &file.path, force)
            .await?
        {
            exported.moved.push((file.hash, record));
            return Ok(());
        }
    }
    export
        .write_file(store, file, &file.path, force, exported.bytes, progress)
        .await
}

/// A partial file this export created, removed when dropped unless renamed into place:
/// on an error, and also when the export is cancelled (its future dropped) mid-file.
struct PartialFile {
    parent: OwnedFd,
    name: String,
    renamed: bool,
}

impl PartialFile {
    fn rename_to(mut self, target: &str) -> Result<(), Errno> {
        rustix::fs::renameat(&self.parent, &self.name, &self.parent, target)?;
        self.renamed = true;
        Ok(())
    }
}

impl Drop for PartialFile {
    fn drop(&mut self) {
        // Unlinking a name never follows it: if someone swapped the partial file for a
        // link, the link goes, not what it points to.
        if !self.renamed {
            let _ = rustix::fs::unlinkat(&self.parent, &self.name, AtFlags::empty());
        }
    }
}

/// The folders and the file name of a validated artifact path (`/`-separated).
fn split_path(path: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    (parts, name)
}

/// An export directory, opened once, and what this export created below it. Every
/// name below it is reached from its descriptor without following links, so callers
/// choose where a file's bytes go (its own path, or another name such as a cache's
/// `blobs/ETAG`) and get the same guarantees.
pub struct ExportDir {
    root: OwnedFd,
    path: PathBuf,
    /// Folders this export created, parents before children (relative paths).
    created_folders: Vec<String>,
    /// Files this export put in place where nothing was before (relative paths).
    written: Vec<String>,
}

impl ExportDir {
    /// Creates `dir` if it is missing (following links in its own path: it is the
    /// user's choice) and opens it.
    pub async fn create(dir: &Path) -> NodeResult<Self> {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| NodeError::io("creating", dir, e))?;
        Self::open(dir)
    }

    /// Writes the bytes of `file` to `relative` (a validated `/`-separated path below
    /// the directory): into a fresh partial file, renamed into place once the bytes hash
    /// to the manifest's hash. An existing file there is replaced only when `force`; a
    /// symbolic link there or on the way is refused.
    pub async fn write_file(
        &mut self,
        store: &BlobStore,
        file: &FileEntry,
        relative: &str,
        force: bool,
        done_before: u64,
        progress: &mut ProgressReporter,
    ) -> NodeResult<()> {
        let (folders, name) = split_path(relative);
        let parent = self.make_folders(&folders)?;
        let existed = self.target_exists(&parent, relative, name, force)?;
        let (partial, output) = self.create_partial(parent, relative, name)?;
        write_verified(
            store,
            file,
            output,
            &self.shown(relative),
            done_before,
            progress,
        )
        .await?;
        partial.rename_to(name).map_err(|e| {
            NodeError::io(
                "moving export into place at",
                &self.shown(relative),
                e.into(),
            )
        })?;
        if !existed {
            self.written.push(relative.to_owned());
        }
        Ok(())
    }

    /// Whether `relative` already holds exactly `file`'s bytes: a regular file of its
    /// size whose bytes hash to its hash. A symbolic link at `relative` is followed only
    /// to read (a client's cache may link its blobs elsewhere): one leading to the right
    /// bytes counts as a copy, any other fails, since writing there would mean writing
    /// through it. A link on the way (a folder) always fails.
    pub async fn holds_copy(&self, relative: &str, file: &FileEntry) -> NodeResult<bool> {
        let (folders, name) = split_path(relative);
        let Some(parent) = self.open_folders(&folders)? else {
            return Ok(false);
        };
        let shown = self.shown(relative);
        // NONBLOCK: never hangs on a FIFO planted there.
        let open = |follow: bool| {
            let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC;
            let flags = if follow {
                flags
            } else {
                flags | OFlags::NOFOLLOW
            };
            rustix::fs::openat(&parent, name, flags, Mode::empty())
        };
        match open(false) {
            Ok(fd) => same_bytes(fd, file, shown).await,
            Err(Errno::NOENT) => Ok(false),
            Err(Errno::LOOP) => {
                let refusal = NodeError::SymlinkInExport(shown.clone());
                let Ok(fd) = open(true) else {
                    return Err(refusal);
                };
                match same_bytes(fd, file, shown).await {
                    Ok(true) => Ok(true),
                    _ => Err(refusal),
                }
            }
            Err(e) => Err(NodeError::io("opening", &shown, e.into())),
        }
    }

    fn open(dir: &Path) -> NodeResult<Self> {
        let root = rustix::fs::openat(
            CWD,
            dir,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| NodeError::io("opening", dir, e.into()))?;
        Ok(Self {
            root,
            path: dir.to_owned(),
            created_folders: Vec::new(),
            written: Vec::new(),
        })
    }

    /// How `relative` is named in errors: its full path.
    fn shown(&self, relative: &str) -> PathBuf {
        self.path.join(relative)
    }

    /// Before anything is written: fails if a symbolic link lies on the way to
    /// `relative`, or (unless `force`) something is already there.
    pub fn check_target(&self, relative: &str, force: bool) -> NodeResult<()> {
        let (folders, name) = split_path(relative);
        match self.open_folders(&folders)? {
            Some(parent) => self
                .target_exists(&parent, relative, name, force)
                .map(|_| ()),
            None => Ok(()),
        }
    }

    /// Fails if a symbolic link lies among the folders on the way to `relative` (what
    /// is at `relative` itself is not looked at).
    pub fn check_folders(&self, relative: &str) -> NodeResult<()> {
        let (folders, _) = split_path(relative);
        self.open_folders(&folders).map(|_| ())
    }

    /// Opens the folders below the root without following links; `None` if one is missing.
    fn open_folders(&self, folders: &[&str]) -> NodeResult<Option<OwnedFd>> {
        let mut current = self.dup_root()?;
        for (depth, name) in folders.iter().enumerate() {
            current = match open_folder(&current, name) {
                Ok(next) => next,
                Err(Errno::NOENT) => return Ok(None),
                Err(e) => return Err(self.refusal(&current, &folders[..=depth], e)),
            };
        }
        Ok(Some(current))
    }

    /// Opens the folders below the root without following links, creating the missing ones.
    fn make_folders(&mut self, folders: &[&str]) -> NodeResult<OwnedFd> {
        let mut current = self.dup_root()?;
        for (depth, name) in folders.iter().enumerate() {
            let relative = &folders[..=depth];
            current = match open_folder(&current, name) {
                Ok(next) => next,
                Err(Errno::NOENT) => {
                    match rustix::fs::mkdirat(&current, *name, Mode::from_raw_mode(NEW_FOLDER_MODE))
                    {
                        Ok(()) => self.created_folders.push(relative.join("/")),
                        // Someone else made it in between: opening it below checks what it is.
                        Err(Errno::EXIST) => {}
                        Err(e) => {
                            let shown = self.shown(&relative.join("/"));
                            return Err(NodeError::io("creating", &shown, e.into()));
                        }
                    }
                    open_folder(&current, name).map_err(|e| self.refusal(&current, relative, e))?
                }
                Err(e) => return Err(self.refusal(&current, relative, e)),
            };
        }
        Ok(current)
    }

    /// Whether `name` exists in `parent`; fails if it is a link, or exists and not `force`.
    fn target_exists(
        &self,
        parent: &OwnedFd,
        relative: &str,
        name: &str,
        force: bool,
    ) -> NodeResult<bool> {
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
                Err(NodeError::SymlinkInExport(self.shown(relative)))
            }
            Ok(_) if !force => Err(NodeError::AlreadyExists(self.shown(relative))),
            Ok(_) => Ok(true),
            Err(Errno::NOENT) => Ok(false),
            Err(e) => Err(NodeError::io("reading", &self.shown(relative), e.into())),
        }
    }

    /// Creates a new partial file for `name` in `parent`, exclusively, under a random
    /// name nobody can have planted a link at; returns its name and the open file.
    fn create_partial(
        &self,
        parent: OwnedFd,
        relative: &str,
        name: &str,
    ) -> NodeResult<(PartialFile, std::fs::File)> {
        let partial_name = partial_name(name)?;
        let fd = rustix::fs::openat(
            &parent,
            &partial_name,
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(NEW_FILE_MODE),
        )
        .map_err(|e| {
            let shown = self.shown(relative).with_file_name(&partial_name);
            NodeError::io("creating", &shown, e.into())
        })?;
        let partial = PartialFile {
            parent,
            name: partial_name,
            renamed: false,
        };
        Ok((partial, std::fs::File::from(fd)))
    }

    /// Removes the files this export put in place and the folders it created (those
    /// left empty), so a failed export leaves no partial output behind. Each is reached
    /// from the root without following links; one that cannot be is left alone.
    pub fn remove_written(&self) {
        for relative in self.written.iter().rev() {
            let (folders, name) = split_path(relative);
            if let Ok(Some(parent)) = self.open_folders(&folders) {
                let _ = rustix::fs::unlinkat(&parent, name, AtFlags::empty());
            }
        }
        for relative in self.created_folders.iter().rev() {
            let (folders, name) = split_path(relative);
            if let Ok(Some(parent)) = self.open_folders(&folders) {
                let _ = rustix::fs::unlinkat(&parent, name, AtFlags::REMOVEDIR);
            }
        }
    }

    fn dup_root(&self) -> NodeResult<OwnedFd> {
        self.root
            .try_clone()
            .map_err(|e| NodeError::io("opening", &self.path, e))
    }

    /// The error for a folder on the way that could not be opened: a symbolic link is
    /// named as such; anything else is reported as the I/O error it is.
    fn refusal(&self, parent: &OwnedFd, folders: &[&str], error: Errno) -> NodeError {
        let shown = self.shown(&folders.join("/"));
        let name = folders.last().copied().unwrap_or_default();
        match rustix::fs::statat(parent, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
                NodeError::SymlinkInExport(shown)
            }
            _ => NodeError::io("opening folder", &shown, error.into()),
        }
    }
}

/// Opens folder `name` inside `parent`, failing rather than following a link.
fn open_folder(parent: &OwnedFd, name: &str) -> Result<OwnedFd, Errno> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// A fresh partial file name for target `name`: hidden, random, recognisable.
fn partial_name(name: &str) -> NodeResult<String> {
    let mut random = [0u8; 8];
    getrandom::fill(&mut random)
        .map_err(|e| NodeError::Internal(format!("no randomness for a partial file name: {e}")))?;
    let mut kept = name.len().min(PARTIAL_NAME_KEPT_BYTES);
    while !name.is_char_boundary(kept) {
        kept -= 1;
    }
    let random: String = random.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(".{}.{random}{PARTIAL_SUFFIX}", &name[..kept]))
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::BlobHash;

    use super::*;

    /// An export directory holding a planted link `name` to a file outside it.
    fn planted(name: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("export");
        let outside = work.path().join("outside");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("precious"), b"keep me").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join(name)).unwrap();
        (work, dir, outside)
    }

    #[test]
    fn a_symlinked_folder_is_refused_by_name_and_nothing_lands_outside() {
        let (_work, dir, outside) = planted("weights");
        let mut export = ExportDir::open(&dir).unwrap();
        for force in [false, true] {
            match export.check_target("weights/a.bin", force) {
                Err(NodeError::SymlinkInExport(path)) => assert_eq!(path, dir.join("weights")),
                other => panic!("expected a symlink refusal, got {other:?}"),
            }
        }
        let error = export.make_folders(&["weights", "deeper"]).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "refusing to write through symlink {}",
                dir.join("weights").display()
            )
        );
        assert!(!outside.join("deeper").exists());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 1);
    }

    #[test]
    fn a_symlink_at_the_target_name_is_refused_even_with_force() {
        let work = tempfile::tempdir().unwrap();
        std::fs::write(work.path().join("victim"), b"keep me").unwrap();
        let dir = work.path().join("export");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(work.path().join("victim"), dir.join("a.bin")).unwrap();
        let export = ExportDir::open(&dir).unwrap();
        assert!(matches!(
            export.check_target("a.bin", true),
            Err(NodeError::SymlinkInExport(_))
        ));
        std::fs::write(dir.join("b.bin"), b"old").unwrap();
        assert!(matches!(
            export.check_target("b.bin", false),
            Err(NodeError::AlreadyExists(_))
        ));
        export.check_target("b.bin", true).unwrap();
        export.check_target("new/c.bin", false).unwrap();
    }

    #[test]
    fn partial_files_are_new_files_with_random_names() {
        let (_work, dir, outside) = planted(".a.bin.seedbank-partial");
        let export = ExportDir::open(&dir).unwrap();
        let root = || export.dup_root().unwrap();
        let (first, mut file) = export.create_partial(root(), "a.bin", "a.bin").unwrap();
        let (second, _) = export.create_partial(root(), "a.bin", "a.bin").unwrap();
        assert_ne!(first.name, second.name);
        let first_name = first.name.clone();
        assert!(
            first_name.starts_with(".a.bin.") && first_name.ends_with(PARTIAL_SUFFIX),
            "{first_name}"
        );
        std::io::Write::write_all(&mut file, b"new").unwrap();
        assert!(std::fs::symlink_metadata(dir.join(&first_name))
            .unwrap()
            .is_file());
        let second_name = second.name.clone();
        drop(second);
        assert!(
            !dir.join(&second_name).exists(),
            "a dropped partial file stayed"
        );
        first.rename_to("a.bin").unwrap();
        assert_eq!(std::fs::read(dir.join("a.bin")).unwrap(), b"new");
        assert_eq!(std::fs::read(outside.join("precious")).unwrap(), b"keep me");
        let long = "x".repeat(255);
        assert!(partial_name(&long).unwrap().len() <= 255);
    }

    #[test]
    fn cleanup_removes_what_it_made_and_never_goes_through_a_link() {
        let (_work, dir, outside) = planted("elsewhere");
        std::fs::create_dir(dir.join("kept")).unwrap();
        let mut export = ExportDir::open(&dir).unwrap();
        export.make_folders(&["kept", "made", "deeper"]).unwrap();
        std::fs::write(dir.join("kept/made/deeper/f.bin"), b"x").unwrap();
        export.written.push("kept/made/deeper/f.bin".into());
        // Someone replaces a folder the export made with a link to files of theirs.
        export.make_folders(&["swapped"]).unwrap();
        std::fs::remove_dir(dir.join("swapped")).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("swapped")).unwrap();
        export.written.push("swapped/precious".into());

        export.remove_written();
        assert!(!dir.join("kept/made").exists());
        assert!(
            dir.join("kept").is_dir(),
            "a folder the export did not make was removed"
        );
        assert_eq!(std::fs::read(outside.join("precious")).unwrap(), b"keep me");
    }

    #[tokio::test]
    async fn a_copy_is_recognised_by_size_and_hash_and_never_through_a_link() {
        let (_work, dir, outside) = planted("blobs");
        let export = ExportDir::open(&dir).unwrap();
        let file = FileEntry {
            path: "a.bin".into(),
            size: 7,
            hash: BlobHash(*blake3::hash(b"keep me").as_bytes()),
        };
        assert!(matches!(
            export.holds_copy("blobs/precious", &file).await,
            Err(NodeError::SymlinkInExport(_))
        ));
        // A link at the name itself is read through: the right bytes are a copy, and
        // anything else is refused, as writing there would go through it.
        std::os::unix::fs::symlink(outside.join("precious"), dir.join("linked")).unwrap();
        assert!(export.holds_copy("linked", &file).await.unwrap());
        std::fs::write(outside.join("changed"), b"keep it").unwrap();
        std::os::unix::fs::symlink(outside.join("changed"), dir.join("other-link")).unwrap();
        assert!(matches!(
            export.holds_copy("other-link", &file).await,
            Err(NodeError::SymlinkInExport(_))
        ));
        assert_eq!(std::fs::read(outside.join("changed")).unwrap(), b"keep it");
        assert!(!export.holds_copy("missing", &file).await.unwrap());
        std::fs::write(dir.join("same"), b"keep me").unwrap();
        assert!(export.holds_copy("same", &file).await.unwrap());
        std::fs::write(dir.join("other"), b"keep us").unwrap();
        assert!(!export.holds_copy("other", &file).await.unwrap());
        std::fs::write(dir.join("short"), b"keep").unwrap();
        assert!(!export.holds_copy("short", &file).await.unwrap());
    }
}
