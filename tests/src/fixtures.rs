//! What end-to-end tests and benchmarks make and read besides daemons: the one poller
//! every wait goes through ([`wait_until`]), model and dataset directories of known
//! bytes, tree walkers that compare directories, `/metrics` samples, and readings of a
//! process from `/proc`.
//!
//! Tests never sleep for a fixed time to let something happen: they poll the condition
//! with [`wait_until`], whose failure says what it waited for and what it saw last.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// A mebibyte, the unit test files are sized in.
pub const MIB: u64 = 1024 * 1024;

/// The first pause between two looks of [`wait_until`]: short, because most conditions
/// hold within milliseconds (a file written, a process ended).
const FIRST_POLL_PAUSE: Duration = Duration::from_millis(10);
/// The longest pause between two looks: the limit on fixed sleeps in tests, and rare
/// enough that conditions that run the CLI do not crowd a 2-core machine.
const MAX_POLL_PAUSE: Duration = Duration::from_millis(200);

/// Looks at `condition` until it returns `Ok`, and returns its value. `condition`
/// returns `Err` with the state it saw while the wait goes on. Panics after `within`,
/// saying `what` it waited for and the last state seen.
pub fn wait_until<T>(
    what: &str,
    within: Duration,
    condition: impl FnMut() -> Result<T, String>,
) -> T {
    poll(within, condition)
        .unwrap_or_else(|last| panic!("waited {within:?} for {what} in vain; last seen: {last}"))
}

/// The loop of [`wait_until`], for callers that add to its failure (a daemon its log,
/// a child process its kill): `Err` with the last state seen once `within` has passed.
pub(crate) fn poll<T>(
    within: Duration,
    mut condition: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let deadline = Instant::now() + within;
    let mut pause = FIRST_POLL_PAUSE;
    loop {
        match condition() {
            Ok(value) => return Ok(value),
            Err(last) if Instant::now() >= deadline => return Err(last),
            Err(_) => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(MAX_POLL_PAUSE);
            }
        }
    }
}

/// Writes `size` bytes of deterministic pseudo-random data (BLAKE3 XOF of `seed`).
pub fn write_random_file(path: &Path, size: u64, seed: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("creating parent directory");
    }
    let mut reader = blake3::Hasher::new().update(seed.as_bytes()).finalize_xof();
    let mut file =
        std::io::BufWriter::new(std::fs::File::create(path).expect("creating test file"));
    let mut buffer = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        let n = left.min(buffer.len() as u64) as usize;
        reader.fill(&mut buffer[..n]);
        file.write_all(&buffer[..n]).expect("writing test file");
        left -= n as u64;
    }
    file.flush().expect("flushing test file");
}

/// A model directory: `size` bytes of weights (`model.safetensors`, seeded by `seed`),
/// a `config.json` naming the seed, and a card under the MIT licence tagged
/// `text-generation`.
pub fn model_dir(dir: &Path, seed: &str, size: u64) {
    write_random_file(&dir.join("model.safetensors"), size, seed);
    std::fs::write(dir.join("config.json"), format!("{{\"seed\":\"{seed}\"}}"))
        .expect("writing config.json");
    std::fs::write(
        dir.join("README.md"),
        "---\nlicense: mit\ntags:\n- text-generation\n---\n# A toy model\n",
    )
    .expect("writing the card");
}

/// A dataset of `count` small files (about `total` bytes in all) in 20 nested folders.
pub fn write_small_files(dir: &Path, count: usize, total: u64, seed: &str) {
    let each = total / count as u64;
    for i in 0..count {
        let path = dir.join(format!("part{:02}/row{i:05}.json", i % 20));
        write_random_file(&path, each + (i as u64 % 7), &format!("{seed}{i}"));
    }
}

/// BLAKE3 of a file's bytes, for comparing files without holding them in memory.
pub fn file_hash(path: &Path) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    let file =
        std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    hasher.update_reader(file).expect("hashing file");
    hasher.finalize()
}

/// The path of every file under `dir` (following links), relative to it, sorted.
pub fn relative_files(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(current) = stack.pop() {
        let entries = std::fs::read_dir(&current)
            .unwrap_or_else(|e| panic!("reading {}: {e}", current.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let relative = path.strip_prefix(dir).expect("inside dir");
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    out.sort();
    out
}

/// Every file under `dir`, as (relative path, BLAKE3), sorted.
pub fn tree_hashes(dir: &Path) -> Vec<(String, blake3::Hash)> {
    relative_files(dir)
        .into_iter()
        .map(|relative| {
            let hash = file_hash(&dir.join(&relative));
            (relative, hash)
        })
        .collect()
}

/// Bytes of every file under `dir`.
pub fn tree_size(dir: &Path) -> u64 {
    relative_files(dir)
        .iter()
        .map(|relative| {
            std::fs::metadata(dir.join(relative))
                .expect("file metadata")
                .len()
        })
        .sum()
}

/// The value of the sample `name` (with its labels, if any, as
/// `name{label="value"}`) in Prometheus text; `None` if there is no such sample.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
}

/// Bytes the peer `peer` served, by a fetch's report (0 if it is not listed).
pub fn provider_bytes(report: &serde_json::Value, peer: &str) -> u64 {
    report["providers"]
        .as_array()
        .expect("providers in the fetch report")
        .iter()
        .find(|p| p["peer"] == peer)
        .and_then(|p| p["bytes"].as_u64())
        .unwrap_or(0)
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("finding a free loopback port")
}

/// CPU seconds (user + system) a process has used so far, from `/proc/<pid>/stat`.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // Linux reports clock ticks; USER_HZ is 100 on every mainstream configuration.
    Some((utime + stime) / 100.0)
}

/// Resident memory of a process in bytes, from `/proc/<pid>/status`.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
