//! Local workers with a real containerd (Debian's, with runc and the shim) and the real CNI
//! plugins: `up` runs one containerd per worker with our configuration and its CRI plugin
//! answers; each worker's CNI configuration works with the `bridge` and `host-local` plugins
//! and gives addresses of distinct subnets inside the pod CIDR; `down` leaves no containerd,
//! shim or container process, socket, mount, network namespace or bridge behind; `status` says
//! whether each worker's containerd answers. And the kubelet's and kube-proxy's command lines
//! use only flags of their inventories.
//!
//! Needs root, and the `containerd`, `runc` and `containernetworking-plugins` packages.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use frankenetes_bootstrap::local::{CNI_CONFIG, mounts_under, node_subnets};
use frankenetes_bootstrap::{Cluster, DownOptions, Health, LocalBackend, LocalPlatform, Options};
use frankenetes_spec::ClusterSpec;

const POD_CIDR: &str = "10.244.0.0/16";

fn require(tool: &str, package: &str) {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(tool).is_file());
    assert!(
        found,
        "`{tool}` is not installed: apt-get install {package}"
    );
}

fn spec(name: &str, base: u8, workers: u8) -> ClusterSpec {
    let mut yaml = format!(
        "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  \
         kubernetesVersion: v1.35.0\n  network: {{serviceCIDR: 10.96.0.0/16, podCIDR: {POD_CIDR}}}\n  \
         controlPlane:\n    - {{name: control-01, ip: 127.0.0.{base}}}\n  workers:\n"
    );
    for i in 1..=workers {
        yaml.push_str(&format!(
            "    - {{name: worker-{i:02}, ip: 127.0.0.{}}}\n",
            base + i
        ));
    }
    ClusterSpec::from_yaml(&yaml).unwrap().spec
}

/// Every process whose command line names `dir` (containerd, its shims) and their children.
fn processes_under(dir: &Path) -> Vec<(i32, String)> {
    let needle = dir.display().to_string();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if cmd.contains(&needle) && pid != i32::try_from(std::process::id()).unwrap() {
            out.push((pid, cmd));
        }
    }
    out
}

/// Where runc keeps the state of a container `ctr run` started in containerd's `default`
/// namespace (the shim's default runc root, whatever containerd's own root is).
const CTR_RUNC_ROOT: &str = "/run/containerd/runc/default";

/// Stops everything the test started, also when it fails: the units by PID, then any
/// process still naming the test's directory (shims, containers) by PID, the runc state of
/// the test's container (left behind, it would make the next run's `ctr run` fail), the
/// network namespace the test made, the bridges.
struct Guard {
    dir: PathBuf,
    netns: Vec<String>,
    bridges: Vec<String>,
    containers: Vec<String>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        LocalBackend::new(self.dir.join("run")).stop_all();
        for (pid, _) in processes_under(&self.dir) {
            // SIGKILL also ends a process the test stopped (SIGSTOP).
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        for id in &self.containers {
            let _ = Command::new("runc")
                .args(["--root", CTR_RUNC_ROOT, "delete", "--force", id])
                .stderr(Stdio::null())
                .status();
        }
        for ns in &self.netns {
            let _ = Command::new("ip").args(["netns", "delete", ns]).status();
        }
        for b in &self.bridges {
            let _ = Command::new("ip")
                .args(["link", "delete", b])
                .stderr(Stdio::null())
                .status();
        }
        for m in mounts_under(&self.dir) {
            let _ = Command::new("umount").arg("--lazy").arg(m).status();
        }
    }
}

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(out.status.success(), "{c:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cri_status(sock: &Path) -> String {
    let text = run(Command::new("ctr")
        .arg("--address")
        .arg(sock)
        .args(["plugins", "ls"]));
    text.lines()
        .find(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() >= 2 && f[0] == "io.containerd.grpc.v1" && f[1] == "cri"
        })
        .unwrap_or_else(|| panic!("no CRI plugin:\n{text}"))
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned()
}

/// A root file system with `sleep` and the libraries it links (from `ldd`).
fn sleep_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    let copy = |from: &Path| {
        let to = root.join(from.strip_prefix("/").unwrap());
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    };
    let sleep = Path::new("/bin/sleep").canonicalize().unwrap();
    copy(&sleep);
    std::fs::copy(&sleep, root.join("sleep")).unwrap();
    for l in run(Command::new("ldd").arg(&sleep)).lines() {
        if let Some(p) = l.split_whitespace().find(|w| w.starts_with('/')) {
            copy(Path::new(p));
        }
    }
    root
}

