//! Benchmark of the Hugging Face gateway, measured side by side in one run, on loopback:
//!
//! 1. time to first byte of a GET through a gateway whose node holds nothing yet (the
//!    gateway resolves the name, gets the manifest from a peer and starts a fetch), for a
//!    small file and for the large one;
//! 2. `snapshot_download` of the whole repo through a fresh node's gateway, against
//!    `seedbank fetch --out` of the same artifact on another fresh node (the reference);
//! 3. `snapshot_download` again into an empty client cache, now that the gateway's node
//!    holds everything (the gateway serving from its store).
//!
//! `cargo run --release -p seedbank-tests --bin bench-hf -- [SIZE_MIB]` (default 1024).
//! Needs the pinned `huggingface_hub` (tests/requirements.txt).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use seedbank_protocol::hf::HubHasher;
use seedbank_protocol::{HfRepo, HfRepoType};
use seedbank_tests::fixtures::MIB;
use seedbank_tests::hf_cache::{write_snapshot, CachedFile};
use seedbank_tests::hf_client::HfClient;
use seedbank_tests::{start_joined, write_random_file, Daemon};
const COMMIT: &str = "b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6";

fn main() -> Result<()> {
    let size_mib: u64 = std::env::args()
        .nth(1)
        .map_or(Ok(1024), |a| a.parse())
        .context("SIZE_MIB")?;
    let size = size_mib * MIB;
    let work = tempfile::tempdir()?;
    let hub = work.path().join("hub");
    let repo = HfRepo::new(HfRepoType::Model, "bench/model")?;
    let etag = write_large_blob(&hub, &repo, size, work.path())?;
    write_snapshot(
        &hub,
        &repo,
        COMMIT,
        &[CachedFile::git("config.json", r#"{"model_type": "bert"}"#)],
        true,
    );
    seedbank_node::hf::cache::RepoCache::new(&hub, &repo)
        .link_snapshot_file(COMMIT, "model.safetensors", &etag)
        .context("linking the weights")?;
    println!("Hugging Face gateway benchmark: {size_mib} MiB of weights, loopback");

    let seeder = Daemon::start();
    let imported = seeder.ok_json(&["import-hf", "--cache", hub.to_str().context("utf-8")?]);
    let root = imported["imported"][0]["release"]["root"]
        .as_str()
        .context("no root in the import report")?
        .to_owned();
    let key = seeder.publisher_key();
    let fresh = || {
        let node = start_joined(&seeder, &[]);
        node.ok(&["trust", "add", "seeder", &key]);
        node
    };

    // 1. Time to first byte through a gateway that holds nothing.
    let first = fresh();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()?;
    let endpoint = first.hf_endpoint();
    let ttfb_small = first_byte(
        &http,
        &format!("{endpoint}/bench/model/resolve/main/config.json"),
    )?;
    let ttfb_large = first_byte(
        &http,
        &format!("{endpoint}/bench/model/resolve/main/model.safetensors"),
    )?;

    // 2. snapshot_download through a fresh gateway, against fetch --out on another.
    let reference = fresh();
    let out = work.path().join("out");
    let started = Instant::now();
    reference.ok(&["fetch", &root, "--out", out.to_str().context("utf-8")?]);
    let fetch_out = started.elapsed().as_secs_f64();
    let gateway = fresh();
    let client = HfClient::new();
    let script = "import json, time\nfrom huggingface_hub import snapshot_download\n\
                  t = time.monotonic()\nsnapshot_download('bench/model')\n\
                  print(json.dumps(time.monotonic() - t))";
    let through_gateway = client
        .run(Some(&gateway.hf_endpoint()), script)
        .as_f64()
        .context("seconds")?;
    // 3. Again, into an empty client cache, with everything in the gateway's store.
    let second_client = HfClient::new();
    let from_store = second_client
        .run(Some(&gateway.hf_endpoint()), script)
        .as_f64()
        .context("seconds")?;

    let rate = |secs: f64| size as f64 / secs / MIB as f64;
    println!("time to first byte, content not yet local (resolve + manifest + fetch start):");
    println!("  config.json          {:>8.0} ms", ttfb_small * 1e3);
    println!("  model.safetensors    {:>8.0} ms", ttfb_large * 1e3);
    println!("{:<52} {:>8} {:>8}", "whole repo", "seconds", "MiB/s");
    println!(
        "{:<52} {fetch_out:>8.2} {:>8.1}",
        "seedbank fetch --out (reference)",
        rate(fetch_out)
    );
    println!(
        "{:<52} {through_gateway:>8.2} {:>8.1}",
        "snapshot_download through the gateway, not local",
        rate(through_gateway)
    );
    println!(
        "{:<52} {from_store:>8.2} {:>8.1}",
        "snapshot_download through the gateway, all local",
        rate(from_store)
    );
    println!(
        "ratio snapshot_download (not local) / fetch --out throughput: {:.2}",
        fetch_out / through_gateway
    );
    Ok(())
}

/// Seconds from sending a GET to reading its first body byte.
fn first_byte(http: &reqwest::blocking::Client, url: &str) -> Result<f64> {
    let started = Instant::now();
    let mut response = http.get(url).send()?.error_for_status()?;
    let mut byte = [0u8; 1];
    response.read_exact(&mut byte)?;
    Ok(started.elapsed().as_secs_f64())
}

/// Writes `size` random bytes as an LFS blob of `repo` in `hub`; returns its ETag.
fn write_large_blob(hub: &Path, repo: &HfRepo, size: u64, work: &Path) -> Result<String> {
    let staging = work.join("weights.staging");
    write_random_file(&staging, size, "bench-hf");
    let mut hasher = HubHasher::new(size);
    let mut file = std::fs::File::open(&staging)?;
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    let (_, sha256) = hasher.finish();
    let blob = seedbank_node::hf::cache::RepoCache::new(hub, repo).blob_path(&sha256);
    std::fs::create_dir_all(blob.parent().context("blobs folder")?)?;
    std::fs::rename(&staging, &blob)?;
    Ok(sha256)
}
