//! A local worker: what one worker node of the spec runs on this machine, and where.
//!
//! Every worker gets its own containerd (Debian's `containerd`, with `runc` and
//! `containerd-shim-runc-v2`), its root, state, socket and configuration under
//! `<dir>/run/<node>/containerd/`, and a CNI configuration (a `bridge` of its own with
//! `host-local` addresses from the worker's share of the pod CIDR) in `<dir>/run/<node>/cni/`,
//! where that containerd's CRI plugin reads it. When the `kubelet` (and `kube-proxy`) of
//! `spec.kubernetesVersion` are found, they run too, with the node's rendered config and
//! kubeconfigs adapted for this layout. Control-plane nodes run their components as plain
//! processes and get no containerd.
//!
//! Several workers share one machine: each containerd has its own socket, root, state and
//! runc root; each kubelet listens on its node's own loopback address (the same ports on
//! different addresses), keeps its state in its own `--root-dir` and its pods in its own
//! cgroup root; each bridge has its own name and subnet. The host's iptables are shared, so
//! one kube-proxy (the first worker's) serves them all.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use frankenetes_compute::{NodeRole, NodeWork, Workload};
use frankenetes_manifests::{Binary, Flags, Inventory};
use serde::{Deserialize, Serialize};

/// Where a worker's marker is kept: what `down` needs to clean up after it.
const MARKER: &str = "worker.json";

/// The pod CIDR used when the spec has none (kubeadm's and flannel's habit).
pub const DEFAULT_POD_CIDR: &str = "10.244.0.0/16";

/// The CNI configuration file's name in the worker's `conf_dir`.
pub const CNI_CONFIG: &str = "10-frankenetes.conflist";

/// A socket path longer than this cannot be bound (`sun_path` is 108 bytes, and containerd
/// adds `.ttrpc`).
const MAX_SOCKET: usize = 100;

/// One worker as the local platform runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Worker {
    /// The node's name.
    pub node: String,
    /// The cluster it belongs to.
    pub cluster: String,
    /// Its address (the kubelet's and kube-proxy's listening address).
    pub ip: IpAddr,
    /// `<dir>/run/<node>`.
    pub dir: PathBuf,
    /// Its share of the pod CIDR (`10.244.1.0/24`).
    pub subnet: String,
    /// The whole pod CIDR.
    pub pod_cidr: String,
    /// Its bridge's name (`fk` and 8 hex digits, unique per cluster directory and node).
    pub bridge: String,
    /// Where the CNI plugins are (`/usr/lib/cni` on Debian).
    pub cni_bin_dir: PathBuf,
}

