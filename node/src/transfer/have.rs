//! Asking a peer which parts of a blob it holds: iroh-blobs' observe request, one shot.
//!
//! A peer still fetching an artifact serves the verified ranges it already has; before
//! asking it for data, a fetcher asks what it has. Our providers answer an observe
//! request with the current bitfield and end the stream (see `BlobSend::stopped`), so a
//! question never holds one of the provider's stream slots for long.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use iroh_blobs::protocol::{ChunkRanges, ObserveItem, ObserveRequest, Request};
use iroh_blobs::Hash;
use libp2p::PeerId;

use super::busy::BusyCheck;
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
    let busy = Arc::new(AtomicBool::new(false));
    let mut answer = BusyCheck::new(stream, busy.clone());
    read_bitfield(&mut answer).await.map_err(|e| match e {
        _ if busy.load(Ordering::Relaxed) => RequestError::Busy { peer },
        BitfieldError::Io(e) => other("reading the answer", &e),
        BitfieldError::TooLarge(length) => RequestError::Misbehaved {
            peer,
            reason: format!("announced a {length}-byte bitfield (limit {MAX_HAVE_MESSAGE_BYTES})"),
        },
        BitfieldError::Malformed(e) => RequestError::Misbehaved {
            peer,
            reason: format!("malformed bitfield: {e}"),
        },
    })
}

/// Why an answer to a have-question could not be read.
#[derive(Debug)]
enum BitfieldError {
    /// The stream failed or ended early.
    Io(std::io::Error),
    /// The length prefix is over [`MAX_HAVE_MESSAGE_BYTES`].
    TooLarge(u64),
    /// The message does not decode.
    Malformed(String),
}

/// Reads one length-prefixed observe answer: untrusted, bounded before allocating.
async fn read_bitfield<R: AsyncRead + Unpin>(reader: &mut R) -> Result<ChunkRanges, BitfieldError> {
    let length = read_varint(reader).await.map_err(BitfieldError::Io)?;
    if length > MAX_HAVE_MESSAGE_BYTES {
        return Err(BitfieldError::TooLarge(length));
    }
    let mut message = vec![0; length as usize];
    reader
        .read_exact(&mut message)
        .await
        .map_err(BitfieldError::Io)?;
    let item: ObserveItem =
        postcard::from_bytes(&message).map_err(|e| BitfieldError::Malformed(e.to_string()))?;
    Ok(item.ranges)
}

/// Reads a LEB128 (postcard) varint length prefix.
async fn read_varint<R: AsyncRead + Unpin>(stream: &mut R) -> std::io::Result<u64> {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bao_tree::ChunkNum;
    use proptest::prelude::*;

    use super::*;

    fn read(bytes: &[u8]) -> Result<ChunkRanges, BitfieldError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(read_bitfield(&mut futures::io::Cursor::new(bytes)))
    }

    fn answer(ranges: &ChunkRanges) -> Vec<u8> {
        let item = ObserveItem {
            size: 1 << 30,
            ranges: ranges.clone(),
        };
        let body = postcard::to_allocvec(&item).unwrap();
        let mut bytes = postcard::to_allocvec(&(body.len() as u64)).unwrap();
        bytes.extend(body);
        bytes
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        let mut bytes = postcard::to_allocvec(&(MAX_HAVE_MESSAGE_BYTES + 1)).unwrap();
        bytes.extend([0; 16]);
        assert!(matches!(read(&bytes), Err(BitfieldError::TooLarge(_))));
        assert!(matches!(read(&[0xff; 11]), Err(BitfieldError::Io(_))));
    }

    proptest! {
        #[test]
        fn answers_round_trip(spans in proptest::collection::vec((0u64..1 << 20, 1u64..1 << 10), 0..16)) {
            let ranges = spans.iter().fold(ChunkRanges::empty(), |acc, (start, len)| {
                &acc | &ChunkRanges::from(ChunkNum(*start)..ChunkNum(start + len))
            });
            prop_assert_eq!(read(&answer(&ranges)).unwrap(), ranges);
        }

        #[test]
        fn arbitrary_answers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = read(&bytes);
        }
    }
}
