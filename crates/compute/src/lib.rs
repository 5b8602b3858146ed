//! The compute layer of frankenetes: what a backend must do to run a cluster's units.
//!
//! A *unit* is a machine (EC2 instance) or a container group (ACI group, or a set of local
//! processes). Every unit carries its cluster's [`ClusterTag`], so that `down` finds and deletes
//! everything a cluster created, also after a crash half-way through `up`.
//!
//! ```
//! use frankenetes_compute::{ClusterTag, ContainerSpec, UnitSpec};
//!
//! let tag = ClusterTag::new("kubelius");
//! let unit = UnitSpec::container_group(
//!     "etcd-control-01",
//!     tag.clone(),
//!     vec![ContainerSpec::new("etcd", "registry.k8s.io/etcd:3.6.6-0", ["etcd", "--name=control-01"])],
//! );
//! assert_eq!(unit.tag, tag);
//! ```
//!
//! A group with an init container, volumes and a sidecar that sees only some of them:
//!
//! ```
//! use frankenetes_compute::{
//!     ClusterTag, ContainerGroupSpec, ContainerSpec, RestartPolicy, UnitSpec, VolumeSource,
//!     VolumeSpec,
//! };
//!
//! let group = ContainerGroupSpec::new(vec![
//!     ContainerSpec::new("etcd", "registry.k8s.io/etcd:3.6.6-0", ["etcd"]).mounts(["data"]),
//!     // the sidecar sees the share, not etcd's data
//!     ContainerSpec::new("snapshot", "tools", ["snapshot.sh"]).mounts(["snapshots"]),
//! ])
//! .init_container(ContainerSpec::new("restore", "tools", ["restore.sh"]))
//! .volume(VolumeSpec::new("data", "/var/lib/etcd", VolumeSource::EmptyDir))
//! .volume(VolumeSpec::new(
//!     "snapshots",
//!     "/snapshots",
//!     VolumeSource::FileShare { share: "s".into(), account: "a".into() },
//! ))
//! .restart_policy(RestartPolicy::Always);
//! // the init container mounts every volume (its `mounts` is `None`)
//! assert_eq!(group.mounted_volumes(&group.init_containers[0]).unwrap().len(), 2);
//! assert_eq!(group.mounted_volumes(&group.containers[1]).unwrap()[0].name, "snapshots");
//! let unit = UnitSpec::from_group("etcd-0", ClusterTag::new("kubelius"), group);
//! # let _ = unit;
//! ```
//!
//! [`ComputeBackend`] is object-safe (`async-trait`), so a tool can choose a backend at run
//! time (`Box<dyn ComputeBackend>`). Errors carry a [`BackendErrorKind`] the sequencer acts on:
//! retry transient ones after their delay, treat `NotFound` on delete as done, stop on quota.

#![deny(missing_docs)]

pub mod platform;
#[cfg(feature = "testing")]
pub mod testing;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The tag every resource of a cluster carries: key [`ClusterTag::KEY`], value the cluster name.
///
/// A backend whose provider does not accept [`ClusterTag::KEY`] as a tag name writes it in a
/// form the provider accepts, always the same one, and reads only that form back: Azure tag
/// names may not contain `/`, so `frankenetes-cloud-azure` writes `frankenetes.dev-cluster`
/// (its `AZURE_TAG_KEY`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterTag {
    /// The cluster's name.
    pub cluster: String,
}

impl ClusterTag {
    /// The tag key.
    pub const KEY: &'static str = "frankenetes.dev/cluster";

    /// The tag of a cluster.
    pub fn new(cluster: impl Into<String>) -> Self {
        Self {
            cluster: cluster.into(),
        }
    }
}

impl fmt::Display for ClusterTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", Self::KEY, self.cluster)
    }
}

/// A backend's identifier of a unit (an instance id, an ARM resource id, a local name).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UnitId(pub String);

impl fmt::Display for UnitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What to create.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnitSpec {
    /// The unit's name, unique within its cluster.
    pub name: String,
    /// The cluster's tag.
    pub tag: ClusterTag,
    /// A machine or a container group.
    pub kind: UnitKind,
}