/// FNV-1a, 32 bits: a short stable name from a path.
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5, |h: u32, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl Worker {
    /// containerd's directory.
    pub fn containerd_dir(&self) -> PathBuf {
        self.dir.join("containerd")
    }
    /// containerd's configuration.
    pub fn containerd_config(&self) -> PathBuf {
        self.containerd_dir().join("config.toml")
    }
    /// containerd's `--root`.
    pub fn containerd_root(&self) -> PathBuf {
        self.containerd_dir().join("root")
    }
    /// containerd's `--state`.
    pub fn containerd_state(&self) -> PathBuf {
        self.containerd_dir().join("state")
    }
    /// containerd's socket (`--address`).
    pub fn socket(&self) -> PathBuf {
        self.containerd_dir().join("containerd.sock")
    }
    /// runc's root for the CRI's containers.
    pub fn runc_root(&self) -> PathBuf {
        self.containerd_dir().join("runc")
    }
    /// The CRI plugin's `conf_dir`.
    pub fn cni_conf_dir(&self) -> PathBuf {
        self.dir.join("cni/net.d")
    }
    /// host-local's `dataDir`.
    pub fn cni_ipam_dir(&self) -> PathBuf {
        self.dir.join("cni/ipam")
    }
    /// The CNI network's name.
    pub fn network(&self) -> String {
        format!("frankenetes-{}", self.node)
    }
    /// The kubelet's `--root-dir`.
    pub fn kubelet_root(&self) -> PathBuf {
        self.dir.join("kubelet")
    }
    /// The kubelet's configuration, adapted from the node's.
    pub fn kubelet_config(&self) -> PathBuf {
        self.dir.join("kubelet-config.json")
    }
    /// kube-proxy's configuration.
    pub fn kube_proxy_config(&self) -> PathBuf {
        self.dir.join("kube-proxy-config.json")
    }

    /// The CNI configuration list: a bridge of its own, host-local addresses from the
    /// worker's subnet, the portmap plugin for `hostPort`.
    pub fn cni_conflist(&self) -> serde_json::Value {
        serde_json::json!({
            "cniVersion": "1.0.0",
            "name": self.network(),
            "plugins": [
                self.bridge_plugin(),
                {"type": "portmap", "capabilities": {"portMappings": true}},
            ],
        })
    }

    /// The bridge plugin's configuration (alone, as `down` hands it to the plugin).
    pub(crate) fn bridge_plugin(&self) -> serde_json::Value {
        serde_json::json!({
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": self.subnet}]],
                "routes": [{"dst": if self.subnet.contains(':') { "::/0" } else { "0.0.0.0/0" }}],
                "dataDir": self.cni_ipam_dir(),
            },
        })
    }

    /// containerd's configuration: the node's rendered one (its CRI settings) with runc's
    /// root, the cgroup driver (cgroupfs: no systemd is assumed on this machine) and the CNI
    /// directories of this layout. Root, state and socket are containerd's flags.
    pub fn render_containerd_config(&self, rendered: &str) -> Result<String, String> {
        let anchor = "SystemdCgroup = true";
        if !rendered.contains(anchor) {
            return Err(format!(
                "the rendered containerd configuration has no `{anchor}` line to adapt"
            ));
        }
        let runc = format!(
            "SystemdCgroup = false\n  Root = {}",
            toml_string(&self.runc_root().display().to_string())
        );
        let mut text = rendered.replacen(anchor, &runc, 1);
        text.push_str(&format!(
            "\n# The local platform's layout: this worker's CNI configuration.\n\
             [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = {}\n  conf_dir = {}\n  max_conf_num = 1\n",
            toml_string(&self.cni_bin_dir.display().to_string()),
            toml_string(&self.cni_conf_dir().display().to_string()),
        ));
        Ok(text)
    }

    /// containerd's command line (the binary's path first).
    pub fn containerd_command(&self, containerd: &Path) -> Vec<String> {
        [
            containerd.to_path_buf(),
            "--config".into(),
            self.containerd_config(),
            "--root".into(),
            self.containerd_root(),
            "--state".into(),
            self.containerd_state(),
            "--address".into(),
            self.socket(),
        ]
        .iter()
        .map(|p| p.display().to_string())
        .collect()
    }

    /// Refuses a socket path the kernel cannot bind.
    pub(crate) fn check_socket(&self) -> Result<(), String> {
        let len = self.socket().as_os_str().len();
        if len > MAX_SOCKET {
            return Err(format!(
                "worker {}: containerd's socket {} is {len} bytes long, more than a Unix socket \
                 allows ({MAX_SOCKET}); use a shorter cluster directory",
                self.node,
                self.socket().display()
            ));
        }
        Ok(())
    }

    /// The kubelet's configuration: the node's rendered one with this layout's paths
    /// (certificates in the node's bundle), the worker's containerd, its own address, ports,
    /// cgroup root and pod logs, the host's resolver, and nothing asked of the host's kernel
    /// tunables or swap (they are the machine's, not the node's).
    pub fn kubelet_config_json(
        &self,
        rendered_yaml: &str,
        node_root: &Path,
    ) -> Result<serde_json::Value, String> {
        let mut v: serde_json::Value = serde_norway::from_str(rendered_yaml)
            .map_err(|e| format!("the node's kubelet configuration: {e}"))?;
        let obj = v
            .as_object_mut()
            .ok_or("the node's kubelet configuration is not a mapping")?;
        let in_bundle = |p: &serde_json::Value| -> serde_json::Value {
            match p.as_str() {
                Some(s) if s.starts_with('/') => node_root
                    .join(s.trim_start_matches('/'))
                    .display()
                    .to_string()
                    .into(),
                _ => p.clone(),
            }
        };
        for key in ["tlsCertFile", "tlsPrivateKeyFile"] {
            if let Some(p) = obj.get(key).map(in_bundle) {
                obj.insert(key.into(), p);
            }
        }
        if let Some(ca) = obj
            .get_mut("authentication")
            .and_then(|a| a.get_mut("x509"))
            .and_then(|x| x.get_mut("clientCAFile"))
        {
            *ca = in_bundle(ca);
        }
        let ip = self.ip.to_string();
        let set =
            |o: &mut serde_json::Map<String, serde_json::Value>, k: &str, v: serde_json::Value| {
                o.insert(k.to_owned(), v);
            };
        set(
            obj,
            "containerRuntimeEndpoint",
            format!("unix://{}", self.socket().display()).into(),
        );
        set(obj, "cgroupDriver", "cgroupfs".into());
        set(
            obj,
            "cgroupRoot",
            format!("/frankenetes/{}/{}", self.cluster, self.node).into(),
        );
        set(obj, "address", ip.clone().into());
        set(obj, "healthzBindAddress", ip.into());
        set(
            obj,
            "staticPodPath",
            self.dir.join("manifests").display().to_string().into(),
        );
        set(
            obj,
            "podLogsDir",
            self.dir.join("pod-logs").display().to_string().into(),
        );
        set(obj, "resolvConf", host_resolv_conf().into());
        set(obj, "protectKernelDefaults", false.into());
        set(obj, "failSwapOn", false.into());
        Ok(v)
    }

    /// The kubelet's command line (the binary's path first), every flag and value checked
    /// against the kubelet's inventory for the Kubernetes `minor` (as the control plane's are).
    pub fn kubelet_command(
        &self,
        kubelet: &Path,
        node_root: &Path,
        minor: u32,
    ) -> Result<Vec<String>, String> {
        let mut f = Flags::default();
        f.set("config", self.kubelet_config().display().to_string());
        f.set(
            "kubeconfig",
            node_root
                .join("etc/kubernetes/kubelet.conf")
                .display()
                .to_string(),
        );
        f.set("node-ip", self.ip.to_string());
        // Every node shares this machine's hostname: each says its own.
        f.set("hostname-override", self.node.clone());
        f.set("root-dir", self.kubelet_root().display().to_string());
        checked_command(kubelet, &f, Binary::Kubelet, minor)
    }

    /// kube-proxy's configuration (everything is in it; its command line is `--config`).
    pub fn kube_proxy_config_json(&self, node_root: &Path) -> serde_json::Value {
        let ip = self.ip;
        serde_json::json!({
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "clientConnection": {
                "kubeconfig": node_root.join("var/lib/kube-proxy/kubeconfig.conf"),
            },
            "clusterCIDR": self.pod_cidr,
            "hostnameOverride": self.node,
            "bindAddress": ip.to_string(),
            "healthzBindAddress": frankenetes_spec::host_port(ip, 10256),
            "metricsBindAddress": frankenetes_spec::host_port(ip, 10249),
            "mode": "iptables",
            // The host's conntrack table is the machine's: left as it is.
            "conntrack": {"maxPerCore": 0, "min": 0},
        })
    }

    /// kube-proxy's command line (the binary's path first; everything else is in its
    /// configuration file), checked against kube-proxy's inventory for `minor`.
    pub fn kube_proxy_command(&self, kube_proxy: &Path, minor: u32) -> Result<Vec<String>, String> {
        let mut f = Flags::default();
        f.set("config", self.kube_proxy_config().display().to_string());
        checked_command(kube_proxy, &f, Binary::KubeProxy, minor)
    }

    /// Writes the marker `down` reads.
    pub(crate) fn write_marker(&self) -> Result<(), String> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        frankenetes_bundle::fs::write_atomic(&self.dir.join(MARKER), &bytes, 0o600)
            .map_err(|e| e.to_string())
    }

    /// The workers of `cluster` whose markers are under `run_dir`.
    pub(crate) fn recorded(run_dir: &Path, cluster: &str) -> Vec<Worker> {
        let Ok(rd) = std::fs::read_dir(run_dir) else {
            return Vec::new();
        };
        rd.filter_map(Result::ok)
            .filter_map(|e| std::fs::read(e.path().join(MARKER)).ok())
            .filter_map(|b| serde_json::from_slice::<Worker>(&b).ok())
            .filter(|w| w.cluster == cluster)
            .collect()
    }
}

