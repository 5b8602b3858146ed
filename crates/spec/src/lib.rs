//! The frankenetes cluster spec: `cluster.yaml` parsed into validated types, and every value
//! derived from it.
//!
//! ```
//! use frankenetes_spec::{ClusterSpec, San};
//!
//! let yaml = r#"
//! apiVersion: frankenetes.dev/v1alpha1
//! kind: Cluster
//! metadata: { name: kubelius }
//! spec:
//!   kubernetesVersion: v1.35.0
//!   controlPlaneEndpoint: api.kubelius:6443
//!   controlPlane:
//!     - { name: control-01, ip: 10.10.16.11 }
//! "#;
//! let parsed = ClusterSpec::from_yaml(yaml)?;
//! let spec = parsed.spec;
//! let sans = spec.apiserver_sans(&spec.control_plane[0]);
//! assert!(sans.contains(&San::Ip("10.96.0.1".parse().unwrap())));
//! assert_eq!(spec.control_plane_url(), "https://api.kubelius:6443");
//! # Ok::<(), frankenetes_spec::Error>(())
//! ```
//!
//! Parsing is strict: unknown fields and bad values are errors that name the field path
//! (`spec.controlPlane[1].ip`) and say what is wrong. Cross-field problems (duplicate names or
//! addresses, overlapping CIDRs) are reported all at once; an even number of control-plane nodes
//! is a [`Warning`], not an error.
//!
//! Every derived value — SAN lists, URLs, the service and DNS addresses — is computed by exactly
//! one method here, so certificates, flags and kubeconfigs cannot disagree.

#![deny(missing_docs)]

pub mod aws;
pub mod azure;
mod checks;
pub mod components;
mod derive;
pub mod gateway;
mod pki_settings;
pub use derive::ports;
pub mod images;
pub mod names;
pub mod net;
pub mod scalar;
pub mod security;
pub mod ssh;
mod validate;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use aws::AwsBackend;
pub use azure::{AciComponent, AzureBackend, AzureCredentialSpec};
pub use components::{
    ApiServerSpec, ComponentSpec, EtcdBackup, EtcdSpec, EtcdVersion, HostPathMount,
};
pub use gateway::{GatewaySpec, PeerSpec, TunnelSpec};
pub use images::{DEFAULT_IMAGE_REPOSITORY, EtcdRelease, Image, ImageRef, RELEASES, Release};
pub use names::{ClusterName, DnsName, NameError, NodeName};
pub use net::{Cidr, San, kubeadm_san_order};
pub use pki_settings::{CaMode, KeyAlgorithm, PkiSettings};
pub use scalar::{Arch, Endpoint, GoDuration, Host, KubernetesVersion, ValueError, host_port};
pub use security::SecuritySpec;
pub use ssh::{SshPublicKey, SshSpec};
pub use validate::{FieldError, Warning};

/// The `apiVersion` this crate reads.
pub const API_VERSION: &str = "frankenetes.dev/v1alpha1";
/// The `kind` this crate reads.
pub const KIND: &str = "Cluster";

/// Errors from reading or validating a cluster spec.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The YAML could not be parsed into the spec: a syntax error, an unknown field or a bad
    /// value. `path` is the field path (`spec.controlPlane[1].ip`).
    #[error("{}{path}: {message}", file_prefix(.file))]
    Parse {
        /// The file, when the spec came from one.
        file: Option<PathBuf>,
        /// The field path, `.` for the document itself.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The spec parsed but is inconsistent; every problem is listed.
    #[error("{}{} problem{} in the cluster spec:\n{}", file_prefix(.file), .problems.len(),
        if .problems.len() == 1 { "" } else { "s" },
        .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file, when the spec came from one.
        file: Option<PathBuf>,
        /// Every problem found.
        problems: Vec<FieldError>,
    },
    /// `spec.kubernetesVersion` is not in the table of supported releases ([`RELEASES`]).
    #[error("spec.kubernetesVersion: {version} is not supported; supported minors: {supported}")]
    UnsupportedVersion {
        /// The version asked for.
        version: KubernetesVersion,
        /// The supported minors (`v1.35, v1.36, v1.37`).
        supported: String,
    },
}

