//! What the PKI consists of: the CAs, every leaf certificate, and where each file goes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use frankenetes_spec::{CaMode, ClusterSpec, KeyAlgorithm, NodeSpec, Role, San};
use time::OffsetDateTime;

use crate::id::{LeafId, LeafKind};

/// How far back `NotBefore` is set, so that a clock a little behind still accepts a fresh
/// certificate (kubeadm's `CertificateBackdate`).
pub const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// The operator's directory, relative to the output root: CA masters, the root key, client
/// certificates that stay with the operator.
pub const CLUSTER_PKI: &str = "cluster/pki";

/// One of the certificate authorities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum CaId {
    /// The root that signs the three others in `intermediate` mode. Its key never goes to a node.
    Root,
    /// The Kubernetes CA (`ca.crt`): apiserver, kubelet and every kubeconfig client.
    Kubernetes,
    /// The etcd CA (`etcd/ca.crt`): etcd server, peer and client certificates.
    Etcd,
    /// The front-proxy CA (`front-proxy-ca.crt`): the aggregation layer's client.
    FrontProxy,
}

impl CaId {
    /// The three CAs kubeadm makes, in signing order.
    pub const KUBEADM: [CaId; 3] = [CaId::Kubernetes, CaId::Etcd, CaId::FrontProxy];

    /// kubeadm's base file name, relative to a PKI directory (`etcd/ca`).
    pub fn base(self) -> &'static str {
        match self {
            CaId::Root => "root-ca",
            CaId::Kubernetes => "ca",
            CaId::Etcd => "etcd/ca",
            CaId::FrontProxy => "front-proxy-ca",
        }
    }

    /// The short name used in reports and on the command line (`etcd-ca`).
    pub fn name(self) -> &'static str {
        match self {
            CaId::Root => "root-ca",
            CaId::Kubernetes => "ca",
            CaId::Etcd => "etcd-ca",
            CaId::FrontProxy => "front-proxy-ca",
        }
    }
}

/// What a leaf certificate is for: it decides key usages and extended key usages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Usage {
    /// TLS server (serverAuth).
    Server,
    /// TLS client (clientAuth).
    Client,
    /// Both (etcd's server and peer certificates, which etcd also uses as clients).
    ServerAndClient,
}

impl Usage {
    /// Whether the certificate may authenticate a TLS server.
    pub fn server(self) -> bool {
        matches!(self, Usage::Server | Usage::ServerAndClient)
    }
    /// Whether the certificate may authenticate a TLS client.
    pub fn client(self) -> bool {
        matches!(self, Usage::Client | Usage::ServerAndClient)
    }
}

/// A CA of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaSpec {
    /// Which CA.
    pub id: CaId,
    /// Subject common name.
    pub common_name: String,
    /// The CA that signs this one (`None`: self-signed).
    pub parent: Option<CaId>,
    /// The path length constraint (`None`: unconstrained, as kubeadm's CAs).
    pub path_len: Option<u8>,
}

/// One leaf certificate of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LeafSpec {
    /// Which certificate: its kind and node. The file path and the report name derive from it.
    pub id: LeafId,
    /// The CA that signs it.
    pub issuer: CaId,
    /// Subject common name.
    pub common_name: String,
    /// Subject organizations (Kubernetes groups).
    pub organizations: Vec<String>,
    /// Subject alternative names, in kubeadm's order.
    pub sans: Vec<San>,
    /// Server, client or both.
    pub usage: Usage,
}

impl LeafSpec {
    /// A leaf with no organization and no SANs.
    pub fn new(id: LeafId, issuer: CaId, common_name: impl Into<String>, usage: Usage) -> Self {
        Self {
            id,
            issuer,
            common_name: common_name.into(),
            organizations: Vec::new(),
            sans: Vec::new(),
            usage,
        }
    }

    /// Adds a subject organization.
    #[must_use]
    pub fn organization(mut self, o: impl Into<String>) -> Self {
        self.organizations.push(o.into());
        self
    }

    /// Sets the SANs.
    #[must_use]
    pub fn sans(mut self, sans: Vec<San>) -> Self {
        self.sans = sans;
        self
    }

    /// The name used in reports and on the command line (`control-01/etcd-server`): the id's
    /// `Display`.
    pub fn name(&self) -> String {
        self.id.to_string()
    }

    /// The file's path relative to the output root, without extension (`.crt`/`.key` are
    /// added): [`LeafId::path`].
    pub fn path(&self) -> PathBuf {
        self.id.path()
    }
}

