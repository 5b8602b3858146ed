//! The rendered gateway, end to end, in network namespaces: a laptop, the gateway, a private
//! instance and "the internet", joined by veth pairs. The gateway runs the rendered firewall and
//! sysctl drop-in; `wireguard-go` (userspace WireGuard) carries the tunnel between the laptop
//! and the gateway, configured with `wg setconf` from the rendered files.
//!
//! ```text
//!  laptop ns                 internet ns                 gateway ns                private ns
//!  192.168.60.2 ── veth ── 192.168.60.1                                         
//!                          192.168.50.1 ── veth ── 192.168.50.2 (egress)
//!                                                  10.10.16.5 ───── veth ───── 10.10.16.20
//!  10.200.0.2 (wg) ═════════ WireGuard over UDP 51820 ═════ 10.200.0.1 (wg)
//! ```
//!
//! The internet namespace routes between the laptop and the gateway but has no route to the
//! private network or the tunnel: a private packet can only come back if the gateway
//! masqueraded it. Asserted, for nftables and again for the iptables rendering:
//!
//! 1. the private instance reaches a TCP listener in the internet namespace, which sees the
//!    gateway's egress address (masqueraded);
//! 2. the laptop reaches the private instance through the tunnel, which sees the laptop's
//!    tunnel address;
//! 3. with the gateway's rules removed, (1) fails; with forwarding off as well, (2) fails;
//! 4. after re-applying the rendered files, both work again.
//!
//! Needs root, `/dev/net/tun` and: `apt-get install -y --no-install-recommends wireguard-go
//! wireguard-tools nftables iproute2 iptables procps`. A missing tool fails the test with that
//! hint. Every namespace (and with it every veth) is deleted and every process stopped by its
//! PID when the test ends, also when it fails. Only addresses inside these namespaces are used.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking
#![allow(clippy::print_stderr)] // a failed cleanup step is reported, not fatal

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use frankenetes_netgw::{Firewall, GatewayOptions, bundle, gateway_of, render};
use frankenetes_spec::ClusterSpec;
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const INSTALL_HINT: &str = "apt-get install -y --no-install-recommends wireguard-go wireguard-tools nftables iproute2 iptables procps";
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection that should work may take to come up (the first one waits for the
/// WireGuard handshake).
const SETTLE: Duration = Duration::from_secs(20);

const PRIVATE_INSTANCE: &str = "10.10.16.20";
const GATEWAY_EGRESS: &str = "192.168.50.2";
const INTERNET_HOST: &str = "192.168.50.1";
const LAPTOP_TUNNEL: &str = "10.200.0.2";

// ---------------------------------------------------------------------------------------------
// Preconditions

fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn require_environment() {
    let tools = [
        ("ip", "iproute2"),
        ("nft", "nftables"),
        ("iptables-restore", "iptables"),
        ("ip6tables-restore", "iptables"),
        ("iptables-save", "iptables"),
        ("wg", "wireguard-tools"),
        ("wg-quick", "wireguard-tools"),
        ("wireguard-go", "wireguard-go"),
        ("sysctl", "procps"),
    ];
    let missing: Vec<String> = tools
        .iter()
        .filter(|(t, _)| find_tool(t).is_none())
        .map(|(t, p)| format!("{t} (Debian package {p})"))
        .collect();
    assert!(
        missing.is_empty(),
        "the gateway end-to-end test needs {}; install them with: {INSTALL_HINT}",
        missing.join(", ")
    );
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("?");
    assert_eq!(
        euid, "0",
        "the gateway end-to-end test creates network namespaces: run it as root"
    );
    assert!(
        Path::new("/dev/net/tun").exists(),
        "wireguard-go needs /dev/net/tun (modprobe tun, or give the container the device)"
    );
}

// ---------------------------------------------------------------------------------------------
// Commands with timeouts

/// Runs a command to completion within `COMMAND_TIMEOUT`; `Err` carries its stderr.
fn try_run(args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let shown = args.join(" ");
    let mut child = Command::new(args[0])
        .args(&args[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start `{shown}`: {e}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes())
            .map_err(|e| format!("`{shown}`: cannot write stdin: {e}"))?;
    }
    let read = |mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let mut s = String::new();
            let _ = r.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().expect("piped")));
    let err = read(Box::new(child.stderr.take().expect("piped")));
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{shown}` took longer than {COMMAND_TIMEOUT:?}"));
            }
            Err(e) => return Err(format!("`{shown}`: {e}")),
        }
    };
    let (out, err) = (
        out.join().unwrap_or_default(),
        err.join().unwrap_or_default(),
    );
    if status.success() {
        Ok(out)
    } else {
        Err(format!("`{shown}` failed ({status}): {}", err.trim()))
    }
}

fn run(args: &[&str]) -> String {
    try_run(args, None).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------------------------------------
// Guards: namespaces and processes

/// A network namespace, deleted (with the interfaces in it) when dropped.
struct Netns {
    name: String,
    links: Vec<String>,
}

impl Netns {
    fn create(name: String) -> Self {
        run(&["ip", "netns", "add", &name]);
        let ns = Self {
            name,
            links: Vec::new(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "-n", &self.name];
        a.extend_from_slice(args);
        run(&a)
    }

    fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut a = vec!["ip", "netns", "exec", &self.name];
        a.extend_from_slice(args);
        try_run(&a, None)
    }

    fn sysctl(&self, key: &str, value: &str) {
        self.exec(&["sysctl", "-q", "-w", &format!("{key}={value}")])
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for l in &self.links {
            let _ = try_run(&["ip", "-n", &self.name, "link", "del", l], None);
        }
        if let Err(e) = try_run(&["ip", "netns", "delete", &self.name], None) {
            eprintln!("cleanup: {e}");
        }
    }
}

/// A `wireguard-go` process in the foreground, stopped by its PID when dropped.
struct WireguardGo {
    child: Child,
    iface: String,
    log: PathBuf,
}

impl WireguardGo {
    fn start(ns: &Netns, iface: &str, log: PathBuf) -> Self {
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new("ip")
            .args(["netns", "exec", &ns.name, "wireguard-go", "-f", iface])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start wireguard-go");
        let mut me = Self {
            child,
            iface: iface.to_owned(),
            log,
        };
        // `ip netns exec` execs wireguard-go in place: the PID is wireguard-go's.
        let sock = me.socket();
        let deadline = Instant::now() + Duration::from_secs(10);
        while !sock.exists() {
            if let Ok(Some(status)) = me.child.try_wait() {
                panic!(
                    "wireguard-go for {iface} exited ({status}): {}",
                    std::fs::read_to_string(&me.log).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "wireguard-go did not create {} within 10s: {}",
                sock.display(),
                std::fs::read_to_string(&me.log).unwrap_or_default()
            );
            thread::sleep(Duration::from_millis(20));
        }
        me
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/wireguard/{}.sock", self.iface))
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for WireguardGo {
    fn drop(&mut self) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).unwrap_or(i32::MAX));
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        let _ = std::fs::remove_file(self.socket());
    }
}

/// Everything a scenario made. Fields drop in order: processes first, then namespaces.
struct Lab {
    daemons: Vec<WireguardGo>,
    namespaces: Vec<Netns>,
}

impl Lab {
    fn ns(&self, i: usize) -> &Netns {
        &self.namespaces[i]
    }

    /// A veth pair with one end in each namespace (never in the host's).
    fn veth(&mut self, a: usize, a_if: &str, b: usize, b_if: &str) {
        let (na, nb) = (
            self.namespaces[a].name.clone(),
            self.namespaces[b].name.clone(),
        );
        run(&[
            "ip", "link", "add", "name", a_if, "netns", &na, "type", "veth", "peer", "name", b_if,
            "netns", &nb,
        ]);
        self.namespaces[a].links.push(a_if.to_owned());
        self.namespaces[a].ip(&["link", "set", a_if, "up"]);
        self.namespaces[b].ip(&["link", "set", b_if, "up"]);
    }
}

// ---------------------------------------------------------------------------------------------
// TCP probes from inside a namespace: a thread enters it with setns(2) (which changes only the
// calling thread) and opens its sockets there.

fn enter(ns: &str) -> Result<(), String> {
    let f = File::open(format!("/var/run/netns/{ns}")).map_err(|e| format!("open {ns}: {e}"))?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {ns}: {e}"))
}

/// A TCP server that records each client's address and writes it back ("what is my IP").
struct Listener {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<IpAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    fn start(ns: &Netns, addr: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let (stop2, seen2, name) = (stop.clone(), seen.clone(), ns.name.clone());
        let thread = thread::spawn(move || {
            let bound = enter(&name).and_then(|()| {
                let l = TcpListener::bind(addr).map_err(|e| format!("bind {addr}: {e}"))?;
                l.set_nonblocking(true).map_err(|e| e.to_string())?;
                Ok(l)
            });
            let l = match bound {
                Ok(l) => {
                    let _ = tx.send(Ok(()));
                    l
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            while !stop2.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut s, peer)) => {
                        seen2.lock().expect("lock").push(peer.ip());
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_write_timeout(Some(CONNECT_TIMEOUT));
                        let _ = s.write_all(peer.ip().to_string().as_bytes());
                    }
                    Err(_) => thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("listener thread answers")
            .unwrap_or_else(|e| panic!("listener in {}: {e}", ns.name));
        Self {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    fn seen(&self) -> Vec<IpAddr> {
        self.seen.lock().expect("lock").clone()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Connects from inside `ns` to `server` and returns the address the server saw.
fn probe(ns: &Netns, server: SocketAddr) -> Result<String, String> {
    let name = ns.name.clone();
    thread::spawn(move || {
        enter(&name)?;
        let mut s = TcpStream::connect_timeout(&server, CONNECT_TIMEOUT)
            .map_err(|e| format!("connect {server}: {e}"))?;
        s.set_read_timeout(Some(CONNECT_TIMEOUT))
            .map_err(|e| e.to_string())?;
        let mut answer = String::new();
        s.read_to_string(&mut answer)
            .map_err(|e| format!("read from {server}: {e}"))?;
        Ok(answer)
    })
    .join()
    .unwrap_or_else(|_| Err("probe thread panicked".into()))
}

/// Probes until it works (at most `SETTLE`).
fn probe_until_ok(ns: &Netns, server: SocketAddr, what: &str) -> String {
    let deadline = Instant::now() + SETTLE;
    loop {
        match probe(ns, server) {
            Ok(a) => return a,
            Err(e) if Instant::now() >= deadline => {
                panic!("{what}: no connection within {SETTLE:?}: {e}")
            }
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// wg-quick's addressing, done by hand: `Address` on the interface, a route per `AllowedIPs`.

fn wg_quick_values<'a>(conf: &'a str, key: &str) -> Vec<&'a str> {
    conf.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == key).then_some(v)
        })
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect()
}

fn bring_up_tunnel(ns: &Netns, iface: &str, setconf: &Path, wg_quick: &str) {
    ns.exec(&["wg", "setconf", iface, &setconf.display().to_string()])
        .unwrap_or_else(|e| panic!("{e}"));
    for a in wg_quick_values(wg_quick, "Address") {
        ns.ip(&["addr", "add", a, "dev", iface]);
    }
    ns.ip(&["link", "set", iface, "up"]);
    for net in wg_quick_values(wg_quick, "AllowedIPs") {
        ns.ip(&["route", "replace", net, "dev", iface]);
    }
}

// ---------------------------------------------------------------------------------------------
// The scenario

struct FirewallOps {
    apply: fn(&Netns, &Path),
    listing: fn(&Netns) -> String,
    remove: fn(&Netns),
}

const NFT: FirewallOps = FirewallOps {
    apply: |gw, root| {
        let file = root.join(bundle::NFT_PATH.trim_start_matches('/'));
        gw.exec(&["nft", "-f", &file.display().to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
    },
    listing: |gw| {
        gw.exec(&["nft", "list", "table", "inet", "frankenetes_gw"])
            .unwrap_or_else(|e| panic!("{e}"))
    },
    remove: |gw| {
        gw.exec(&["nft", "delete", "table", "inet", "frankenetes_gw"])
            .unwrap_or_else(|e| panic!("{e}"));
    },
};

const IPTABLES: FirewallOps = FirewallOps {
    apply: |gw, root| {
        for (tool, path) in [
            ("iptables-restore", bundle::IPTABLES_PATH),
            ("ip6tables-restore", bundle::IP6TABLES_PATH),
        ] {
            let file = root.join(path.trim_start_matches('/'));
            gw.exec(&[tool, &file.display().to_string()])
                .unwrap_or_else(|e| panic!("{e}"));
        }
    },
    listing: |gw| {
        let all = gw
            .exec(&["iptables-save"])
            .unwrap_or_else(|e| panic!("{e}"));
        // Drop the timestamped comments and the counters.
        all.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| match l.split_once(" [") {
                Some((chain, _)) if l.starts_with(':') => chain.to_owned(),
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    },
    remove: |gw| {
        for cmd in [
            &["iptables", "-F"][..],
            &["iptables", "-t", "nat", "-F"],
            &["iptables", "-P", "INPUT", "ACCEPT"],
            &["iptables", "-P", "FORWARD", "ACCEPT"],
        ] {
            gw.exec(cmd).unwrap_or_else(|e| panic!("{e}"));
        }
    },
};

fn spec_yaml(egress: &str, tunnel_if: &str) -> String {
    format!(
        r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: netns-lab }}
spec:
  kubernetesVersion: v1.35.0
  controlPlane: [{{ name: control-01, ip: 10.10.16.11 }}]
  gateway:
    name: gateway
    ip: 10.10.16.5
    privateCIDR: 10.10.16.0/20
    egressInterface: {egress}
    tunnel:
      cidr: 10.200.0.0/24
      listenPort: 51820
      endpoint: "{GATEWAY_EGRESS}:51820"
      interface: {tunnel_if}
      persistentKeepalive: 5
    peers: [{{ name: laptop }}]
"#
    )
}

fn scenario(firewall: Firewall, tag: char) {
    require_environment();
    let ops = match firewall {
        Firewall::Nftables => &NFT,
        _ => &IPTABLES,
    };
    let pid = std::process::id();
    // Interface names are at most 15 bytes: "fg" + tag + pid (up to 7 digits) + 2.
    let short = format!("fg{tag}{pid}");
    let (ge, ie, li, il, gp, pp, gwt, lwt) = (
        format!("{short}ge"),
        format!("{short}ie"),
        format!("{short}li"),
        format!("{short}il"),
        format!("{short}gp"),
        format!("{short}pp"),
        format!("{short}gw"),
        format!("{short}lw"),
    );

    // Render the gateway for this lab, with real keys from the OS.
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let spec = ClusterSpec::from_yaml(&spec_yaml(&ge, &gwt))
        .expect("lab spec")
        .spec;
    let gw_spec = gateway_of(&spec).expect("gateway");
    let options = GatewayOptions::default().firewall(firewall);
    let rendered = render(&out, gw_spec, &options).expect("render");
    let root = rendered.bundle.root(&out);
    let server_setconf = root.join(format!("etc/wireguard/{gwt}.setconf"));
    let server_conf = std::fs::read_to_string(root.join(format!("etc/wireguard/{gwt}.conf")))
        .expect("server wg-quick file");
    let client_conf_path = out.join("cluster/vpn/laptop.conf");
    let client_conf = std::fs::read_to_string(&client_conf_path).expect("client config");
    let laptop = rendered
        .clients
        .iter()
        .find(|c| c.name == "laptop")
        .expect("laptop client");
    let client_setconf = tmp.path().join("laptop.setconf");
    std::fs::write(&client_setconf, laptop.setconf().as_bytes()).expect("write");

    // The keys are what wg(8) computes, and wg-quick accepts the client file.
    let gw_keys = rendered.state.gateway_keys();
    let wg_pub = try_run(&["wg", "pubkey"], Some(&gw_keys.private.to_base64()))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        wg_pub.trim(),
        gw_keys.public.to_string(),
        "wg pubkey disagrees"
    );
    let server_conf_path = root.join(format!("etc/wireguard/{gwt}.conf"));
    for file in [&client_conf_path, &server_conf_path] {
        try_run(&["wg-quick", "strip", &file.display().to_string()], None)
            .unwrap_or_else(|e| panic!("wg-quick rejects {}: {e}", file.display()));
    }

    // The lab.
    let base = format!("frankenetes-netgw-{pid}-{tag}");
    let mut lab = Lab {
        daemons: Vec::new(),
        namespaces: Vec::new(),
    };
    for role in ["laptop", "internet", "gateway", "private"] {
        lab.namespaces.push(Netns::create(format!("{base}-{role}")));
    }
    let (laptop_ns, inet, gw, private) = (0, 1, 2, 3);
    lab.veth(laptop_ns, &li, inet, &il);
    lab.veth(gw, &ge, inet, &ie);
    lab.veth(gw, &gp, private, &pp);
    lab.ns(laptop_ns)
        .ip(&["addr", "add", "192.168.60.2/24", "dev", &li]);
    lab.ns(laptop_ns)
        .ip(&["route", "add", "default", "via", "192.168.60.1"]);
    lab.ns(inet)
        .ip(&["addr", "add", "192.168.60.1/24", "dev", &il]);
    lab.ns(inet)
        .ip(&["addr", "add", &format!("{INTERNET_HOST}/24"), "dev", &ie]);
    lab.ns(inet).sysctl("net.ipv4.ip_forward", "1");
    lab.ns(gw)
        .ip(&["addr", "add", &format!("{GATEWAY_EGRESS}/24"), "dev", &ge]);
    lab.ns(gw).ip(&["addr", "add", "10.10.16.5/20", "dev", &gp]);
    lab.ns(gw)
        .ip(&["route", "add", "default", "via", INTERNET_HOST]);
    lab.ns(private)
        .ip(&["addr", "add", &format!("{PRIVATE_INSTANCE}/20"), "dev", &pp]);
    lab.ns(private)
        .ip(&["route", "add", "default", "via", "10.10.16.5"]);
    // The private instance has one way out: the gateway.
    let routes = lab.ns(private).ip(&["route", "show"]);
    assert!(
        routes
            .lines()
            .all(|r| r.contains(&pp) && (!r.starts_with("default") || r.contains("via 10.10.16.5"))),
        "{routes}"
    );

    // The gateway: the rendered sysctl drop-in and firewall (twice: idempotent).
    let sysctl_file = root.join(bundle::SYSCTL_PATH.trim_start_matches('/'));
    let apply_sysctl = |ns: &Netns| {
        ns.exec(&["sysctl", "-p", &sysctl_file.display().to_string()])
            .unwrap_or_else(|e| panic!("{e}"))
    };
    apply_sysctl(lab.ns(gw));
    (ops.apply)(lab.ns(gw), &root);
    let first = (ops.listing)(lab.ns(gw));
    (ops.apply)(lab.ns(gw), &root);
    assert_eq!(
        (ops.listing)(lab.ns(gw)),
        first,
        "applying the rules twice differs"
    );

    // The tunnel: wireguard-go on both ends, configured from the rendered files.
    let gw_wg = WireguardGo::start(lab.ns(gw), &gwt, tmp.path().join("gw-wireguard-go.log"));
    lab.daemons.push(gw_wg);
    let lt_wg = WireguardGo::start(
        lab.ns(laptop_ns),
        &lwt,
        tmp.path().join("laptop-wireguard-go.log"),
    );
    lab.daemons.push(lt_wg);
    bring_up_tunnel(lab.ns(gw), &gwt, &server_setconf, &server_conf);
    bring_up_tunnel(lab.ns(laptop_ns), &lwt, &client_setconf, &client_conf);
    let pids: Vec<u32> = lab.daemons.iter().map(WireguardGo::pid).collect();

    let internet_service: SocketAddr = format!("{INTERNET_HOST}:8080").parse().expect("addr");
    let private_service: SocketAddr = format!("{PRIVATE_INSTANCE}:8080").parse().expect("addr");
    let internet_listener = Listener::start(lab.ns(inet), internet_service);
    let private_listener = Listener::start(lab.ns(private), private_service);
    let check_both_work = |when: &str| {
        // 1. Private instance → internet: masqueraded to the gateway's egress address.
        let seen = probe_until_ok(
            lab.ns(private),
            internet_service,
            &format!("{when}: private instance to the internet"),
        );
        assert_eq!(
            seen, GATEWAY_EGRESS,
            "{when}: the internet saw {seen}, not the gateway's egress address"
        );
        // 2. Laptop → private instance through the tunnel, with its tunnel address.
        let seen = probe_until_ok(
            lab.ns(laptop_ns),
            private_service,
            &format!("{when}: laptop to the private instance"),
        );
        assert_eq!(
            seen, LAPTOP_TUNNEL,
            "{when}: the private instance saw {seen}, not the laptop's tunnel address"
        );
    };
    check_both_work("with the rendered gateway");
    assert!(
        internet_listener
            .seen()
            .iter()
            .all(|a| a.to_string() == GATEWAY_EGRESS),
        "an unmasqueraded packet reached the internet: {:?}",
        internet_listener.seen()
    );
    let handshakes = lab
        .ns(gw)
        .exec(&["wg", "show", &gwt, "latest-handshakes"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        handshakes
            .split_whitespace()
            .nth(1)
            .is_some_and(|t| t != "0"),
        "no WireGuard handshake: {handshakes}"
    );

    // 3. Rules removed: the private network no longer reaches the internet (nothing is
    // masqueraded, and the internet has no route back)...
    (ops.remove)(lab.ns(gw));
    let before = internet_listener.seen().len();
    let r = probe(lab.ns(private), internet_service);
    assert!(
        r.is_err(),
        "without the rules the private instance still reached the internet: {r:?}"
    );
    assert_eq!(internet_listener.seen().len(), before);
    // ... and with forwarding off as well, the laptop no longer reaches the private instance.
    lab.ns(gw).sysctl("net.ipv4.ip_forward", "0");
    let before = private_listener.seen().len();
    let r = probe(lab.ns(laptop_ns), private_service);
    assert!(
        r.is_err(),
        "without forwarding the laptop still reached the private instance: {r:?}"
    );
    assert_eq!(private_listener.seen().len(), before);

    // 4. Re-applying the rendered files restores both.
    apply_sysctl(lab.ns(gw));
    (ops.apply)(lab.ns(gw), &root);
    assert_eq!((ops.listing)(lab.ns(gw)), first);
    check_both_work("after re-applying");

    // Clean up explicitly and check nothing is left behind.
    drop(internet_listener);
    drop(private_listener);
    let names: Vec<String> = lab.namespaces.iter().map(|n| n.name.clone()).collect();
    drop(lab);
    let left = run(&["ip", "netns", "list"]);
    for n in &names {
        assert!(
            !left.lines().any(|l| l.split_whitespace().next() == Some(n)),
            "namespace {n} left behind"
        );
    }
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "wireguard-go {pid} still running"
        );
    }
    for iface in [&gwt, &lwt] {
        assert!(!Path::new(&format!("/var/run/wireguard/{iface}.sock")).exists());
    }
}

#[test]
fn nftables_gateway_end_to_end() {
    scenario(Firewall::Nftables, 'n');
}

#[test]
fn iptables_gateway_end_to_end() {
    scenario(Firewall::Iptables, 'i');
}
