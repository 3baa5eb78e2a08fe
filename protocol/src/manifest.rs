//! The artifact manifest: what one revision of a model or dataset contains.
//!
//! Encoding is deterministic: one format-version byte, then the postcard encoding of
//! [`Manifest`]: format 2 is the file list alone; format 3 adds the hub metadata of a
//! revision imported from Hugging Face ([`HfRevision`]). A manifest without hub metadata
//! is always written as format 2, so plain artifacts keep their ids. Files are kept in strictly ascending path order (which is also their
//! order in the root HashSeq), so a given manifest has exactly one encoding. Decoding
//! checks the size limit before parsing and validates every field after, and never
//! panics on arbitrary bytes.

use serde::{Deserialize, Serialize};

use crate::hf::{HfRevision, HfRevisionError};
use crate::limits::{
    MAX_ARTIFACT_BYTES, MAX_FILES_PER_ARTIFACT, MAX_FILE_BYTES, MAX_MANIFEST_BYTES,
};
use crate::{validate_artifact_path, ArtifactPathError, BlobHash};

/// The manifest format of a plain file tree.
pub const MANIFEST_FORMAT_VERSION: u8 = 2;
/// The manifest format of a file tree with hub metadata.
pub const MANIFEST_FORMAT_WITH_HF: u8 = 3;

/// One file of an artifact.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative path with `/` separators (see [`validate_artifact_path`]).
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 hash of the file's bytes.
    pub hash: BlobHash,
}

/// The file tree of one revision of a model or dataset, and nothing else: the same
/// files give the same manifest, and so the same content id, whoever adds them and
/// whenever. Who published it, under what name and licence, lives in a signed
/// [`crate::Release`] that points at the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Files in strictly ascending path order, the order of the root HashSeq after the manifest.
    pub files: Vec<FileEntry>,
    /// The Hugging Face commit and ETags of a revision imported from the hub's layout.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hf: Option<HfRevision>,
}

/// The encoded body of a format 3 manifest.
#[derive(Serialize)]
struct WithHfRef<'a> {
    files: &'a [FileEntry],
    hf: &'a HfRevision,
}

/// The decoded body of a format 3 manifest.
#[derive(Deserialize)]
struct WithHf {
    files: Vec<FileEntry>,
    hf: HfRevision,
}

