//! Benchmark: adding a large file, against single-threaded BLAKE3 hashing of the same
//! file, measured side by side in one run, with the daemon's peak RSS while adding.
//!
//! `cargo run --release -p seedbank-tests --bin bench-add -- [SIZE_MIB]` (default 1024).
//! The file lives in a temporary directory on the same filesystem as the data dir, and is
//! in the page cache for every measurement, so all of them read from memory alike.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use seedbank_tests::{flush_disk_writes, write_random_file, Daemon, PeakRss};

fn main() -> Result<()> {
    let size_mib: u64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse().context("SIZE_MIB must be a whole number")?,
        None => 1024,
    };
    let bytes = size_mib * 1024 * 1024;
    let work = tempfile::tempdir_in(std::env::temp_dir())?;
    let copied = work.path().join("copied.bin");
    let referenced = work.path().join("referenced.bin");
    write_random_file(&copied, bytes, "bench-copy");
    write_random_file(&referenced, bytes, "bench-reference");

    let hash_secs = time(|| {
        let mut hasher = blake3::Hasher::new();
        hasher.update_reader(std::fs::File::open(&copied)?)?;
        Ok(())
    })?;
    flush_disk_writes()?;
    let cp_secs = time(|| {
        std::fs::copy(&copied, work.path().join("cp.bin"))?;
        Ok(())
    })?;
    std::fs::remove_file(work.path().join("cp.bin"))?;

    let daemon = Daemon::start();
    // Flush dirty pages first, so that no measurement pays for an earlier one's writes.
    flush_disk_writes()?;
    let (ref_secs, ref_rss) = timed_add(&daemon, &referenced, &["--reference"])?;
    flush_disk_writes()?;
    let (copy_secs, copy_rss) = timed_add(&daemon, &copied, &[])?;

    let gib_per_s = |secs: f64| bytes as f64 / secs / (1u64 << 30) as f64;
    println!("add benchmark, {size_mib} MiB file (page-cached), release build");
    println!(
        "{:<38} {:>8} {:>9} {:>9} {:>12}",
        "operation", "seconds", "GiB/s", "x blake3", "peak RSS MB"
    );
    let row = |name: &str, secs: f64, rss: Option<u64>| {
        let rss = rss
            .map(|bytes| format!("{:.1}", bytes as f64 / (1024.0 * 1024.0)))
            .unwrap_or_else(|| "-".into());
        println!(
            "{name:<38} {secs:>8.3} {:>9.2} {:>9.2} {rss:>12}",
            gib_per_s(secs),
            secs / hash_secs
        );
    };
    row("blake3 single-threaded hash", hash_secs, None);
    row("cp (std::fs::copy, the disk floor)", cp_secs, None);
    row("seedbank add (copy into store)", copy_secs, Some(copy_rss));
    row(
        "seedbank add --reference (in place)",
        ref_secs,
        Some(ref_rss),
    );
    Ok(())
}

fn time(f: impl FnOnce() -> Result<()>) -> Result<f64> {
    let start = Instant::now();
    f()?;
    Ok(start.elapsed().as_secs_f64())
}

/// Runs `seedbank add`, sampling the daemon's RSS; returns seconds and peak bytes.
fn timed_add(daemon: &Daemon, path: &Path, flags: &[&str]) -> Result<(f64, u64)> {
    let pid = daemon.pid().context("daemon is not running")?;
    let rss = PeakRss::watch(vec![pid]);
    let mut args = vec!["add"];
    args.extend_from_slice(flags);
    let path_text = path.to_str().context("non-UTF-8 temp path")?;
    args.push(path_text);
    let start = Instant::now();
    daemon.ok(&args);
    let secs = start.elapsed().as_secs_f64();
    Ok((secs, rss.stop()[0]))
}