/// What containerd's CRI plugin does for a pod: the CNI `ADD` of the worker's configuration
/// (its first plugin, bridge + host-local) in a fresh network namespace named as CRI names
/// them. Returns the pod's address.
fn cni_add(conflist: &serde_json::Value, netns: &str) -> String {
    run(Command::new("ip").args(["netns", "add", netns]));
    let mut conf = conflist["plugins"][0].clone();
    conf["cniVersion"] = conflist["cniVersion"].clone();
    conf["name"] = conflist["name"].clone();
    let mut child = Command::new("/usr/lib/cni/bridge")
        .env("CNI_COMMAND", "ADD")
        .env("CNI_CONTAINERID", format!("test-{netns}"))
        .env("CNI_NETNS", format!("/var/run/netns/{netns}"))
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", "/usr/lib/cni")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        conf.to_string().as_bytes(),
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "CNI ADD: {out:?}");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    result["ips"][0]["address"].as_str().unwrap().to_owned()
}

fn in_subnet(subnet: &str, addr: &str) -> bool {
    let ip: std::net::Ipv4Addr = addr.split('/').next().unwrap().parse().unwrap();
    let (net, prefix) = subnet.split_once('/').unwrap();
    let net: std::net::Ipv4Addr = net.parse().unwrap();
    let prefix: u32 = prefix.parse().unwrap();
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    u32::from(ip) & mask == u32::from(net) & mask
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_run_their_own_containerd_and_down_leaves_nothing() {
    require("containerd", "containerd");
    require("ctr", "containerd");
    require("runc", "runc");
    assert!(
        Path::new("/usr/lib/cni/bridge").is_file(),
        "apt-get install containernetworking-plugins"
    );
    // A short path: containerd's socket must fit in a Unix socket address.
    let tmp = tempfile::Builder::new().prefix("fkw").tempdir().unwrap();
    let dir = tmp.path().to_path_buf();
    let netns = format!("cni-fktest-{}", std::process::id());
    // Its own name: another run's container (left by a killed run) cannot collide with it.
    let container = format!("fktest-{}", std::process::id());
    let mut guard = Guard {
        dir: dir.clone(),
        netns: vec![netns.clone()],
        bridges: Vec::new(),
        containers: vec![container.clone()],
    };
    let platform = LocalPlatform::new(&dir)
        .bin_dir(Some(dir.join("no-kube-binaries")))
        .cache(None)
        .worker_timeout(Duration::from_secs(60));
    let c = Cluster::new(
        spec("workers", 211, 2),
        platform,
        Options::new(&dir)
            .gate_timeout(Duration::from_secs(60))
            .on_event(|e| eprintln!("{e:?}")),
    );
    let report = c.up().await.unwrap();
    // Without the kubelet and kube-proxy: one warning, containerd runs all the same.
    let warned: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.contains("kubelet, kube-proxy not found"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", report.warnings);

    let status = c.status().await.unwrap();
    let table = status.table();
    let mut subnets = Vec::new();
    for node in ["worker-01", "worker-02"] {
        let unit = format!("containerd-{node}");
        let row = status
            .rows
            .iter()
            .find(|r| r.name == unit)
            .unwrap_or_else(|| panic!("status lists {unit}:\n{table}"));
        // status asked the worker's containerd itself.
        assert_eq!(row.health, Health::Healthy("CRI ok".into()), "{table}");
        let run_dir = dir.join("run").join(node);
        let sock = run_dir.join("containerd/containerd.sock");
        let config = run_dir.join("containerd/config.toml");
        // The process is ours, started with our configuration, root, state and socket.
        let pid = LocalBackend::new(dir.join("run"))
            .container_pid(&unit, "containerd")
            .unwrap();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        for (flag, value) in [
            ("--config", config.clone()),
            ("--address", sock.clone()),
            ("--root", run_dir.join("containerd/root")),
            ("--state", run_dir.join("containerd/state")),
        ] {
            assert!(
                args.windows(2)
                    .any(|p| p[0] == flag && Path::new(&p[1]) == value),
                "{args:?} lacks {flag} {}",
                value.display()
            );
        }
        assert_eq!(cri_status(&sock), "ok");
        // containerd read our configuration: the CNI directories of this worker, runc's root,
        // the CRI settings rendered for the node (the cluster's pause image).
        let dump = run(Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .args(["config", "dump"]));
        let conf_dir = run_dir.join("cni/net.d");
        assert!(
            dump.contains(&format!("conf_dir = \"{}\"", conf_dir.display())),
            "{dump}"
        );
        assert!(dump.contains("bin_dir = \"/usr/lib/cni\""), "{dump}");
        assert!(
            dump.contains(&format!(
                "Root = \"{}\"",
                run_dir.join("containerd/runc").display()
            )),
            "{dump}"
        );
        assert!(
            dump.contains("sandbox_image = \"registry.k8s.io/pause:"),
            "{dump}"
        );
        // The CNI configuration parses; its subnet is inside the pod CIDR.
        let conflist: serde_json::Value =
            serde_json::from_slice(&std::fs::read(conf_dir.join(CNI_CONFIG)).unwrap()).unwrap();
        let bridge = &conflist["plugins"][0];
        assert_eq!(bridge["type"], "bridge");
        assert_eq!(bridge["ipam"]["type"], "host-local");
        let subnet = bridge["ipam"]["ranges"][0][0]["subnet"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            in_subnet(POD_CIDR, subnet.split('/').next().unwrap()),
            "{subnet} not in {POD_CIDR}"
        );
        guard
            .bridges
            .push(bridge["bridge"].as_str().unwrap().to_owned());
        subnets.push((subnet, conflist, sock));
    }
    assert_ne!(subnets[0].0, subnets[1].0, "each worker has its own subnet");
    assert_ne!(
        subnets[0].1["plugins"][0]["bridge"],
        subnets[1].1["plugins"][0]["bridge"]
    );

    assert!(status.is_healthy(), "{table}");

    // A containerd that runs but does not answer is unhealthy in status (and status fails).
    let stuck = LocalBackend::new(dir.join("run"))
        .container_pid("containerd-worker-02", "containerd")
        .unwrap();
    let stuck = nix::unistd::Pid::from_raw(stuck);
    nix::sys::signal::kill(stuck, nix::sys::signal::Signal::SIGSTOP).unwrap();
    let stopped = c.status().await;
    nix::sys::signal::kill(stuck, nix::sys::signal::Signal::SIGCONT).unwrap();
    let stopped = stopped.unwrap();
    let row = stopped
        .rows
        .iter()
        .find(|r| r.name == "containerd-worker-02")
        .unwrap();
    assert!(
        matches!(&row.health, Health::Unhealthy(p) if p.contains("does not answer")),
        "{}",
        stopped.table()
    );
    assert!(!stopped.is_healthy(), "{}", stopped.table());
    assert!(
        stopped
            .problems
            .iter()
            .any(|p| p.starts_with("containerd-worker-02: ")),
        "{:?}",
        stopped.problems
    );

    // A pod's network on worker-01, as its CRI plugin would make it: the address is in the
    // worker's subnet, on the worker's bridge.
    let (subnet, conflist, sock) = &subnets[0];
    let addr = cni_add(conflist, &netns);
    assert!(in_subnet(subnet, &addr), "{addr} not in {subnet}");
    let bridge = conflist["plugins"][0]["bridge"].as_str().unwrap();
    assert!(Path::new("/sys/class/net").join(bridge).exists());
    // A container with its shim on worker-01's containerd.
    let rootfs = sleep_rootfs(&dir);
    run(Command::new("ctr")
        .arg("--address")
        .arg(sock)
        .args(["run", "-d", "--rootfs"])
        .arg(&rootfs)
        .args([container.as_str(), "/sleep", "300"]));
    // Its runc state is where the guard deletes it from.
    assert!(
        Path::new(CTR_RUNC_ROOT).join(&container).is_dir(),
        "no runc state of {container} in {CTR_RUNC_ROOT}"
    );
    assert!(
        processes_under(&dir)
            .iter()
            .any(|(_, c)| c.contains("containerd-shim")),
        "{:?}",
        processes_under(&dir)
    );

    // Another cluster's pod on this host, in the same subnet but not on our bridge: not ours.
    let foreign = format!("cni-fkforeign-{}", std::process::id());
    guard.netns.push(foreign.clone());
    run(Command::new("ip").args(["netns", "add", &foreign]));
    // Its veth's host end is on no bridge of ours (another cluster's would be on its cni0).
    let host_end = format!("fkfv{}", std::process::id() % 1_000_000);
    run(Command::new("ip").args([
        "link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", &foreign,
    ]));
    let other = subnet.replace(".0/24", ".200/24");
    run(Command::new("ip").args(["-n", &foreign, "addr", "add", &other, "dev", "eth0"]));

    let down = c.down(DownOptions::default()).await.unwrap();
    let _ = down;
    // Nothing is left: no containerd, shim or container process…
    let left = processes_under(&dir);
    assert!(left.is_empty(), "left running: {left:?}");
    let sleeping: Vec<_> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read(e.path().join("cmdline")).is_ok_and(|c| c.starts_with(b"/sleep\x00300"))
        })
        .collect();
    assert!(sleeping.is_empty(), "the container's process is left");
    assert!(
        !Path::new(CTR_RUNC_ROOT).join(&container).exists(),
        "runc's state of {container} is left"
    );
    // … no socket, no mount under the cluster directory …
    for node in ["worker-01", "worker-02"] {
        let sock = dir
            .join("run")
            .join(node)
            .join("containerd/containerd.sock");
        assert!(!sock.exists(), "{} is left", sock.display());
        assert!(
            !Path::new(&format!("{}.ttrpc", sock.display())).exists(),
            "the ttrpc socket is left"
        );
    }
    assert_eq!(mounts_under(&dir), Vec::<PathBuf>::new());
    // … no pod network namespace, veth or bridge.
    assert!(
        !Path::new("/var/run/netns").join(&netns).exists(),
        "the pod's network namespace is left"
    );
    assert!(
        Path::new("/var/run/netns").join(&foreign).exists(),
        "down deleted a network namespace that is not on the worker's bridge"
    );
    for b in &guard.bridges {
        assert!(
            !Path::new("/sys/class/net").join(b).exists(),
            "bridge {b} is left"
        );
    }
    guard.netns.retain(|n| *n == foreign);
}

