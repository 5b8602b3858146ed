//! The control plane as Azure Container Instances: one container group per component, DNS
//! labels chosen up front, built from a backend-neutral [`Workload`] (the command lines are
//! rendered for a container group already: etcd listens on every interface of its group and
//! advertises its FQDN, the apiserver reaches every member by name).
//!
//! What each group holds:
//! * `{cluster}-etcd-{i}`: etcd on the group's `emptyDir` (data and WAL never on SMB). With
//!   the default, published images only ([`crate::images`]), that is all `up` creates: no
//!   periodic snapshot, because etcd's images have no shell to loop in and a sidecar needs
//!   one with `etcdctl` (`plan` says so). Once `pause` has put a verified snapshot on the
//!   Azure Files share, it re-creates each etcd group with a restore chain
//!   ([`AciTopology::restore_groups`]) that brings the newest snapshot back every time the
//!   group starts. With `spec.backend.azure.toolsImage`, the group also has a sidecar that
//!   ships a snapshot every `snapshotInterval`, and an init container that restores the
//!   newest one only when the data dir is empty and a snapshot exists.
//! * `{cluster}-apiserver-{i}`: kube-apiserver, talking to every etcd member by FQDN.
//! * `{cluster}-controller-manager`, `{cluster}-scheduler`: no public address.
//! * `{cluster}-virtual-kubelet` when `spec.backend.azure.virtualKubelet` is set, with the
//!   service principal of `virtualKubelet.clientSecret` as the environment variables its ACI
//!   provider reads (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET`;
//!   virtual-kubelet/azure-aci `pkg/auth`), sent as write-only `secureValue`s.
//!
//! Certificates and kubeconfigs are secret volumes (write-only in ARM), never environment
//! variables. Each container mounts only the files its command line names: etcd its
//! certificates and data, the restore steps the data and the share, the snapshot steps the
//! client certificate, their scratch space and the share (never etcd's data).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComponentSpec, ContainerGroupSpec, ContainerSpec,
    NodeRole, NodeWork, UnitSpec, VolumeSource, VolumeSpec, Workload,
};
use frankenetes_spec::azure::{AciComponent, AzureBackend};
use frankenetes_spec::{BackendSpec, ClusterSpec, ports};
use zeroize::Zeroizing;

pub use crate::etcd_steps::{ETCD_DATA, SNAPSHOT_MOUNT, WORK};
use crate::etcd_steps::{
    HEALTHCHECK, restore_chain, snapshot_job_containers, tool, tools_restore, tools_sidecar,
};

/// A client secret (virtual-kubelet's service principal): never logged, redacted in `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(Zeroizing<String>);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(Zeroizing::new(secret.into()))
    }
    /// The secret itself (to hand to ARM as a `secureValue`; never print it).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientSecret(<redacted>)")
    }
}

/// ACI prices used for the cost estimate, per second, Linux, pay-as-you-go.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AciPrices {
    /// USD per vCPU-second.
    pub per_vcpu_second: f64,
    /// USD per GB-second of memory.
    pub per_gb_second: f64,
    /// Where the figures come from and when they were read.
    pub source: &'static str,
}

impl AciPrices {
    /// The table frankenetes ships: Azure's public price page for ACI, Linux, East US, as
    /// written down on 2026-11-23 (no Azure price API is reachable from the build machine;
    /// regional prices differ by a few percent; check the page before relying on it).
    pub const DEFAULT: AciPrices = AciPrices {
        per_vcpu_second: 0.000_011_3,
        per_gb_second: 0.000_001_2,
        source: "https://azure.microsoft.com/pricing/details/container-instances/ (Linux, East US, pay-as-you-go), recorded 2026-11-23",
    };

    /// USD per hour of a group requesting `cpu_millis` and `memory_mib`.
    pub fn per_hour(&self, cpu_millis: u32, memory_mib: u32) -> f64 {
        let cpu = f64::from(cpu_millis) / 1000.0;
        let gb = f64::from(memory_mib) / 1024.0;
        (cpu * self.per_vcpu_second + gb * self.per_gb_second) * 3600.0
    }
}

