//! Benchmarks of peer-to-peer transfer, measured side by side in one run:
//!
//! 1. one artifact between two daemons on loopback, against `curl` fetching the same file
//!    from `nginx` on loopback (needs the Debian packages nginx and curl);
//! 2. four seeders each upload-limited to R, one fetcher: throughput against 3.2 R;
//! 3. CPU seconds per GiB, seeder plus fetcher;
//! 4. the fetch path's costs, each fetch against the same fetch without the burden:
//!    2,000 small files with two idle peers connected to the fetcher, 24 MiB from a
//!    seeder limited to 4 MiB/s with 1 and with 8 silent peers claiming it (they accept
//!    requests and never answer), and 2,000 small
//!    files fetched straight after the fetcher starts against once its DHT lookup lists
//!    the seeder.
//!
//! `cargo run --release -p seedbank-tests --bin bench-transfer -- [SIZE_MIB] [R_MIB_PER_S]`
//! (defaults 1024 and 16).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use seedbank_tests::fixtures::MIB;
use seedbank_tests::hostile::HostileSeeder;
use seedbank_tests::{
    cpu_seconds, free_port, start_joined, wait_until, write_random_file, write_small_files, Daemon,
};

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

    println!("transfer benchmark: {size_mib} MiB artifact, loopback, release build");
    let nginx = nginx_baseline(&model.join("weights.bin"), work.path())?;
    let (p2p_secs, cpu) = two_daemons(&model)?;
    let gib = size as f64 / (1u64 << 30) as f64;
    let rate = |secs: f64| size as f64 / secs / MIB as f64;
    println!("{:<44} {:>8} {:>10}", "transfer", "seconds", "MiB/s");
    if let Some(secs) = nginx {
        println!(
            "{:<44} {secs:>8.2} {:>10.1}",
            "curl <- nginx (loopback)",
            rate(secs)
        );
    }
    println!(
        "{:<44} {p2p_secs:>8.2} {:>10.1}",
        "seedbank fetch <- 1 daemon (loopback)",
        rate(p2p_secs)
    );
    if let Some(secs) = nginx {
        println!(
            "ratio seedbank/nginx throughput: {:.2} (goal >= 0.6)",
            secs / p2p_secs
        );
    }
    println!(
        "CPU seconds per GiB: seeder {:.2} + fetcher {:.2} = {:.2}",
        cpu.0 / gib,
        cpu.1 / gib,
        (cpu.0 + cpu.1) / gib
    );

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

/// Seconds for one fetch between two daemons, and CPU seconds of (seeder, fetcher).
fn two_daemons(model: &Path) -> Result<(f64, (f64, f64))> {
    let seeder = Daemon::start();
    let id = seeder.add_artifact(model);
    let fetcher = Daemon::start_with(&["--bootstrap", &seeder.peer_address()]);
    fetcher.wait_for_routing_table(1);
    let pids = (seeder.pid().context("pid")?, fetcher.pid().context("pid")?);
    let before = (
        cpu_seconds(pids.0).unwrap_or(0.0),
        cpu_seconds(pids.1).unwrap_or(0.0),
    );
    let started = Instant::now();
    fetcher.ok(&["fetch", &id]);
    let secs = started.elapsed().as_secs_f64();
    let after = (
        cpu_seconds(pids.0).unwrap_or(0.0),
        cpu_seconds(pids.1).unwrap_or(0.0),
    );
    Ok((secs, (after.0 - before.0, after.1 - before.1)))
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

/// Seconds for curl to fetch `file` from nginx on loopback, or None (with a note) when
/// nginx or curl is not installed.
fn nginx_baseline(file: &Path, work: &Path) -> Result<Option<f64>> {
    let nginx = ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let (Some(nginx), true) = (
        nginx,
        Command::new("curl")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok(),
    ) else {
        println!("(nginx baseline skipped: install the Debian packages nginx and curl)");
        return Ok(None);
    };
    let port = free_port();
    let root = file.parent().context("file has no directory")?;
    let conf = work.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "worker_processes 1;\npid {pid};\nerror_log {err};\nevents {{}}\nhttp {{\n access_log off;\n sendfile on;\n client_body_temp_path {tmp};\n proxy_temp_path {tmp};\n fastcgi_temp_path {tmp};\n uwsgi_temp_path {tmp};\n scgi_temp_path {tmp};\n server {{ listen 127.0.0.1:{port}; root {root}; }}\n}}\n",
            pid = work.join("nginx.pid").display(),
            err = work.join("nginx.err").display(),
            tmp = work.display(),
            root = root.display(),
        ),
    )?;
    let mut server: Child = Command::new(nginx)
        .arg("-c")
        .arg(&conf)
        .args(["-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting nginx")?;
    wait_until("nginx to listen", Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .map(drop)
            .map_err(|e| e.to_string())
    });
    let name = file
        .file_name()
        .context("file name")?
        .to_string_lossy()
        .into_owned();
    let target = work.join("curl.out");
    let started = Instant::now();
    let status = Command::new("curl")
        .args(["-s", "-o"])
        .arg(&target)
        .arg(format!("http://127.0.0.1:{port}/{name}"))
        .status();
    let secs = started.elapsed().as_secs_f64();
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_file(&target);
    if !status.map(|s| s.success()).unwrap_or(false) {
        bail!(
            "curl could not fetch from nginx (see {})",
            work.join("nginx.err").display()
        );
    }
    Ok(Some(secs))
}
