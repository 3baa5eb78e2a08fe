//! Downloads one listed file from the origin into the mirror's cache, checked as it
//! streams.
//!
//! Invariants: `blobs/<etag>` exists only with bytes whose hub hash is `etag` and whose
//! size is the listed one (it is renamed into place after the check); bytes still
//! arriving, or left by a dropped transfer, live in `blobs/<etag>.incomplete`, which a
//! later attempt resumes with a `Range` request; a file that fails its check is deleted.

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_speed_limit::Limiter;
use reqwest::header::CONTENT_RANGE;
use reqwest::StatusCode;
use seedbank_protocol::hf::HubHasher;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::time::Instant;

use super::cache::RepoCache;
use super::listing::ListedFile;
use super::low_speed::LowSpeed;
use super::origin::{check_status, Origin};
use crate::error::{NodeError, NodeResult};
use crate::progress::ProgressReporter;

/// Attempts per file: the first, then resumptions after a dropped transfer.
pub const MAX_ATTEMPTS: usize = 4;

/// Pause before resuming a dropped transfer, doubled for each further attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Bytes read at once when hashing a partial file left by an earlier attempt.
const READ_BUFFER: usize = 1 << 20;

/// What downloading one file needs besides the file.
pub struct Downloader<'a> {
    /// The origin.
    pub origin: &'a Origin,
    /// The mirror's cache of the repo.
    pub cache: &'a RepoCache,
    /// The commit the files belong to.
    pub commit: &'a str,
    /// The rate limits every byte passes (the request's, the node's download limit).
    pub limiters: &'a [Limiter],
    /// The slowest the origin may send before an attempt counts as dropped.
    pub low_speed: LowSpeed,
}

/// The state of one file's download: the partial file and the hash of its bytes so far.
struct Partial {
    path: PathBuf,
    file: tokio::fs::File,
    len: u64,
    hasher: HubHasher,
}

impl Downloader<'_> {
    /// Whether the blob of `file` is already complete in the cache.
    pub fn is_complete(&self, file: &ListedFile) -> bool {
        std::fs::metadata(self.cache.blob_path(&file.etag))
            .is_ok_and(|meta| meta.is_file() && meta.len() == file.size)
    }

    /// Bytes of `file` already in the cache, complete or partial.
    pub fn present_bytes(&self, file: &ListedFile) -> u64 {
        if self.is_complete(file) {
            return file.size;
        }
        std::fs::metadata(partial_path(&self.cache.blob_path(&file.etag)))
            .map_or(0, |meta| meta.len().min(file.size))
    }

    /// Downloads `file` unless its blob is complete, checks it and moves it into place.
    /// `done_before` is the bytes of the whole mirror done before this file, for progress.
    /// Returns the bytes downloaded.
    pub async fn fetch(
        &self,
        file: &ListedFile,
        done_before: u64,
        progress: &mut ProgressReporter,
    ) -> NodeResult<u64> {
        if self.is_complete(file) {
            return Ok(0);
        }
        let blob = self.cache.blob_path(&file.etag);
        if let Some(parent) = blob.parent() {
            std::fs::create_dir_all(parent).map_err(|e| NodeError::io("creating", parent, e))?;
        }
        let mut partial = Partial::open(partial_path(&blob), file.size).await?;
        progress.start_file(&file.path, file.size, done_before);
        let mut downloaded = 0u64;
        let mut attempt = 0;
        while partial.len < file.size {
            attempt += 1;
            let result = self
                .attempt(file, &mut partial, done_before, &mut downloaded, progress)
                .await;
            match result {
                Ok(()) => {}
                Err(Attempt::Fatal(error)) => return Err(error),
                Err(Attempt::Dropped(error)) if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(path = %file.path, %error, have = partial.len, "transfer dropped; resuming");
                    tokio::time::sleep(RETRY_PAUSE * (1 << (attempt - 1))).await;
                }
                Err(Attempt::Dropped(error)) => {
                    return Err(NodeError::Unreachable(format!(
                        "downloading {} failed {MAX_ATTEMPTS} times; the last: {error}",
                        file.path
                    )))
                }
            }
        }
        self.finish(file, partial, &blob).await?;
        Ok(downloaded)
    }

    /// One request for the rest of `file`.
    async fn attempt(
        &self,
        file: &ListedFile,
        partial: &mut Partial,
        done_before: u64,
        downloaded: &mut u64,
        progress: &mut ProgressReporter,
    ) -> Result<(), Attempt> {
        let url = self.origin.file_url(self.commit, &file.path);
        let mut response = self.origin.get_file(url, partial.len).await.map_err(|e| {
            let why = crate::error::with_causes(&e);
            if e.is_redirect() {
                // A redirect refused by the origin policy: trying again cannot mend it.
                Attempt::Fatal(NodeError::PeerMisbehaved(format!(
                    "downloading {}: {why}",
                    file.path
                )))
            } else {
                Attempt::Dropped(why)
            }
        })?;
        let status = response.status();
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(Attempt::Dropped(format!("the origin answered {status}")));
        }
        check_status(&response, self.origin.repo(), &file.path)?;
        if status == StatusCode::PARTIAL_CONTENT {
            let expected = format!("bytes {}-{}/{}", partial.len, file.size - 1, file.size);
            let range = response
                .headers()
                .get(CONTENT_RANGE)
                .and_then(|v| v.to_str().ok());
            if range != Some(expected.as_str()) {
                // Bytes from elsewhere in the file would break the hash: start over.
                tracing::debug!(path = %file.path, ?range, %expected, "unexpected range; restarting");
                partial.restart(file.size).await?;
                return Err(Attempt::Dropped("the origin sent another range".into()));
            }
        } else if partial.len > 0 {
            // A 200 carries the whole file.
            partial.restart(file.size).await?;
        }
        let mut watch = self.low_speed.watch(Instant::now());
        loop {
            let chunk = match tokio::time::timeout_at(watch.deadline(), response.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => return Err(Attempt::Dropped(e.to_string())),
                Err(_) => {
                    watch.arrived(0, Instant::now()).map_err(Attempt::Dropped)?;
                    continue;
                }
            };
            if partial.len + chunk.len() as u64 > file.size {
                let error = self.mismatch(file, "more bytes than listed".into());
                partial.discard().await;
                return Err(Attempt::Fatal(error));
            }
            for limiter in self.limiters {
                limiter.consume(chunk.len()).await;
            }
            partial.append(&chunk).await?;
            watch
                .arrived(chunk.len() as u64, Instant::now())
                .map_err(Attempt::Dropped)?;
            *downloaded += chunk.len() as u64;
            progress.report(done_before + partial.len, &file.path);
        }
        if partial.len < file.size {
            return Err(Attempt::Dropped(format!(
                "the transfer ended at {} of {} bytes",
                partial.len, file.size
            )));
        }
        Ok(())
    }

    /// Checks the whole file's hash and moves it into place, or deletes it.
    async fn finish(&self, file: &ListedFile, partial: Partial, blob: &Path) -> NodeResult<()> {
        let Partial {
            path,
            file: mut handle,
            hasher,
            ..
        } = partial;
        let (git_sha1, sha256) = hasher.finish();
        let actual = if file.lfs { sha256 } else { git_sha1 };
        if actual != file.etag {
            drop(handle);
            let _ = tokio::fs::remove_file(&path).await;
            return Err(self.mismatch(
                file,
                format!(
                    "{} {actual}, but the listing says {}",
                    if file.lfs { "sha256" } else { "git blob sha1" },
                    file.etag
                ),
            ));
        }
        handle
            .flush()
            .await
            .map_err(|e| NodeError::io("writing", &path, e))?;
        handle
            .sync_all()
            .await
            .map_err(|e| NodeError::io("syncing", &path, e))?;
        drop(handle);
        tokio::fs::rename(&path, blob)
            .await
            .map_err(|e| NodeError::io("renaming", &path, e))
    }

    fn mismatch(&self, file: &ListedFile, what: String) -> NodeError {
        NodeError::PeerMisbehaved(format!(
            "{} from the origin does not match its listing: {what}; nothing was published",
            file.path
        ))
    }
}