impl UnitSpec {
    /// A machine.
    pub fn machine(name: impl Into<String>, tag: ClusterTag, machine: MachineSpec) -> Self {
        Self {
            name: name.into(),
            tag,
            kind: UnitKind::Machine(machine),
        }
    }

    /// A container group of `containers` only: no init container, no volume, restart
    /// [`RestartPolicy::Always`] (see [`UnitSpec::from_group`] for the rest).
    pub fn container_group(
        name: impl Into<String>,
        tag: ClusterTag,
        containers: Vec<ContainerSpec>,
    ) -> Self {
        Self::from_group(name, tag, ContainerGroupSpec::new(containers))
    }

    /// A container group built with [`ContainerGroupSpec`]'s builder.
    pub fn from_group(name: impl Into<String>, tag: ClusterTag, group: ContainerGroupSpec) -> Self {
        Self {
            name: name.into(),
            tag,
            kind: UnitKind::ContainerGroup(group),
        }
    }
}

/// A machine or a container group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum UnitKind {
    /// A virtual machine.
    Machine(MachineSpec),
    /// Containers sharing a network namespace (an ACI group; local processes).
    ContainerGroup(ContainerGroupSpec),
}

/// A virtual machine.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MachineSpec {
    /// The size (`t4g.small`).
    pub size: String,
    /// The image (an AMI id), or `None` for the backend's default.
    pub image: Option<String>,
    /// User data, e.g. an Ignition config. Opaque to the backend; may hold secrets.
    pub user_data: Vec<u8>,
    /// The fixed private address, if any.
    pub private_ip: Option<IpAddr>,
}

impl fmt::Debug for MachineSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MachineSpec")
            .field("size", &self.size)
            .field("image", &self.image)
            .field(
                "user_data",
                &format_args!("<{} bytes>", self.user_data.len()),
            )
            .field("private_ip", &self.private_ip)
            .finish()
    }
}

impl MachineSpec {
    /// A machine of a size.
    pub fn new(size: impl Into<String>) -> Self {
        Self {
            size: size.into(),
            image: None,
            user_data: Vec::new(),
            private_ip: None,
        }
    }
}

/// Containers that run together, sharing a network namespace and the group's volumes.
///
/// The group's [`init_containers`](Self::init_containers) run first, one after the other, each
/// to completion (a failed one fails the group); then its
/// [`containers`](Self::containers) start together and are restarted as
/// [`restart_policy`](Self::restart_policy) says. Each container mounts the volumes its
/// [`ContainerSpec::mounts`] names, or every volume of the group when that is `None`.
/// A backend that cannot do all of this returns [`BackendErrorKind::Unsupported`] rather than
/// run the group differently.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerGroupSpec {
    /// Containers run to completion, in order, before [`containers`](Self::containers)
    /// start (ACI init containers). Backends may ignore their ports and sizes (ACI does).
    pub init_containers: Vec<ContainerSpec>,
    /// The containers (at least one).
    pub containers: Vec<ContainerSpec>,
    /// A DNS label for a public name (ACI's `{label}.{region}.azurecontainer.io`).
    pub dns_label: Option<String>,
    /// Volumes the containers mount (see [`ContainerSpec::mounts`]).
    pub volumes: Vec<VolumeSpec>,
    /// When the containers are restarted.
    pub restart_policy: RestartPolicy,
}

impl ContainerGroupSpec {
    /// A group of `containers`: no init container, no volume, no DNS label, restart
    /// [`RestartPolicy::Always`].
    pub fn new(containers: Vec<ContainerSpec>) -> Self {
        Self {
            init_containers: Vec::new(),
            containers,
            dns_label: None,
            volumes: Vec::new(),
            restart_policy: RestartPolicy::default(),
        }
    }

    /// Adds an init container, run after those added before it.
    #[must_use]
    pub fn init_container(mut self, container: ContainerSpec) -> Self {
        self.init_containers.push(container);
        self
    }

    /// Adds a volume.
    #[must_use]
    pub fn volume(mut self, volume: VolumeSpec) -> Self {
        self.volumes.push(volume);
        self
    }

    /// Sets the restart policy.
    #[must_use]
    pub fn restart_policy(mut self, policy: RestartPolicy) -> Self {
        self.restart_policy = policy;
        self
    }