/// Sizes, prices and waits of the ACI topology.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AciOptions {
    /// (CPU millicores, memory MiB) of etcd.
    pub etcd: (u32, u32),
    /// The apiserver's size.
    pub apiserver: (u32, u32),
    /// The controller-manager's size.
    pub controller_manager: (u32, u32),
    /// The scheduler's size.
    pub scheduler: (u32, u32),
    /// The snapshot sidecar's size.
    pub sidecar: (u32, u32),
    /// virtual-kubelet's size.
    pub virtual_kubelet: (u32, u32),
    /// Prices for the estimate.
    pub prices: AciPrices,
    /// How long the pause snapshot job may take.
    pub ready_timeout: Duration,
    /// Poll interval while waiting.
    pub poll: Duration,
    /// The secret of `spec.backend.azure.virtualKubelet.clientSecret`; [`crate::AciPlatform::new`]
    /// reads it from the `secretEnv` variable when it is not given here.
    pub virtual_kubelet_secret: Option<ClientSecret>,
}

impl AciOptions {
    /// Other wait settings (tests use short ones).
    #[must_use]
    pub fn with_waits(mut self, ready_timeout: Duration, poll: Duration) -> Self {
        self.ready_timeout = ready_timeout;
        self.poll = poll;
        self
    }

    /// virtual-kubelet's client secret (instead of the `secretEnv` environment variable).
    #[must_use]
    pub fn with_virtual_kubelet_secret(mut self, secret: ClientSecret) -> Self {
        self.virtual_kubelet_secret = Some(secret);
        self
    }
}

impl Default for AciOptions {
    fn default() -> Self {
        Self {
            etcd: (1000, 2048),
            apiserver: (1000, 2048),
            controller_manager: (500, 1024),
            scheduler: (250, 512),
            sidecar: (100, 256),
            virtual_kubelet: (500, 1024),
            prices: AciPrices::DEFAULT,
            ready_timeout: Duration::from_secs(15 * 60),
            poll: Duration::from_secs(5),
            virtual_kubelet_secret: None,
        }
    }
}

/// What a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AciRole {
    /// An etcd member (with a toolsImage: + restore init container and snapshot sidecar).
    Etcd,
    /// A kube-apiserver.
    ApiServer,
    /// kube-controller-manager.
    ControllerManager,
    /// kube-scheduler.
    Scheduler,
    /// virtual-kubelet.
    VirtualKubelet,
}

/// One group, ready to create, with its role, FQDN and size.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AciGroup {
    /// What it runs.
    pub role: AciRole,
    /// Its FQDN, for groups with a public address.
    pub fqdn: Option<String>,
    /// What to create.
    pub spec: UnitSpec,
}

impl AciGroup {
    /// Total (CPU millicores, memory MiB) of its containers: what ACI bills.
    pub fn size(&self) -> (u32, u32) {
        match &self.spec.kind {
            frankenetes_compute::UnitKind::ContainerGroup(g) => g
                .containers
                .iter()
                .fold((0, 0), |(c, m), x| (c + x.cpu_millis, m + x.memory_mib)),
            _ => (0, 0),
        }
    }
}

/// Every group of the cluster, in start order, and the one-shot snapshot job `pause` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AciTopology {
    /// The groups, in start order.
    pub groups: Vec<AciGroup>,
    /// The etcd groups as `pause` re-creates them once the final snapshot is on the share:
    /// each restores the share's newest verified snapshot whenever it starts (published images
    /// only). Empty with a `toolsImage`: those groups decide at start by themselves.
    pub restore_groups: Vec<UnitSpec>,
    /// The one-shot group `pause` creates to take the final snapshot.
    pub snapshot_job: UnitSpec,
    /// The cluster's tag.
    pub tag: ClusterTag,
    /// What the user should know before going on (`plan` shows them).
    pub warnings: Vec<String>,
}