/// The short name of a file from its path relative to the output root:
/// `cluster/pki/etcd/ca` → `etcd-ca`, `nodes/control-01/etc/kubernetes/pki/etcd/server` →
/// `control-01/etcd-server`, `nodes/w1/var/lib/kubelet/pki/kubelet-client` → `w1/kubelet-client`.
/// A path outside that layout (a bare kubeadm `pki` directory) keeps its kubeadm name. For the
/// plan's leaves this equals their [`LeafId`]'s `Display`; it also names CAs, their copies and
/// `sa`, which have no [`LeafId`].
pub fn name_for_path(rel: &Path) -> String {
    if let Some(id) = LeafId::from_path(rel) {
        return id.to_string();
    }
    let parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let join = |p: &[String]| p.join("-");
    match parts.as_slice() {
        [c, p, rest @ ..] if c == "cluster" && p == "pki" => join(rest),
        [n, node, e, k, p, rest @ ..]
            if n == "nodes" && e == "etc" && k == "kubernetes" && p == "pki" =>
        {
            format!("{node}/{}", join(rest))
        }
        [n, node, v, l, k, p, rest @ ..]
            if n == "nodes" && v == "var" && l == "lib" && k == "kubelet" && p == "pki" =>
        {
            format!("{node}/{}", join(rest))
        }
        rest => join(rest),
    }
}

/// Where a node's kubeadm PKI directory is, relative to the output root.
pub fn node_pki_dir(node: &str) -> PathBuf {
    Path::new("nodes").join(node).join("etc/kubernetes/pki")
}

/// Where a node's kubelet keeps its certificates, relative to the output root.
pub fn node_kubelet_pki_dir(node: &str) -> PathBuf {
    Path::new("nodes").join(node).join("var/lib/kubelet/pki")
}

/// Everything the PKI will hold. Build one from a spec with `PkiPlan::from(&spec)`; change
/// fields (validity, the clock) before generating if you need to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PkiPlan {
    /// The cluster's name; the root CA is named after it.
    pub cluster_name: String,
    /// kubeadm's three CAs, or a root with three intermediates.
    pub ca_mode: CaMode,
    /// The algorithm of every new key.
    pub key_algorithm: KeyAlgorithm,
    /// CA lifetime.
    pub ca_validity: Duration,
    /// Leaf lifetime (never past the issuer's end).
    pub cert_validity: Duration,
    /// The issue time: `NotBefore` is this minus [`BACKDATE`]. Fixed in tests for stable output.
    pub now: OffsetDateTime,
    /// Control-plane node names: they get the CAs (with keys) and the service-account keys.
    pub control_plane: Vec<String>,
    /// Worker node names: they get the Kubernetes CA certificate only.
    pub workers: Vec<String>,
    /// Every leaf certificate.
    pub leaves: Vec<LeafSpec>,
    /// Make (or keep) the Secrets encryption key ([`crate::encryption`]); from
    /// `spec.security.encryptionAtRest`.
    pub encryption_at_rest: bool,
}

impl From<&ClusterSpec> for PkiPlan {
    fn from(spec: &ClusterSpec) -> Self {
        let mut leaves = Vec::new();
        for (node, role) in spec.nodes() {
            if role == Role::ControlPlane {
                leaves.extend(control_plane_leaves(spec, node));
            }
            leaves.push(kubelet_serving_leaf(node));
            leaves.push(
                LeafSpec::new(
                    node_leaf(node, LeafKind::KubeletClient),
                    CaId::Kubernetes,
                    format!("system:node:{}", node.name),
                    Usage::Client,
                )
                .organization("system:nodes"),
            );
        }
        leaves.extend(operator_leaves());
        PkiPlan {
            cluster_name: spec.name.to_string(),
            ca_mode: spec.pki.ca_mode,
            key_algorithm: spec.pki.key_algorithm,
            ca_validity: spec.pki.ca_validity.get(),
            cert_validity: spec.pki.cert_validity.get(),
            now: OffsetDateTime::now_utc(),
            control_plane: spec
                .control_plane
                .iter()
                .map(|n| n.name.to_string())
                .collect(),
            workers: spec.workers.iter().map(|n| n.name.to_string()).collect(),
            leaves,
            encryption_at_rest: spec.security.encryption_at_rest,
        }
    }
}

/// The id of `node`'s certificate of a per-node `kind`.
fn node_leaf(node: &NodeSpec, kind: LeafKind) -> LeafId {
    LeafId::node(node.name.clone(), kind)
        .unwrap_or_else(|| unreachable!("{kind} is a per-node kind"))
}