    /// Sets the DNS label.
    #[must_use]
    pub fn dns_label(mut self, label: impl Into<String>) -> Self {
        self.dns_label = Some(label.into());
        self
    }

    /// The volumes `container` (one of this group's) mounts, in the group's order: those its
    /// [`ContainerSpec::mounts`] names, or all of them when that is `None`.
    ///
    /// Fails (kind [`BackendErrorKind::Other`]) when it names a volume the group does not
    /// have, so that a typo does not silently leave a container without its data.
    pub fn mounted_volumes<'a>(
        &'a self,
        container: &ContainerSpec,
    ) -> Result<Vec<&'a VolumeSpec>, BackendError> {
        let Some(names) = &container.mounts else {
            return Ok(self.volumes.iter().collect());
        };
        if let Some(missing) = names
            .iter()
            .find(|n| !self.volumes.iter().any(|v| &v.name == *n))
        {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                format!(
                    "container {}: mounts volume {missing:?}, which its group does not have; add it with ContainerGroupSpec::volume or fix ContainerSpec::mounts",
                    container.name
                ),
            ));
        }
        Ok(self
            .volumes
            .iter()
            .filter(|v| names.contains(&v.name))
            .collect())
    }
}

/// When a group's containers are restarted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RestartPolicy {
    /// Whenever they exit (a control plane's components).
    #[default]
    Always,
    /// When they exit with a non-zero status.
    OnFailure,
    /// Never: a container that exits stays exited (one-shot jobs).
    Never,
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RestartPolicy::Always => "Always",
            RestartPolicy::OnFailure => "OnFailure",
            RestartPolicy::Never => "Never",
        })
    }
}

/// One container: an image and a command.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerSpec {
    /// Name.
    pub name: String,
    /// Image reference (ignored by the local backend, which runs `command` from the host).
    pub image: String,
    /// The command, executable first.
    pub command: Vec<String>,
    /// Environment variables (values may be secret: never logged).
    pub env: BTreeMap<String, String>,
    /// TCP ports it listens on.
    pub ports: Vec<u16>,
    /// CPU requested, thousandths of a core.
    pub cpu_millis: u32,
    /// Memory requested, MiB.
    pub memory_mib: u32,
    /// The names of the group's volumes it mounts; `None` mounts every volume of the group.
    /// `Some(vec![])` mounts none. Set it with [`ContainerSpec::mounts`].
    pub mounts: Option<Vec<String>>,
}

impl fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerSpec")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("command", &self.command)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("ports", &self.ports)
            .field("mounts", &self.mounts)
            .finish_non_exhaustive()
    }
}

impl ContainerSpec {
    /// A container.
    pub fn new(
        name: impl Into<String>,
        image: impl Into<String>,
        command: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            command: command.into_iter().map(Into::into).collect(),
            env: BTreeMap::new(),
            ports: Vec::new(),
            cpu_millis: 500,
            memory_mib: 512,
            mounts: None,
        }
    }

    /// Mounts only the group's volumes named here (by [`VolumeSpec::name`]), not every one:
    /// e.g. a snapshot sidecar that sees the share and the client certificates, not etcd's
    /// data.
    #[must_use]
    pub fn mounts(mut self, volumes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.mounts = Some(volumes.into_iter().map(Into::into).collect());
        self
    }
}

/// A volume of a container group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VolumeSpec {
    /// Name, unique in its group (what [`ContainerSpec::mounts`] refers to).
    pub name: String,
    /// Where it is mounted in every container that mounts it.
    pub mount_path: PathBuf,
    /// What it holds.
    pub source: VolumeSource,
}

impl VolumeSpec {
    /// A volume named `name`, mounted at `mount_path`, holding `source`.
    pub fn new(
        name: impl Into<String>,
        mount_path: impl Into<PathBuf>,
        source: VolumeSource,
    ) -> Self {
        Self {
            name: name.into(),
            mount_path: mount_path.into(),
            source,
        }
    }
}

/// What a volume holds.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VolumeSource {
    /// Empty at start, on the group's local storage (etcd's data).
    EmptyDir,
    /// Files given at creation (certificates, kubeconfigs): secret.
    Secret(BTreeMap<String, Vec<u8>>),
    /// A network file share (Azure Files).
    FileShare {
        /// Share name.
        share: String,
        /// Storage account.
        account: String,
    },
}

