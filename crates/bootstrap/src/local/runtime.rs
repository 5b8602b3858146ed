//! A local worker's runtime from the outside: whether its containerd's CRI plugin answers,
//! and the clean-up `down` does (containers drained through containerd while it runs; then
//! every shim and its processes killed by PID, the pods' network namespaces, veths and the
//! worker's bridge removed through the CNI plugins, mounts under the worker's directory
//! unmounted, sockets removed).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::worker::Worker;

/// Where `ip netns` (and containerd's CRI plugin) keep network namespaces.
const NETNS_DIR: &str = "/var/run/netns";

/// `ctr` against a worker's containerd, bounded in time.
fn ctr(w: &Worker) -> Command {
    let mut c = Command::new("ctr");
    c.arg("--address")
        .arg(w.socket())
        .args(["--timeout", "10s"])
        .stdin(Stdio::null());
    c
}

fn lines(out: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// What keeps the worker's containerd from serving the kubelet, or `None`: its CRI plugin
/// (`io.containerd.grpc.v1 cri`) is listed `ok` by `ctr plugins ls`.
pub(crate) fn cri_problem(w: &Worker) -> Option<String> {
    if !w.socket().exists() {
        return Some(format!(
            "containerd of {} has no socket at {} (yet)",
            w.node,
            w.socket().display()
        ));
    }
    let out = match ctr(w).args(["plugins", "ls"]).output() {
        Ok(o) => o,
        Err(e) => return Some(format!("cannot run ctr: {e}")),
    };
    if !out.status.success() {
        return Some(format!(
            "containerd of {} does not answer on {}: {}",
            w.node,
            w.socket().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let cri = lines(&out).into_iter().find(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() >= 2 && f[0] == "io.containerd.grpc.v1" && f[1] == "cri"
    });
    match cri {
        Some(l) if l.split_whitespace().last() == Some("ok") => None,
        Some(l) => Some(format!("containerd of {}: CRI plugin not ok: {l}", w.node)),
        None => Some(format!("containerd of {}: no CRI plugin listed", w.node)),
    }
}

/// Kills and deletes every task and container of every namespace of the worker's running
/// containerd, so that each shim exits on its own and unmounts its container's root.
pub(crate) fn drain(w: &Worker) {
    if !w.socket().exists() {
        return;
    }
    let Ok(out) = ctr(w).args(["namespaces", "ls", "-q"]).output() else {
        return;
    };
    for ns in lines(&out) {
        let in_ns = |args: &[&str]| {
            let mut c = ctr(w);
            c.args(["--namespace", ns.as_str()]).args(args);
            c.stdout(Stdio::piped()).stderr(Stdio::null()).output()
        };
        if let Ok(tasks) = in_ns(&["tasks", "ls", "-q"]) {
            for id in lines(&tasks) {
                let _ = in_ns(&["tasks", "kill", "--all", "--signal", "SIGKILL", id.as_str()]);
                let deadline = Instant::now() + Duration::from_secs(5);
                while in_ns(&["tasks", "delete", id.as_str()])
                    .map(|o| !o.status.success())
                    .unwrap_or(false)
                    && Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(100));
                }
                let _ = in_ns(&["tasks", "delete", "--force", id.as_str()]);
            }
        }
        if let Ok(containers) = in_ns(&["containers", "ls", "-q"]) {
            for id in lines(&containers) {
                let _ = in_ns(&["containers", "delete", id.as_str()]);
            }
        }
    }
}

/// Every process: PID, parent, command line.
fn processes() -> Vec<(i32, i32, Vec<String>)> {
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
            let ppid = stat
                .rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()?;
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let args = cmdline
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            Some((pid, ppid, args))
        })
        .collect()
}

/// The processes started for the worker's containerd and not stopped with it: its shims
/// (`containerd-shim-runc-v2 … -address <socket>`), a containerd left without its unit, and
/// everything they started.
pub(crate) fn leftover_processes(w: &Worker) -> Vec<i32> {
    let socket = w.socket().display().to_string();
    let procs = processes();
    let mut ours: BTreeSet<i32> = procs
        .iter()
        .filter(|(_, _, args)| {
            args.windows(2)
                .any(|p| (p[0] == "-address" || p[0] == "--address") && p[1] == socket)
        })
        .map(|(pid, _, _)| *pid)
        .collect();
    loop {
        let more: Vec<i32> = procs
            .iter()
            .filter(|(pid, ppid, _)| ours.contains(ppid) && !ours.contains(pid))
            .map(|(pid, _, _)| *pid)
            .collect();
        if more.is_empty() {
            break;
        }
        ours.extend(more);
    }
    ours.remove(&(std::process::id() as i32));
    ours.into_iter().collect()
}

