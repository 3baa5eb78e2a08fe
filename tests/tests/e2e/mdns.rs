//! End-to-end: two nodes on a private link find each other with mDNS alone and fetch.
//!
//! mDNS must never run on this machine's real interfaces (it multicasts out of the
//! network card), so the test builds its own network: two network namespaces joined by
//! a veth pair with private addresses. Where namespaces cannot be made (no root, no
//! `ip`), it prints why and skips.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use seedbank_tests::{file_hash, tree_hashes, write_random_file, Daemon};

/// How long mDNS may take to find the other node.
const MDNS_DEADLINE: Duration = Duration::from_secs(90);

/// Two namespaces joined by a veth pair; removed on drop.
struct Link {
    namespaces: [String; 2],
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Link {
    fn create() -> Result<(Self, [String; 2]), String> {
        static LINKS: AtomicU32 = AtomicU32::new(0);
        let tag = (std::process::id() % 10_000) * 10 + LINKS.fetch_add(1, Ordering::Relaxed);
        let link = Link {
            namespaces: [format!("sb{tag}a"), format!("sb{tag}b")],
        };
        let [a, b] = &link.namespaces;
        let subnet = 1 + tag % 250;
        let addresses = [format!("10.213.{subnet}.1"), format!("10.213.{subnet}.2")];
        ip(&["netns", "add", a])?;
        ip(&["netns", "add", b])?;
        let (veth_a, veth_b) = (format!("v{tag}a"), format!("v{tag}b"));
        ip(&[
            "link", "add", &veth_a, "type", "veth", "peer", "name", &veth_b,
        ])?;
        ip(&["link", "set", &veth_a, "netns", a])?;
        ip(&["link", "set", &veth_b, "netns", b])?;
        for (ns, veth, address) in [(a, &veth_a, &addresses[0]), (b, &veth_b, &addresses[1])] {
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                veth,
            ])?;
            ip(&["-n", ns, "link", "set", veth, "up", "multicast", "on"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "route", "add", "224.0.0.0/4", "dev", veth])?;
        }
        Ok((link, addresses))
    }
}

impl Link {
    /// A link, or `None` with the reason printed where namespaces cannot be made.
    fn create_or_skip() -> Option<(Self, [String; 2])> {
        match Link::create() {
            Ok(created) => Some(created),
            Err(reason) => {
                eprintln!("SKIPPED mDNS test: cannot create network namespaces here ({reason})");
                None
            }
        }
    }
}

impl Drop for Link {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

#[test]
fn two_nodes_on_a_lan_find_each_other_with_mdns_and_fetch() {
    let Some((link, addresses)) = Link::create_or_skip() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("lan-model");
    write_random_file(&model.join("w.bin"), 3 * 1024 * 1024, "mdns");
    let listen = |address: &str| format!("/ip4/{address}/tcp/0");
    let listen_a = listen(&addresses[0]);
    let listen_b = listen(&addresses[1]);
    let a = Daemon::start_in_namespace(
        &work.path().join("a"),
        &link.namespaces[0],
        &["--listen", &listen_a],
    );
    let b = Daemon::start_in_namespace(
        &work.path().join("b"),
        &link.namespaces[1],
        &["--listen", &listen_b],
    );
    let id = a.ok_json(&["add", model.to_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_owned();

    b.wait_for_a_connected_peer("a peer found over mDNS", MDNS_DEADLINE);
    let out = work.path().join("out");
    b.ok(&["fetch", &id, "--out", out.to_str().unwrap()]);
    assert_eq!(
        file_hash(&out.join("w.bin")),
        file_hash(&model.join("w.bin"))
    );
}

#[test]
fn a_daemon_killed_mid_fetch_resumes_once_mdns_finds_the_seeder_again() {
    let Some((link, addresses)) = Link::create_or_skip() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let model = work.path().join("lan-model");
    write_random_file(&model.join("w.bin"), 96 * 1024 * 1024, "mdns restart");
    let listen_a = format!("/ip4/{}/tcp/0", addresses[0]);
    let listen_b = format!("/ip4/{}/tcp/0", addresses[1]);
    let a = Daemon::start_in_namespace(
        &work.path().join("a"),
        &link.namespaces[0],
        &["--listen", &listen_a],
    );
    let mut b = Daemon::start_in_namespace(
        &work.path().join("b"),
        &link.namespaces[1],
        &["--listen", &listen_b, "--download-limit", "16M"],
    );
    let id = a.ok_json(&["add", model.to_str().unwrap()])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    b.wait_for_a_connected_peer("a peer found over mDNS", MDNS_DEADLINE);

    b.ok(&["fetch", "--detach", &id]);
    b.wait_for_fetch_progress(&id, 0);
    b.kill();
    b.start_again();
    // The saved job resumes on its own once mDNS finds A again.
    b.wait_until_complete(&id, Duration::from_secs(120));
    let out = work.path().join("out");
    b.ok(&["export", &id, out.to_str().unwrap()]);
    assert_eq!(tree_hashes(&out), tree_hashes(&model));
}