impl fmt::Debug for VolumeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VolumeSource::EmptyDir => f.write_str("EmptyDir"),
            VolumeSource::Secret(files) => write!(
                f,
                "Secret({:?}, <redacted>)",
                files.keys().collect::<Vec<_>>()
            ),
            VolumeSource::FileShare { share, account } => write!(f, "FileShare({account}/{share})"),
        }
    }
}

/// What a backend reports about a unit.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unit {
    /// The backend's id.
    pub id: UnitId,
    /// The unit's name.
    pub name: String,
    /// Its cluster.
    pub tag: ClusterTag,
    /// Where it is in its life.
    pub state: UnitState,
    /// Addresses it can be reached at.
    pub addresses: Vec<IpAddr>,
    /// Backend details worth showing (PIDs, FQDN, instance type).
    pub details: BTreeMap<String, String>,
    /// The command each container runs, as the backend started it, by container name; empty
    /// where the backend does not report it. The sequencer compares it with what the spec
    /// renders now to restart changed units one at a time (see `UnitSpec`).
    pub commands: BTreeMap<String, Vec<String>>,
}

impl Unit {
    /// A unit with no addresses or details.
    pub fn new(id: UnitId, name: impl Into<String>, tag: ClusterTag, state: UnitState) -> Self {
        Self {
            id,
            name: name.into(),
            tag,
            state,
            addresses: Vec::new(),
            details: BTreeMap::new(),
            commands: BTreeMap::new(),
        }
    }
}

/// A unit's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnitState {
    /// Being created or started.
    Pending,
    /// Running.
    Running,
    /// Stopped (kept, not billed for compute where the backend allows it).
    Stopped,
    /// Failed.
    Failed,
}

impl fmt::Display for UnitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            UnitState::Pending => "pending",
            UnitState::Running => "running",
            UnitState::Stopped => "stopped",
            UnitState::Failed => "failed",
        })
    }
}

/// What kind of failure, so that the sequencer can act on it without parsing messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackendErrorKind {
    /// The unit does not exist.
    NotFound,
    /// A unit of that name exists but belongs to something else.
    AlreadyExists,
    /// A quota or limit stops it; retrying will not help.
    QuotaExceeded,
    /// Throttling, a timeout, a 5xx: retry after `retry_after`.
    Transient,
    /// The backend cannot do this (a machine on the local backend).
    Unsupported,
    /// What was asked is wrong for this backend (a setting, a name, an address): the user
    /// must change it (the CLI exits 2).
    Invalid,
    /// Anything else.
    Other,
}

/// A backend failure.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
#[non_exhaustive]
pub struct BackendError {
    /// What kind.
    pub kind: BackendErrorKind,
    /// What happened, naming the unit or resource (and the provider's code, if any).
    pub message: String,
    /// For transient errors: how long to wait before retrying, when the backend knows.
    pub retry_after: Option<Duration>,
}

impl BackendError {
    /// An error of a kind.
    pub fn new(kind: BackendErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A transient error to retry after `delay`.
    pub fn transient(message: impl Into<String>, delay: Option<Duration>) -> Self {
        Self {
            kind: BackendErrorKind::Transient,
            message: message.into(),
            retry_after: delay,
        }
    }

    /// Whether retrying may help.
    pub fn is_retryable(&self) -> bool {
        self.kind == BackendErrorKind::Transient
    }
}

pub use platform::{
    ComponentSpec, FileSpec, Gate, NodeRole, NodeWork, OnProgress, Operation, Outputs, Placement,
    Platform, PlatformPlan, Progress, Resource, Wave, Workload,
};

/// A place units run: local processes, EC2, ACI, or your own.
///
/// `create` is idempotent: a unit with the same name and tag that exists is adopted and
/// returned, not duplicated; one with the same name and another tag is `AlreadyExists`.
/// `delete` of a unit that is gone succeeds or returns `NotFound`.
#[async_trait::async_trait]
pub trait ComputeBackend: Send + Sync {
    /// A short name for messages (`local`, `aws`, `azure`).
    fn name(&self) -> &str;

    /// Creates (or adopts) a unit and starts it.
    async fn create(&self, spec: &UnitSpec) -> Result<Unit, BackendError>;