fn file_prefix(file: &Option<PathBuf>) -> String {
    file.as_ref()
        .map(|f| format!("{}: ", f.display()))
        .unwrap_or_default()
}

impl Error {
    /// The field errors, for tests and tools that want to show them their own way.
    pub fn problems(&self) -> Vec<FieldError> {
        match self {
            Error::Parse { path, message, .. } => {
                vec![FieldError {
                    path: path.clone(),
                    message: message.clone(),
                }]
            }
            Error::Invalid { problems, .. } => problems.clone(),
            Error::UnsupportedVersion { version, supported } => vec![FieldError {
                path: "spec.kubernetesVersion".into(),
                message: format!("{version} is not supported; supported minors: {supported}"),
            }],
            Error::Read { .. } => Vec::new(),
        }
    }

    fn with_file(self, f: &Path) -> Self {
        match self {
            Error::Parse { path, message, .. } => Error::Parse {
                file: Some(f.to_owned()),
                path,
                message,
            },
            Error::Invalid { problems, .. } => Error::Invalid {
                file: Some(f.to_owned()),
                problems,
            },
            other => other,
        }
    }
}

/// The whole `cluster.yaml` document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document {
    api_version: String,
    kind: String,
    metadata: Metadata,
    spec: SpecFields,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metadata {
    name: ClusterName,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SpecFields {
    kubernetes_version: KubernetesVersion,
    #[serde(default)]
    control_plane_endpoint: Option<Endpoint>,
    #[serde(default)]
    network: NetworkSpec,
    #[serde(default)]
    pki: PkiSettings,
    control_plane: Vec<NodeSpec>,
    #[serde(default)]
    workers: Vec<NodeSpec>,
    #[serde(default)]
    backend: BackendSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gateway: Option<GatewaySpec>,
    #[serde(default = "default_image_repository")]
    image_repository: String,
    #[serde(default)]
    etcd: EtcdSpec,
    #[serde(default)]
    api_server: ApiServerSpec,
    #[serde(default)]
    controller_manager: ComponentSpec,
    #[serde(default)]
    scheduler: ComponentSpec,
    #[serde(default, skip_serializing_if = "is_default")]
    security: SecuritySpec,
    #[serde(default, skip_serializing_if = "is_default")]
    ssh: SshSpec,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

fn default_image_repository() -> String {
    "registry.k8s.io".into()
}

/// A validated cluster spec. Build one with [`ClusterSpec::from_yaml`], [`ClusterSpec::load`]
/// or [`ClusterSpec::new`] followed by [`ClusterSpec::validate`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ClusterSpec {
    /// `metadata.name`: names the kubeconfig cluster and tags cloud resources.
    pub name: ClusterName,
    /// `spec.kubernetesVersion`.
    pub kubernetes_version: KubernetesVersion,
    /// `spec.controlPlaneEndpoint`: the load balancer (or first apiserver) clients use. When
    /// absent, the first control-plane node's address on port 6443.
    pub control_plane_endpoint: Option<Endpoint>,
    /// `spec.network`.
    pub network: NetworkSpec,
    /// `spec.pki`.
    pub pki: PkiSettings,
    /// `spec.controlPlane`: the nodes that run etcd and the control-plane components.
    pub control_plane: Vec<NodeSpec>,
    /// `spec.workers`: nodes that only run a kubelet.
    pub workers: Vec<NodeSpec>,
    /// `spec.backend`: where the cluster runs.
    pub backend: BackendSpec,
    /// `spec.gateway`: the optional NAT and WireGuard gateway.
    pub gateway: Option<GatewaySpec>,
    /// `spec.imageRepository`: where the cluster's images come from (`registry.k8s.io`): an
    /// image reference prefix (`mirror.example:5000/k8s`); a trailing `/` is dropped when
    /// parsing. Name images with [`ClusterSpec::image`].
    pub image_repository: String,
    /// `spec.etcd`.
    pub etcd: EtcdSpec,
    /// `spec.apiServer`.
    pub api_server: ApiServerSpec,
    /// `spec.controllerManager`.
    pub controller_manager: ComponentSpec,
    /// `spec.scheduler`.
    pub scheduler: ComponentSpec,
    /// `spec.security`: hardened by default; relaxations are explicit.
    pub security: SecuritySpec,
    /// `spec.ssh`: the public keys that may log in as `core` on every machine.
    pub ssh: SshSpec,
}

/// A parsed spec and the warnings found while validating it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Parsed {
    /// The spec.
    pub spec: ClusterSpec,
    /// Problems that are not errors (an even number of etcd members, for example).
    pub warnings: Vec<Warning>,
}