/// Why a manifest could not be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// The encoded manifest is larger than [`MAX_MANIFEST_BYTES`].
    #[error("manifest of {0} bytes exceeds the limit of {MAX_MANIFEST_BYTES}")]
    TooLarge(usize),
    /// The bytes are empty.
    #[error("manifest is empty")]
    Empty,
    /// The format version is not one this code reads.
    #[error("unsupported manifest format version {0} (this node reads versions {MANIFEST_FORMAT_VERSION} and {MANIFEST_FORMAT_WITH_HF})")]
    UnsupportedVersion(u8),
    /// The bytes are not a valid encoding.
    #[error("malformed manifest: {0}")]
    Malformed(String),
    /// Bytes follow the encoded manifest.
    #[error("malformed manifest: {0} trailing bytes")]
    TrailingBytes(usize),
    /// More files than [`MAX_FILES_PER_ARTIFACT`].
    #[error("manifest lists {0} files, more than the limit of {MAX_FILES_PER_ARTIFACT}")]
    TooManyFiles(usize),
    /// One file is larger than [`MAX_FILE_BYTES`].
    #[error("file {path:?} is {size} bytes, more than the limit of {MAX_FILE_BYTES} (4 TiB)")]
    FileTooLarge {
        /// The file.
        path: String,
        /// Its listed size.
        size: u64,
    },
    /// The files add up to more than [`MAX_ARTIFACT_BYTES`] (or overflow).
    #[error("the files add up to more than the limit of {MAX_ARTIFACT_BYTES} bytes (64 TiB)")]
    ArtifactTooLarge,
    /// A file path is not a clean relative path.
    #[error("invalid file path: {0}")]
    BadPath(#[from] ArtifactPathError),
    /// Files are not in strictly ascending path order (or a path repeats).
    #[error("file {0:?} is duplicated or out of order")]
    DuplicateOrUnsortedPath(String),
    /// The hub metadata is malformed.
    #[error("bad Hugging Face metadata: {0}")]
    BadHf(#[from] HfRevisionError),
}

impl Manifest {
    /// Encodes the manifest after validating it.
    pub fn encode(&self) -> Result<Vec<u8>, ManifestError> {
        self.validate()?;
        let malformed = |e: postcard::Error| ManifestError::Malformed(e.to_string());
        let (version, body) = match &self.hf {
            None => (
                MANIFEST_FORMAT_VERSION,
                postcard::to_stdvec(&self.files).map_err(malformed)?,
            ),
            Some(hf) => (
                MANIFEST_FORMAT_WITH_HF,
                postcard::to_stdvec(&WithHfRef {
                    files: &self.files,
                    hf,
                })
                .map_err(malformed)?,
            ),
        };
        let mut bytes = vec![version];
        bytes.extend_from_slice(&body);
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Decodes and validates untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, ManifestError> {
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(ManifestError::TooLarge(bytes.len()));
        }
        let (&version, body) = bytes.split_first().ok_or(ManifestError::Empty)?;
        let malformed = |e: postcard::Error| ManifestError::Malformed(e.to_string());
        let (manifest, rest) = match version {
            MANIFEST_FORMAT_VERSION => {
                let (files, rest) = postcard::take_from_bytes(body).map_err(malformed)?;
                (Manifest { files, hf: None }, rest)
            }
            MANIFEST_FORMAT_WITH_HF => {
                let (body, rest): (WithHf, _) =
                    postcard::take_from_bytes(body).map_err(malformed)?;
                let manifest = Manifest {
                    files: body.files,
                    hf: Some(body.hf),
                };
                (manifest, rest)
            }
            other => return Err(ManifestError::UnsupportedVersion(other)),
        };
        if !rest.is_empty() {
            return Err(ManifestError::TrailingBytes(rest.len()));
        }
        manifest.validate()?;
        Ok(manifest)
    }

    /// Total size of all files in bytes.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// Checks every field against the limits and rules in this module.
    pub fn validate(&self) -> Result<(), ManifestError> {
        if self.files.len() > MAX_FILES_PER_ARTIFACT {
            return Err(ManifestError::TooManyFiles(self.files.len()));
        }
        let mut total: u64 = 0;
        for file in &self.files {
            validate_artifact_path(&file.path)?;
            if file.size > MAX_FILE_BYTES {
                return Err(ManifestError::FileTooLarge {
                    path: file.path.clone(),
                    size: file.size,
                });
            }
            total = total
                .checked_add(file.size)
                .filter(|total| *total <= MAX_ARTIFACT_BYTES)
                .ok_or(ManifestError::ArtifactTooLarge)?;
        }
        for pair in self.files.windows(2) {
            if pair[0].path.as_bytes() >= pair[1].path.as_bytes() {
                return Err(ManifestError::DuplicateOrUnsortedPath(pair[1].path.clone()));
            }
        }
        if let Some(hf) = &self.hf {
            hf.validate(self.files.len())?;
        }
        Ok(())
    }

    /// The file at `path`, if the artifact has one.
    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.file_index(path).map(|i| &self.files[i])
    }

    /// The position of the file at `path` in [`Self::files`], if the artifact has one.
    pub fn file_index(&self, path: &str) -> Option<usize> {
        self.files
            .binary_search_by(|f| f.path.as_bytes().cmp(path.as_bytes()))
            .ok()
    }

    /// Sorts files into the canonical order. Call before [`Manifest::encode`] when
    /// building a manifest from files in arbitrary order.
    pub fn sort_files(&mut self) {
        match &mut self.hf {
            None => self
                .files
                .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes())),
            Some(hf) if hf.etags.len() == self.files.len() => {
                let mut pairs: Vec<(FileEntry, String)> = std::mem::take(&mut self.files)
                    .into_iter()
                    .zip(std::mem::take(&mut hf.etags))
                    .collect();
                pairs.sort_by(|a, b| a.0.path.as_bytes().cmp(b.0.path.as_bytes()));
                (self.files, hf.etags) = pairs.into_iter().unzip();
            }
            // Misaligned metadata is refused by validate; leave it for that.
            Some(_) => self
                .files
                .sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes())),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn file(path: &str, size: u64) -> FileEntry {
        FileEntry {
            path: path.into(),
            size,
            hash: BlobHash([size as u8; 32]),
        }
    }

    fn sample() -> Manifest {
        Manifest {
            files: vec![
                file("README.md", 10),
                file("weights/model.safetensors", 1 << 30),
            ],
            hf: None,
        }
    }

    fn arb_manifest() -> impl Strategy<Value = Manifest> {
        proptest::collection::btree_map(
            "[a-z]{1,8}(/[a-z0-9_]{1,8}){0,3}",
            (0..=MAX_FILE_BYTES / 32, any::<[u8; 32]>()),
            0..20,
        )
        .prop_map(|files| {
            let mut manifest = Manifest {
                files: files
                    .into_iter()
                    .map(|(path, (size, hash))| FileEntry {
                        path,
                        size,
                        hash: BlobHash(hash),
                    })
                    .collect(),
                hf: None,
            };
            manifest.sort_files();
            manifest
        })
    }

    proptest! {
        #[test]
        fn encoding_round_trips_and_is_deterministic(manifest in arb_manifest()) {
            let bytes = manifest.encode().unwrap();
            let decoded = Manifest::decode(&bytes).unwrap();
            prop_assert_eq!(&decoded, &manifest);
            prop_assert_eq!(decoded.encode().unwrap(), bytes);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Manifest::decode(&bytes);
        }

        #[test]
        fn decoding_mutated_manifests_never_panics(manifest in arb_manifest(), index in any::<usize>(), value in any::<u8>()) {
            let mut bytes = manifest.encode().unwrap();
            let i = index % bytes.len();
            bytes[i] = value;
            let _ = Manifest::decode(&bytes);
        }
    }

    #[test]
    fn hub_metadata_round_trips_as_format_3_and_plain_trees_stay_format_2() {
        let plain = sample();
        let plain_bytes = plain.encode().unwrap();
        assert_eq!(plain_bytes[0], MANIFEST_FORMAT_VERSION);
        // Format 2 is exactly the file list, as before format 3 existed.
        assert_eq!(
            plain_bytes[1..],
            postcard::to_stdvec(&plain.files).unwrap()[..]
        );
        let mut with_hf = sample();
        with_hf.hf = Some(HfRevision {
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            etags: vec!["a".repeat(40), "b".repeat(64)],
        });
        let bytes = with_hf.encode().unwrap();
        assert_eq!(bytes[0], MANIFEST_FORMAT_WITH_HF);
        assert_eq!(Manifest::decode(&bytes).unwrap(), with_hf);
        // Sorting keeps each ETag with its file.
        let mut shuffled = with_hf.clone();
        shuffled.files.reverse();
        shuffled.hf.as_mut().unwrap().etags.reverse();
        shuffled.sort_files();
        assert_eq!(shuffled, with_hf);
        // An ETag count that does not match the files is refused.
        with_hf.hf.as_mut().unwrap().etags.pop();
        assert!(matches!(with_hf.encode(), Err(ManifestError::BadHf(_))));
    }

    #[test]
    fn rejects_wrong_version_trailing_bytes_and_empty_input() {
        let mut bytes = sample().encode().unwrap();
        assert_eq!(Manifest::decode(&[]), Err(ManifestError::Empty));
        bytes.push(0);
        assert_eq!(
            Manifest::decode(&bytes),
            Err(ManifestError::TrailingBytes(1))
        );
        bytes[0] = 9;
        assert_eq!(
            Manifest::decode(&bytes),
            Err(ManifestError::UnsupportedVersion(9))
        );
    }

    #[test]
    fn a_fetched_manifest_with_a_bidi_control_in_a_path_is_refused() {
        let mut manifest = sample();
        manifest.files = vec![file("weights\u{202e}nib.exe", 1)];
        // Encoded by hand, as a hostile peer would, skipping the validation in encode.
        let mut bytes = vec![MANIFEST_FORMAT_VERSION];
        bytes.extend(postcard::to_stdvec(&manifest.files).unwrap());
        assert!(matches!(
            Manifest::decode(&bytes),
            Err(ManifestError::BadPath(ArtifactPathError::FormatCharacter(
                _,
                '\u{202e}'
            )))
        ));
    }

    #[test]
    fn rejects_duplicate_unsorted_and_escaping_paths() {
        let mut manifest = sample();
        manifest.files.push(file("README.md", 1));
        assert!(matches!(
            manifest.encode(),
            Err(ManifestError::DuplicateOrUnsortedPath(_))
        ));
        let mut manifest = sample();
        manifest.files.reverse();
        assert!(matches!(
            manifest.encode(),
            Err(ManifestError::DuplicateOrUnsortedPath(_))
        ));
        let mut manifest = sample();
        manifest.files = vec![file("../escape", 1)];
        assert!(matches!(manifest.encode(), Err(ManifestError::BadPath(_))));
        manifest.files = vec![file("/abs", 1)];
        assert!(matches!(manifest.encode(), Err(ManifestError::BadPath(_))));
    }

    #[test]
    fn file_count_limit_is_enforced() {
        let mut manifest = sample();
        manifest.files = (0..=MAX_FILES_PER_ARTIFACT)
            .map(|i| file(&format!("f{i:07}"), 1))
            .collect();
        assert_eq!(
            manifest.encode(),
            Err(ManifestError::TooManyFiles(MAX_FILES_PER_ARTIFACT + 1))
        );
        manifest.files.pop();
        assert!(manifest.encode().is_ok());
    }

    #[test]
    fn file_and_artifact_size_limits_are_enforced() {
        let mut manifest = sample();
        manifest.files = vec![file("huge", MAX_FILE_BYTES + 1)];
        assert!(matches!(
            manifest.encode(),
            Err(ManifestError::FileTooLarge { size, .. }) if size == MAX_FILE_BYTES + 1
        ));
        manifest.files = vec![file("huge", MAX_FILE_BYTES)];
        assert!(manifest.encode().is_ok());
        let count = MAX_ARTIFACT_BYTES / MAX_FILE_BYTES;
        manifest.files = (0..=count)
            .map(|i| file(&format!("shard{i:03}"), MAX_FILE_BYTES))
            .collect();
        assert_eq!(manifest.encode(), Err(ManifestError::ArtifactTooLarge));
        manifest.files.pop();
        assert!(manifest.encode().is_ok());
        // A sum that would wrap around u64 is refused, not wrapped.
        manifest.files = (0..4)
            .map(|i| file(&format!("f{i}"), u64::MAX / 3))
            .collect();
        assert!(manifest.validate().is_err());
    }

    #[test]
    fn a_hostile_manifest_with_a_two_to_the_56_byte_file_does_not_decode() {
        let mut manifest = sample();
        manifest.files = vec![file("weights.bin", 1 << 56)];
        // Encode bypassing validation, as a hostile peer would.
        let mut bytes = vec![MANIFEST_FORMAT_VERSION];
        bytes.extend(postcard::to_stdvec(&manifest.files).unwrap());
        assert!(matches!(
            Manifest::decode(&bytes),
            Err(ManifestError::FileTooLarge { .. })
        ));
    }

    #[test]
    fn size_limit_is_checked_before_parsing() {
        let bytes = vec![MANIFEST_FORMAT_VERSION; MAX_MANIFEST_BYTES + 1];
        assert_eq!(
            Manifest::decode(&bytes),
            Err(ManifestError::TooLarge(MAX_MANIFEST_BYTES + 1))
        );
    }
}
