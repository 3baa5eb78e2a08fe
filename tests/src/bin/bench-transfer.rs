//! Benchmarks of peer-to-peer transfer, measured side by side in one run:
//!
//! 1. one artifact between two daemons on loopback, against `curl` fetching the same file
//!    from `nginx` on loopback (needs the Debian packages nginx and curl) and against two
//!    libtorrent sessions (needs python3-libtorrent), in alternating rounds; with CPU
//!    seconds per GiB (seeder plus fetcher), `fetch --out DIR` against the plain fetch,
//!    and both daemons' peak RSS;
//! 2. four seeders each upload-limited to R, one fetcher: throughput against 3.2 R;
//! 3. the fetch path's costs, each fetch against the same fetch without the burden:
//!    2,000 small files with two idle peers connected to the fetcher, 24 MiB from a
//!    seeder limited to 4 MiB/s with 1 and with 8 silent peers claiming it (they accept
//!    requests and never answer), and 2,000 small
//!    files fetched straight after the fetcher starts against once its DHT lookup lists
//!    the seeder.
//!
//! `cargo run --release -p seedbank-tests --bin bench-transfer -- [SIZE_MIB] [R_MIB_PER_S]`
//! (defaults 1024 and 16).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use seedbank_tests::baselines;
use seedbank_tests::fixtures::MIB;
use seedbank_tests::hostile::HostileSeeder;
use seedbank_tests::{
    cpu_seconds, flush_disk_writes, start_joined, write_random_file, write_small_files, Daemon,
    PeakRss,
};

/// Rounds of each one-seeder transfer, alternating; medians are compared.
const ROUNDS: usize = 3;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let size_mib: u64 = args
        .next()
        .map_or(Ok(1024), |a| a.parse())
        .context("SIZE_MIB")?;
    let rate_mib: u64 = args
        .next()
        .map_or(Ok(16), |a| a.parse())
        .context("R_MIB_PER_S")?;
    let size = size_mib * MIB;
    let work = tempfile::tempdir()?;
    let model = work.path().join("model");
    write_random_file(&model.join("weights.bin"), size, "bench-transfer");

    println!(
        "transfer benchmark: {size_mib} MiB artifact, loopback, {} build, medians of {ROUNDS} alternating rounds",
        if cfg!(debug_assertions) { "debug" } else { "release" }
    );
    one_seeder(&model, work.path())?.print(size);

    let swarm_size = (256 * MIB).min(size);
    let swarm_secs = four_limited_seeders(work.path(), swarm_size, rate_mib)?;
    let achieved = swarm_size as f64 / swarm_secs / MIB as f64;
    println!(
        "4 seeders limited to R = {rate_mib} MiB/s each: {achieved:.1} MiB/s = {:.2} R (goal >= 3.2 R)",
        achieved / rate_mib as f64
    );
    fetch_path_costs(work.path())
}

/// Seconds `daemon` takes to fetch `id`, once its DHT lookup lists every one of
/// `providers` (at once when there are none to wait for).
fn timed_fetch(daemon: &Daemon, id: &str, providers: &[String]) -> f64 {
    if !providers.is_empty() {
        daemon.wait_for_providers(id, providers);
    }
    let started = Instant::now();
    daemon.ok(&["fetch", id]);
    started.elapsed().as_secs_f64()
}

/// Prints one fetch (`burdened`, under `burden`) against the same fetch under `plain`.
fn compare(what: &str, (plain, plain_secs): (&str, f64), (burden, burdened_secs): (&str, f64)) {
    println!(
        "{what}: {plain_secs:.2} s {plain}, {burdened_secs:.2} s {burden} ({:.2} times as long)",
        burdened_secs / plain_secs
    );
}