/// The resolver file pods inherit: systemd-resolved's upstream list where it runs (its
/// `/etc/resolv.conf` names a stub pods cannot reach), else `/etc/resolv.conf`.
fn host_resolv_conf() -> String {
    let resolved = "/run/systemd/resolve/resolv.conf";
    if Path::new(resolved).is_file() {
        resolved.into()
    } else {
        "/etc/resolv.conf".into()
    }
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// `binary` and `flags` as a command line, once every flag is in the inventory of `b` for the
/// Kubernetes `minor` and every value is one token ([`Flags::check`], as for the control
/// plane's components).
fn checked_command(
    binary: &Path,
    flags: &Flags,
    b: Binary,
    minor: u32,
) -> Result<Vec<String>, String> {
    let inventory = Inventory::kubernetes(b, minor).map_err(|e| e.to_string())?;
    flags
        .check(
            &inventory,
            &format!("{} flags", b.name()),
            &Default::default(),
        )
        .map_err(|e| format!("{}: {e}", b.name()))?;
    let mut c = vec![binary.display().to_string()];
    c.extend(flags.args());
    Ok(c)
}

/// Where the CNI plugins are: the first of Debian's and upstream's directories holding
/// `bridge`.
pub(crate) fn cni_bin_dir() -> Option<PathBuf> {
    ["/usr/lib/cni", "/opt/cni/bin"]
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join("bridge").is_file() && d.join("host-local").is_file())
}