impl AciTopology {
    /// Every container group the topology can create: the groups, the restore groups and the
    /// snapshot job.
    pub fn all_units(&self) -> impl Iterator<Item = &UnitSpec> {
        self.groups
            .iter()
            .map(|g| &g.spec)
            .chain(&self.restore_groups)
            .chain(std::iter::once(&self.snapshot_job))
    }

    /// The groups of some roles, in start order.
    pub fn of(&self, roles: &[AciRole]) -> Vec<UnitSpec> {
        self.groups
            .iter()
            .filter(|g| roles.contains(&g.role))
            .map(|g| g.spec.clone())
            .collect()
    }

    /// A plain table: group, FQDN, CPU, memory, USD/hour; then the total and the source.
    pub fn table(&self, prices: &AciPrices, share: &str) -> String {
        let mut s = format!(
            "{:<36} {:<56} {:>6} {:>8} {:>9}\n",
            "GROUP", "FQDN", "vCPU", "GB", "USD/h"
        );
        let mut total = 0.0;
        for g in &self.groups {
            let (cpu, mem) = g.size();
            let cost = prices.per_hour(cpu, mem);
            total += cost;
            let _ = writeln!(
                s,
                "{:<36} {:<56} {:>6.2} {:>8.2} {:>9.4}",
                g.spec.name,
                g.fqdn.as_deref().unwrap_or("-"),
                f64::from(cpu) / 1000.0,
                f64::from(mem) / 1024.0,
                cost
            );
        }
        let _ = writeln!(
            s,
            "total {total:.4} USD/hour ({:.2} USD per 30 days) while running; 0 while paused\n\
             snapshots: Azure Files share {share} (billed by size, kept by pause)\n\
             prices: {}",
            total * 24.0 * 30.0,
            prices.source
        );
        s
    }
}

fn invalid(m: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Invalid, m)
}

/// The spec's Azure section.
pub(crate) fn azure(spec: &ClusterSpec) -> Result<&AzureBackend, BackendError> {
    match &spec.backend {
        BackendSpec::Azure(az) => Ok(az),
        other => Err(invalid(format!(
            "spec.backend is {}; the ACI topology needs spec.backend.azure",
            other.kind()
        ))),
    }
}

fn group_name(spec: &ClusterSpec, rest: &str) -> String {
    format!("{}-{rest}", spec.name.as_str())
}

/// The files a command line names (`--cert-file=/etc/…`, comma-separated lists too), as one
/// secret volume per directory, named by `name_of(dir)`.
fn referenced(
    node: &NodeWork,
    command: &[String],
    extra: &[&str],
    name_of: &dyn Fn(&str) -> String,
) -> Vec<VolumeSpec> {
    let mut by_dir: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let values = command
        .iter()
        .filter_map(|a| a.split_once('=').map(|(_, v)| v))
        .flat_map(|v| v.split(','))
        .chain(extra.iter().copied());
    for path in values {
        if let Some(f) = node.file(path)
            && let Some((dir, name)) = path.rsplit_once('/')
        {
            by_dir
                .entry(dir.to_owned())
                .or_default()
                .insert(name.to_owned(), f.contents.to_vec());
        }
    }
    by_dir
        .into_iter()
        .map(|(dir, files)| VolumeSpec::new(name_of(&dir), dir, VolumeSource::Secret(files)))
        .collect()
}

/// Volume names by directory.
fn volume_name(dir: &str) -> String {
    match dir {
        "/etc/kubernetes/pki" => "pki".into(),
        "/etc/kubernetes/pki/etcd" => "etcd-pki".into(),
        "/etc/kubernetes" => "kubeconfig".into(),
        "/etc/kubernetes/apiserver" => "apiserver-config".into(),
        other => other
            .trim_start_matches("/etc/kubernetes/")
            .trim_start_matches('/')
            .replace('/', "-"),
    }
}

fn container(c: &ComponentSpec, size: (u32, u32)) -> ContainerSpec {
    let mut out = ContainerSpec::new(c.name.clone(), c.image.clone(), c.command.clone());
    out.ports = c.ports.clone();
    out.cpu_millis = size.0;
    out.memory_mib = size.1;
    out
}

