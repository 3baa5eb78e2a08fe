//! What a running daemon reports through its CLI, read the way tests read it (its
//! artifacts, jobs, peers and storage), and the waits for that state to change, each
//! through [`Daemon::wait_until`] so a failure shows the last state seen and the log.

use std::time::Duration;

use serde_json::Value;

use crate::Daemon;

/// How long a daemon may take to reach a peer it was told of.
const JOIN_DEADLINE: Duration = Duration::from_secs(60);
/// How long a DHT lookup may take to list a new provider: generous, for a loaded
/// 2-core machine.
const DHT_DEADLINE: Duration = Duration::from_secs(90);
/// How long a fetch may take to show its first bytes.
const PROGRESS_DEADLINE: Duration = Duration::from_secs(60);

impl Daemon {
    /// `ls --json`: every artifact it holds.
    pub fn artifacts(&self) -> Vec<Value> {
        array(self.ok_json(&["ls"]))
    }

    /// `ls --json`'s entry for `id`, if the node holds it.
    pub fn listed(&self, id: &str) -> Option<Value> {
        self.artifacts().into_iter().find(|a| a["id"] == id)
    }

    /// Whether the node lists `id` as complete.
    pub fn holds(&self, id: &str) -> bool {
        self.listed(id).is_some_and(|a| a["state"] == "complete")
    }

    /// `jobs --json`: its fetch jobs, running and saved.
    pub fn jobs(&self) -> Vec<Value> {
        array(self.ok_json(&["jobs"]))
    }

    /// Bytes in its store, from `status`.
    pub fn store_bytes(&self) -> u64 {
        self.ok_json(&["status"])["store_bytes"]
            .as_u64()
            .expect("store_bytes in status")
    }

    /// Peers it is connected to now, from `status`.
    pub fn connected_peers(&self) -> u64 {
        self.ok_json(&["status"])["network"]["connected_peers"]
            .as_u64()
            .unwrap_or(0)
    }

    /// Waits until this node's DHT lookup of `id` lists every peer in `expected` (a
    /// lookup that finds none yet is not a failure here).
    pub fn wait_for_providers(&self, id: &str, expected: &[String]) {
        let what = format!("the DHT to list {expected:?} as providers of {id}");
        self.wait_until(&what, DHT_DEADLINE, || {
            let output = self.cli(&["--json", "providers", id]);
            let found = output.try_json().map_err(|_| output.to_string())?;
            let listed = |peer: &String| {
                found["providers"]
                    .as_array()
                    .is_some_and(|all| all.iter().any(|p| p == peer.as_str()))
            };
            if expected.iter().all(listed) {
                Ok(())
            } else {
                Err(found.to_string())
            }
        });
    }

    /// Waits until the node lists `id` as complete.
    pub fn wait_until_complete(&self, id: &str, within: Duration) {
        self.wait_until(&format!("{id} to be complete"), within, || {
            let listed = self.ok_json(&["ls"]);
            let complete = listed.as_array().is_some_and(|all| {
                all.iter()
                    .any(|a| a["id"] == id && a["state"] == "complete")
            });
            if complete {
                Ok(())
            } else {
                Err(format!("ls: {listed}\njobs: {}", self.ok_json(&["jobs"])))
            }
        });
    }

    /// Waits until the node has at least `peers` peers in its DHT routing table.
    pub fn wait_for_routing_table(&self, peers: u64) {
        let what = format!("{peers} peers in the routing table");
        self.wait_until(&what, JOIN_DEADLINE, || {
            let status = self.ok_json(&["status"]);
            match status["network"]["routing_table_size"].as_u64() {
                Some(size) if size >= peers => Ok(()),
                _ => Err(status.to_string()),
            }
        });
    }

    /// Waits until the node is connected to at least one peer (`what` names the way
    /// it should have found one).
    pub fn wait_for_a_connected_peer(&self, what: &str, within: Duration) {
        self.wait_until(what, within, || match self.connected_peers() {
            0 => Err("no connected peer".to_owned()),
            _ => Ok(()),
        });
    }

    /// Waits until the node's log holds `text` at least `times` times.
    pub fn wait_for_log(&self, text: &str, times: usize, within: Duration) {
        let what = format!("{times} lines of {text:?} in the log");
        self.wait_until(&what, within, || {
            let seen = self.log().matches(text).count();
            if seen >= times {
                Ok(())
            } else {
                Err(format!("{seen} of them"))
            }
        });
    }

    /// Waits until the running fetch of `id` has at least `bytes` bytes (and more than
    /// none) and returns how many it has; fails at once if the fetch ended first, as a
    /// test that acts in the middle of a fetch could then not do so.
    pub fn wait_for_fetch_progress(&self, id: &str, bytes: u64) -> u64 {
        let what = format!("the fetch of {id} to hold {bytes} bytes and more than none");
        self.wait_until(&what, PROGRESS_DEADLINE, || {
            let jobs = self.jobs();
            let done = jobs
                .iter()
                .find(|job| job["id"] == id)
                .and_then(|job| job["done_bytes"].as_u64());
            match done {
                Some(done) if done >= bytes && done > 0 => Ok(done),
                Some(_) => Err(format!("jobs: {jobs:?}")),
                None => {
                    assert!(
                        !self.holds(id),
                        "the fetch of {id} ended before it was seen under way\n{}",
                        self.log()
                    );
                    Err(format!("no job for it: {jobs:?}"))
                }
            }
        })
    }
}

/// A JSON array's items.
fn array(value: Value) -> Vec<Value> {
    match value {
        Value::Array(items) => items,
        other => panic!("expected a JSON array, got {other}"),
    }
}