/// The pod CIDR the control plane allocates from (the controller-manager's
/// `--cluster-cidr`), if the spec sets one.
pub(crate) fn pod_cidr(w: &Workload) -> Option<String> {
    w.nodes_of(NodeRole::ControlPlane)
        .filter_map(|n| n.component("kube-controller-manager"))
        .find_map(|c| {
            c.command
                .iter()
                .find_map(|a| a.strip_prefix("--cluster-cidr="))
        })
        .map(|s| s.split(',').next().unwrap_or(s).to_owned())
}

/// `count` distinct node subnets inside `cidr`: /24s (IPv4) or /64s (IPv6), as the
/// controller-manager's default node mask, or smaller ones when the CIDR is smaller.
pub fn node_subnets(cidr: &str, count: usize) -> Result<Vec<String>, String> {
    let (addr, prefix) = cidr
        .split_once('/')
        .ok_or_else(|| format!("pod CIDR {cidr:?} is not ADDRESS/PREFIX"))?;
    let addr: IpAddr = addr
        .parse()
        .map_err(|e| format!("pod CIDR {cidr:?}: {e}"))?;
    let prefix: u32 = prefix
        .parse()
        .map_err(|e| format!("pod CIDR {cidr:?}: {e}"))?;
    let (bits, node_mask, smallest, base) = match addr {
        IpAddr::V4(a) => (32u32, 24u32, 30u32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (128, 64, 120, u128::from(a)),
    };
    if prefix > bits {
        return Err(format!("pod CIDR {cidr:?}: prefix longer than {bits}"));
    }
    let need = usize::BITS - count.saturating_sub(1).leading_zeros();
    let node_prefix = node_mask.max(prefix + need);
    if node_prefix > smallest {
        return Err(format!(
            "spec.network.podCIDR {cidr} is too small for {count} workers: give it a shorter prefix"
        ));
    }
    let host_bits = bits - node_prefix;
    let net = base & mask(bits, prefix);
    (0..count)
        .map(|i| {
            let n = net | ((i as u128) << host_bits);
            let a = match addr {
                IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::from(
                    u32::try_from(n).map_err(|_| "address out of range".to_owned())?,
                )),
                IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::from(n)),
            };
            Ok(format!("{a}/{node_prefix}"))
        })
        .collect()
}

/// The network mask of a `prefix` in a `bits`-bit address, as a u128.
fn mask(bits: u32, prefix: u32) -> u128 {
    let all = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    if prefix == 0 {
        0
    } else {
        all & !all.checked_shr(prefix).unwrap_or(0)
    }
}

