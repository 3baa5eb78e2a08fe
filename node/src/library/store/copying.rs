//! Copying a complete blob out of the store with its BLAKE3 hash computed on the way.
//! Exports copy straight from the file iroh-blobs keeps the blob in, in one blocking
//! thread with large buffers, when there is one, else through the store's export stream
//! (small blobs kept in its database, files referenced from outside it); verification
//! reads through the export stream. Either way the hash of what was read is returned,
//! so the caller checks it.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use iroh_blobs::api::proto::ExportRangesItem;
use seedbank_protocol::BlobHash;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::{to_iroh, BlobStore};
use crate::error::{NodeError, NodeResult};

/// Bytes read, hashed and written per step of a direct copy.
const FILE_COPY_BUFFER: usize = 4 * 1024 * 1024;
/// How often a direct copy's progress is reported.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

impl BlobStore {
    /// Streams a complete blob's bytes through BLAKE3 into `output`, calling `on_bytes`
    /// with the running count; returns the byte count and the hash of what was read.
    /// One store operation for the whole blob keeps this at disk speed.
    pub async fn copy_and_hash<W: AsyncWrite + Unpin>(
        &self,
        hash: BlobHash,
        output: &mut W,
        mut on_bytes: impl FnMut(u64),
    ) -> NodeResult<(u64, BlobHash)> {
        let mut stream = self
            .inner
            .blobs()
            .export_ranges(to_iroh(hash), 0..u64::MAX)
            .stream();
        let mut hasher = blake3::Hasher::new();
        let mut read = 0u64;
        while let Some(item) = stream.next().await {
            match item {
                ExportRangesItem::Size(_) => {}
                ExportRangesItem::Data(leaf) => {
                    if leaf.offset != read {
                        return Err(NodeError::Corrupt(format!(
                            "blob {hash}: store returned offset {} where {read} was expected",
                            leaf.offset
                        )));
                    }
                    hasher.update(&leaf.data);
                    output
                        .write_all(&leaf.data)
                        .await
                        .map_err(|e| NodeError::io("writing", &self.root, e))?;
                    read += leaf.data.len() as u64;
                    on_bytes(read);
                }
                ExportRangesItem::Error(e) => {
                    return Err(NodeError::Corrupt(format!("reading blob {hash}: {e}")))
                }
            }
        }
        output
            .flush()
            .await
            .map_err(|e| NodeError::io("writing", &self.root, e))?;
        Ok((read, BlobHash(*hasher.finalize().as_bytes())))
    }

    /// The file iroh-blobs keeps the complete blob `hash` of `size` bytes in, if it
    /// keeps it in a file of its own.
    pub(super) fn data_file(&self, hash: BlobHash, size: u64) -> Option<PathBuf> {
        let path = self.paths.data_path(&to_iroh(hash));
        let meta = std::fs::metadata(&path).ok()?;
        (meta.is_file() && meta.len() == size).then_some(path)
    }

    /// Copies the complete blob `hash` of `size` bytes into `output`, calling
    /// `on_bytes` with the running count; returns the bytes copied, the hash of what was
    /// read, and `output` (not yet synced).
    pub async fn copy_out_and_hash(
        &self,
        hash: BlobHash,
        size: u64,
        output: std::fs::File,
        mut on_bytes: impl FnMut(u64),
    ) -> NodeResult<(u64, BlobHash, std::fs::File)> {
        let Some(source) = self.data_file(hash, size) else {
            let mut output = tokio::io::BufWriter::with_capacity(
                FILE_COPY_BUFFER,
                tokio::fs::File::from_std(output),
            );
            let (read, actual) = self.copy_and_hash(hash, &mut output, on_bytes).await?;
            return Ok((read, actual, output.into_inner().into_std().await));
        };
        let copied = Arc::new(AtomicU64::new(0));
        let counter = copied.clone();
        let task = tokio::task::spawn_blocking(move || copy_file(&source, output, &counter));
        tokio::pin!(task);
        loop {
            tokio::select! {
                joined = &mut task => {
                    let (read, actual, output) = joined
                        .map_err(|e| NodeError::Internal(format!("copying a blob: {e}")))??;
                    on_bytes(read);
                    return Ok((read, actual, output));
                }
                _ = tokio::time::sleep(PROGRESS_EVERY) => on_bytes(copied.load(Ordering::Relaxed)),
            }
        }
    }
}

/// Reads `source` to its end, hashing it and writing it to `output`.
fn copy_file(
    source: &std::path::Path,
    mut output: std::fs::File,
    copied: &AtomicU64,
) -> NodeResult<(u64, BlobHash, std::fs::File)> {
    // A read error is the store's (the caller names the output in write errors).
    let unreadable = |e: std::io::Error| {
        NodeError::Corrupt(format!(
            "reading {}: {e}; run `seedbank verify`",
            source.display()
        ))
    };
    let mut input = std::fs::File::open(source).map_err(unreadable)?;
    let mut buffer = vec![0u8; FILE_COPY_BUFFER];
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    loop {
        let read = input.read(&mut buffer).map_err(unreadable)?;
        if read == 0 {
            break;
        }
        let bytes = &buffer[..read];
        hasher.update(bytes);
        output.write_all(bytes).map_err(|e| NodeError::Io {
            context: "writing".into(),
            source: e,
        })?;
        total += read as u64;
        copied.store(total, Ordering::Relaxed);
    }
    Ok((total, BlobHash(*hasher.finalize().as_bytes()), output))
}