/// `spec.network`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct NetworkSpec {
    /// `serviceCIDR`: the block Service cluster IPs come from (kubeadm's default 10.96.0.0/12).
    #[serde(rename = "serviceCIDR", default = "default_service_cidr")]
    pub service_cidr: Cidr,
    /// `podCIDR`: the block pod IPs come from; optional (a CNI may bring its own).
    #[serde(rename = "podCIDR", default)]
    pub pod_cidr: Option<Cidr>,
    /// `dnsDomain`: the cluster's DNS domain (default `cluster.local`).
    #[serde(default = "default_dns_domain")]
    pub dns_domain: DnsName,
}

fn default_service_cidr() -> Cidr {
    Cidr::try_from("10.96.0.0/12".to_owned()).unwrap_or_else(|_| unreachable!("constant CIDR"))
}

fn default_dns_domain() -> DnsName {
    DnsName::try_from("cluster.local").unwrap_or_else(|_| unreachable!("constant name"))
}

impl Default for NetworkSpec {
    fn default() -> Self {
        Self {
            service_cidr: default_service_cidr(),
            pod_cidr: None,
            dns_domain: default_dns_domain(),
        }
    }
}

/// One node of `spec.controlPlane` or `spec.workers`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct NodeSpec {
    /// The node's name: its host name, Kubernetes node name and certificate identity.
    pub name: NodeName,
    /// The node's address: where its apiserver and etcd member listen.
    pub ip: IpAddr,
}

impl NodeSpec {
    /// A node.
    pub fn new(name: NodeName, ip: IpAddr) -> Self {
        Self { name, ip }
    }
}

/// Whether a node runs the control plane or only a kubelet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// etcd, apiserver, controller-manager, scheduler and a kubelet.
    ControlPlane,
    /// A kubelet only.
    Worker,
}

/// `spec.backend`: where the cluster runs. Exactly one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "BackendFields", into = "BackendFields")]
#[non_exhaustive]
pub enum BackendSpec {
    /// Processes on this machine, each node on its own loopback address.
    Local(LocalBackend),
    /// EC2 instances in a VPC behind a NAT/WireGuard gateway, with an internal NLB.
    Aws(AwsBackend),
    /// Azure Container Instances, one container group per component.
    Azure(AzureBackend),
}

impl Default for BackendSpec {
    fn default() -> Self {
        Self::Local(LocalBackend::default())
    }
}

impl BackendSpec {
    /// The config-file key: `local`, `aws` or `azure`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Aws(_) => "aws",
            Self::Azure(_) => "azure",
        }
    }
}

/// The YAML shape of `spec.backend`: one optional key per backend, exactly one set.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackendFields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    local: Option<LocalBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    aws: Option<AwsBackend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    azure: Option<AzureBackend>,
}

impl TryFrom<BackendFields> for BackendSpec {
    type Error = String;
    fn try_from(f: BackendFields) -> Result<Self, String> {
        match (f.local, f.aws, f.azure) {
            (Some(l), None, None) => Ok(BackendSpec::Local(l)),
            (None, Some(a), None) => Ok(BackendSpec::Aws(a)),
            (None, None, Some(a)) => Ok(BackendSpec::Azure(a)),
            _ => {
                Err("name exactly one backend: `local: {}`, `aws: {...}` or `azure: {...}`".into())
            }
        }
    }
}

