//! Publishing through a daemon's CLI: its publisher key and `seedbank publish`.

use std::path::Path;

use crate::Daemon;

impl Daemon {
    /// The daemon's own publisher key (the first of `key list`), as text.
    pub fn publisher_key(&self) -> String {
        let keys = self.ok_json(&["key", "list"]);
        keys[0]["public_key"]
            .as_str()
            .unwrap_or_else(|| panic!("`key list` names no key: {keys}"))
            .to_owned()
    }

    /// Publishes the directory `dir` as `name` at `revision`; returns the release's
    /// root content id.
    pub fn publish(&self, dir: &Path, name: &str, revision: &str) -> String {
        let report = self.publish_report(dir, name, revision);
        report["release"]["root"]
            .as_str()
            .unwrap_or_else(|| panic!("`publish` reported no root: {report}"))
            .to_owned()
    }

    /// Publishes the directory `dir` as `name` at `revision`; returns the whole report.
    pub fn publish_report(&self, dir: &Path, name: &str, revision: &str) -> serde_json::Value {
        let dir = dir.to_str().expect("a UTF-8 path");
        self.ok_json(&["publish", dir, "--name", name, "--revision", revision])
    }
}
