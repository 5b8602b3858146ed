//! The control plane as Azure Container Instances: one container group per component, DNS
//! labels chosen up front, built from a backend-neutral [`Workload`] (the command lines are
//! rendered for a container group already: etcd listens on every interface of its group and
//! advertises its FQDN, the apiserver reaches every member by name).
//!
//! What each group holds:
//! * `{cluster}-etcd-{i}`: an init container that restores the newest verified snapshot from
//!   the Azure Files share into the group's `emptyDir` (only when the data dir is empty and a
//!   snapshot exists), etcd on that `emptyDir` (data and WAL never on SMB), and a sidecar
//!   that saves, verifies and ships a snapshot to the share every `snapshotInterval`.
//! * `{cluster}-apiserver-{i}`: kube-apiserver, talking to every etcd member by FQDN.
//! * `{cluster}-controller-manager`, `{cluster}-scheduler`: no public address.
//! * `{cluster}-virtual-kubelet` when `spec.backend.azure.virtualKubelet` is set.
//!
//! Certificates and kubeconfigs are secret volumes (write-only in ARM), never environment
//! variables. Each container mounts only the files its command line names (plus the sidecar's
//! client certificate): etcd its certificates and data, the restore init container the data
//! and the share, the sidecar the certificates and the share (never etcd's data).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComponentSpec, ContainerGroupSpec, ContainerSpec,
    NodeRole, NodeWork, UnitSpec, VolumeSource, VolumeSpec, Workload,
};
use frankenetes_spec::azure::{AciComponent, AzureBackend};
use frankenetes_spec::{BackendSpec, ClusterSpec, NodeSpec, ports};

/// Where the share is mounted in the etcd groups and the snapshot job.
pub const SNAPSHOT_MOUNT: &str = "/snapshots";
/// etcd's data directory inside its group (an `emptyDir`).
pub const ETCD_DATA: &str = "/var/lib/etcd";
/// The tools image used when `spec.backend.azure.toolsImage` is not set: `sh`, `etcdctl`,
/// `etcdutl` and `sha256sum` for the restore init container, the snapshot sidecar and the
/// pause snapshot job (the official etcd images are distroless: no shell).
pub const DEFAULT_TOOLS_IMAGE: &str = "ghcr.io/frankenetes/etcd-tools:3.6";

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
}

impl AciOptions {
    /// Other wait settings (tests use short ones).
    #[must_use]
    pub fn with_waits(mut self, ready_timeout: Duration, poll: Duration) -> Self {
        self.ready_timeout = ready_timeout;
        self.poll = poll;
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
        }
    }
}

/// What a group runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AciRole {
    /// An etcd member (+ restore init container and snapshot sidecar).
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
    /// The one-shot group `pause` creates to take the final snapshot.
    pub snapshot_job: UnitSpec,
    /// The cluster's tag.
    pub tag: ClusterTag,
}