/// A failed attempt: a dropped transfer, which another attempt resumes, or a failure
/// no retry mends.
enum Attempt {
    Dropped(String),
    Fatal(NodeError),
}

impl From<NodeError> for Attempt {
    /// Local I/O and a misbehaving origin end the download at once.
    fn from(error: NodeError) -> Self {
        Self::Fatal(error)
    }
}

/// Where the bytes of `blob` gather while they arrive.
fn partial_path(blob: &Path) -> PathBuf {
    let mut name = blob.as_os_str().to_owned();
    name.push(".incomplete");
    PathBuf::from(name)
}

impl Partial {
    /// Opens `path` for appending, hashing what an earlier attempt left there (nothing
    /// if it is longer than the file can be).
    async fn open(path: PathBuf, size: u64) -> NodeResult<Self> {
        let file = tokio::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .await
            .map_err(|e| NodeError::io("opening", &path, e))?;
        let mut partial = Self {
            path,
            file,
            len: 0,
            hasher: HubHasher::new(size),
        };
        let existing = partial
            .file
            .metadata()
            .await
            .map_err(|e| NodeError::io("reading", &partial.path, e))?
            .len();
        if existing > size {
            partial.restart(size).await?;
            return Ok(partial);
        }
        // Reading to the end also leaves the position where appending goes on.
        let mut buffer = vec![0u8; READ_BUFFER];
        loop {
            let read = partial
                .file
                .read(&mut buffer)
                .await
                .map_err(|e| NodeError::io("reading", &partial.path, e))?;
            if read == 0 {
                break;
            }
            partial.hasher.update(&buffer[..read]);
            partial.len += read as u64;
        }
        Ok(partial)
    }

    async fn append(&mut self, bytes: &[u8]) -> NodeResult<()> {
        self.file
            .write_all(bytes)
            .await
            .map_err(|e| NodeError::io("writing", &self.path, e))?;
        self.hasher.update(bytes);
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Empties the file to start from byte 0.
    async fn restart(&mut self, size: u64) -> NodeResult<()> {
        self.file
            .set_len(0)
            .await
            .map_err(|e| NodeError::io("truncating", &self.path, e))?;
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .await
            .map_err(|e| NodeError::io("seeking", &self.path, e))?;
        self.len = 0;
        self.hasher = HubHasher::new(size);
        Ok(())
    }

    async fn discard(&mut self) {
        let _ = tokio::fs::remove_file(&self.path).await;
    }
}