fn unit(
    tag: &ClusterTag,
    name: String,
    label: Option<String>,
    volumes: Vec<VolumeSpec>,
    containers: Vec<ContainerSpec>,
) -> UnitSpec {
    let mut group = volumes.into_iter().fold(
        ContainerGroupSpec::new(containers),
        ContainerGroupSpec::volume,
    );
    group.dns_label = label;
    UnitSpec::from_group(name, tag.clone(), group)
}

fn share_volume(az: &AzureBackend) -> VolumeSpec {
    VolumeSpec::new(
        "snapshots",
        SNAPSHOT_MOUNT,
        VolumeSource::FileShare {
            share: az.share_name.clone(),
            account: az.storage_account.clone(),
        },
    )
}

fn component<'a>(node: &'a NodeWork, name: &str) -> Result<&'a ComponentSpec, BackendError> {
    node.component(name)
        .ok_or_else(|| invalid(format!("node {} runs no {name}", node.name)))
}

/// The tools image, when `spec.backend.azure.toolsImage` names one; `None`: published
/// images only.
pub fn tools_image(az: &AzureBackend) -> Option<&str> {
    az.tools_image.as_deref()
}

/// What the etcd groups need besides etcd itself.
#[derive(Clone, Copy)]
enum EtcdExtras<'a> {
    /// Nothing (published images, `up`).
    None,
    /// The published-images restore chain (as `pause` re-creates the groups).
    RestoreChain,
    /// The tools image's restore-if-needed init container and periodic sidecar.
    Tools {
        image: &'a str,
        every: u64,
        kept: u32,
    },
}

/// Every etcd group, with `extras`.
fn etcd_groups(
    spec: &ClusterSpec,
    az: &AzureBackend,
    tag: &ClusterTag,
    planes: &[&NodeWork],
    extras: EtcdExtras<'_>,
    opts: &AciOptions,
) -> Result<Vec<AciGroup>, BackendError> {
    let mut groups = Vec::new();
    for (i, node) in planes.iter().enumerate() {
        let node_spec = spec
            .control_plane
            .iter()
            .find(|s| s.name.as_str() == node.name)
            .ok_or_else(|| invalid(format!("node {} is not in spec.controlPlane", node.name)))?;
        let etcd = component(node, "etcd")?;
        // the client certificate only where a sidecar presents it
        let extra: &[&str] = match extras {
            EtcdExtras::Tools { .. } => &HEALTHCHECK,
            _ => &[],
        };
        let mut volumes = referenced(node, &etcd.command, extra, &|d| volume_name(d));
        volumes.push(VolumeSpec::new("data", ETCD_DATA, VolumeSource::EmptyDir));
        let mut containers = vec![container(etcd, opts.etcd).mounts(["etcd-pki", "data"])];
        let mut inits = Vec::new();
        match extras {
            EtcdExtras::None => {}
            EtcdExtras::RestoreChain => {
                volumes.push(share_volume(az));
                inits = restore_chain(spec, node_spec, &etcd.image);
            }
            EtcdExtras::Tools { image, every, kept } => {
                volumes.push(share_volume(az));
                let local = format!("https://127.0.0.1:{}", ports::ETCD_CLIENT);
                // a client of etcd over TLS: the share and the client certificate, not the data
                containers.push(tools_sidecar(image, every, kept, &local, opts.sidecar));
                inits.push(tools_restore(spec, node_spec, image));
            }
        }
        let mut u = unit(
            tag,
            group_name(spec, &format!("etcd-{i}")),
            Some(az.dns_label(AciComponent::Etcd, i)),
            volumes,
            containers,
        );
        if let frankenetes_compute::UnitKind::ContainerGroup(g) = &mut u.kind {
            g.init_containers = inits;
        }
        groups.push(AciGroup {
            role: AciRole::Etcd,
            fqdn: Some(az.component_fqdn(AciComponent::Etcd, i)),
            spec: u,
        });
    }
    Ok(groups)
}

