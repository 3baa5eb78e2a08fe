//! Asking a peer which parts of a blob it holds: iroh-blobs' observe request, one shot.
//!
//! A peer still fetching an artifact serves the verified ranges it already has; before
//! asking it for data, a fetcher asks what it has. Our providers answer an observe
//! request with the current bitfield and end the stream (see `BlobSend::stopped`), so a
//! question never holds one of the provider's stream slots for long.

use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use iroh_blobs::protocol::{ChunkRanges, ObserveItem, ObserveRequest, Request};
use iroh_blobs::Hash;
use libp2p::PeerId;

use super::client::{open_blob_stream, RequestError};
use crate::net::NetHandle;

/// Largest bitfield message accepted: a fragmented bitfield of a huge file fits easily.
pub const MAX_HAVE_MESSAGE_BYTES: u64 = 1024 * 1024;

/// Longest a peer may take to say what it holds.
pub const HAVE_TIMEOUT: Duration = Duration::from_secs(20);

/// The chunk ranges of `hash` that `peer` holds, verified, right now.
pub async fn ask_have(
    net: &NetHandle,
    peer: PeerId,
    hash: Hash,
) -> Result<ChunkRanges, RequestError> {
    tokio::time::timeout(HAVE_TIMEOUT, ask_have_now(net, peer, hash))
        .await
        .unwrap_or(Err(RequestError::TimedOut {
            peer,
            after: HAVE_TIMEOUT,
        }))
}

async fn ask_have_now(
    net: &NetHandle,
    peer: PeerId,
    hash: Hash,
) -> Result<ChunkRanges, RequestError> {
    let other = |what: &str, e: &dyn std::fmt::Display| RequestError::Incomplete {
        peer,
        reason: format!("asking what it has: {what}: {e}"),
    };
    let mut stream = open_blob_stream(net, peer).await?;
    let request = postcard::to_allocvec(&Request::Observe(ObserveRequest::new(hash)))
        .map_err(|e| other("encoding the request", &e))?;
    stream
        .write_all(&request)
        .await
        .map_err(|e| other("sending the request", &e))?;
    stream
        .close()
        .await
        .map_err(|e| other("finishing the request", &e))?;
    let length = read_varint(&mut stream)
        .await
        .map_err(|e| other("reading the answer", &e))?;
    if length > MAX_HAVE_MESSAGE_BYTES {
        return Err(RequestError::Misbehaved {
            peer,
            reason: format!("announced a {length}-byte bitfield (limit {MAX_HAVE_MESSAGE_BYTES})"),
        });
    }
    let mut message = vec![0; length as usize];
    stream
        .read_exact(&mut message)
        .await
        .map_err(|e| other("reading the bitfield", &e))?;
    let item: ObserveItem =
        postcard::from_bytes(&message).map_err(|e| RequestError::Misbehaved {
            peer,
            reason: format!("malformed bitfield: {e}"),
        })?;
    Ok(item.ranges)
}

/// Reads a LEB128 (postcard) varint length prefix.
async fn read_varint(stream: &mut libp2p::Stream) -> std::io::Result<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await?;
        value |= u64::from(byte[0] & 0x7f) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "length prefix longer than 10 bytes",
    ))
}