/// The Unix socket paths a process listens on (from its descriptors and `/proc/net/unix`).
fn unix_sockets_of(pid: i32) -> Vec<PathBuf> {
    let inodes: BTreeSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')
                .map(str::to_owned)
        })
        .collect();
    let table = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let (inode, path) = (f.get(6)?, f.get(7)?);
            (inodes.contains(*inode) && path.starts_with('/')).then(|| PathBuf::from(path))
        })
        .collect()
}

/// Kills the worker's leftover processes by PID (children first) and removes the sockets
/// the shims listened on; returns what it killed.
pub(crate) fn kill_leftovers(w: &Worker) -> Vec<i32> {
    let pids = leftover_processes(w);
    let mut sockets = Vec::new();
    for pid in pids.iter().rev() {
        // Only containerd's own (a shim's under /run/containerd/s, or the worker's): a
        // container's socket paths are inside its own root.
        sockets.extend(
            unix_sockets_of(*pid)
                .into_iter()
                .filter(|s| s.starts_with("/run/containerd/s") || s.starts_with(&w.dir)),
        );
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|p| super::process_alive(*p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for s in sockets {
        let _ = std::fs::remove_file(s);
    }
    pids
}

/// Whether `ip` is inside `subnet` (`ADDRESS/PREFIX`).
pub(crate) fn in_subnet(subnet: &str, ip: IpAddr) -> bool {
    let Some((net, prefix)) = subnet.split_once('/') else {
        return false;
    };
    let (Ok(net), Ok(prefix)) = (net.parse::<IpAddr>(), prefix.parse::<u32>()) else {
        return false;
    };
    let bits = |a: IpAddr| match a {
        IpAddr::V4(v) => (u128::from(u32::from(v)) << 96, true),
        IpAddr::V6(v) => (u128::from(v), false),
    };
    let ((n, v4), (a, w4)) = (bits(net), bits(ip));
    if v4 != w4 {
        return false;
    }
    // IPv4 addresses are in the top 32 bits: the prefix counts from the top either way.
    let mask = if prefix == 0 {
        0
    } else {
        u128::MAX << (128 - prefix.min(128))
    };
    n & mask == a & mask
}

/// The addresses inside a network namespace.
fn netns_addresses(name: &str) -> Vec<IpAddr> {
    let Ok(out) = Command::new("ip")
        .args(["-n", name, "-o", "addr", "show"])
        .output()
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let i = f.iter().position(|x| *x == "inet" || *x == "inet6")?;
            f.get(i + 1)?.split('/').next()?.parse().ok()
        })
        .collect()
}

/// The host-side interface indexes of the ports of `bridge`.
fn bridge_ports(bridge: &str) -> BTreeSet<u32> {
    std::fs::read_dir(Path::new("/sys/class/net").join(bridge).join("brif"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|p| {
            std::fs::read_to_string(
                Path::new("/sys/class/net")
                    .join(p.file_name())
                    .join("ifindex"),
            )
            .ok()?
            .trim()
            .parse()
            .ok()
        })
        .collect()
}

/// Whether an interface of the namespace is a veth whose host end is in `ports` (`eth0@if12`
/// in `ip -o link`: the peer's index).
fn attached_to(ns: &str, ports: &BTreeSet<u32>) -> bool {
    let Ok(out) = Command::new("ip")
        .args(["-n", ns, "-o", "link", "show"])
        .output()
    else {
        return false;
    };
    // `link-netnsid`: the peer is in another namespace (the host's), so its index is one of
    // the host's.
    String::from_utf8_lossy(&out.stdout).lines().any(|l| {
        l.contains(" link-netnsid ")
            && l.split_whitespace()
                .nth(1)
                .and_then(|name| name.trim_end_matches(':').split_once("@if"))
                .and_then(|(_, peer)| peer.parse::<u32>().ok())
                .is_some_and(|peer| ports.contains(&peer))
    })
}

/// The pods' network namespaces of this worker: `cni-*` (as containerd's CRI plugin names
/// them), holding an address of the worker's subnet, and attached to the worker's own bridge.
/// Both: another cluster on this host may use the same pod CIDR through its own containerd,
/// and its namespaces are not ours to delete. Call it before the bridge's ports are removed.
pub(crate) fn pod_netns(w: &Worker) -> Vec<String> {
    let ports = bridge_ports(&w.bridge);
    if ports.is_empty() {
        return Vec::new();
    }
    let Ok(rd) = std::fs::read_dir(NETNS_DIR) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|n| n.starts_with("cni-"))
        .filter(|n| {
            netns_addresses(n)
                .into_iter()
                .any(|a| in_subnet(&w.subnet, a))
                && attached_to(n, &ports)
        })
        .collect()
}