/// The fetch path's costs (the comparisons that end-to-end tests once asserted).
fn fetch_path_costs(work: &Path) -> Result<()> {
    let dataset = work.join("small-files");
    write_small_files(&dataset, 2000, 30 * MIB, "bench-small");
    let seeder = Daemon::start();
    let id = seeder.add_artifact(&dataset);
    let listed = [seeder.peer_id()];
    // Every daemon stays up to the end: one that stopped would still be listed as a
    // provider, and reaching for it would cost later fetches a handshake timeout.
    let alone = start_joined(&seeder, &[]);
    let without = timed_fetch(&alone, &id, &listed);
    let fetcher = start_joined(&seeder, &[]);
    let _idle: Vec<Daemon> = (0..2).map(|_| start_joined(&fetcher, &[])).collect();
    let with = timed_fetch(&fetcher, &id, &listed);
    compare(
        "2,000 files, 30 MiB",
        ("alone", without),
        ("with two idle peers connected", with),
    );

    // A seeder limited to 4 MiB/s, so the fetch takes about 6 s: long enough for a peer
    // that holds requests and never answers to cost something if it can.
    let model = work.join("silent-claimed");
    write_random_file(&model.join("weights.bin"), 24 * MIB, "bench-silent");
    let limited = Daemon::start_with(&["--upload-limit", "4M"]);
    let id = limited.add_artifact(&model);
    let limited_seed = limited.peer_address();
    let limited_listed = [limited.peer_id()];
    let plain = start_joined(&limited, &[]);
    let without = timed_fetch(&plain, &id, &limited_listed);
    // Kept to the end like every daemon here: a peer that left stays in the others'
    // routing tables, and dialling it would cost later lookups a handshake timeout.
    let mut all_silent = Vec::new();
    for liars in [1, 8] {
        let silent: Vec<HostileSeeder> =
            (0..liars).map(|_| HostileSeeder::start_silent()).collect();
        let mut flags = vec!["--bootstrap".to_owned(), limited_seed.clone()];
        for peer in &silent {
            flags.extend(["--bootstrap".to_owned(), peer.peer_address()]);
        }
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let fetcher = Daemon::start_with(&flags);
        fetcher.wait_for_routing_table(1 + liars);
        // Another artifact of the same size: the first one is seeded by its fetcher now.
        let model = work.join(format!("silent-claimed-{liars}"));
        write_random_file(
            &model.join("weights.bin"),
            24 * MIB,
            &format!("bench-silent-{liars}"),
        );
        let id = limited.add_artifact(&model);
        let mut providers = vec![limited.peer_id()];
        for peer in &silent {
            peer.claim(id.parse().context("content id")?);
            providers.push(peer.peer_id());
        }
        let with = timed_fetch(&fetcher, &id, &providers);
        compare(
            "24 MiB from a seeder limited to 4 MiB/s",
            ("alone", without),
            (&format!("with {liars} silent peers claiming it"), with),
        );
        all_silent.push((silent, fetcher));
    }

    let dataset = work.join("early-files");
    write_small_files(&dataset, 2000, 8 * MIB, "bench-early");
    let id = seeder.add_artifact(&dataset);
    let early = start_joined(&seeder, &[]);
    let early_took = timed_fetch(&early, &id, &[]);
    let settled_took = timed_fetch(&alone, &id, &listed);
    compare(
        "2,000 files, 8 MiB",
        ("once the DHT lists the seeder", settled_took),
        ("straight after start", early_took),
    );
    Ok(())
}

/// One artifact from one seeder, each way measured in the same rounds.
#[derive(Default)]
struct OneSeeder {
    /// Seconds per round of curl fetching the file from nginx.
    nginx: Vec<f64>,
    /// Seconds and CPU seconds per round of libtorrent.
    libtorrent: Vec<(f64, f64)>,
    /// Seconds per round of `seedbank fetch`, and CPU seconds of seeder and fetcher.
    seedbank: Vec<(f64, f64, f64)>,
    /// Seconds of one `seedbank fetch --out DIR`.
    fetch_out: f64,
    /// Peak resident bytes of the seeder and of the fetchers while fetching.
    peak_rss: (u64, u64),
}

