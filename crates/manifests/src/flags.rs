//! The command line of each control-plane component, as kubeadm writes it, for one node.
//!
//! One function per component builds its flags; static pods, systemd units and the local
//! backend's processes all take their command line from here.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use frankenetes_spec::{ClusterSpec, EtcdVersion, NodeSpec, host_port, ports};

use crate::Error;
use crate::security;
use crate::versions::{Binary, Inventory};

/// What a rendering is for: where things live on a node, how its components listen, and
/// which etcd release runs. [`Layout::machine`] is the real layout (`/etc/kubernetes`);
/// [`Layout::under`] prefixes every path, for running components from a bundle directory;
/// [`Layout::container_group`] is a machine layout whose components run in a container group
/// with a public name (ACI), so they listen on every interface and reach etcd by its names.
/// [`Layout::for_spec`] picks the one the spec's backend needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    root: PathBuf,
    etcd_data: PathBuf,
    container_group: bool,
    etcd_version: Option<EtcdVersion>,
}

/// etcd's data directory in a container group (an `emptyDir` mounted there).
pub const CONTAINER_ETCD_DATA: &str = "/var/lib/etcd";

impl Layout {
    /// The layout on a machine, with etcd's data in `spec.etcd.dataDir`.
    pub fn machine(spec: &ClusterSpec) -> Self {
        Self {
            root: PathBuf::from("/"),
            etcd_data: spec.etcd.data_dir.clone(),
            container_group: false,
            etcd_version: None,
        }
    }

    /// Every path under `root` (a node's bundle directory), etcd's data in `etcd_data`.
    pub fn under(root: impl Into<PathBuf>, etcd_data: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            etcd_data: etcd_data.into(),
            container_group: false,
            etcd_version: None,
        }
    }

    /// Machine paths, components in container groups with public names (ACI): etcd listens
    /// on every interface of its group (a name cannot be bound) with its data in
    /// [`CONTAINER_ETCD_DATA`], the apiserver picks its own address (the public one is
    /// unknown before the group exists) and talks to every etcd member by name.
    pub fn container_group() -> Self {
        Self {
            root: PathBuf::from("/"),
            etcd_data: PathBuf::from(CONTAINER_ETCD_DATA),
            container_group: true,
            etcd_version: None,
        }
    }

    /// The layout the spec's backend runs: [`Layout::container_group`] on Azure, else
    /// [`Layout::machine`].
    pub fn for_spec(spec: &ClusterSpec) -> Self {
        match spec.backend {
            frankenetes_spec::BackendSpec::Azure(_) => Self::container_group(),
            _ => Self::machine(spec),
        }
    }

    /// Renders etcd's flags for `version` (the release that will run, when it is known:
    /// the local backend runs the `etcd` it finds) instead of `spec.etcd.version` or the image's.
    #[must_use]
    pub fn with_etcd_version(mut self, version: Option<EtcdVersion>) -> Self {
        self.etcd_version = version;
        self
    }

    /// The etcd release asked for with [`Layout::with_etcd_version`].
    pub fn etcd_version(&self) -> Option<EtcdVersion> {
        self.etcd_version
    }

    /// Whether components run in container groups with public names.
    pub fn is_container_group(&self) -> bool {
        self.container_group
    }

    /// An absolute machine path (`/etc/kubernetes/pki/ca.crt`) in this layout.
    pub fn path(&self, machine_path: &str) -> PathBuf {
        self.root.join(machine_path.trim_start_matches('/'))
    }

    /// The kubeadm PKI directory.
    pub fn pki(&self, file: &str) -> String {
        self.path("/etc/kubernetes/pki")
            .join(file)
            .display()
            .to_string()
    }

    /// A file in `/etc/kubernetes`.
    pub fn kubernetes(&self, file: &str) -> String {
        self.path("/etc/kubernetes")
            .join(file)
            .display()
            .to_string()
    }

    /// etcd's data directory.
    pub fn etcd_data(&self) -> &Path {
        &self.etcd_data
    }
}

