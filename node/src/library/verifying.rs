//! `verify`: re-hashing every stored blob and checking every file referenced in place,
//! marking what fails as damaged so that a fetch can repair it.

use std::collections::{HashMap, HashSet};

use seedbank_protocol::api::{CorruptBlob, VerifyReport};
use seedbank_protocol::BlobHash;

use super::Library;
use crate::error::NodeResult;
use crate::progress::ProgressReporter;

impl Library {
    /// Re-hashes every stored blob and checks every referenced file.
    pub async fn verify(&self, progress: &mut ProgressReporter) -> NodeResult<VerifyReport> {
        let sizes = self.store.blob_sizes().await?;
        let users = self.blob_users().await?;
        progress.set_total(sizes.values().sum());
        let mut hashes: Vec<_> = sizes.iter().collect();
        hashes.sort();
        let mut report = VerifyReport {
            blobs_checked: 0,
            bytes_checked: 0,
            corrupt: Vec::new(),
        };
        for (hash, size) in hashes {
            let label = users
                .get(hash)
                .and_then(|u| u.first())
                .cloned()
                .unwrap_or_default();
            progress.start_file(&label, *size, report.bytes_checked);
            let reason = match self.check_references(*hash) {
                Err(e) => Some(e.to_string()),
                Ok(()) => self
                    .rehash(*hash, *size, &label, report.bytes_checked, progress)
                    .await
                    .err(),
            };
            self.meta.set_damaged(*hash, reason.is_some())?;
            if let Some(reason) = reason {
                tracing::warn!(%hash, %reason, "stored blob failed verification");
                report.corrupt.push(CorruptBlob {
                    hash: hash.to_hex(),
                    used_by: users.get(hash).cloned().unwrap_or_default(),
                    reason,
                });
            }
            report.blobs_checked += 1;
            report.bytes_checked += size;
        }
        self.meta.flush().await?;
        Ok(report)
    }

    /// For each blob, the artifacts and paths that use it (`name@revision:path`).
    async fn blob_users(&self) -> NodeResult<HashMap<BlobHash, Vec<String>>> {
        let mut users: HashMap<BlobHash, Vec<String>> = HashMap::new();
        for record in self.meta.artifacts()? {
            let label = format!("{}@{}", record.name, record.revision);
            users
                .entry(record.root.hash())
                .or_default()
                .push(format!("{label} (root)"));
            users
                .entry(record.manifest)
                .or_default()
                .push(format!("{label} (manifest)"));
            if let Ok(manifest) = self.manifest(&record).await {
                let mut seen = HashSet::new();
                for file in manifest.files {
                    if seen.insert((file.hash, file.path.clone())) {
                        users
                            .entry(file.hash)
                            .or_default()
                            .push(format!("{label}:{}", file.path));
                    }
                }
            }
        }
        Ok(users)
    }

    async fn rehash(
        &self,
        hash: BlobHash,
        size: u64,
        label: &str,
        done_before: u64,
        progress: &mut ProgressReporter,
    ) -> Result<(), String> {
        let (read, actual) = self
            .store
            .copy_and_hash(hash, &mut tokio::io::sink(), |bytes| {
                progress.report(done_before + bytes, label)
            })
            .await
            .map_err(|e| e.to_string())?;
        if read != size {
            return Err(format!("stored {read} bytes, expected {size}"));
        }
        if actual != hash {
            return Err(format!("stored bytes hash to {actual}"));
        }
        Ok(())
    }
}
