//! Reading a denylist: resolve `PUBLISHER/NAME` through its signed name record to the
//! latest revision, get that small artifact (its manifest is checked first, so nothing
//! beyond one file of at most [`MAX_DENYLIST_BYTES`] is ever fetched), and decode it.

use seedbank_protocol::api::FetchRequest;
use seedbank_protocol::denylist::{Denylist, DENYLIST_FILE, MAX_DENYLIST_BYTES};
use seedbank_protocol::{ContentId, FileEntry, Manifest, PublisherKey};

use super::Denylists;
use crate::error::{NodeError, NodeResult};
use crate::progress::ProgressReporter;

/// The latest revision of a list and the artifact holding it.
#[derive(Debug, Clone)]
pub struct ReadList {
    /// The artifact.
    pub root: ContentId,
    /// The list.
    pub list: Denylist,
    /// The name record's sequence.
    pub sequence: u64,
}

/// Reads the latest revision of `publisher`'s list `name`.
pub async fn read_latest(
    lists: &Denylists,
    publisher: &PublisherKey,
    name: &str,
) -> NodeResult<ReadList> {
    let text = format!("{publisher}/{name}");
    let resolution = lists.names().resolve(&text).await?;
    let root = resolution.root;
    let bytes = list_bytes(lists, root, &text).await?;
    let list = Denylist::decode(&bytes)
        .map_err(|e| NodeError::BadRecord(format!("{text} ({root}): {e}")))?;
    if list.name != name {
        return Err(NodeError::BadRecord(format!(
            "{text} ({root}) holds the denylist {:?}, not {name:?}",
            list.name
        )));
    }
    Ok(ReadList {
        root,
        list,
        sequence: resolution.sequence,
    })
}

/// The bytes of the list file of `root`, fetched if this node does not hold them.
async fn list_bytes(lists: &Denylists, root: ContentId, text: &str) -> NodeResult<Vec<u8>> {
    let manifest = lists.fetcher().fetch_manifest(root).await?;
    let file = list_file(&manifest).map_err(|problem| {
        NodeError::BadRecord(format!("{text} ({root}) is not a denylist: {problem}"))
    })?;
    if !lists.library().files_complete(&[&file]).await? {
        let request = FetchRequest {
            id: root.to_string(),
            allow_unsigned: false,
            include: Vec::new(),
            pin: false,
        };
        lists
            .fetcher()
            .fetch(request, &mut ProgressReporter::silent())
            .await?;
    }
    // The transfer store is the one place blob bytes are read from; the size was
    // checked against the manifest and is checked again here.
    lists
        .library()
        .transfer_store()
        .read_small(file.hash, MAX_DENYLIST_BYTES)
        .await
}

/// The one file of a denylist artifact, or what is wrong with the artifact.
fn list_file(manifest: &Manifest) -> Result<FileEntry, String> {
    match manifest.files.as_slice() {
        [file] if file.path == DENYLIST_FILE && file.size <= MAX_DENYLIST_BYTES as u64 => {
            Ok(file.clone())
        }
        [file] if file.path == DENYLIST_FILE => Err(format!(
            "its {DENYLIST_FILE} is {} bytes, over the {MAX_DENYLIST_BYTES} allowed",
            file.size
        )),
        files => Err(format!(
            "it holds {} files; a denylist holds {DENYLIST_FILE} alone",
            files.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use seedbank_protocol::BlobHash;

    use super::*;

    fn manifest(files: &[(&str, u64)]) -> Manifest {
        Manifest {
            files: files
                .iter()
                .map(|(path, size)| FileEntry {
                    path: (*path).to_owned(),
                    size: *size,
                    hash: BlobHash([1; 32]),
                })
                .collect(),
            hf: None,
        }
    }

    #[test]
    fn only_one_small_list_file_is_accepted() {
        assert!(list_file(&manifest(&[(DENYLIST_FILE, 100)])).is_ok());
        let too_big = list_file(&manifest(&[(DENYLIST_FILE, MAX_DENYLIST_BYTES as u64 + 1)]));
        assert!(too_big.unwrap_err().contains("over the"));
        assert!(list_file(&manifest(&[("weights.bin", 1)])).is_err());
        assert!(list_file(&manifest(&[(DENYLIST_FILE, 1), ("extra", 1)]))
            .unwrap_err()
            .contains("2 files"));
    }
}
