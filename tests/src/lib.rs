//! The end-to-end harness: starts real `seedbank daemon` processes on temporary data
//! directories and free loopback ports, and drives them through the real `seedbank` CLI.
//!
//! Code map: [`cli`] builds and runs the CLI; [`daemon`] owns a daemon process and
//! [`daemon_state`] reads and waits on what it reports; [`fixtures`] makes the files
//! tests feed it, reads metrics and holds the one poller, [`wait_until`]; the other
//! modules are peers that misbehave on purpose, Hugging Face stand-ins, publishing, and
//! what benchmarks measure against ([`baselines`], [`peak_rss`]).
//! Every failure message includes the command, its output and the daemon's log, so a
//! red test explains itself.

pub mod attacker;
pub mod baselines;
pub mod cli;
pub mod daemon;
pub mod daemon_state;
pub mod fixtures;
pub mod hf_cache;
pub mod hf_client;
pub mod hf_origin;
pub mod hostile;
pub mod nat_lab;
pub mod peak_rss;
pub mod publishing;
pub mod records;
pub mod search_poison;
pub mod small_disk;

pub use cli::{artifact_id, run_cli, seedbank_binary, CliOutput};
pub use daemon::{
    start_joined, start_joined_at, Daemon, DIAL_FAILED, DIAL_LOG_FILTER, IMPATIENT_FETCHES,
    LOOPBACK_NETWORK_FLAGS,
};
pub use fixtures::{
    cpu_seconds, file_hash, free_port, metric, model_dir, relative_files, rss_bytes, tree_hashes,
    tree_size, wait_until, write_random_file, write_small_files,
};
pub use peak_rss::{flush_disk_writes, PeakRss};
pub use small_disk::SmallDisk;