/// The local workers of a workload, under `run_dir`, with their subnets.
pub(crate) fn workers(w: &Workload, run_dir: &Path) -> Result<Vec<Worker>, String> {
    let nodes: Vec<&NodeWork> = w.nodes_of(NodeRole::Worker).collect();
    let pod_cidr = pod_cidr(w).unwrap_or_else(|| DEFAULT_POD_CIDR.to_owned());
    let subnets = node_subnets(&pod_cidr, nodes.len())?;
    let cni = cni_bin_dir().unwrap_or_else(|| PathBuf::from("/usr/lib/cni"));
    Ok(nodes
        .into_iter()
        .zip(subnets)
        .map(|(n, subnet)| {
            let dir = run_dir.join(&n.name);
            Worker {
                node: n.name.clone(),
                cluster: w.tag.cluster.clone(),
                ip: n.ip,
                bridge: format!("fk{:08x}", fnv(&dir.display().to_string())),
                dir,
                subnet,
                pod_cidr: pod_cidr.clone(),
                cni_bin_dir: cni.clone(),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker() -> Worker {
        Worker {
            node: "worker-01".into(),
            cluster: "c".into(),
            ip: "127.0.0.21".parse().unwrap(),
            dir: PathBuf::from("/x/run/worker-01"),
            subnet: "10.244.0.0/24".into(),
            pod_cidr: DEFAULT_POD_CIDR.into(),
            bridge: "fk00000000".into(),
            cni_bin_dir: PathBuf::from("/usr/lib/cni"),
        }
    }

    #[test]
    fn the_kubelet_config_is_the_nodes_adapted_to_the_layout() {
        let spec = frankenetes_spec::ClusterSpec::example();
        let rendered = serde_norway::to_string(
            &frankenetes_manifests::kubelet::KubeletConfiguration::for_spec(&spec),
        )
        .unwrap();
        let w = worker();
        let v = w
            .kubelet_config_json(&rendered, Path::new("/x/bundle/nodes/worker-01"))
            .unwrap();
        assert_eq!(
            v["containerRuntimeEndpoint"],
            "unix:///x/run/worker-01/containerd/containerd.sock"
        );
        assert_eq!(v["address"], "127.0.0.21");
        assert_eq!(v["healthzBindAddress"], "127.0.0.21");
        assert_eq!(v["cgroupDriver"], "cgroupfs");
        assert_eq!(
            v["authentication"]["x509"]["clientCAFile"],
            "/x/bundle/nodes/worker-01/etc/kubernetes/pki/ca.crt"
        );
        assert_eq!(
            v["tlsCertFile"],
            "/x/bundle/nodes/worker-01/var/lib/kubelet/pki/kubelet.crt"
        );
        // The rest is the node's.
        assert_eq!(v["readOnlyPort"], 0);
        assert_eq!(v["authorization"]["mode"], "Webhook");
        assert!(w.kubelet_config_json("- a list", Path::new("/")).is_err());
    }

    #[test]
    fn command_lines_take_only_flags_of_their_inventories() {
        let w = worker();
        let root = Path::new("/x/bundle/nodes/worker-01");
        for minor in [35, 36, 37] {
            let k = w
                .kubelet_command(Path::new("/bin/kubelet"), root, minor)
                .unwrap();
            assert_eq!(k[0], "/bin/kubelet");
            assert!(
                k.contains(&"--hostname-override=worker-01".to_owned()),
                "{k:?}"
            );
            let p = w
                .kube_proxy_command(Path::new("/bin/kube-proxy"), minor)
                .unwrap();
            assert_eq!(
                p,
                [
                    "/bin/kube-proxy",
                    "--config=/x/run/worker-01/kube-proxy-config.json"
                ]
            );
        }
        // A flag the inventory does not have is refused, naming it and the inventory.
        let mut f = Flags::default();
        f.set("config", "/x/c.json");
        f.set("proxy-port-range", "1-2");
        let e =
            checked_command(Path::new("/bin/kube-proxy"), &f, Binary::KubeProxy, 35).unwrap_err();
        assert!(
            e.contains("proxy-port-range") && e.contains("kube-proxy-1.35"),
            "{e}"
        );
        // So is a value that would carry a second flag, and a minor without an inventory.
        f = Flags::default();
        f.set("hostname-override", "w --cleanup");
        let e =
            checked_command(Path::new("/bin/kube-proxy"), &f, Binary::KubeProxy, 35).unwrap_err();
        assert!(e.contains("--cleanup"), "{e}");
        let e = w
            .kube_proxy_command(Path::new("/bin/kube-proxy"), 30)
            .unwrap_err();
        assert!(e.contains("kube-proxy-1.30"), "{e}");
    }

    #[test]
    fn containerd_config_refuses_a_rendering_it_cannot_adapt() {
        let e = worker()
            .render_containerd_config("version = 2\n")
            .unwrap_err();
        assert!(e.contains("SystemdCgroup"), "{e}");
    }

    #[test]
    fn subnets_are_distinct_and_inside_the_cidr() {
        assert_eq!(
            node_subnets("10.244.0.0/16", 3).unwrap(),
            ["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]
        );
        // A CIDR given with host bits set is aligned.
        assert_eq!(node_subnets("10.244.7.9/16", 1).unwrap(), ["10.244.0.0/24"]);
        // Smaller than a /24 each: split evenly.
        assert_eq!(
            node_subnets("192.168.5.0/24", 3).unwrap(),
            ["192.168.5.0/26", "192.168.5.64/26", "192.168.5.128/26"]
        );
        assert_eq!(
            node_subnets("fd00:10::/56", 2).unwrap(),
            ["fd00:10::/64", "fd00:10:0:1::/64"]
        );
        let e = node_subnets("10.0.0.0/29", 4).unwrap_err();
        assert!(e.contains("too small for 4 workers"), "{e}");
        assert_eq!(node_subnets("10.0.0.0/22", 4).unwrap()[3], "10.0.3.0/24");
        assert_eq!(node_subnets("10.0.0.0/22", 5).unwrap()[4], "10.0.2.0/25");
    }
}