    /// Describes a unit.
    async fn describe(&self, id: &UnitId) -> Result<Unit, BackendError>;

    /// Every unit carrying the tag.
    async fn list(&self, tag: &ClusterTag) -> Result<Vec<Unit>, BackendError>;

    /// Deletes a unit.
    async fn delete(&self, id: &UnitId) -> Result<(), BackendError>;

    /// Stops a unit, keeping it (and its data) for [`ComputeBackend::start`].
    async fn stop(&self, id: &UnitId) -> Result<(), BackendError> {
        Err(BackendError::new(
            BackendErrorKind::Unsupported,
            format!("{} cannot stop {id}", self.name()),
        ))
    }

    /// Starts a stopped unit.
    async fn start(&self, id: &UnitId) -> Result<Unit, BackendError> {
        Err(BackendError::new(
            BackendErrorKind::Unsupported,
            format!("{} cannot start {id}", self.name()),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group() -> ContainerGroupSpec {
        ContainerGroupSpec::new(vec![
            ContainerSpec::new("etcd", "etcd", ["etcd"]).mounts(["pki", "data"]),
            ContainerSpec::new("sidecar", "tools", ["sh"]).mounts(["snapshots", "pki"]),
            ContainerSpec::new("none", "tools", ["sh"]).mounts(Vec::<String>::new()),
        ])
        .init_container(ContainerSpec::new("restore", "tools", ["sh"]))
        .init_container(ContainerSpec::new("check", "tools", ["sh"]))
        .volume(VolumeSpec::new(
            "pki",
            "/pki",
            VolumeSource::Secret(BTreeMap::from([("k".into(), b"s3cret".to_vec())])),
        ))
        .volume(VolumeSpec::new("data", "/data", VolumeSource::EmptyDir))
        .volume(VolumeSpec::new(
            "snapshots",
            "/snapshots",
            VolumeSource::FileShare {
                share: "s".into(),
                account: "a".into(),
            },
        ))
    }

    fn names(vols: &[&VolumeSpec]) -> Vec<String> {
        vols.iter().map(|v| v.name.clone()).collect()
    }

    #[test]
    fn mounts_narrow_in_group_order_and_none_means_all() {
        let g = group();
        assert_eq!(
            names(&g.mounted_volumes(&g.containers[0]).unwrap()),
            ["pki", "data"]
        );
        // the group's order, not the order mounts names them
        assert_eq!(
            names(&g.mounted_volumes(&g.containers[1]).unwrap()),
            ["pki", "snapshots"]
        );
        assert!(g.mounted_volumes(&g.containers[2]).unwrap().is_empty());
        assert_eq!(
            names(&g.mounted_volumes(&g.init_containers[0]).unwrap()),
            ["pki", "data", "snapshots"]
        );
        assert_eq!(g.volumes[1].mount_path, PathBuf::from("/data"));
    }

    #[test]
    fn unknown_mount_is_an_error_naming_container_and_volume() {
        let g = group();
        let c = ContainerSpec::new("typo", "tools", ["sh"]).mounts(["dta"]);
        let e = g.mounted_volumes(&c).unwrap_err();
        assert_eq!(e.kind, BackendErrorKind::Other);
        assert!(
            e.message.contains("typo") && e.message.contains("\"dta\""),
            "{e}"
        );
    }

    #[test]
    fn builder_keeps_order_and_defaults() {
        let g = group();
        assert_eq!(g.restart_policy, RestartPolicy::Always);
        assert_eq!(
            g.init_containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["restore", "check"]
        );
        let g = g.restart_policy(RestartPolicy::Never).dns_label("x");
        assert_eq!(g.restart_policy.to_string(), "Never");
        assert_eq!(g.dns_label.as_deref(), Some("x"));
        let u = UnitSpec::container_group("u", ClusterTag::new("c"), vec![]);
        let UnitKind::ContainerGroup(plain) = &u.kind else {
            panic!("a group")
        };
        assert_eq!(plain, &ContainerGroupSpec::new(vec![]));
        // secret volume contents stay out of Debug
        let debug = format!("{:?}", group());
        assert!(
            debug.contains("<redacted>") && !debug.contains("115, 51"),
            "{debug}"
        );
    }
}
