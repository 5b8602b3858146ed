//! Typed names of leaf certificates: which certificate ([`LeafKind`]) and, for per-node ones,
//! which node ([`LeafId`]). The plan builds them; the file path and the report name
//! (`control-01/etcd-server`) are derived from them, never the other way round, except where
//! only a directory is at hand ([`LeafId::from_path`], used by `check` and `renew`).

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use frankenetes_spec::NodeName;

use crate::plan::{CLUSTER_PKI, node_kubelet_pki_dir, node_pki_dir};

/// Which certificate a leaf is: kubeadm's set, the kubelet's two, the operator's three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum LeafKind {
    /// `apiserver`: the apiserver's serving certificate (control planes).
    Apiserver,
    /// `apiserver-kubelet-client`: the apiserver as a client of kubelets.
    ApiserverKubeletClient,
    /// `apiserver-etcd-client`: the apiserver as a client of etcd.
    ApiserverEtcdClient,
    /// `front-proxy-client`: the aggregation layer's client.
    FrontProxyClient,
    /// `etcd-server` (`etcd/server`): etcd's serving certificate.
    EtcdServer,
    /// `etcd-peer` (`etcd/peer`): etcd's peer certificate.
    EtcdPeer,
    /// `etcd-healthcheck-client` (`etcd/healthcheck-client`).
    EtcdHealthcheckClient,
    /// `controller-manager`: the controller-manager's client certificate.
    ControllerManager,
    /// `scheduler`: the scheduler's client certificate.
    Scheduler,
    /// `kubelet-client`: the kubelet's client certificate (every node).
    KubeletClient,
    /// `kubelet`: the kubelet's serving certificate (every node).
    Kubelet,
    /// `admin`: the operator's `kubeadm:cluster-admins` client.
    Admin,
    /// `super-admin`: the operator's `system:masters` client.
    SuperAdmin,
    /// `kube-proxy`: kube-proxy's client.
    KubeProxy,
}

/// Where a kind's files live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Home {
    /// `nodes/<n>/etc/kubernetes/pki/`.
    NodePki,
    /// `nodes/<n>/var/lib/kubelet/pki/`.
    NodeKubelet,
    /// `cluster/pki/`.
    Cluster,
}

impl LeafKind {
    /// Every kind, in plan order.
    pub const ALL: [LeafKind; 14] = [
        LeafKind::Apiserver,
        LeafKind::ApiserverKubeletClient,
        LeafKind::ApiserverEtcdClient,
        LeafKind::FrontProxyClient,
        LeafKind::EtcdServer,
        LeafKind::EtcdPeer,
        LeafKind::EtcdHealthcheckClient,
        LeafKind::ControllerManager,
        LeafKind::Scheduler,
        LeafKind::KubeletClient,
        LeafKind::Kubelet,
        LeafKind::Admin,
        LeafKind::SuperAdmin,
        LeafKind::KubeProxy,
    ];

    /// The name in reports and on the command line (kubeadm's, where kubeadm has one):
    /// `etcd-server`, `kubelet-client`, `admin`.
    pub fn name(self) -> &'static str {
        match self {
            LeafKind::Apiserver => "apiserver",
            LeafKind::ApiserverKubeletClient => "apiserver-kubelet-client",
            LeafKind::ApiserverEtcdClient => "apiserver-etcd-client",
            LeafKind::FrontProxyClient => "front-proxy-client",
            LeafKind::EtcdServer => "etcd-server",
            LeafKind::EtcdPeer => "etcd-peer",
            LeafKind::EtcdHealthcheckClient => "etcd-healthcheck-client",
            LeafKind::ControllerManager => "controller-manager",
            LeafKind::Scheduler => "scheduler",
            LeafKind::KubeletClient => "kubelet-client",
            LeafKind::Kubelet => "kubelet",
            LeafKind::Admin => "admin",
            LeafKind::SuperAdmin => "super-admin",
            LeafKind::KubeProxy => "kube-proxy",
        }
    }

    /// The file's base name in its directory, without extension (`etcd/server`).
    pub fn file(self) -> &'static str {
        match self {
            LeafKind::EtcdServer => "etcd/server",
            LeafKind::EtcdPeer => "etcd/peer",
            LeafKind::EtcdHealthcheckClient => "etcd/healthcheck-client",
            other => other.name(),
        }
    }

    fn home(self) -> Home {
        match self {
            LeafKind::KubeletClient | LeafKind::Kubelet => Home::NodeKubelet,
            LeafKind::Admin | LeafKind::SuperAdmin | LeafKind::KubeProxy => Home::Cluster,
            _ => Home::NodePki,
        }
    }

    /// Whether each node has its own (`false`: one for the cluster, kept by the operator).
    pub fn per_node(self) -> bool {
        self.home() != Home::Cluster
    }

    /// Whether only control-plane nodes have one.
    pub fn control_plane_only(self) -> bool {
        self.home() == Home::NodePki
    }
}

impl fmt::Display for LeafKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LeafKind {
    type Err = LeafIdError;
    fn from_str(s: &str) -> Result<Self, LeafIdError> {
        LeafKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                LeafIdError(format!(
                    "{s:?} is not a certificate kind; known: {}",
                    kinds()
                ))
            })
    }
}

fn kinds() -> String {
    LeafKind::ALL.map(LeafKind::name).join(", ")
}

/// Why a string is not a [`LeafId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LeafIdError(String);

