//! The deployment side of a backend: how a cluster — a [`Workload`] made by the deployment
//! API (`frankenetes-bootstrap`) from the spec, the PKI and the rendered bundles — becomes
//! units and the infrastructure around them. Each backend crate implements [`Platform`]; the
//! deployment API runs the same steps on every one:
//!
//! 1. [`Platform::plan`] (offline: what `up` would create, and what it costs);
//! 2. [`Platform::provision`] (what must exist before the first unit: a network, a share);
//! 3. the [`Platform::waves`], in order: each wave's units created through
//!    [`Platform::backend`], then its [`Gate`] awaited;
//! 4. [`Platform::complete`] (what needs every unit: a load balancer's targets);
//! 5. later: [`Platform::inventory`], [`Platform::teardown`], stop and start.
//!
//! Inputs are backend-neutral (files, Ignition bytes, command lines), so backend crates need
//! neither the PKI nor the manifests crate.

use std::fmt;
use std::net::IpAddr;

use crate::{BackendError, BackendErrorKind, ClusterTag, ComputeBackend, UnitSpec, UnitState};

/// What a node is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NodeRole {
    /// Runs etcd and the control-plane components.
    ControlPlane,
    /// Runs the kubelet and pods.
    Worker,
    /// The NAT/VPN gateway in front of a private network.
    Gateway,
}

impl fmt::Display for NodeRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NodeRole::ControlPlane => "control plane",
            NodeRole::Worker => "worker",
            NodeRole::Gateway => "gateway",
        })
    }
}

/// One file of a node (its contents are zeroized when dropped: some are keys).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileSpec {
    /// Absolute path on the machine (`/etc/kubernetes/pki/etcd/server.key`).
    pub path: String,
    /// Contents.
    pub contents: zeroize::Zeroizing<Vec<u8>>,
    /// Mode (0600 for secrets).
    pub mode: u32,
}

impl FileSpec {
    /// A file.
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self {
            path: path.into(),
            contents: zeroize::Zeroizing::new(contents.into()),
            mode,
        }
    }
}

impl fmt::Debug for FileSpec {
    /// Path, mode and size: never the contents.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "FileSpec({}, {:o}, {} bytes)",
            self.path,
            self.mode,
            self.contents.len()
        )
    }
}

/// A process a node runs: a static pod's container, or the same command as a plain process.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ComponentSpec {
    /// `etcd`, `kube-apiserver`, `kube-controller-manager`, `kube-scheduler`, `kubelet`, ...
    pub name: String,
    /// The container image that runs it.
    pub image: String,
    /// The command line: the binary's name first (`kube-apiserver`), then its arguments.
    pub command: Vec<String>,
    /// TCP ports it listens on.
    pub ports: Vec<u16>,
}

impl ComponentSpec {
    /// A component.
    pub fn new(name: impl Into<String>, image: impl Into<String>, command: Vec<String>) -> Self {
        Self {
            name: name.into(),
            image: image.into(),
            command,
            ports: Vec::new(),
        }
    }
}

/// One node of a cluster, as every kind of backend needs it: machines boot from
/// [`ignition`](Self::ignition); container and process backends run its
/// [`components`](Self::components) with its [`files`](Self::files).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeWork {
    /// The node's name (`control-01`).
    pub name: String,
    /// What it is for.
    pub role: NodeRole,
    /// Its address in the cluster's network.
    pub ip: IpAddr,
    /// The whole node as one Ignition v3 config (holds its keys), for a platform whose
    /// [`Placement`] is `Machine`; empty on `Host`, where no machine boots.
    pub ignition: zeroize::Zeroizing<Vec<u8>>,
    /// Its files, by absolute path.
    pub files: Vec<FileSpec>,
    /// What it runs, control plane first (etcd, kube-apiserver, ...).
    pub components: Vec<ComponentSpec>,
}

impl NodeWork {
    /// A node with no files, components or config yet.
    pub fn new(name: impl Into<String>, role: NodeRole, ip: IpAddr) -> Self {
        Self {
            name: name.into(),
            role,
            ip,
            ignition: zeroize::Zeroizing::new(Vec::new()),
            files: Vec::new(),
            components: Vec::new(),
        }
    }

