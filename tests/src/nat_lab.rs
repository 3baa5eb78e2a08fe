//! A small internet in network namespaces, for home nodes behind NAT.
//!
//! One namespace holds a bridge, the "internet" (11.0.0.0/24, addresses that count as
//! public); a relay host sits on it, and two home routers, each masquerading a home
//! network (192.168.1.0/24, 192.168.2.0/24) with one home host behind it, and dropping
//! what comes unasked from outside. Nothing is joined to this machine's own network:
//! every packet stays in namespaces the lab made, and they are deleted on drop. Where
//! namespaces or iptables are missing, the lab says why and the test skips.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};

/// One lab at a time: hole punching times its dials by round trips, and two labs of
/// daemons moving 64 MiB each on two cores skew those.
static ONE_LAB_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The relay's (public) address.
pub const RELAY_IP: &str = "11.0.0.10";
/// The public address of home router 1.
pub const ROUTER1_IP: &str = "11.0.0.21";
/// The public address of home router 2.
pub const ROUTER2_IP: &str = "11.0.0.22";

/// How the home routers translate addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NatKind {
    /// Linux MASQUERADE: keeps the source port where it can, so hole punching works.
    PortPreserving,
    /// MASQUERADE `--random-fully`: a new random port per destination (a symmetric
    /// NAT), so no hole can be punched.
    Symmetric,
}

/// The hosts of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The public relay.
    Relay,
    /// Home router 1.
    Router1,
    /// Home router 2.
    Router2,
    /// The host behind router 1.
    Home1,
    /// The host behind router 2.
    Home2,
}

impl Host {
    fn short(self) -> &'static str {
        match self {
            Host::Relay => "r",
            Host::Router1 => "g1",
            Host::Router2 => "g2",
            Host::Home1 => "h1",
            Host::Home2 => "h2",
        }
    }
}

/// The namespaces of one lab; deleted on drop.
#[derive(Debug)]
pub struct NatLab {
    tag: String,
    namespaces: Vec<String>,
    upnp: Option<Child>,
    work: tempfile::TempDir,
    _turn: MutexGuard<'static, ()>,
}