/// A leaf certificate of the plan: its kind and, for per-node kinds, its node. Displayed (and
/// parsed) as the report name: `control-01/apiserver`, `worker-01/kubelet`, `admin`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LeafId {
    node: Option<NodeName>,
    kind: LeafKind,
}

impl LeafId {
    /// A node's certificate. `None` when `kind` is not a per-node kind.
    pub fn node(node: NodeName, kind: LeafKind) -> Option<Self> {
        kind.per_node().then_some(Self {
            node: Some(node),
            kind,
        })
    }

    /// One of the operator's certificates (`admin`, `super-admin`, `kube-proxy`). `None` when
    /// `kind` is a per-node kind.
    pub fn cluster(kind: LeafKind) -> Option<Self> {
        (!kind.per_node()).then_some(Self { node: None, kind })
    }

    /// Which certificate.
    pub fn kind(&self) -> LeafKind {
        self.kind
    }

    /// Its node (`None` for the operator's certificates).
    pub fn node_name(&self) -> Option<&NodeName> {
        self.node.as_ref()
    }

    /// Its files' path relative to the output root, without extension (`.crt`/`.key`).
    pub fn path(&self) -> PathBuf {
        let dir = match (self.kind.home(), &self.node) {
            (Home::NodePki, Some(n)) => node_pki_dir(n.as_str()),
            (Home::NodeKubelet, Some(n)) => node_kubelet_pki_dir(n.as_str()),
            _ => PathBuf::from(CLUSTER_PKI),
        };
        dir.join(self.kind.file())
    }

    /// The id of a certificate file at `rel` (relative to the output root, with or without its
    /// `.crt`/`.key` extension), when it is where the plan puts that certificate.
    pub fn from_path(rel: &Path) -> Option<Self> {
        let rel = match rel.extension().and_then(|e| e.to_str()) {
            Some("crt" | "key") => rel.with_extension(""),
            _ => rel.to_owned(),
        };
        let parts: Vec<&str> = rel.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
        let (node, home, file) = match parts.as_slice() {
            ["cluster", "pki", rest @ ..] => (None, Home::Cluster, rest.join("/")),
            ["nodes", n, "etc", "kubernetes", "pki", rest @ ..] => {
                (Some(*n), Home::NodePki, rest.join("/"))
            }
            ["nodes", n, "var", "lib", "kubelet", "pki", rest @ ..] => {
                (Some(*n), Home::NodeKubelet, rest.join("/"))
            }
            _ => return None,
        };
        let kind = LeafKind::ALL
            .into_iter()
            .find(|k| k.home() == home && k.file() == file)?;
        let id = match node {
            Some(n) => Self::node(NodeName::try_from(n).ok()?, kind)?,
            None => Self::cluster(kind)?,
        };
        Some(id)
    }
}

impl fmt::Display for LeafId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.node {
            Some(n) => write!(f, "{n}/{}", self.kind.name()),
            None => f.write_str(self.kind.name()),
        }
    }
}

impl FromStr for LeafId {
    type Err = LeafIdError;
    fn from_str(s: &str) -> Result<Self, LeafIdError> {
        match s.split_once('/') {
            Some((node, kind)) => {
                let node = NodeName::try_from(node).map_err(|e| LeafIdError(e.to_string()))?;
                let kind: LeafKind = kind.parse()?;
                Self::node(node, kind).ok_or_else(|| {
                    LeafIdError(format!(
                        "{s:?}: {kind} is the operator's, not a node's; write {kind:?} alone"
                    ))
                })
            }
            None => {
                let kind: LeafKind = s.parse()?;
                Self::cluster(kind).ok_or_else(|| {
                    LeafIdError(format!(
                        "{s:?}: each node has its own {kind}; write <node>/{kind}"
                    ))
                })
            }
        }
    }
}

impl serde::Serialize for LeafId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_names_and_back() {
        let n = NodeName::try_from("control-01").unwrap();
        for kind in LeafKind::ALL {
            let id = match kind.per_node() {
                true => LeafId::node(n.clone(), kind).unwrap(),
                false => LeafId::cluster(kind).unwrap(),
            };
            assert_eq!(LeafId::from_path(&id.path()), Some(id.clone()), "{id}");
            assert_eq!(id.to_string().parse::<LeafId>().unwrap(), id);
            assert_eq!(kind.name().parse::<LeafKind>().unwrap(), kind);
        }
        let id = LeafId::node(n, LeafKind::EtcdServer).unwrap();
        assert_eq!(id.to_string(), "control-01/etcd-server");
        assert_eq!(
            id.path(),
            Path::new("nodes/control-01/etc/kubernetes/pki/etcd/server")
        );
        assert_eq!(
            LeafId::from_path(Path::new("nodes/w1/var/lib/kubelet/pki/kubelet.crt"))
                .unwrap()
                .to_string(),
            "w1/kubelet"
        );
        // Not where the plan puts a leaf: CA copies, bare kubeadm directories, wrong homes.
        for p in [
            "cluster/pki/ca",
            "apiserver",
            "nodes/w1/etc/kubernetes/pki/kubelet-client",
            "cluster/pki/apiserver",
            "nodes/Bad_Name/etc/kubernetes/pki/apiserver",
        ] {
            assert_eq!(LeafId::from_path(Path::new(p)), None, "{p}");
        }
        assert!("control-01/admin".parse::<LeafId>().is_err());
        assert!("apiserver".parse::<LeafId>().is_err());
        assert!(
            "nope"
                .parse::<LeafId>()
                .unwrap_err()
                .to_string()
                .contains("etcd-server")
        );
    }
}