    /// A file by absolute path.
    pub fn file(&self, path: &str) -> Option<&FileSpec> {
        self.files.iter().find(|f| f.path == path)
    }

    /// A component by name.
    pub fn component(&self, name: &str) -> Option<&ComponentSpec> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// A cluster as a backend runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Workload {
    /// The tag every resource carries.
    pub tag: ClusterTag,
    /// The Kubernetes release the components are (`v1.35.0`): binaries a platform runs
    /// itself must be this one.
    pub kubernetes_version: String,
    /// Every node (control planes first, then workers, then the gateway if any).
    pub nodes: Vec<NodeWork>,
}

impl Workload {
    /// A workload of `nodes`.
    pub fn new(
        tag: ClusterTag,
        kubernetes_version: impl Into<String>,
        nodes: Vec<NodeWork>,
    ) -> Self {
        Self {
            tag,
            kubernetes_version: kubernetes_version.into(),
            nodes,
        }
    }

    /// The nodes of a role, in order.
    pub fn nodes_of(&self, role: NodeRole) -> impl Iterator<Item = &NodeWork> {
        self.nodes.iter().filter(move |n| n.role == role)
    }

    /// A node by name.
    pub fn node(&self, name: &str) -> Option<&NodeWork> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// What the deployment API waits for after a wave, before the next one starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Gate {
    /// Every unit of the wave reports running.
    Running,
    /// etcd: every member started, every endpoint answers, a probe key written and read back
    /// (checked from here when the cluster is [reachable](Platform::reachable), else
    /// [`Gate::Running`]).
    EtcdHealthy,
    /// Every apiserver's `/readyz` answers ok (then the day-one objects are applied).
    ApiServerReady,
    /// The controller-manager's and the scheduler's leader leases are held.
    Leases,
}

/// Units started together, and what to wait for before the next wave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Wave {
    /// What the wave starts (`etcd`, `apiservers`, `machines`).
    pub name: String,
    /// Its units.
    pub units: Vec<UnitSpec>,
    /// What must hold before the next wave.
    pub gate: Gate,
}

impl Wave {
    /// A wave.
    pub fn new(name: impl Into<String>, units: Vec<UnitSpec>, gate: Gate) -> Self {
        Self {
            name: name.into(),
            units,
            gate,
        }
    }
}

/// A resource a platform created or would create (a unit, a network, a share).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Resource {
    /// Its kind (`container group`, `instance`, `vpc`, `file share`, `process group`).
    pub kind: String,
    /// Its name (or id when it has no name).
    pub name: String,
    /// The provider's id, once it exists.
    pub id: Option<String>,
    /// Its state, when known (`running`, `stopped`, `available`).
    pub state: Option<String>,
    /// Details worth showing (FQDN, size, PID, log file).
    pub detail: String,
    /// Estimated cost while it exists, USD per hour, when priced.
    pub usd_per_hour: Option<f64>,
}

impl Resource {
    /// A resource of a kind and name.
    pub fn new(kind: impl Into<String>, name: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
            id: None,
            state: None,
            detail: String::new(),
            usd_per_hour: None,
        }
    }

    /// With an id.
    #[must_use]
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// With a state.
    #[must_use]
    pub fn state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// With details.
    #[must_use]
    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// With a price.
    #[must_use]
    pub fn usd_per_hour(mut self, usd: f64) -> Self {
        self.usd_per_hour = Some(usd);
        self
    }
}

/// What `up` would create, offline.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct PlatformPlan {
    /// Resources, in creation order.
    pub resources: Vec<Resource>,
    /// Things the user should know before going on (an instance type too small, a price
    /// that is an estimate).
    pub warnings: Vec<String>,
    /// Where the prices come from, and when they were read.
    pub price_source: Option<String>,
    /// Plain information (which binary runs, from where).
    pub notes: Vec<String>,
}

impl PlatformPlan {
    /// The sum of the priced resources, USD per hour.
    pub fn usd_per_hour(&self) -> f64 {
        // Not `sum()`: a float sum of nothing is -0.0, which prints as "-0.0000".
        self.resources
            .iter()
            .filter_map(|r| r.usd_per_hour)
            .fold(0.0, |sum, usd| sum + usd)
    }
}