impl From<BackendSpec> for BackendFields {
    fn from(b: BackendSpec) -> Self {
        let mut f = BackendFields::default();
        match b {
            BackendSpec::Local(l) => f.local = Some(l),
            BackendSpec::Aws(a) => f.aws = Some(a),
            BackendSpec::Azure(a) => f.azure = Some(a),
        }
        f
    }
}

/// `spec.backend.local`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocalBackend {}

impl ClusterSpec {
    /// A spec with the defaults: kubeadm CA mode, ECDSA P-256, 10.96.0.0/12 services,
    /// `cluster.local`, the local backend. Call [`ClusterSpec::validate`] after changing fields.
    pub fn new(
        name: ClusterName,
        kubernetes_version: KubernetesVersion,
        control_plane: Vec<NodeSpec>,
    ) -> Self {
        Self {
            name,
            kubernetes_version,
            control_plane_endpoint: None,
            network: NetworkSpec::default(),
            pki: PkiSettings::default(),
            control_plane,
            workers: Vec::new(),
            backend: BackendSpec::default(),
            gateway: None,
            image_repository: default_image_repository(),
            etcd: EtcdSpec::default(),
            api_server: ApiServerSpec::default(),
            controller_manager: ComponentSpec::default(),
            scheduler: ComponentSpec::default(),
            security: SecuritySpec::default(),
            ssh: SshSpec::default(),
        }
    }

    /// The example from the README: three control-plane nodes `control-01..03` on
    /// 127.0.0.11–13 (so the local backend can run them on one machine) and one worker.
    pub fn example() -> Self {
        let node = |n: &str, ip: [u8; 4]| NodeSpec {
            name: NodeName::try_from(n).unwrap_or_else(|_| unreachable!("constant name")),
            ip: IpAddr::from(ip),
        };
        let mut spec = Self::new(
            ClusterName::try_from("kubelius").unwrap_or_else(|_| unreachable!("constant name")),
            KubernetesVersion {
                major: 1,
                minor: 35,
                patch: 0,
                pre: None,
            },
            vec![
                node("control-01", [127, 0, 0, 11]),
                node("control-02", [127, 0, 0, 12]),
                node("control-03", [127, 0, 0, 13]),
            ],
        );
        spec.workers.push(node("worker-01", [127, 0, 0, 21]));
        spec.network.pod_cidr =
            Some(Cidr::try_from("10.244.0.0/16".to_owned()).unwrap_or_else(|_| unreachable!()));
        spec
    }

    /// Parses and validates a `cluster.yaml` document.
    pub fn from_yaml(yaml: &str) -> Result<Parsed, Error> {
        let de = serde_norway::Deserializer::from_str(yaml);
        let doc: Document = serde_path_to_error::deserialize(de).map_err(|e| {
            // A key or value with a control character is echoed escaped, never raw.
            let path = checks::escape_forbidden(&e.path().to_string());
            let message =
                checks::escape_forbidden(&clean_serde_message(&path, &e.into_inner().to_string()));
            Error::Parse {
                file: None,
                path,
                message,
            }
        })?;
        if doc.api_version != API_VERSION {
            return Err(Error::Parse {
                file: None,
                path: "apiVersion".into(),
                message: format!("{:?} is not supported; use {API_VERSION}", doc.api_version),
            });
        }
        if doc.kind != KIND {
            return Err(Error::Parse {
                file: None,
                path: "kind".into(),
                message: format!("{:?} is not supported; use {KIND}", doc.kind),
            });
        }
        let s = doc.spec;
        let mut spec = ClusterSpec {
            name: doc.metadata.name,
            kubernetes_version: s.kubernetes_version,
            control_plane_endpoint: s.control_plane_endpoint,
            network: s.network,
            pki: s.pki,
            control_plane: s.control_plane,
            workers: s.workers,
            backend: s.backend,
            gateway: s.gateway,
            image_repository: s.image_repository,
            etcd: s.etcd,
            api_server: s.api_server,
            controller_manager: s.controller_manager,
            scheduler: s.scheduler,
            security: s.security,
            ssh: s.ssh,
        };
        let warnings = spec.validate()?;
        // A trailing `/` of a repository is accepted and dropped (one rule for every image).
        let etcd_repo = spec.etcd.image_repository.as_mut();
        for repo in std::iter::once(&mut spec.image_repository).chain(etcd_repo) {
            if let Some(trimmed) = repo.strip_suffix('/') {
                *repo = trimmed.to_owned();
            }
        }
        Ok(Parsed { spec, warnings })
    }