impl AciTopology {
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

fn tool(name: &str, image: &str, command: Vec<String>, size: (u32, u32)) -> ContainerSpec {
    let mut c = ContainerSpec::new(name, image, command);
    c.cpu_millis = size.0;
    c.memory_mib = size.1;
    c
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

/// `sh -c` with the script, `set -eu` first.
fn sh(script: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("set -eu\n{}", script.trim()),
    ]
}

const HEALTHCHECK: [&str; 3] = [
    "/etc/kubernetes/pki/etcd/ca.crt",
    "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
    "/etc/kubernetes/pki/etcd/healthcheck-client.key",
];
const ETCDCTL_TLS: &str = "--cacert=/etc/kubernetes/pki/etcd/ca.crt --cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key";

/// Restore the newest *verified* snapshot into an empty data dir; a fresh cluster otherwise.
fn restore_script(spec: &ClusterSpec, node: &NodeSpec) -> String {
    format!(
        r#"
if [ -d {data}/member ]; then echo "data dir present: no restore"; exit 0; fi
latest="$(cat {snap}/latest 2>/dev/null || true)"
if [ -z "$latest" ]; then echo "no snapshot on the share: fresh member"; exit 0; fi
cd {snap}
sha256sum -c "$latest.sha256"
etcdutl snapshot status "$latest" -w table
etcdutl snapshot restore "$latest" --data-dir {data}/restore --name {name} \
  --initial-cluster {cluster} --initial-cluster-token {token} \
  --initial-advertise-peer-urls {peer}
mv {data}/restore/member {data}/member && rmdir {data}/restore
echo "restored $latest"
"#,
        data = ETCD_DATA,
        snap = SNAPSHOT_MOUNT,
        name = node.name,
        cluster = spec.etcd_initial_cluster(),
        token = spec.name,
        peer = spec.etcd_peer_url(node),
    )
}

/// Save, verify, ship, point `latest` at it, prune.
fn snapshot_script(endpoint: &str, kept: u32) -> String {
    format!(
        r#"
ts="$(date -u +%Y%m%dT%H%M%SZ)"
f="snapshot-$ts.db"
etcdctl --endpoints={endpoint} {tls} snapshot save /tmp/$f
etcdutl snapshot status /tmp/$f -w table
cp /tmp/$f {snap}/$f.part && mv {snap}/$f.part {snap}/$f
(cd /tmp && sha256sum $f) > {snap}/$f.sha256
(cd {snap} && sha256sum -c $f.sha256)
echo "$f" > {snap}/latest.part && mv {snap}/latest.part {snap}/latest
rm -f /tmp/$f
ls -1 {snap}/snapshot-*.db | sort -r | tail -n +{keep} | while read old; do rm -f "$old" "$old.sha256"; done
echo "saved $f"
"#,
        tls = ETCDCTL_TLS,
        snap = SNAPSHOT_MOUNT,
        keep = kept + 1,
    )
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

/// The tools image: `spec.backend.azure.toolsImage`, else [`DEFAULT_TOOLS_IMAGE`].
pub fn tools_image(az: &AzureBackend) -> String {
    az.tools_image
        .clone()
        .unwrap_or_else(|| DEFAULT_TOOLS_IMAGE.to_owned())
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
    let node_spec = |n: &NodeWork| {
        spec.control_plane
            .iter()
            .find(|s| s.name.as_str() == n.name)
            .ok_or_else(|| invalid(format!("node {} is not in spec.controlPlane", n.name)))
    };
    let mut groups = Vec::new();
    for (i, node) in planes.iter().enumerate() {
        let etcd = component(node, "etcd")?;
        let mut volumes = referenced(node, &etcd.command, &HEALTHCHECK, &|d| volume_name(d));
        volumes.push(VolumeSpec::new("data", ETCD_DATA, VolumeSource::EmptyDir));
        volumes.push(share_volume(az));
        let every = interval.as_secs();
        let sidecar = format!(
            "while true; do sleep {every}; ( {} ) || echo 'snapshot failed; next try in {every}s'; done",
            snapshot_script(&format!("https://127.0.0.1:{}", ports::ETCD_CLIENT), kept)
        );
        let containers = vec![
            container(etcd, opts.etcd).mounts(["etcd-pki", "data"]),
            // a client of etcd over TLS: the share and the client certificate, not the data
            tool("snapshot", &tools, sh(&sidecar), opts.sidecar).mounts(["etcd-pki", "snapshots"]),
        ];
        let restore = tool(
            "restore",
            &tools,
            sh(&restore_script(spec, node_spec(node)?)),
            (0, 0),
        )
        .mounts(["data", "snapshots"]);
        let mut u = unit(
            tag,
            group_name(spec, &format!("etcd-{i}")),
            Some(az.dns_label(AciComponent::Etcd, i)),
            volumes,
            containers,
        );
        if let frankenetes_compute::UnitKind::ContainerGroup(g) = &mut u.kind {
            g.init_containers.push(restore);
        }
        groups.push(AciGroup {
            role: AciRole::Etcd,
            fqdn: Some(az.component_fqdn(AciComponent::Etcd, i)),
            spec: u,
        });
    }
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
        groups.push(virtual_kubelet(spec, az, vk, w, opts)?);
    }
    let snapshot_job = snapshot_job(spec, az, first, &tools, kept, opts)?;
    Ok(AciTopology {
        groups,
        snapshot_job,
        tag: tag.clone(),
    })
}

fn virtual_kubelet(
    spec: &ClusterSpec,
    az: &AzureBackend,
    vk: &frankenetes_spec::azure::VirtualKubeletSpec,
    w: &Workload,
    opts: &AciOptions,
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
            "virtual-kubelet".into(),
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

/// pause's one-shot snapshot: the init container takes it (a group runs its init containers
/// to completion, in order, before its containers), so the group running at all proves the
/// snapshot was saved, verified and shipped.
fn snapshot_job(
    spec: &ClusterSpec,
    az: &AzureBackend,
    first: &NodeWork,
    tools: &str,
    kept: u32,
    opts: &AciOptions,
) -> Result<UnitSpec, BackendError> {
    let endpoints = spec.etcd_endpoints().join(",");
    let mut volumes = referenced(first, &[], &HEALTHCHECK, &|d| volume_name(d));
    if volumes.is_empty() {
        return Err(invalid(format!(
            "node {}: the rendered bundle has no etcd healthcheck client certificate; render again",
            first.name
        )));
    }
    volumes.push(share_volume(az));
    let mut job = unit(
        &ClusterTag::new(spec.name.as_str()),
        group_name(spec, "snapshot"),
        None,
        volumes,
        // it only proves the init container finished: it sees no volume
        vec![
            tool(
                "done",
                tools,
                sh("echo snapshot saved; exec sleep 2147483647"),
                opts.sidecar,
            )
            .mounts(Vec::<String>::new()),
        ],
    );
    if let frankenetes_compute::UnitKind::ContainerGroup(g) = &mut job.kind {
        g.init_containers.push(tool(
            "snapshot",
            tools,
            sh(&snapshot_script(&endpoints, kept)),
            (0, 0),
        ));
    }
    Ok(job)
}