/// Progress of a platform step: one type for every backend.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// A resource was found (already there: adopted).
    Found {
        /// Its kind.
        kind: String,
        /// Its name or id.
        name: String,
    },
    /// A resource was created.
    Created {
        /// Its kind.
        kind: String,
        /// Its name or id.
        name: String,
    },
    /// A resource was deleted.
    Deleted {
        /// Its kind.
        kind: String,
        /// Its name or id.
        name: String,
    },
    /// Waiting for something; what was seen last.
    Waiting(String),
    /// A retry after a transient error.
    Retrying(String),
    /// Plain information.
    Info(String),
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Found { kind, name } => write!(f, "found {kind} {name}"),
            Progress::Created { kind, name } => write!(f, "created {kind} {name}"),
            Progress::Deleted { kind, name } => write!(f, "deleted {kind} {name}"),
            Progress::Waiting(w) => write!(f, "waiting: {w}"),
            Progress::Retrying(w) => write!(f, "retrying: {w}"),
            Progress::Info(i) => f.write_str(i),
        }
    }
}

/// Where progress goes.
pub type OnProgress<'a> = &'a (dyn Fn(Progress) + Send + Sync);

/// What [`Platform::complete`] found out that the user needs (an Elastic IP, an FQDN).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outputs {
    /// Named values, in order (`gateway public IP` → `203.0.113.7`).
    pub values: Vec<(String, String)>,
    /// The public `host:port` of the VPN gateway, when there is one (written as the
    /// `Endpoint` of the peers' WireGuard configurations).
    pub vpn_endpoint: Option<String>,
}

/// An operation a platform may not support (each says why in [`Platform::supports`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Stop every unit keeping its data, and start them again.
    PauseResume,
    /// Stream an etcd snapshot from here.
    Snapshot,
    /// Rebuild etcd's members from a snapshot file.
    Restore,
}

/// Where a node's files and data are, which decides the paths its command lines name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Placement {
    /// Each node is a machine (or container group) of its own: files at their absolute paths
    /// (`/etc/kubernetes/pki/...`), data at `/var/lib/etcd`.
    Machine,
    /// Every node shares this host: files stay in the node's overlay in the cluster directory
    /// (`<dir>/bundle/nodes/<name>/...`), data under `<dir>/data/<name>/`.
    Host,
}

/// How a cluster becomes units and infrastructure on one backend. Implemented by each backend
/// crate (local processes in `frankenetes-bootstrap`, ACI in `frankenetes-cloud-azure`, the
/// AWS lab in `frankenetes-cloud-aws`); driven by the deployment API.
#[async_trait::async_trait]
pub trait Platform: Send + Sync {
    /// The backend that runs the units.
    fn backend(&self) -> &dyn ComputeBackend;

    /// A short name for messages (`local`, `aws`, `azure`).
    fn name(&self) -> &str {
        self.backend().name()
    }

    /// Whether the cluster's etcd and apiservers can be reached from this machine (so the
    /// deployment API checks health itself), or only from inside its network.
    fn reachable(&self) -> bool;

    /// Where files and data are ([`Placement::Machine`] unless every node shares this host).
    fn placement(&self) -> Placement {
        Placement::Machine
    }

    /// The etcd release the units will run, when the platform decides it (the local platform
    /// runs the `etcd` it finds; `3.4.30`); `None`: the image's, from the spec.
    fn etcd_version(&self) -> Result<Option<String>, BackendError> {
        Ok(None)
    }