    /// Reads, parses and validates a `cluster.yaml` file; errors name the file.
    pub fn load(path: impl AsRef<Path>) -> Result<Parsed, Error> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_yaml(&text).map_err(|e| e.with_file(path))
    }

    /// Serializes the spec back to a `cluster.yaml` document.
    pub fn to_yaml(&self) -> String {
        serde_norway::to_string(&self.document())
            .unwrap_or_else(|e| format!("# cannot serialize: {e}\n"))
    }

    fn document(&self) -> Document {
        Document {
            api_version: API_VERSION.into(),
            kind: KIND.into(),
            metadata: Metadata {
                name: self.name.clone(),
            },
            spec: SpecFields {
                kubernetes_version: self.kubernetes_version.clone(),
                control_plane_endpoint: self.control_plane_endpoint.clone(),
                network: self.network.clone(),
                pki: self.pki.clone(),
                control_plane: self.control_plane.clone(),
                workers: self.workers.clone(),
                backend: self.backend.clone(),
                gateway: self.gateway.clone(),
                image_repository: self.image_repository.clone(),
                etcd: self.etcd.clone(),
                api_server: self.api_server.clone(),
                controller_manager: self.controller_manager.clone(),
                scheduler: self.scheduler.clone(),
                security: self.security.clone(),
                ssh: self.ssh.clone(),
            },
        }
    }

    /// The spec as a YAML value tree, for checks that walk every field.
    fn to_value(&self) -> Option<serde_norway::Value> {
        serde_norway::to_value(self.document()).ok()
    }

    /// The scheduled etcd backups: `spec.etcd.backup`; on Azure, when it is absent, the
    /// schedule of `spec.backend.azure` (`snapshotInterval`, `snapshotsKept`). `None`: no
    /// scheduled backups.
    pub fn etcd_backup(&self) -> Option<EtcdBackup> {
        if let Some(b) = &self.etcd.backup {
            return Some(b.clone());
        }
        match &self.backend {
            BackendSpec::Azure(az) => Some(EtcdBackup {
                interval: az.snapshot_interval,
                keep: az.snapshots_kept,
                dir: None,
            }),
            _ => None,
        }
    }

    /// Every node, control plane first, with its role.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeSpec, Role)> {
        self.control_plane
            .iter()
            .map(|n| (n, Role::ControlPlane))
            .chain(self.workers.iter().map(|n| (n, Role::Worker)))
    }

    /// The node with this name and its role.
    pub fn node(&self, name: &str) -> Option<(&NodeSpec, Role)> {
        self.nodes().find(|(n, _)| n.name.as_str() == name)
    }
}

/// serde's messages carry the YAML position; keep it, drop the noise.
fn clean_serde_message(path: &str, msg: &str) -> String {
    // serde_norway prefixes the path of the enclosing mapping; the path is shown already.
    let mut msg = msg;
    if let Some((prefix, rest)) = msg.split_once(": ")
        && path.starts_with(prefix)
    {
        msg = rest;
    }
    let mut msg = msg
        .replace("invalid value: string ", "")
        .replace("invalid type: ", "wrong type: ");
    if let Some(i) = msg.find("expected struct ") {
        let end = msg[i + 16..].find(' ').map_or(msg.len(), |e| i + 16 + e);
        msg.replace_range(i..end, "expected a mapping");
    }
    if msg.starts_with("invalid IP address syntax") {
        msg = msg.replacen(
            "invalid IP address syntax",
            "not an IP address; write it like 10.10.16.11 or fd00::11",
            1,
        );
    }
    msg
}

#[cfg(test)]
mod field_tests;
#[cfg(test)]
mod hardening_tests;
#[cfg(test)]
mod tests;
