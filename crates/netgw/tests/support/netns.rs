//! Guards (network namespaces, `wireguard-go`, `wg-quick`), TCP probes from inside a
//! namespace, and wg-quick's addressing done by hand.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::{run, try_run};

pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a connection that should work may take to come up (the first one waits for the
/// WireGuard handshake).
pub(crate) const SETTLE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------------------------
// Guards: namespaces and processes

/// A network namespace, deleted (with the interfaces in it) when dropped.
pub(crate) struct Netns {
    pub(crate) name: String,
    pub(crate) links: Vec<String>,
}

impl Netns {
    pub(crate) fn create(name: String) -> Self {
        run(&["ip", "netns", "add", &name]);
        let ns = Self {
            name,
            links: Vec::new(),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    pub(crate) fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["ip", "-n", &self.name];
        a.extend_from_slice(args);
        run(&a)
    }

    pub(crate) fn exec(&self, args: &[&str]) -> Result<String, String> {
        let mut a = vec!["ip", "netns", "exec", &self.name];
        a.extend_from_slice(args);
        try_run(&a, None)
    }

    pub(crate) fn sysctl(&self, key: &str, value: &str) {
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
pub(crate) struct WireguardGo {
    child: Child,
    iface: String,
    log: PathBuf,
}

impl WireguardGo {
    pub(crate) fn start(ns: &Netns, iface: &str, log: PathBuf) -> Self {
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

    pub(crate) fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/wireguard/{}.sock", self.iface))
    }

    pub(crate) fn pid(&self) -> u32 {
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

/// An interface `wg-quick up` made from a configuration file (here with `wireguard-go`, the
/// userspace implementation wg-quick falls back to without the kernel module), taken down with
/// `wg-quick down` and its `wireguard-go` daemon stopped by its PID (found from the UAPI
/// socket's peer credentials) when dropped.
pub(crate) struct WgQuickUp {
    ns: String,
    conf: PathBuf,
    iface: String,
    pid: Option<u32>,
}

impl WgQuickUp {
    /// `wg-quick up <conf>` in `ns` (the interface is named after the file).
    pub(crate) fn up(ns: &Netns, conf: &Path) -> Self {
        let iface = conf
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a file name")
            .to_owned();
        // The guard exists before the command runs, so a half-made interface is taken down too.
        let mut me = Self {
            ns: ns.name.clone(),
            conf: conf.to_owned(),
            iface,
            pid: None,
        };
        ns.exec(&["wg-quick", "up", &conf.display().to_string()])
            .unwrap_or_else(|e| panic!("{e}"));
        me.pid = Some(me.daemon_pid());
        me
    }

    fn socket(&self) -> PathBuf {
        PathBuf::from(format!("/var/run/wireguard/{}.sock", self.iface))
    }

    /// The PID of the process serving the interface's UAPI socket: its `wireguard-go`.
    fn daemon_pid(&self) -> u32 {
        use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};
        let s = std::os::unix::net::UnixStream::connect(self.socket())
            .unwrap_or_else(|e| panic!("{}: {e}", self.socket().display()));
        let cred = getsockopt(&s, PeerCredentials).expect("SO_PEERCRED");
        u32::try_from(cred.pid()).expect("a PID")
    }

    /// The daemon's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.pid.expect("up")
    }
}

/// Whether a process is gone (or a zombie nobody has reaped yet: it runs no more).
pub(crate) fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
    }
}

impl Drop for WgQuickUp {
    fn drop(&mut self) {
        let conf = self.conf.display().to_string();
        if let Err(e) = try_run(
            &["ip", "netns", "exec", &self.ns, "wg-quick", "down", &conf],
            None,
        ) {
            eprintln!("cleanup: {e}");
        }
        if let Some(pid) = self.pid {
            let p = Pid::from_raw(i32::try_from(pid).unwrap_or(i32::MAX));
            let _ = kill(p, Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while !process_gone(pid) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
            }
            if !process_gone(pid) {
                let _ = kill(p, Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_file(self.socket());
    }
}

/// Everything a scenario made. Fields drop in order: processes first, then namespaces.
pub(crate) struct Lab {
    pub(crate) daemons: Vec<WireguardGo>,
    pub(crate) tunnels: Vec<WgQuickUp>,
    pub(crate) namespaces: Vec<Netns>,
}

impl Lab {
    pub(crate) fn ns(&self, i: usize) -> &Netns {
        &self.namespaces[i]
    }

    /// A veth pair with one end in each namespace (never in the host's).
    pub(crate) fn veth(&mut self, a: usize, a_if: &str, b: usize, b_if: &str) {
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

pub(crate) fn enter(ns: &str) -> Result<(), String> {
    let f = File::open(format!("/var/run/netns/{ns}")).map_err(|e| format!("open {ns}: {e}"))?;
    setns(&f, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns {ns}: {e}"))
}

/// A TCP server that records each client's address and writes it back ("what is my IP").
pub(crate) struct Listener {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<IpAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    pub(crate) fn start(ns: &Netns, addr: SocketAddr) -> Self {
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

    pub(crate) fn seen(&self) -> Vec<IpAddr> {
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
pub(crate) fn probe(ns: &Netns, server: SocketAddr) -> Result<String, String> {
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
pub(crate) fn probe_until_ok(ns: &Netns, server: SocketAddr, what: &str) -> String {
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

pub(crate) fn wg_quick_values<'a>(conf: &'a str, key: &str) -> Vec<&'a str> {
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

pub(crate) fn bring_up_tunnel(ns: &Netns, iface: &str, setconf: &Path, wg_quick: &str) {
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
