//! The references `bench-transfer` measures Seedbank against in the same run: `curl`
//! fetching a file from `nginx` on loopback (the floor of one TCP stream from the page
//! cache), and two libtorrent sessions on loopback (the BitTorrent client most others
//! build on). Each is skipped, with a printed reason, where its Debian packages are
//! missing.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{free_port, wait_until};

/// The Python that Debian's python3-libtorrent installs for.
const DEBIAN_PYTHON: &str = "/usr/bin/python3";
/// The script that runs the two libtorrent sessions.
const LIBTORRENT_SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/bench/libtorrent_pair.py");

/// Seconds and CPU seconds (seeder plus fetcher) for one libtorrent session to fetch
/// `file` from another on loopback, plaintext, over TCP; None (with a note) when
/// python3-libtorrent is not installed.
pub fn libtorrent(file: &Path, work: &Path) -> Result<Option<(f64, f64)>> {
    let installed = Command::new(DEBIAN_PYTHON)
        .args(["-c", "import libtorrent"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        println!("(libtorrent baseline skipped: install the Debian package python3-libtorrent)");
        return Ok(None);
    }
    let target = work.join("libtorrent");
    std::fs::create_dir_all(&target)?;
    let output = Command::new(DEBIAN_PYTHON)
        .arg(LIBTORRENT_SCRIPT)
        .arg(file)
        .arg(&target)
        .stderr(Stdio::inherit())
        .output()
        .context("running the libtorrent pair")?;
    std::fs::remove_dir_all(&target)?;
    if !output.status.success() {
        bail!("the libtorrent pair failed: {}", output.status);
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut numbers = text.split_whitespace().map(str::parse::<f64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(secs)), Some(Ok(cpu))) => Ok(Some((secs, cpu))),
        _ => bail!("the libtorrent pair printed {text:?}, not `seconds cpu_seconds`"),
    }
}

/// Seconds for curl to fetch `file` from nginx on loopback, or None (with a note) when
/// nginx or curl is not installed.
pub fn nginx(file: &Path, work: &Path) -> Result<Option<f64>> {
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
    // SIGQUIT, not SIGKILL: nginx's master then takes its worker down with it.
    let _ = Command::new("kill")
        .args(["-QUIT", &server.id().to_string()])
        .status();
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
