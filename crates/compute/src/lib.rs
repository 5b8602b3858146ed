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
//! [`ComputeBackend`] is object-safe (`async-trait`), so a tool can choose a backend at run
//! time (`Box<dyn ComputeBackend>`). Errors carry a [`BackendErrorKind`] the sequencer acts on:
//! retry transient ones after their delay, treat `NotFound` on delete as done, stop on quota.

#![deny(missing_docs)]

#[cfg(feature = "testing")]
pub mod testing;

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The tag every resource of a cluster carries: key [`ClusterTag::KEY`], value the cluster name.
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

    /// A container group.
    pub fn container_group(
        name: impl Into<String>,
        tag: ClusterTag,
        containers: Vec<ContainerSpec>,
    ) -> Self {
        Self {
            name: name.into(),
            tag,
            kind: UnitKind::ContainerGroup(ContainerGroupSpec {
                containers,
                dns_label: None,
                volumes: Vec::new(),
            }),
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

/// Containers that run together.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContainerGroupSpec {
    /// The containers.
    pub containers: Vec<ContainerSpec>,
    /// A DNS label for a public name (ACI's `{label}.{region}.azurecontainer.io`).
    pub dns_label: Option<String>,
    /// Volumes the containers mount.
    pub volumes: Vec<VolumeSpec>,
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
}

impl fmt::Debug for ContainerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ContainerSpec")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("command", &self.command)
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("ports", &self.ports)
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
        }
    }
}

/// A volume of a container group.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VolumeSpec {
    /// Name.
    pub name: String,
    /// Where it is mounted in every container.
    pub mount_path: PathBuf,
    /// What it holds.
    pub source: VolumeSource,
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