/// Every group of the cluster, from the spec and its workload.
pub fn topology(
    spec: &ClusterSpec,
    w: &Workload,
    opts: &AciOptions,
) -> Result<AciTopology, BackendError> {
    let az = azure(spec)?;
    let tools = tools_image(az);
    let tag = &w.tag;
    let (interval, kept) = spec
        .etcd_backup()
        .map_or((az.snapshot_interval.get(), az.snapshots_kept), |b| {
            (b.interval.get(), b.keep)
        });
    let planes: Vec<&NodeWork> = w.nodes_of(NodeRole::ControlPlane).collect();
    let mut warnings = Vec::new();
    let (mut groups, restore_groups) = match tools {
        Some(image) => {
            let extras = EtcdExtras::Tools {
                image,
                every: interval.as_secs(),
                kept,
            };
            (
                etcd_groups(spec, az, tag, &planes, extras, opts)?,
                Vec::new(),
            )
        }
        None => {
            warnings.push(format!(
                "no periodic etcd snapshots: etcd's images have no shell to run a schedule in, \
                 so snapshotInterval ({}) applies only with spec.backend.azure.toolsImage (an \
                 image with sh, etcdctl, etcdutl and sha256sum); `pause` still saves a verified \
                 snapshot to the share and `resume` restores it",
                az.snapshot_interval
            ));
            let restore = etcd_groups(spec, az, tag, &planes, EtcdExtras::RestoreChain, opts)?;
            (
                etcd_groups(spec, az, tag, &planes, EtcdExtras::None, opts)?,
                restore.into_iter().map(|g| g.spec).collect(),
            )
        }
    };
    for (i, node) in planes.iter().enumerate() {
        let api = component(node, "kube-apiserver")?;
        let volumes = referenced(node, &api.command, &[], &|d| volume_name(d));
        groups.push(AciGroup {
            role: AciRole::ApiServer,
            fqdn: Some(az.component_fqdn(AciComponent::ApiServer, i)),
            spec: unit(
                tag,
                group_name(spec, &format!("apiserver-{i}")),
                Some(az.dns_label(AciComponent::ApiServer, i)),
                volumes,
                vec![container(api, opts.apiserver)],
            ),
        });
    }
    let first = planes
        .first()
        .ok_or_else(|| invalid("spec.controlPlane is empty"))?;
    for (role, name, size) in [
        (
            AciRole::ControllerManager,
            "kube-controller-manager",
            opts.controller_manager,
        ),
        (AciRole::Scheduler, "kube-scheduler", opts.scheduler),
    ] {
        let c = component(first, name)?;
        let volumes = referenced(first, &c.command, &[], &|d| volume_name(d));
        // No public address: nothing outside the group talks to them.
        let mut container = container(c, size);
        container.ports.clear();
        groups.push(AciGroup {
            role,
            fqdn: None,
            spec: unit(
                tag,
                group_name(spec, name.trim_start_matches("kube-")),
                None,
                volumes,
                vec![container],
            ),
        });
    }
    if let Some(vk) = &az.virtual_kubelet {
        groups.push(virtual_kubelet(spec, az, vk, w, opts, &mut warnings)?);
    }
    let snapshot_job = snapshot_job(spec, az, first, tools, kept, opts)?;
    Ok(AciTopology {
        groups,
        restore_groups,
        snapshot_job,
        tag: tag.clone(),
        warnings,
    })
}

/// Where virtual-kubelet's image has its binary (virtual-kubelet/azure-aci `Dockerfile`: a
/// `scratch` image with `/usr/bin/virtual-kubelet` as its entrypoint).
const VIRTUAL_KUBELET_BIN: &str = "/usr/bin/virtual-kubelet";