#[test]
fn node_subnets_fit_the_pod_cidr() {
    let s = node_subnets(POD_CIDR, 2).unwrap();
    assert_eq!(s, ["10.244.0.0/24", "10.244.1.0/24"]);
    assert!(node_subnets("10.244.0.0/30", 2).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn kubelet_and_kube_proxy_use_only_inventory_flags() {
    // Workers are rendered when containerd can run them (installed, and root).
    require("containerd", "containerd");
    require("ctr", "containerd");
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    // Stand-ins that say they are v1.35.0, so that the command lines are rendered; nothing
    // is started (plan only).
    for b in ["kubelet", "kube-proxy"] {
        let p = bin.join(b);
        std::fs::write(&p, "#!/bin/sh\necho \"Kubernetes v1.35.0\"\n").unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    }
    let platform = LocalPlatform::new(dir.path())
        .bin_dir(Some(bin.clone()))
        .cache(None);
    let c = Cluster::new(spec("flags", 221, 2), platform, Options::new(dir.path()));
    let (prepared, _) = c.plan().unwrap();
    // The workers run kube-proxy as a host process: the day-one objects leave kubeadm's
    // DaemonSet out (a second kube-proxy per worker, on the same host ports), and keep its
    // ConfigMap.
    let (_, proxy_objects) = prepared
        .rendered
        .cluster_files
        .iter()
        .find(|(p, _)| p.ends_with("kube-proxy.yaml"))
        .expect("the day-one kube-proxy.yaml is rendered");
    let text = String::from_utf8_lossy(&proxy_objects.contents);
    assert!(!text.contains("kind: DaemonSet"), "{text}");
    assert!(text.contains("kind: ConfigMap"), "{text}");
    let waves = frankenetes_compute::Platform::waves(c.platform(), &prepared.workload).unwrap();
    let commands: Vec<(String, Vec<String>)> = waves
        .iter()
        .flat_map(|w| &w.units)
        .filter_map(|u| match &u.kind {
            frankenetes_compute::UnitKind::ContainerGroup(g) => {
                let c = g.containers.first()?;
                Some((c.name.clone(), c.command.clone()))
            }
            _ => None,
        })
        .filter(|(n, _)| n == "kubelet" || n == "kube-proxy")
        .collect();
    let kubelets = commands.iter().filter(|(n, _)| n == "kubelet").count();
    let proxies = commands.iter().filter(|(n, _)| n == "kube-proxy").count();
    // A kubelet per worker, one kube-proxy for the machine.
    assert_eq!((kubelets, proxies), (2, 1), "{commands:?}");
    // The manifests' inventories, as the control plane's flags are checked against.
    let inventory = |b| frankenetes_manifests::Inventory::kubernetes(b, 35).unwrap();
    let kubelet_inv = inventory(frankenetes_manifests::Binary::Kubelet);
    let proxy_inv = inventory(frankenetes_manifests::Binary::KubeProxy);
    for (name, command) in &commands {
        assert!(command[0].ends_with(name.as_str()), "{command:?}");
        for arg in &command[1..] {
            let flag = arg
                .strip_prefix("--")
                .and_then(|a| a.split('=').next())
                .unwrap_or_else(|| panic!("{name}: {arg:?} is not --flag=value"));
            let known = match name.as_str() {
                "kubelet" => kubelet_inv.has(flag),
                _ => proxy_inv.has(flag),
            };
            assert!(known, "{name}: --{flag} is not in its inventory");
        }
    }
}