    /// When the platform boots machines from their Ignition config and stock images that
    /// lack the Kubernetes node binaries (Fedora CoreOS has no kubelet): the machines' CPU
    /// architecture by Kubernetes' name (`amd64`, `arm64`), so each config downloads the
    /// official binaries for it, pinned by SHA-256. `None` (the default): the nodes have the
    /// binaries already (local processes, containers, machines an operator installs).
    fn node_binaries_arch(&self) -> Option<&'static str> {
        None
    }

    /// What `up` would create and what it costs. Offline: no call is made.
    fn plan(&self, workload: &Workload) -> Result<PlatformPlan, BackendError>;

    /// The units, in the waves they start in.
    fn waves(&self, workload: &Workload) -> Result<Vec<Wave>, BackendError>;

    /// Checks the cluster's shape before anything is made or written: offline, on a
    /// workload whose nodes have names, roles and addresses but no files, components or
    /// configs yet (an address this platform cannot use, a binary of the wrong release).
    /// A failure here is the user's to fix ([`BackendErrorKind::Invalid`]).
    fn validate(&self, _skeleton: &Workload) -> Result<(), BackendError> {
        Ok(())
    }

    /// Checks what can be checked before anything is created (read-only calls allowed: an
    /// image that exists, a port that is free); `up` creates nothing when this fails.
    async fn preflight(&self, _workload: &Workload) -> Result<(), BackendError> {
        Ok(())
    }

    /// Creates (or finds) what must exist before the first unit. Idempotent.
    async fn provision(
        &self,
        _workload: &Workload,
        _on: OnProgress<'_>,
    ) -> Result<(), BackendError> {
        Ok(())
    }

    /// Creates (or finds) what needs every unit (load balancer targets). Idempotent.
    async fn complete(
        &self,
        _workload: &Workload,
        _on: OnProgress<'_>,
    ) -> Result<Outputs, BackendError> {
        Ok(Outputs::default())
    }

    /// The health of running units only this platform knows how to check (a local worker's
    /// containerd, kubelet and node), by unit name: `Ok(what was seen)` or `Err(the problem)`.
    /// `status` shows it; units left out are not checked here. Default: none.
    async fn unit_health(
        &self,
        _tag: &ClusterTag,
        _running: &[String],
    ) -> Vec<(String, Result<String, String>)> {
        Vec::new()
    }

    /// Everything of the cluster that exists, units included, with states: what `status`
    /// shows and what `down` would delete. Read-only.
    async fn inventory(&self, tag: &ClusterTag) -> Result<Vec<Resource>, BackendError> {
        Ok(self
            .backend()
            .list(tag)
            .await?
            .into_iter()
            .map(|u| {
                Resource::new("unit", u.name.clone())
                    .id(u.id.0.clone())
                    .state(u.state.to_string())
            })
            .collect())
    }

    /// Deletes everything of the cluster (units first, last wave first), then what
    /// [`provision`](Self::provision) made; `purge` also deletes what holds data outside the
    /// units (a snapshot share). Returns what is left afterwards (empty when clean).
    async fn teardown(
        &self,
        tag: &ClusterTag,
        _purge: bool,
        on: OnProgress<'_>,
    ) -> Result<Vec<Resource>, BackendError> {
        delete_units(self.backend(), tag, on).await?;
        self.inventory(tag).await
    }

    /// Whether `op` is possible here; `Err` says why not and what to do instead.
    fn supports(&self, op: Operation) -> Result<(), BackendError> {
        Err(BackendError::new(
            BackendErrorKind::Unsupported,
            format!("{}: {op:?} is not supported", self.name()),
        ))
    }

    /// The control-plane nodes whose etcd data is gone (a wiped disk, a replaced machine).
    /// When every member lost it, `resume` restores them all from a snapshot; when a quorum
    /// kept theirs, the sequencer re-joins the others as new members (etcd's runtime
    /// reconfiguration). Read-only.
    fn members_without_data(&self, _workload: &Workload) -> Result<Vec<String>, BackendError> {
        Ok(Vec::new())
    }

    /// Rebuilds the etcd data of `members` (every control plane when empty) from the snapshot
    /// `file` (already verified by the caller), with the names, peer URLs and data directories
    /// of the workload's etcd command lines. Units must be stopped.
    async fn restore(
        &self,
        _workload: &Workload,
        _file: &std::path::Path,
        _members: &[String],
        _on: OnProgress<'_>,
    ) -> Result<(), BackendError> {
        Err(BackendError::new(
            BackendErrorKind::Unsupported,
            format!("{}: restore is not supported", self.name()),
        ))
    }

    /// Runs before the units are stopped by `pause` (a final snapshot to a share).
    async fn before_pause(
        &self,
        _workload: &Workload,
        _on: OnProgress<'_>,
    ) -> Result<(), BackendError> {
        Ok(())
    }
}