/// Runs a command; its stderr is the error.
fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl NatLab {
    /// A lab, or `None` with the reason printed where one cannot be made here.
    pub fn create_or_skip(test: &str, kind: NatKind) -> Option<Self> {
        match Self::create(kind) {
            Ok(lab) => Some(lab),
            Err(reason) => {
                eprintln!("SKIPPED {test}: cannot build the NAT lab here ({reason})");
                None
            }
        }
    }

    fn create(kind: NatKind) -> Result<Self, String> {
        static LABS: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "n{}{}",
            std::process::id() % 100_000,
            LABS.fetch_add(1, Ordering::Relaxed)
        );
        let turn = ONE_LAB_AT_A_TIME
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut lab = NatLab {
            tag: tag.clone(),
            namespaces: Vec::new(),
            upnp: None,
            work: tempfile::tempdir().map_err(|e| e.to_string())?,
            _turn: turn,
        };
        for name in ["net", "r", "g1", "g2", "h1", "h2"] {
            let ns = format!("{tag}{name}");
            run("ip", &["netns", "add", &ns])?;
            lab.namespaces.push(ns.clone());
            run("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        }
        let internet = format!("{tag}net");
        run(
            "ip",
            &["-n", &internet, "link", "add", "br0", "type", "bridge"],
        )?;
        run("ip", &["-n", &internet, "link", "set", "br0", "up"])?;
        for (host, address) in [
            (Host::Relay, RELAY_IP),
            (Host::Router1, ROUTER1_IP),
            (Host::Router2, ROUTER2_IP),
        ] {
            let ns = lab.ns(host);
            let (inside, outside) = (
                format!("{tag}w{}", host.short()),
                format!("{tag}b{}", host.short()),
            );
            lab.veth(&inside, &ns, "wan", &outside, &internet, "")?;
            run(
                "ip",
                &[
                    "-n", &internet, "link", "set", &outside, "master", "br0", "up",
                ],
            )?;
            run(
                "ip",
                &[
                    "-n",
                    &ns,
                    "addr",
                    "add",
                    &format!("{address}/24"),
                    "dev",
                    "wan",
                ],
            )?;
            run("ip", &["-n", &ns, "link", "set", "wan", "up"])?;
        }
        for (router, home, subnet) in [
            (Host::Router1, Host::Home1, 1),
            (Host::Router2, Host::Home2, 2),
        ] {
            let (router_ns, home_ns) = (lab.ns(router), lab.ns(home));
            let (a, b) = (
                format!("{tag}l{}", router.short()),
                format!("{tag}e{}", home.short()),
            );
            lab.veth(&a, &router_ns, "lan", &b, &home_ns, "eth0")?;
            let gateway = format!("192.168.{subnet}.1");
            run(
                "ip",
                &[
                    "-n",
                    &router_ns,
                    "addr",
                    "add",
                    &format!("{gateway}/24"),
                    "dev",
                    "lan",
                ],
            )?;
            run("ip", &["-n", &router_ns, "link", "set", "lan", "up"])?;
            run(
                "ip",
                &[
                    "-n",
                    &home_ns,
                    "addr",
                    "add",
                    &format!("192.168.{subnet}.2/24"),
                    "dev",
                    "eth0",
                ],
            )?;
            run("ip", &["-n", &home_ns, "link", "set", "eth0", "up"])?;
            run(
                "ip",
                &["-n", &home_ns, "route", "add", "default", "via", &gateway],
            )?;
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &router_ns,
                    "sysctl",
                    "-qw",
                    "net.ipv4.ip_forward=1",
                ],
            )?;
            let mut masquerade = vec![
                "netns",
                "exec",
                &router_ns,
                "iptables",
                "-t",
                "nat",
                "-A",
                "POSTROUTING",
                "-o",
                "wan",
                "-j",
                "MASQUERADE",
            ];
            if kind == NatKind::Symmetric {
                masquerade.push("--random-fully");
            }
            run("ip", &masquerade)?;
            // As home routers do: nothing from outside reaches the router itself unless it
            // answers something sent from inside. (Linux would answer with a reset, which
            // ends a hole punch whose other half has not left its own router yet.)
            run(
                "ip",
                &[
                    "netns",
                    "exec",
                    &router_ns,
                    "iptables",
                    "-A",
                    "INPUT",
                    "-i",
                    "wan",
                    "-m",
                    "conntrack",
                    "--ctstate",
                    "NEW,INVALID",
                    "-j",
                    "DROP",
                ],
            )?;
        }
        Ok(lab)
    }

    /// A veth pair: `a` into `a_ns` named `a_name`, `b` into `b_ns` (renamed to `b_name`
    /// unless empty). Made in this namespace under unique names, then moved.
    fn veth(
        &self,
        a: &str,
        a_ns: &str,
        a_name: &str,
        b: &str,
        b_ns: &str,
        b_name: &str,
    ) -> Result<(), String> {
        run("ip", &["link", "add", a, "type", "veth", "peer", "name", b])?;
        run("ip", &["link", "set", a, "netns", a_ns])?;
        run("ip", &["-n", a_ns, "link", "set", a, "name", a_name])?;
        run("ip", &["link", "set", b, "netns", b_ns])?;
        if !b_name.is_empty() {
            run("ip", &["-n", b_ns, "link", "set", b, "name", b_name])?;
        }
        Ok(())
    }

    /// The namespace of `host`.
    pub fn ns(&self, host: Host) -> String {
        format!("{}{}", self.tag, host.short())
    }

    /// Starts miniupnpd (UPnP IGD and NAT-PMP) on router 1 for its home network, with
    /// nftables chains of its own in that router's namespace. An error says what is
    /// missing.
    pub fn start_upnp_on_router1(&mut self) -> Result<(), String> {
        let router = self.ns(Host::Router1);
        let dir = self.work.path();
        let rules = dir.join("miniupnpd.nft");
        std::fs::write(
            &rules,
            "table inet miniupnpd {\n\
             chain miniupnpd { }\n\
             chain prerouting_miniupnpd { }\n\
             chain postrouting_miniupnpd { }\n\
             chain forward { type filter hook forward priority 0; policy accept; jump miniupnpd; }\n\
             chain prerouting { type nat hook prerouting priority -100; policy accept; jump prerouting_miniupnpd; }\n\
             chain postrouting { type nat hook postrouting priority 100; policy accept; jump postrouting_miniupnpd; }\n\
             }\n",
        )
        .map_err(|e| e.to_string())?;
        run(
            "ip",
            &[
                "netns",
                "exec",
                &router,
                "nft",
                "-f",
                rules.to_str().unwrap_or_default(),
            ],
        )?;
        let config = dir.join("miniupnpd.conf");
        std::fs::write(
            &config,
            "ext_ifname=wan\nlistening_ip=lan\nport=0\nenable_natpmp=yes\nenable_upnp=yes\n\
             secure_mode=yes\nsystem_uptime=yes\nuuid=3b3c8f0e-8a1e-4c39-9d2e-5e1f0c7a1b21\n\
             upnp_table_name=miniupnpd\nupnp_nat_table_name=miniupnpd\n\
             upnp_forward_chain=miniupnpd\nupnp_nat_chain=prerouting_miniupnpd\n\
             upnp_nat_postrouting_chain=postrouting_miniupnpd\n\
             allow 1024-65535 192.168.1.0/24 1024-65535\ndeny 0-65535 0.0.0.0/0 0-65535\n",
        )
        .map_err(|e| e.to_string())?;
        let log = std::fs::File::create(dir.join("miniupnpd.log")).map_err(|e| e.to_string())?;
        let child = Command::new("ip")
            .args(["netns", "exec", &router, "miniupnpd", "-d", "-f"])
            .arg(&config)
            .arg("-P")
            .arg(dir.join("miniupnpd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start miniupnpd: {e}"))?;
        self.upnp = Some(child);
        Ok(())
    }

    /// The port forwards miniupnpd holds on router 1 now (its nftables chain).
    pub fn upnp_forwards(&self) -> String {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.ns(Host::Router1)])
            .args([
                "nft",
                "list",
                "chain",
                "inet",
                "miniupnpd",
                "prerouting_miniupnpd",
            ])
            .output();
        match output {
            Ok(output) => String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter(|line| line.contains("dnat"))
                .collect::<Vec<_>>()
                .join("\n"),
            Err(e) => format!("cannot list the forwards: {e}"),
        }
    }

    /// miniupnpd's log, for failure messages.
    pub fn upnp_log(&self) -> String {
        std::fs::read_to_string(self.work.path().join("miniupnpd.log")).unwrap_or_default()
    }
}

impl Drop for NatLab {
    fn drop(&mut self) {
        if let Some(mut child) = self.upnp.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.namespaces.iter().rev() {
            let _ = run("ip", &["netns", "del", ns]);
        }
    }
}

/// Whether this machine has what the lab needs, or why not.
pub fn upnp_available() -> Result<(), String> {
    for program in ["miniupnpd", "nft"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            return Err(format!("{program} is not installed"));
        }
    }
    Ok(())
}