/// The operator's client certificates: `admin`, `super-admin`, `kube-proxy`.
fn operator_leaves() -> [LeafSpec; 3] {
    let id =
        |kind| LeafId::cluster(kind).unwrap_or_else(|| unreachable!("{kind} is the operator's"));
    [
        LeafSpec::new(
            id(LeafKind::Admin),
            CaId::Kubernetes,
            "kubernetes-admin",
            Usage::Client,
        )
        .organization("kubeadm:cluster-admins"),
        LeafSpec::new(
            id(LeafKind::SuperAdmin),
            CaId::Kubernetes,
            "kubernetes-super-admin",
            Usage::Client,
        )
        .organization("system:masters"),
        LeafSpec::new(
            id(LeafKind::KubeProxy),
            CaId::Kubernetes,
            "system:kube-proxy",
            Usage::Client,
        ),
    ]
}

/// The kubelet's serving certificate (`/var/lib/kubelet/pki/kubelet.{crt,key}`, the names the
/// kubelet uses for its own), signed by the cluster CA so that the apiserver can verify the
/// kubelet with `--kubelet-certificate-authority`. Subject `system:node:<name>` in
/// `system:nodes`, as the kubelet's own CSRs; SANs exactly the node's name and IP.
pub fn kubelet_serving_leaf(node: &NodeSpec) -> LeafSpec {
    LeafSpec::new(
        node_leaf(node, LeafKind::Kubelet),
        CaId::Kubernetes,
        format!("system:node:{}", node.name),
        Usage::Server,
    )
    .organization("system:nodes")
    .sans(vec![San::Dns(node.name.clone().into()), San::Ip(node.ip)])
}

/// kubeadm's certificates for one control-plane node.
fn control_plane_leaves(spec: &ClusterSpec, node: &NodeSpec) -> Vec<LeafSpec> {
    let n = node.name.as_str();
    let id = |kind| node_leaf(node, kind);
    use CaId::{Etcd, FrontProxy, Kubernetes};
    use LeafKind as K;
    vec![
        LeafSpec::new(
            id(K::Apiserver),
            Kubernetes,
            "kube-apiserver",
            Usage::Server,
        )
        .sans(spec.apiserver_sans(node)),
        LeafSpec::new(
            id(K::ApiserverKubeletClient),
            Kubernetes,
            "kube-apiserver-kubelet-client",
            Usage::Client,
        )
        .organization("kubeadm:cluster-admins"),
        LeafSpec::new(
            id(K::ApiserverEtcdClient),
            Etcd,
            "kube-apiserver-etcd-client",
            Usage::Client,
        ),
        LeafSpec::new(
            id(K::FrontProxyClient),
            FrontProxy,
            "front-proxy-client",
            Usage::Client,
        ),
        LeafSpec::new(id(K::EtcdServer), Etcd, n, Usage::ServerAndClient)
            .sans(spec.etcd_sans(node)),
        LeafSpec::new(id(K::EtcdPeer), Etcd, n, Usage::ServerAndClient).sans(spec.etcd_sans(node)),
        LeafSpec::new(
            id(K::EtcdHealthcheckClient),
            Etcd,
            "kube-etcd-healthcheck-client",
            Usage::Client,
        ),
        LeafSpec::new(
            id(K::ControllerManager),
            Kubernetes,
            "system:kube-controller-manager",
            Usage::Client,
        ),
        LeafSpec::new(
            id(K::Scheduler),
            Kubernetes,
            "system:kube-scheduler",
            Usage::Client,
        ),
    ]
}

impl PkiPlan {
    /// The plan for [`ClusterSpec::example`], issued at a fixed instant so output is stable.
    pub fn example() -> Self {
        let mut plan = PkiPlan::from(&ClusterSpec::example());
        plan.now = time::macros::datetime!(2026-01-01 00:00 UTC);
        plan
    }

    /// Sets the issue time.
    #[must_use]
    pub fn at(mut self, now: OffsetDateTime) -> Self {
        self.now = now;
        self
    }

    /// Sets the key algorithm of new keys.
    #[must_use]
    pub fn with_algorithm(mut self, alg: KeyAlgorithm) -> Self {
        self.key_algorithm = alg;
        self
    }