/// Medians: the middle value of each round's reading.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

impl OneSeeder {
    fn print(&self, size: u64) {
        let gib = size as f64 / (1u64 << 30) as f64;
        let rate = |secs: f64| size as f64 / secs / MIB as f64;
        let seedbank = median(self.seedbank.iter().map(|r| r.0).collect());
        let seeder_cpu = median(self.seedbank.iter().map(|r| r.1).collect()) / gib;
        let fetcher_cpu = median(self.seedbank.iter().map(|r| r.2).collect()) / gib;
        println!(
            "{:<44} {:>8} {:>10} {:>10}",
            "transfer", "seconds", "MiB/s", "CPU s/GiB"
        );
        let nginx = (!self.nginx.is_empty()).then(|| median(self.nginx.clone()));
        if let Some(secs) = nginx {
            let what = "curl <- nginx (loopback)";
            println!("{what:<44} {secs:>8.2} {:>10.1} {:>10}", rate(secs), "-");
        }
        let libtorrent = (!self.libtorrent.is_empty()).then(|| {
            (
                median(self.libtorrent.iter().map(|r| r.0).collect()),
                median(self.libtorrent.iter().map(|r| r.1).collect()),
            )
        });
        if let Some((secs, cpu)) = libtorrent {
            let what = "libtorrent <- libtorrent (loopback, TCP)";
            println!(
                "{what:<44} {secs:>8.2} {:>10.1} {:>10.2}",
                rate(secs),
                cpu / gib
            );
        }
        let what = "seedbank fetch <- 1 daemon (loopback)";
        println!(
            "{what:<44} {seedbank:>8.2} {:>10.1} {:>10.2}",
            rate(seedbank),
            seeder_cpu + fetcher_cpu
        );
        let what = "seedbank fetch --out DIR";
        let out = self.fetch_out;
        println!("{what:<44} {out:>8.2} {:>10.1} {:>10}", rate(out), "-");
        if let Some(secs) = nginx {
            let ratio = secs / seedbank;
            println!("ratio seedbank/nginx throughput: {ratio:.2} (goal >= 0.6)");
        }
        if let Some((secs, _)) = libtorrent {
            let ratio = secs / seedbank;
            println!("ratio seedbank/libtorrent throughput: {ratio:.2} (goal >= 1.5)");
        }
        println!(
            "CPU seconds per GiB: seeder {seeder_cpu:.2} + fetcher {fetcher_cpu:.2} = {:.2} (goal <= 3.5)",
            seeder_cpu + fetcher_cpu
        );
        println!(
            "fetch --out DIR against the plain fetch: {:.2} times as long (goal <= 1.15)",
            out / seedbank
        );
        println!(
            "peak RSS while fetching: seeder {:.1} MiB, fetcher {:.1} MiB",
            self.peak_rss.0 as f64 / MIB as f64,
            self.peak_rss.1 as f64 / MIB as f64
        );
    }
}