fn virtual_kubelet(
    spec: &ClusterSpec,
    az: &AzureBackend,
    vk: &frankenetes_spec::azure::VirtualKubeletSpec,
    w: &Workload,
    opts: &AciOptions,
    warnings: &mut Vec<String>,
) -> Result<AciGroup, BackendError> {
    let worker = w
        .nodes_of(NodeRole::Worker)
        .find(|n| n.name == vk.node_name)
        .ok_or_else(|| {
            invalid(format!(
                "spec.backend.azure.virtualKubelet: add a worker named {:?} to spec.workers so that it gets a kubelet identity",
                vk.node_name
            ))
        })?;
    let kubeconfig = "/etc/kubernetes/kubelet.conf";
    let volumes = referenced(worker, &[], &[kubeconfig], &|d| volume_name(d));
    let mut c = tool(
        "virtual-kubelet",
        &vk.image,
        vec![
            VIRTUAL_KUBELET_BIN.into(),
            "--provider=azure".into(),
            format!("--nodename={}", vk.node_name),
            "--os=Linux".into(),
        ],
        opts.virtual_kubelet,
    );
    c.ports = vec![ports::KUBELET];
    c.env.insert("KUBECONFIG".into(), kubeconfig.into());
    c.env
        .insert("ACI_RESOURCE_GROUP".into(), vk.pods_resource_group.clone());
    c.env.insert("ACI_REGION".into(), az.location.clone());
    c.env
        .insert("AZURE_SUBSCRIPTION_ID".into(), az.subscription_id.clone());
    // The ACI provider's service principal, as the environment variables it reads
    // (virtual-kubelet/azure-aci pkg/auth); every env value goes to ARM as a secureValue.
    match (&vk.client_secret, &opts.virtual_kubelet_secret) {
        (Some(cs), Some(secret)) => {
            c.env.insert("AZURE_TENANT_ID".into(), cs.tenant_id.clone());
            c.env.insert("AZURE_CLIENT_ID".into(), cs.client_id.clone());
            c.env
                .insert("AZURE_CLIENT_SECRET".into(), secret.expose().to_owned());
        }
        (Some(cs), None) => warnings.push(format!(
            "virtual-kubelet gets no Azure credential: the environment variable {} \
             (spec.backend.azure.virtualKubelet.clientSecret.secretEnv) is not set; export \
             the service principal's secret there, or its group starts and cannot create pods",
            cs.secret_env
        )),
        (None, _) => warnings.push(
            "virtual-kubelet gets no Azure credential: set \
             spec.backend.azure.virtualKubelet.clientSecret { tenantId, clientId, secretEnv } \
             (a service principal with Contributor on podsResourceGroup), or its group starts \
             and cannot create pods"
                .into(),
        ),
    }
    Ok(AciGroup {
        role: AciRole::VirtualKubelet,
        fqdn: None,
        spec: unit(
            &w.tag,
            group_name(spec, "virtual-kubelet"),
            None,
            volumes,
            vec![c],
        ),
    })
}

/// pause's one-shot snapshot: the init containers take it (a group runs its init containers
/// to completion, in order, before its containers), so the group running at all proves the
/// snapshot was saved, verified and shipped.
fn snapshot_job(
    spec: &ClusterSpec,
    az: &AzureBackend,
    first: &NodeWork,
    tools: Option<&str>,
    kept: u32,
    opts: &AciOptions,
) -> Result<UnitSpec, BackendError> {
    let node = spec
        .control_plane
        .first()
        .ok_or_else(|| invalid("spec.controlPlane is empty"))?;
    let etcd_image = component(first, "etcd")?.image.clone();
    let mut volumes = referenced(first, &[], &HEALTHCHECK, &|d| volume_name(d));
    if volumes.is_empty() {
        return Err(invalid(format!(
            "node {}: the rendered bundle has no etcd healthcheck client certificate; render again",
            first.name
        )));
    }
    volumes.push(share_volume(az));
    if tools.is_none() {
        volumes.push(VolumeSpec::new("work", WORK, VolumeSource::EmptyDir));
    }
    let (inits, done) = snapshot_job_containers(
        &spec.etcd_client_url(node),
        &etcd_image,
        tools,
        kept,
        opts.sidecar,
    );
    let mut job = unit(
        &ClusterTag::new(spec.name.as_str()),
        group_name(spec, "snapshot"),
        None,
        volumes,
        vec![done],
    );
    if let frankenetes_compute::UnitKind::ContainerGroup(g) = &mut job.kind {
        g.init_containers = inits;
    }
    Ok(job)
}
