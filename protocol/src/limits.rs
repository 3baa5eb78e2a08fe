//! Limits every Seedbank node enforces on data it accepts, from users and from peers.
//!
//! Each is a named constant so that a peer cannot make us allocate without bound, and
//! each has a test that crosses it.

/// Largest encoded manifest we accept. A manifest of [`MAX_FILES_PER_ARTIFACT`] files with
/// long paths fits; anything larger is someone trying to make us allocate.
pub const MAX_MANIFEST_BYTES: usize = 16 * 1024 * 1024;

/// Most files one artifact may hold. Large datasets are sharded into far fewer files
/// than this; the cap keeps the root HashSeq (32 bytes a file) under 4 MiB.
pub const MAX_FILES_PER_ARTIFACT: usize = 100_000;

/// Largest single file an artifact may list: 4 TiB. The largest published weight
/// shards and dataset files are tens of GiB; a manifest listing more is refused before
/// anything is planned or requested, so a peer cannot make a fetcher plan an absurd
/// amount of work or reserve an absurd amount of disk.
pub const MAX_FILE_BYTES: u64 = 1 << 42;

/// Largest total size of one artifact (the checked sum of its files): 64 TiB, beyond any
/// single model or dataset revision published today.
pub const MAX_ARTIFACT_BYTES: u64 = 1 << 46;

/// Largest root HashSeq: one 32-byte hash for the manifest and one per file.
pub const MAX_ROOT_BYTES: usize = 32 * (MAX_FILES_PER_ARTIFACT + 1);

/// Longest relative path of one file inside an artifact, in bytes. Matches common
/// filesystem `PATH_MAX`-style limits so exports never fail on path length alone.
pub const MAX_PATH_BYTES: usize = 1024;

/// Longest artifact name, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// Longest revision label, in bytes.
pub const MAX_REVISION_BYTES: usize = 64;

/// Longest licence expression (an SPDX id or expression), in bytes.
pub const MAX_LICENCE_BYTES: usize = 128;

/// Largest JSON body the control API accepts. Requests carry paths and options, never data.
pub const MAX_API_REQUEST_BYTES: usize = 64 * 1024;
