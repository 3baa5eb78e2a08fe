//! A small tmpfs for tests of a full disk: mounted for one test, unmounted when dropped,
//! and skipped with a printed reason where the machine does not allow mounting.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A small tmpfs mounted for a test, unmounted when dropped.
pub struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    /// Mounts a tmpfs of `mib` MiB at `dir`, or prints why `check` is skipped and
    /// returns `None` where this machine does not allow it (mounting needs root).
    pub fn mount(dir: &Path, mib: u64, check: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).expect("creating the mount point");
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir)
            .output();
        match output {
            Ok(out) if out.status.success() => Some(Self {
                dir: dir.to_owned(),
            }),
            Ok(out) => {
                eprintln!(
                    "SKIPPED {check}: cannot mount a tmpfs here ({})",
                    String::from_utf8_lossy(&out.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED {check}: cannot run mount ({e})");
                None
            }
        }
    }

    /// Bytes still free on it.
    pub fn free_bytes(&self) -> u64 {
        let output = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.dir)
            .output()
            .expect("running df");
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .nth(1)
            .and_then(|line| line.trim().parse().ok())
            .unwrap_or_else(|| panic!("df printed no free bytes: {output:?}"))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}