/// Deletes every unit carrying `tag`, in reverse name order of their waves as listed (later
/// waves first is the caller's job when it matters; this deletes the listing's reverse).
pub async fn delete_units(
    backend: &dyn ComputeBackend,
    tag: &ClusterTag,
    on: OnProgress<'_>,
) -> Result<Vec<String>, BackendError> {
    let mut removed = Vec::new();
    for u in backend.list(tag).await?.into_iter().rev() {
        match backend.delete(&u.id).await {
            Ok(()) => {
                on(Progress::Deleted {
                    kind: "unit".into(),
                    name: u.name.clone(),
                });
                removed.push(u.name);
            }
            Err(e) if e.kind == BackendErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// Whether a state counts as up for [`Gate::Running`].
pub fn is_up(state: UnitState) -> bool {
    state == UnitState::Running
}

/// A boxed platform is a platform: a tool picks its backend at run time
/// (`Cluster<Box<dyn Platform>>`).
#[async_trait::async_trait]
impl Platform for Box<dyn Platform> {
    fn backend(&self) -> &dyn ComputeBackend {
        (**self).backend()
    }
    fn name(&self) -> &str {
        (**self).name()
    }
    fn reachable(&self) -> bool {
        (**self).reachable()
    }
    fn placement(&self) -> Placement {
        (**self).placement()
    }
    fn etcd_version(&self) -> Result<Option<String>, BackendError> {
        (**self).etcd_version()
    }
    fn plan(&self, w: &Workload) -> Result<PlatformPlan, BackendError> {
        (**self).plan(w)
    }
    fn waves(&self, w: &Workload) -> Result<Vec<Wave>, BackendError> {
        (**self).waves(w)
    }
    fn validate(&self, w: &Workload) -> Result<(), BackendError> {
        (**self).validate(w)
    }
    async fn preflight(&self, w: &Workload) -> Result<(), BackendError> {
        (**self).preflight(w).await
    }
    async fn provision(&self, w: &Workload, on: OnProgress<'_>) -> Result<(), BackendError> {
        (**self).provision(w, on).await
    }
    async fn complete(&self, w: &Workload, on: OnProgress<'_>) -> Result<Outputs, BackendError> {
        (**self).complete(w, on).await
    }
    async fn unit_health(
        &self,
        tag: &ClusterTag,
        running: &[String],
    ) -> Vec<(String, Result<String, String>)> {
        (**self).unit_health(tag, running).await
    }
    async fn inventory(&self, tag: &ClusterTag) -> Result<Vec<Resource>, BackendError> {
        (**self).inventory(tag).await
    }
    async fn teardown(
        &self,
        tag: &ClusterTag,
        purge: bool,
        on: OnProgress<'_>,
    ) -> Result<Vec<Resource>, BackendError> {
        (**self).teardown(tag, purge, on).await
    }
    fn supports(&self, op: Operation) -> Result<(), BackendError> {
        (**self).supports(op)
    }
    fn members_without_data(&self, w: &Workload) -> Result<Vec<String>, BackendError> {
        (**self).members_without_data(w)
    }
    async fn restore(
        &self,
        w: &Workload,
        file: &std::path::Path,
        members: &[String],
        on: OnProgress<'_>,
    ) -> Result<(), BackendError> {
        (**self).restore(w, file, members, on).await
    }
    async fn before_pause(&self, w: &Workload, on: OnProgress<'_>) -> Result<(), BackendError> {
        (**self).before_pause(w, on).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_with_nothing_priced_costs_zero_not_minus_zero() {
        let mut plan = PlatformPlan::default();
        plan.resources.push(Resource::new("process", "etcd"));
        assert_eq!(format!("{:.4}", plan.usd_per_hour()), "0.0000");
        plan.resources
            .push(Resource::new("instance", "control-01").usd_per_hour(0.0188));
        plan.resources
            .push(Resource::new("instance", "control-02").usd_per_hour(0.0188));
        assert_eq!(format!("{:.4}", plan.usd_per_hour()), "0.0376");
    }
}
