//! Benchmarks of peer-to-peer transfer, measured side by side in one run:
//!
//! 1. one artifact between two daemons on loopback, against `curl` fetching the same file
//!    from `nginx` on loopback (needs the Debian packages nginx and curl);
//! 2. four seeders each upload-limited to R, one fetcher: throughput against 3.2 R;
//! 3. CPU seconds per GiB, seeder plus fetcher.
//!
//! `cargo run --release -p seedbank-tests --bin bench-transfer -- [SIZE_MIB] [R_MIB_PER_S]`
//! (defaults 1024 and 16).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use seedbank_tests::{cpu_seconds, write_random_file, Daemon};

const MIB: u64 = 1024 * 1024;

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
    Ok(())
}

/// Seconds for one fetch between two daemons, and CPU seconds of (seeder, fetcher).
fn two_daemons(model: &Path) -> Result<(f64, (f64, f64))> {
    let seeder = Daemon::start();
    let id = seeder.ok_json(&["add", model.to_str().context("path")?])["id"]
        .as_str()
        .context("id")?
        .to_owned();
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
    let id = first.ok_json(&["add", model.to_str().context("path")?])["id"]
        .as_str()
        .context("id")?
        .to_owned();
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
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let found = fetcher.ok_json(&["providers", &id]);
        if found["providers"].as_array().map_or(0, Vec::len) >= 4 {
            break;
        }
        if Instant::now() > deadline {
            bail!("the fetcher never saw four providers: {found}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
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
    let port = free_port()?;
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
    std::thread::sleep(Duration::from_millis(500));
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

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