    /// The CAs, parents first.
    pub fn cas(&self) -> Vec<CaSpec> {
        let ca = |id: CaId, cn: &str| CaSpec {
            id,
            common_name: cn.to_owned(),
            parent: None,
            path_len: None,
        };
        let mut cas = vec![
            ca(CaId::Kubernetes, "kubernetes"),
            ca(CaId::Etcd, "etcd-ca"),
            ca(CaId::FrontProxy, "front-proxy-ca"),
        ];
        if self.ca_mode == CaMode::Intermediate {
            for c in &mut cas {
                c.parent = Some(CaId::Root);
                c.path_len = Some(0);
            }
            let root_cn = format!("{}-root-ca", self.cluster_name);
            cas.insert(
                0,
                CaSpec {
                    id: CaId::Root,
                    common_name: root_cn,
                    parent: None,
                    path_len: Some(1),
                },
            );
        }
        cas
    }

    /// The master copy of a CA, relative to the output root (`cluster/pki/etcd/ca`).
    pub fn ca_master(&self, id: CaId) -> PathBuf {
        Path::new(CLUSTER_PKI).join(id.base())
    }

    /// Where copies of a CA go on nodes, and whether the key goes with the certificate.
    /// Control-plane nodes get every CA but the root, with its key (the controller-manager
    /// signs with `ca.key`); workers get `ca.crt` only; the root never leaves the operator.
    pub fn ca_copies(&self, id: CaId) -> Vec<(PathBuf, bool)> {
        if id == CaId::Root {
            return Vec::new();
        }
        let mut out: Vec<(PathBuf, bool)> = self
            .control_plane
            .iter()
            .map(|n| (node_pki_dir(n).join(id.base()), true))
            .collect();
        if id == CaId::Kubernetes {
            out.extend(
                self.workers
                    .iter()
                    .map(|n| (node_pki_dir(n).join(id.base()), false)),
            );
        }
        out
    }

    /// The service-account key's master and its copies on control-plane nodes (without
    /// extension: `sa.key` and `sa.pub` are added).
    pub fn service_account_paths(&self) -> (PathBuf, Vec<PathBuf>) {
        (
            Path::new(CLUSTER_PKI).join("sa"),
            self.control_plane
                .iter()
                .map(|n| node_pki_dir(n).join("sa"))
                .collect(),
        )
    }

    /// The leaf with this name (`control-01/apiserver`, `admin`).
    pub fn leaf(&self, name: &str) -> Option<&LeafSpec> {
        self.leaf_by_id(&name.parse().ok()?)
    }

    /// The leaf with this id.
    pub fn leaf_by_id(&self, id: &LeafId) -> Option<&LeafSpec> {
        self.leaves.iter().find(|l| &l.id == id)
    }

    /// `NotBefore` of everything issued now.
    pub fn not_before(&self) -> OffsetDateTime {
        self.now - BACKDATE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_paths() {
        for (p, n) in [
            ("cluster/pki/etcd/ca", "etcd-ca"),
            ("cluster/pki/admin", "admin"),
            (
                "nodes/control-01/etc/kubernetes/pki/etcd/server",
                "control-01/etcd-server",
            ),
            (
                "nodes/control-01/etc/kubernetes/pki/apiserver",
                "control-01/apiserver",
            ),
            (
                "nodes/w1/var/lib/kubelet/pki/kubelet-client",
                "w1/kubelet-client",
            ),
            ("etcd/peer", "etcd-peer"),
            ("apiserver", "apiserver"),
        ] {
            assert_eq!(name_for_path(Path::new(p)), n);
        }
    }

    #[test]
    fn example_plan_has_kubeadms_set() {
        let plan = PkiPlan::example();
        // 9 kubeadm leaves per control-plane node, a kubelet client and serving certificate
        // per node, 3 operator clients.
        assert_eq!(plan.leaves.len(), 3 * 9 + 2 * 4 + 3);
        let names: std::collections::HashSet<String> =
            plan.leaves.iter().map(LeafSpec::name).collect();
        assert_eq!(names.len(), plan.leaves.len(), "names are unique");
        let api = plan.leaf("control-02/apiserver").unwrap();
        assert_eq!(api.common_name, "kube-apiserver");
        assert!(api.sans.iter().any(|s| s.to_string() == "control-02"));
        assert_eq!(
            plan.leaf("worker-01/kubelet-client").unwrap().common_name,
            "system:node:worker-01"
        );
        assert_eq!(plan.cas().len(), 3);
        let serving = plan.leaf("worker-01/kubelet").unwrap();
        assert_eq!(serving.usage, Usage::Server);
        assert_eq!(serving.common_name, "system:node:worker-01");
        let sans: Vec<String> = serving.sans.iter().map(ToString::to_string).collect();
        assert_eq!(sans, ["worker-01", "127.0.0.21"]);
        assert!(plan.encryption_at_rest);
    }
}