/// The address a component uses for node-local traffic: `127.0.0.1` (or `::1`), as kubeadm
/// does — except when the node's own address is a loopback address (the local backend puts
/// each node on its own 127.0.0.x), where sharing 127.0.0.1 would make the nodes' ports
/// collide, so the node's address is used instead.
pub fn local_address(node: &NodeSpec) -> IpAddr {
    match node.ip {
        ip if ip.is_loopback() => ip,
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

/// A component's flags, sorted by name as kubeadm writes them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags(BTreeMap<String, String>);

impl Flags {
    /// Sets a flag (name without `--`).
    pub fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_owned(), value.into());
    }

    /// A flag's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Flag names.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Applies `extraArgs`: each replaces the rendered flag of the same name, or adds one.
    pub fn merge(&mut self, extra: &BTreeMap<String, String>) {
        for (k, v) in extra {
            self.0.insert(k.clone(), v.clone());
        }
    }

    /// `--name=value` arguments, sorted.
    pub fn args(&self) -> Vec<String> {
        self.0.iter().map(|(k, v)| format!("--{k}={v}")).collect()
    }

    /// Checks every flag against the component's inventory, and every value for its flag
    /// (see the `values` module: one token on one line that carries no other flag); `field` names
    /// the config section that can add flags, for the error message.
    pub fn check(
        &self,
        inv: &Inventory,
        field: &str,
        extra: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        for (k, v) in &self.0 {
            let from_user = extra.contains_key(k);
            let from = if from_user {
                format!("{field}.{k}")
            } else {
                "rendered flags".to_owned()
            };
            if !inv.has(k) {
                return Err(Error::UnknownFlag {
                    flag: k.clone(),
                    inventory: inv.key.clone(),
                    field: from,
                });
            }
            let rendered_path = !from_user && v.starts_with('/');
            if let Some(message) = crate::values::problem(inv, v, rendered_path) {
                let field = if from_user {
                    from
                } else {
                    format!("rendered flag --{k} (from the spec)")
                };
                return Err(Error::Invalid { field, message });
            }
        }
        Ok(())
    }
}

/// etcd's flags for one control-plane node (stacked etcd, every member listed, mTLS on both
/// client and peer ports), for the etcd release `version`.
pub fn etcd(spec: &ClusterSpec, node: &NodeSpec, version: EtcdVersion, layout: &Layout) -> Flags {
    let mut f = Flags::default();
    let ip = node.ip;
    let local = local_address(node);
    let client = spec.etcd_client_url(node);
    f.set("name", node.name.as_str());
    f.set("data-dir", layout.etcd_data().display().to_string());
    f.set("advertise-client-urls", client.clone());
    let listen_client = if local == ip {
        client
    } else {
        format!("https://{},{client}", host_port(local, ports::ETCD_CLIENT))
    };
    if layout.container_group {
        // A name cannot be bound: every interface of the group; peers and clients use the
        // advertised names.
        f.set(
            "listen-client-urls",
            format!("https://0.0.0.0:{}", ports::ETCD_CLIENT),
        );
        f.set(
            "listen-peer-urls",
            format!("https://0.0.0.0:{}", ports::ETCD_PEER),
        );
    } else {
        f.set("listen-client-urls", listen_client);
        f.set("listen-peer-urls", spec.etcd_peer_url(node));
    }
    f.set("initial-advertise-peer-urls", spec.etcd_peer_url(node));
    f.set("initial-cluster", spec.etcd_initial_cluster());
    f.set("initial-cluster-state", "new");
    f.set("initial-cluster-token", spec.name.as_str());
    f.set(
        "listen-metrics-urls",
        format!("http://{}", host_port(local, ports::ETCD_METRICS)),
    );
    f.set("client-cert-auth", "true");
    f.set("cert-file", layout.pki("etcd/server.crt"));
    f.set("key-file", layout.pki("etcd/server.key"));
    f.set("trusted-ca-file", layout.pki("etcd/ca.crt"));
    f.set("peer-client-cert-auth", "true");
    f.set("peer-cert-file", layout.pki("etcd/peer.crt"));
    f.set("peer-key-file", layout.pki("etcd/peer.key"));
    f.set("peer-trusted-ca-file", layout.pki("etcd/ca.crt"));
    f.set("snapshot-count", "10000");
    // etcd 3.6 turned the experimental flags kubeadm uses into a feature gate and a plain flag.
    if version >= EtcdVersion::new(3, 6, 0) {
        f.set("feature-gates", "InitialCorruptCheck=true");
        f.set("watch-progress-notify-interval", "5s");
    } else {
        f.set("experimental-initial-corrupt-check", "true");
        f.set("experimental-watch-progress-notify-interval", "5s");
    }
    f.merge(&spec.etcd.extra_args);
    f
}

