//! Which files of an artifact a fetch or export covers: those matching `--include` globs.

use seedbank_protocol::FileEntry;

use crate::error::{NodeError, NodeResult};

/// Selects the files whose paths match any of `globs` (all files when `globs` is empty).
pub fn select_files<'a>(
    files: &'a [FileEntry],
    globs: &[String],
) -> NodeResult<Vec<&'a FileEntry>> {
    if globs.is_empty() {
        return Ok(files.iter().collect());
    }
    let mut builder = globset::GlobSetBuilder::new();
    for glob in globs {
        let glob = globset::GlobBuilder::new(glob)
            .literal_separator(false)
            .build()
            .map_err(|e| {
                NodeError::BadRequest(format!("invalid --include pattern {glob:?}: {e}"))
            })?;
        builder.add(glob);
    }
    let set = builder
        .build()
        .map_err(|e| NodeError::BadRequest(format!("invalid --include patterns: {e}")))?;
    let selected: Vec<_> = files.iter().filter(|f| set.is_match(&f.path)).collect();
    if selected.is_empty() {
        return Err(NodeError::NothingMatches(globs.join(", ")));
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use seedbank_protocol::BlobHash;

    use super::*;

    fn entry(path: &str) -> FileEntry {
        FileEntry {
            path: path.into(),
            size: 1,
            hash: BlobHash([0; 32]),
        }
    }

    #[test]
    fn globs_select_files_and_bad_globs_are_named() {
        let files = vec![
            entry("config.json"),
            entry("weights/a.safetensors"),
            entry("weights/b.bin"),
        ];
        let picked = select_files(&files, &["*.safetensors".into()]).unwrap();
        assert_eq!(picked.len(), 1);
        let picked = select_files(&files, &["weights/*".into(), "*.json".into()]).unwrap();
        assert_eq!(picked.len(), 3);
        assert_eq!(select_files(&files, &[]).unwrap().len(), 3);
        assert!(matches!(
            select_files(&files, &["*.gguf".into()]),
            Err(NodeError::NothingMatches(_))
        ));
        let error = select_files(&files, &["[".into()]).unwrap_err().to_string();
        assert!(error.contains("--include"), "{error}");
    }
}