/// The addresses host-local handed out for the worker's network: (address, container ID,
/// interface).
fn allocations(w: &Worker) -> Vec<(IpAddr, String, String)> {
    let dir = w.cni_ipam_dir().join(w.network());
    std::fs::read_dir(&dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| {
            let ip: IpAddr = e.file_name().to_str()?.parse().ok()?;
            let text = std::fs::read_to_string(e.path()).ok()?;
            let mut l = text.lines().map(str::trim);
            let id = l.next()?.to_owned();
            let ifname = l.next().unwrap_or("eth0").to_owned();
            Some((ip, id, ifname))
        })
        .collect()
}

/// Runs the bridge plugin's `DEL` for one attachment (it removes the veth, the masquerade
/// rules and the address).
fn cni_del(w: &Worker, id: &str, ifname: &str, netns: Option<&str>) {
    let mut conf = w.bridge_plugin();
    conf["cniVersion"] = "1.0.0".into();
    conf["name"] = w.network().into();
    let Ok(mut child) = Command::new(w.cni_bin_dir.join("bridge"))
        .env("CNI_COMMAND", "DEL")
        .env("CNI_CONTAINERID", id)
        .env(
            "CNI_NETNS",
            netns
                .map(|n| format!("{NETNS_DIR}/{n}"))
                .unwrap_or_default(),
        )
        .env("CNI_IFNAME", ifname)
        .env("CNI_PATH", &w.cni_bin_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    else {
        return;
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = std::io::Write::write_all(&mut stdin, conf.to_string().as_bytes());
    }
    let _ = child.wait();
}

/// Removes the worker's pods' networking: each attachment through the bridge plugin, their
/// network namespaces, then the veths left on the worker's bridge and the bridge itself.
pub(crate) fn remove_networking(w: &Worker) {
    let namespaces = pod_netns(w);
    for (ip, id, ifname) in allocations(w) {
        let ns = namespaces
            .iter()
            .find(|n| netns_addresses(n).contains(&ip))
            .map(String::as_str);
        cni_del(w, &id, &ifname, ns);
    }
    for ns in pod_netns(w).into_iter().chain(namespaces) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &ns])
            .stderr(Stdio::null())
            .status();
    }
    let brif = Path::new("/sys/class/net").join(&w.bridge).join("brif");
    for port in std::fs::read_dir(&brif)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        let _ = Command::new("ip")
            .args(["link", "delete"])
            .arg(port.file_name())
            .stderr(Stdio::null())
            .status();
    }
    if Path::new("/sys/class/net").join(&w.bridge).exists() {
        let _ = Command::new("ip")
            .args(["link", "delete", &w.bridge])
            .stderr(Stdio::null())
            .status();
    }
}

/// Mount points under `dir` (from `/proc/self/mountinfo`), deepest first.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .map(|m| PathBuf::from(m.replace("\\040", " ")))
        .filter(|m| m.starts_with(dir))
        .collect();
    out.sort_by_key(|m| std::cmp::Reverse(m.as_os_str().len()));
    out.dedup();
    out
}

/// Everything `down` removes after the worker's units are stopped: leftover shims and their
/// processes, pod networking, mounts under the worker's directory, containerd's sockets and
/// state. containerd's root (images) is kept for the next `up`.
pub(crate) fn sweep(w: &Worker) -> Vec<String> {
    let mut done = Vec::new();
    for pid in kill_leftovers(w) {
        done.push(format!("killed leftover process {pid} of {}", w.node));
    }
    remove_networking(w);
    for m in mounts_under(&w.dir) {
        let ok = Command::new("umount")
            .arg("--lazy")
            .arg(&m)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            done.push(format!("unmounted {}", m.display()));
        }
    }
    let sock = w.socket();
    let ttrpc = PathBuf::from(format!("{}.ttrpc", sock.display()));
    for p in [sock, ttrpc] {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_dir_all(w.containerd_state());
    let _ = std::fs::remove_dir_all(w.runc_root());
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_membership() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(in_subnet("10.244.1.0/24", ip("10.244.1.7")));
        assert!(!in_subnet("10.244.1.0/24", ip("10.244.2.7")));
        assert!(in_subnet("10.244.0.0/16", ip("10.244.200.1")));
        assert!(!in_subnet("10.244.0.0/24", ip("fd00::1")));
        assert!(in_subnet("fd00:10::/64", ip("fd00:10::5")));
        assert!(!in_subnet("fd00:10::/64", ip("fd00:10:0:1::5")));
    }
}