/// kube-apiserver's flags for one control-plane node; it talks to its own etcd member.
pub fn kube_apiserver(spec: &ClusterSpec, node: &NodeSpec, layout: &Layout) -> Flags {
    let mut f = Flags::default();
    let pki = |p: &str| layout.pki(p);
    if !layout.container_group {
        // In a container group the public address is unknown before the group exists: the
        // apiserver picks its own interface.
        f.set("advertise-address", node.ip.to_string());
    }
    f.set("allow-privileged", "true");
    f.set("authorization-mode", "Node,RBAC");
    f.set("client-ca-file", pki("ca.crt"));
    let sec = &spec.security;
    // Explicit even where they are on by default (CIS 1.2.12-1.2.14 want them named).
    let mut plugins = vec!["NamespaceLifecycle", "NodeRestriction", "ServiceAccount"];
    if sec.always_pull_images {
        plugins.insert(0, "AlwaysPullImages");
    }
    f.set("enable-admission-plugins", plugins.join(","));
    // Pod Security defaults for namespaces without labels.
    f.set(
        "admission-control-config-file",
        layout
            .path(security::ADMISSION_CONFIG)
            .display()
            .to_string(),
    );
    match security::authentication_configuration(spec) {
        // Anonymous only on the health endpoints; --anonymous-auth must then stay unset.
        Some(_) => f.set(
            "authentication-config",
            layout
                .path(security::AUTHENTICATION_CONFIG)
                .display()
                .to_string(),
        ),
        None => f.set("anonymous-auth", "true"),
    }
    if sec.audit_log {
        f.set(
            "audit-policy-file",
            layout.path(security::AUDIT_POLICY).display().to_string(),
        );
        f.set(
            "audit-log-path",
            layout.path(security::AUDIT_LOG).display().to_string(),
        );
        f.set("audit-log-maxage", security::AUDIT_MAX_AGE.to_string());
        f.set(
            "audit-log-maxbackup",
            security::AUDIT_MAX_BACKUP.to_string(),
        );
        f.set("audit-log-maxsize", security::AUDIT_MAX_SIZE.to_string());
    }
    if sec.encryption_at_rest {
        f.set(
            "encryption-provider-config",
            pki(frankenetes_pki::encryption::FILE_NAME),
        );
    }
    // Verify the kubelets' serving certificates (signed by the cluster CA).
    f.set("kubelet-certificate-authority", pki("ca.crt"));
    f.set("profiling", sec.profiling.to_string());
    f.set("service-account-lookup", "true");
    f.set(
        "tls-cipher-suites",
        security::STRONG_CIPHER_SUITES.join(","),
    );
    f.set("enable-bootstrap-token-auth", "true");
    f.set("etcd-cafile", pki("etcd/ca.crt"));
    f.set("etcd-certfile", pki("apiserver-etcd-client.crt"));
    f.set("etcd-keyfile", pki("apiserver-etcd-client.key"));
    let etcd_servers = if layout.container_group {
        // No member shares the group: every member, by name.
        spec.etcd_endpoints().join(",")
    } else {
        format!(
            "https://{}",
            host_port(local_address(node), ports::ETCD_CLIENT)
        )
    };
    f.set("etcd-servers", etcd_servers);
    f.set(
        "kubelet-client-certificate",
        pki("apiserver-kubelet-client.crt"),
    );
    f.set("kubelet-client-key", pki("apiserver-kubelet-client.key"));
    f.set(
        "kubelet-preferred-address-types",
        "InternalIP,ExternalIP,Hostname",
    );
    f.set("proxy-client-cert-file", pki("front-proxy-client.crt"));
    f.set("proxy-client-key-file", pki("front-proxy-client.key"));
    f.set("requestheader-allowed-names", "front-proxy-client");
    f.set("requestheader-client-ca-file", pki("front-proxy-ca.crt"));
    f.set("requestheader-extra-headers-prefix", "X-Remote-Extra-");
    f.set("requestheader-group-headers", "X-Remote-Group");
    f.set("requestheader-username-headers", "X-Remote-User");
    f.set("secure-port", ports::APISERVER.to_string());
    f.set("service-account-issuer", spec.service_account_issuer());
    f.set("service-account-key-file", pki("sa.pub"));
    f.set("service-account-signing-key-file", pki("sa.key"));
    f.set(
        "service-cluster-ip-range",
        spec.network.service_cidr.to_string(),
    );
    f.set("tls-cert-file", pki("apiserver.crt"));
    f.set("tls-private-key-file", pki("apiserver.key"));
    if node.ip.is_loopback() && !layout.container_group {
        // Several apiservers share this machine: each binds only its own address.
        f.set("bind-address", node.ip.to_string());
    }
    f.merge(&spec.api_server.extra_args);
    f
}

