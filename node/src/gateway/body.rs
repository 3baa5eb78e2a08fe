//! A file's bytes as a response body, streamed from the store as they are verified: a
//! file still being fetched is sent as its parts arrive, from the requested offset on,
//! so the client's first byte never waits for the whole file.

use std::time::Duration;

use axum::body::Body;
use bao_tree::ChunkNum;
use bytes::Bytes;
use futures_util::StreamExt;
use range_collections::range_set::RangeSetRange;
use seedbank_protocol::BlobHash;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::fetch::readers::ReaderLease;
use crate::library::chunk_ranges::CHUNK_BYTES;
use crate::library::store::BlobStore;

/// How long a response waits with no new verified bytes before it ends with an error
/// (the client then asks again with a `Range` from where it got to).
const STALL_LIMIT: Duration = Duration::from_secs(60);
/// How often a waiting response looks at what the store holds.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Pieces queued between the store and the connection.
const QUEUED_PIECES: usize = 16;

/// The bytes `range` of the blob `hash` (`size` bytes in all), as a body; `reader`
/// is held until the body ends.
pub fn file_body(
    store: BlobStore,
    hash: BlobHash,
    size: u64,
    range: std::ops::Range<u64>,
    reader: ReaderLease,
) -> Body {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(QUEUED_PIECES);
    let (start, end) = (range.start, range.end);
    tokio::spawn(tracing::Instrument::instrument(
        async move {
            if let Err(message) = pump(&store, hash, size, range, &tx).await {
                tracing::info!(%hash, %message, "gateway response ended early");
                let _ = tx.send(Err(std::io::Error::other(message))).await;
            }
            drop(reader);
        },
        tracing::info_span!("gateway_body", %hash, start, end),
    ));
    Body::from_stream(futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    }))
}

/// Sends verified bytes of `range` in order, waiting for more while a fetch adds them.
/// Returns quietly when the client goes away.
async fn pump(
    store: &BlobStore,
    hash: BlobHash,
    size: u64,
    range: std::ops::Range<u64>,
    tx: &mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), String> {
    let mut position = range.start;
    let mut last_progress = Instant::now();
    while position < range.end {
        let verified_to = verified_end(store, hash, size, position).await?;
        if verified_to <= position {
            if tx.is_closed() {
                return Ok(());
            }
            if last_progress.elapsed() > STALL_LIMIT {
                return Err(format!(
                    "no verified bytes after offset {position} arrived for {} s",
                    STALL_LIMIT.as_secs()
                ));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
            continue;
        }
        let upto = verified_to.min(range.end);
        let mut pieces = std::pin::pin!(store.read_range(hash, position..upto));
        while let Some(piece) = pieces.next().await {
            let (offset, data) = piece.map_err(|e| e.to_string())?;
            // Keep exactly the bytes from `position` to `upto`.
            let skip = position.saturating_sub(offset) as usize;
            let keep = (upto.saturating_sub(offset) as usize).min(data.len());
            if offset > position || skip >= keep {
                if offset > position {
                    return Err(format!("the store skipped from {position} to {offset}"));
                }
                continue;
            }
            let data = data.slice(skip..keep);
            position += data.len() as u64;
            if tx.send(Ok(data)).await.is_err() {
                return Ok(());
            }
        }
        if position < upto {
            return Err(format!("the store ended at {position} of {upto}"));
        }
        last_progress = Instant::now();
    }
    Ok(())
}

/// The end of the verified bytes that start at or before `position` and run past it
/// (`position` itself when that byte is not verified yet).
async fn verified_end(
    store: &BlobStore,
    hash: BlobHash,
    size: u64,
    position: u64,
) -> Result<u64, String> {
    let ranges = store
        .verified_ranges(hash)
        .await
        .map_err(|e| e.to_string())?;
    let chunk = ChunkNum(position / CHUNK_BYTES);
    for range in ranges.iter() {
        let (start, end) = match range {
            RangeSetRange::Range(r) => (*r.start, Some(*r.end)),
            RangeSetRange::RangeFrom(r) => (*r.start, None),
        };
        if start <= chunk && end.is_none_or(|end| chunk < end) {
            return Ok(end.map_or(size, |end| end.0.saturating_mul(CHUNK_BYTES).min(size)));
        }
    }
    Ok(position)
}