/// Rounds of nginx, libtorrent and `seedbank fetch`, then one `fetch --out`. Each
/// fetch is of an artifact of its own, by a new fetcher, from the one seeder, and every
/// fetcher stays up to the end: one that stopped would still be listed as a provider,
/// and a lookup that reaches for it waits out its dial.
fn one_seeder(model: &Path, work: &Path) -> Result<OneSeeder> {
    let file = model.join("weights.bin");
    let size = std::fs::metadata(&file)?.len();
    let seeder = Daemon::start();
    let seeder_pid = seeder.pid().context("pid")?;
    let mut artifacts = vec![seeder.add_artifact(model)];
    for round in 1..=ROUNDS {
        let other = work.join(format!("model-{round}"));
        write_random_file(
            &other.join("weights.bin"),
            size,
            &format!("bench-round-{round}"),
        );
        artifacts.push(seeder.add_artifact(&other));
        std::fs::remove_dir_all(&other)?;
    }
    let mut measured = OneSeeder::default();
    let mut fetchers = Vec::new();
    for id in &artifacts[..ROUNDS] {
        flush_disk_writes()?;
        if let Some(secs) = baselines::nginx(&file, work)? {
            measured.nginx.push(secs);
        }
        flush_disk_writes()?;
        if let Some(round) = baselines::libtorrent(&file, work)? {
            measured.libtorrent.push(round);
        }
        let fetcher = Daemon::start_with(&["--bootstrap", &seeder.peer_address()]);
        fetcher.wait_for_routing_table(1);
        flush_disk_writes()?;
        let pids = (seeder_pid, fetcher.pid().context("pid")?);
        let before = (cpu_seconds(pids.0), cpu_seconds(pids.1));
        let rss = PeakRss::watch(vec![pids.0, pids.1]);
        let started = Instant::now();
        fetcher.ok(&["fetch", id]);
        let secs = started.elapsed().as_secs_f64();
        let peaks = rss.stop();
        let after = (cpu_seconds(pids.0), cpu_seconds(pids.1));
        let spent = |b: Option<f64>, a: Option<f64>| a.unwrap_or(0.0) - b.unwrap_or(0.0);
        measured
            .seedbank
            .push((secs, spent(before.0, after.0), spent(before.1, after.1)));
        measured.peak_rss.0 = measured.peak_rss.0.max(peaks[0]);
        measured.peak_rss.1 = measured.peak_rss.1.max(peaks[1]);
        fetchers.push(fetcher);
    }
    let fetcher = Daemon::start_with(&["--bootstrap", &seeder.peer_address()]);
    fetcher.wait_for_routing_table(1);
    let out = work.join("fetched-out");
    flush_disk_writes()?;
    let started = Instant::now();
    fetcher.ok(&[
        "fetch",
        &artifacts[ROUNDS],
        "--out",
        out.to_str().context("UTF-8 path")?,
    ]);
    measured.fetch_out = started.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&out)?;
    Ok(measured)
}

/// Seconds for four seeders, each upload-limited to `rate_mib` MiB/s, to serve `size` bytes.
fn four_limited_seeders(work: &Path, size: u64, rate_mib: u64) -> Result<f64> {
    let model = work.join("swarm-model");
    write_random_file(&model.join("weights.bin"), size, "bench-swarm");
    let limit = format!("{rate_mib}M");
    let first_dir = work.join("seeder-0");
    let mut first = Daemon::start_in_with(&first_dir, &["--upload-limit", &limit]);
    let id = first.add_artifact(&model);
    first.stop();
    // The other seeders start from copies of the first one's store, with identities of their own.
    let mut dirs = vec![first_dir.clone()];
    for i in 1..4 {
        let dir = work.join(format!("seeder-{i}"));
        copy_dir(&first_dir, &dir)?;
        for secret in ["node.key", "api.token", "api.addr"] {
            let _ = std::fs::remove_file(dir.join(secret));
        }
        dirs.push(dir);
    }
    first.start_again();
    let bootstrap = first.peer_address();
    let mut seeders = vec![first];
    for dir in &dirs[1..] {
        seeders.push(Daemon::start_in_with(
            dir,
            &["--upload-limit", &limit, "--bootstrap", &bootstrap],
        ));
    }
    let fetcher = Daemon::start_with(&["--bootstrap", &bootstrap]);
    let seeder_ids: Vec<String> = seeders.iter().map(Daemon::peer_id).collect();
    fetcher.wait_for_providers(&id, &seeder_ids);
    let started = Instant::now();
    fetcher.ok(&["fetch", &id]);
    Ok(started.elapsed().as_secs_f64())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    let status = Command::new("cp").arg("-a").arg(from).arg(to).status()?;
    if !status.success() {
        bail!("cp -a {} {} failed", from.display(), to.display());
    }
    Ok(())
}