/// kube-controller-manager's flags for one control-plane node.
pub fn kube_controller_manager(spec: &ClusterSpec, node: &NodeSpec, layout: &Layout) -> Flags {
    let mut f = Flags::default();
    let pki = |p: &str| layout.pki(p);
    let conf = layout.kubernetes("controller-manager.conf");
    f.set("authentication-kubeconfig", conf.clone());
    f.set("authorization-kubeconfig", conf.clone());
    f.set("kubeconfig", conf);
    f.set("bind-address", local_address(node).to_string());
    f.set("client-ca-file", pki("ca.crt"));
    f.set("cluster-name", spec.name.as_str());
    f.set("cluster-signing-cert-file", pki("ca.crt"));
    f.set("cluster-signing-key-file", pki("ca.key"));
    f.set("controllers", "*,bootstrapsigner,tokencleaner");
    f.set("leader-elect", "true");
    f.set("profiling", spec.security.profiling.to_string());
    // Garbage-collect terminated pods well before they weigh on etcd (CIS 1.3.1).
    f.set("terminated-pod-gc-threshold", "1000");
    f.set("requestheader-client-ca-file", pki("front-proxy-ca.crt"));
    f.set("root-ca-file", pki("ca.crt"));
    f.set("service-account-private-key-file", pki("sa.key"));
    f.set("use-service-account-credentials", "true");
    if let Some(pod) = &spec.network.pod_cidr {
        f.set("allocate-node-cidrs", "true");
        f.set("cluster-cidr", pod.to_string());
        f.set(
            "service-cluster-ip-range",
            spec.network.service_cidr.to_string(),
        );
    }
    f.merge(&spec.controller_manager.extra_args);
    f
}

/// kube-scheduler's flags for one control-plane node.
pub fn kube_scheduler(spec: &ClusterSpec, node: &NodeSpec, layout: &Layout) -> Flags {
    let mut f = Flags::default();
    let conf = layout.kubernetes("scheduler.conf");
    f.set("authentication-kubeconfig", conf.clone());
    f.set("authorization-kubeconfig", conf.clone());
    f.set("kubeconfig", conf);
    f.set("bind-address", local_address(node).to_string());
    f.set("leader-elect", "true");
    f.set("profiling", spec.security.profiling.to_string());
    f.merge(&spec.scheduler.extra_args);
    f
}

/// The kubelet's command-line flags (everything else is in its config file). No
/// `--hostname-override` (CIS 4.2.8): the bundle's `/etc/hostname` is the node's name, which is
/// also the name in its serving certificate.
pub fn kubelet(node: &NodeSpec, layout: &Layout) -> Flags {
    let mut f = Flags::default();
    f.set(
        "config",
        layout
            .path("/var/lib/kubelet/config.yaml")
            .display()
            .to_string(),
    );
    f.set("kubeconfig", layout.kubernetes("kubelet.conf"));
    f.set("node-ip", node.ip.to_string());
    f
}

/// Which binary each builder is for, and where users extend it, for checks and messages.
pub(crate) fn extra_field(b: Binary) -> &'static str {
    match b {
        Binary::Etcd => "spec.etcd.extraArgs",
        Binary::ApiServer => "spec.apiServer.extraArgs",
        Binary::ControllerManager => "spec.controllerManager.extraArgs",
        Binary::Scheduler => "spec.scheduler.extraArgs",
        Binary::Kubelet => "kubelet flags",
        Binary::KubeProxy => "kube-proxy flags",
    }
}
