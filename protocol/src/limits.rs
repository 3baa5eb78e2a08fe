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

/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 32;

/// Most tags one release or catalog entry may carry.
pub const MAX_TAGS: usize = 16;

/// Largest signed release record. Its longest fields (name, revision, licence, card
/// path, tags) fit with room to spare.
pub const MAX_RELEASE_BYTES: usize = 3 * 1024;

/// Most earlier revisions a name record lists; older ones drop off the record.
pub const MAX_EARLIER_REVISIONS: usize = 32;

/// Largest signed name record: the latest release and [`MAX_EARLIER_REVISIONS`]
/// entries fit; DHT nodes refuse anything larger.
pub const MAX_NAME_RECORD_BYTES: usize = 8 * 1024;

/// Largest signed catalog page.
pub const MAX_CATALOG_PAGE_BYTES: usize = 16 * 1024;

/// Most names on one catalog page.
pub const MAX_CATALOG_ENTRIES_PER_PAGE: usize = 64;

/// Most pages one publisher's catalog may have (4096 names at the most).
pub const MAX_CATALOG_PAGES: usize = 64;

/// Most publishers one node's directory lists.
pub const MAX_DIRECTORY_PUBLISHERS: usize = 64;

/// Largest signed directory.
pub const MAX_DIRECTORY_BYTES: usize = 4 * 1024;
