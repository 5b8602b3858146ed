//! The control plane as Azure Container Instances: one container group per component, DNS
//! labels chosen up front, and the plan / up / pause / resume / down sequences over any
//! [`ComputeBackend`] (the CLI passes `frankenetes_cloud_azure::AciBackend`).
//!
//! ```no_run
//! use frankenetes_bootstrap::aci;
//! use frankenetes_spec::ClusterSpec;
//!
//! # async fn run(backend: &dyn frankenetes_compute::ComputeBackend) -> Result<(), frankenetes_bootstrap::Error> {
//! let spec = ClusterSpec::load("cluster.yaml").map_err(|e| frankenetes_bootstrap::Error::Spec(e.to_string()))?.spec;
//! let plan = aci::plan(&spec, &aci::AciOptions::default())?;
//! print!("{}", plan.table());                        // groups, FQDNs, CPU/memory, cost per hour
//! let pki = frankenetes_pki::Pki::generate(&frankenetes_pki::PkiPlan::from(&spec))?;
//! let rendered = frankenetes_manifests::render(&spec, &pki)?;
//! let units = aci::units(&spec, &rendered, &aci::AciOptions::default())?;
//! aci::up(backend, &units).await?;                   // etcd, then apiservers, then the rest
//! aci::pause(backend, &units, aci::PauseMode::Stop).await?;   // snapshot first, always
//! aci::resume(backend, &units).await?;              // etcd restores before it starts
//! aci::down(backend, &units.tag).await?;            // finds groups by tag; the share stays
//! # Ok(()) }
//! ```
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
//! variables. Each container mounts only the volumes it needs: etcd its certificates and
//! data, the restore init container the data and the share, the sidecar the certificates and
//! the share (never etcd's data).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use frankenetes_compute::{
    BackendErrorKind, ClusterTag, ComputeBackend, ContainerGroupSpec, ContainerSpec, UnitId,
    UnitKind, UnitSpec, UnitState, VolumeSource, VolumeSpec,
};
use frankenetes_manifests::flags::{Flags, Layout};
use frankenetes_manifests::{NodeBundle, Rendered};
use frankenetes_spec::azure::{AciComponent, AzureBackend};
use frankenetes_spec::{BackendSpec, ClusterSpec, NodeSpec, ports};

use crate::{Error, Phase};

/// Where the share is mounted in the etcd groups and the snapshot job.
pub const SNAPSHOT_MOUNT: &str = "/snapshots";
/// etcd's data directory inside its group (an `emptyDir`).
pub const ETCD_DATA: &str = "/var/lib/etcd";

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
}

/// Sizes and images of the ACI topology.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AciOptions {
    /// An image with `sh`, `etcdctl`, `etcdutl` and `sha256sum` for the restore init
    /// container, the snapshot sidecar and the pause snapshot job (the official etcd images
    /// are distroless: no shell). Build one `FROM registry.k8s.io/etcd` + busybox.
    pub tools_image: String,
    /// (CPU millicores, memory MiB) of etcd, the apiserver, the controller-manager, the
    /// scheduler, the sidecar and virtual-kubelet.
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
    /// How long `up`/`resume` wait for each group to run.
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
            tools_image: "ghcr.io/frankenetes/etcd-tools:3.6".into(),
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
    /// The one-shot snapshot taken by `pause`.
    SnapshotJob,
}

/// One container group of the plan.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AciGroup {
    /// The group's name (unique in the resource group).
    pub name: String,
    /// What it runs.
    pub role: AciRole,
    /// Its FQDN, for groups with a public address.
    pub fqdn: Option<String>,
    /// Total CPU of its containers, millicores.
    pub cpu_millis: u32,
    /// Total memory, MiB.
    pub memory_mib: u32,
}

impl AciGroup {
    /// Estimated USD per hour at `prices` (ACI bills the group's requests per second).
    pub fn cost_per_hour(&self, prices: &AciPrices) -> f64 {
        let cpu = f64::from(self.cpu_millis) / 1000.0;
        let gb = f64::from(self.memory_mib) / 1024.0;
        (cpu * prices.per_vcpu_second + gb * prices.per_gb_second) * 3600.0
    }
}

/// `frankenetes plan` for an azure spec.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct AciPlan {
    /// Groups, in start order.
    pub groups: Vec<AciGroup>,
    /// `storageAccount/shareName` of the snapshots.
    pub share: String,
    /// The prices used.
    pub prices: AciPrices,
}

impl AciPlan {
    /// Estimated USD per hour of everything running (the share is billed apart, by size).
    pub fn cost_per_hour(&self) -> f64 {
        self.groups
            .iter()
            .map(|g| g.cost_per_hour(&self.prices))
            .sum()
    }

    /// A plain table: group, FQDN, CPU, memory, USD/hour; then the total and the source.
    pub fn table(&self) -> String {
        let mut s = format!(
            "{:<36} {:<56} {:>6} {:>8} {:>9}\n",
            "GROUP", "FQDN", "vCPU", "GB", "USD/h"
        );
        for g in &self.groups {
            let _ = writeln!(
                s,
                "{:<36} {:<56} {:>6.2} {:>8.2} {:>9.4}",
                g.name,
                g.fqdn.as_deref().unwrap_or("-"),
                f64::from(g.cpu_millis) / 1000.0,
                f64::from(g.memory_mib) / 1024.0,
                g.cost_per_hour(&self.prices)
            );
        }
        let _ = writeln!(
            s,
            "total {:.4} USD/hour ({:.2} USD per 30 days) while running; 0 while paused\n\
             snapshots: Azure Files share {} (billed by size, kept by pause)\n\
             prices: {}",
            self.cost_per_hour(),
            self.cost_per_hour() * 24.0 * 30.0,
            self.share,
            self.prices.source
        );
        s
    }
}

fn azure(spec: &ClusterSpec) -> Result<&AzureBackend, Error> {
    match &spec.backend {
        BackendSpec::Azure(az) => Ok(az),
        other => Err(Error::Spec(format!(
            "spec.backend is {}; the ACI topology needs spec.backend.azure",
            other.kind()
        ))),
    }
}

fn group_name(spec: &ClusterSpec, rest: &str) -> String {
    format!("{}-{rest}", spec.name.as_str())
}

/// The plan: groups, FQDNs, sizes and cost. Needs no PKI.
pub fn plan(spec: &ClusterSpec, opts: &AciOptions) -> Result<AciPlan, Error> {
    let az = azure(spec)?;
    let add = |a: (u32, u32), b: (u32, u32)| (a.0 + b.0, a.1 + b.1);
    let mut groups = Vec::new();
    let mut push = |name: String, role, fqdn, size: (u32, u32)| {
        groups.push(AciGroup {
            name,
            role,
            fqdn,
            cpu_millis: size.0,
            memory_mib: size.1,
        });
    };
    for (i, _) in spec.control_plane.iter().enumerate() {
        push(
            group_name(spec, &format!("etcd-{i}")),
            AciRole::Etcd,
            Some(az.component_fqdn(AciComponent::Etcd, i)),
            add(opts.etcd, opts.sidecar),
        );
    }
    for (i, _) in spec.control_plane.iter().enumerate() {
        push(
            group_name(spec, &format!("apiserver-{i}")),
            AciRole::ApiServer,
            Some(az.component_fqdn(AciComponent::ApiServer, i)),
            opts.apiserver,
        );
    }
    push(
        group_name(spec, "controller-manager"),
        AciRole::ControllerManager,
        None,
        opts.controller_manager,
    );
    push(
        group_name(spec, "scheduler"),
        AciRole::Scheduler,
        None,
        opts.scheduler,
    );
    if az.virtual_kubelet.is_some() {
        push(
            group_name(spec, "virtual-kubelet"),
            AciRole::VirtualKubelet,
            None,
            opts.virtual_kubelet,
        );
    }
    Ok(AciPlan {
        groups,
        share: format!("{}/{}", az.storage_account, az.share_name),
        prices: opts.prices,
    })
}

/// One group ready to create, with its role.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AciUnit {
    /// What it runs.
    pub role: AciRole,
    /// What to create.
    pub spec: UnitSpec,
}

/// Every group of the cluster as `UnitSpec`s, in start order, with the rendered certificates
/// and kubeconfigs as secret volumes; plus the snapshot job `pause` runs.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AciUnits {
    /// The groups, in start order.
    pub groups: Vec<AciUnit>,
    /// The one-shot group `pause` creates to take the final snapshot.
    pub snapshot_job: UnitSpec,
    /// The cluster's tag.
    pub tag: ClusterTag,
}

impl AciUnits {
    fn by_role(&self, roles: &[AciRole]) -> Vec<&UnitSpec> {
        self.groups
            .iter()
            .filter(|g| roles.contains(&g.role))
            .map(|g| &g.spec)
            .collect()
    }
}

struct Files<'a> {
    bundle: &'a NodeBundle,
}

impl Files<'_> {
    /// A secret volume `name`, mounted at `dir`, of the bundle files under `dir` named in
    /// `names`.
    fn secret(&self, name: &str, dir: &str, names: &[&str]) -> Result<VolumeSpec, Error> {
        let mut map = BTreeMap::new();
        for n in names {
            let path = format!("{dir}/{n}");
            let f = self.bundle.file(&path).ok_or_else(|| {
                Error::Spec(format!(
                    "node {}: the rendered bundle has no {path}; render again",
                    self.bundle.name
                ))
            })?;
            map.insert((*n).to_owned(), f.contents.to_vec());
        }
        Ok(VolumeSpec::new(name, dir, VolumeSource::Secret(map)))
    }

    /// The files of `names` under `dir` that the bundle has (the hardened settings a spec may
    /// relax), as one secret volume; `None` when there are none.
    fn secret_present(&self, name: &str, dir: &str, names: &[&str]) -> Option<VolumeSpec> {
        let map: BTreeMap<String, Vec<u8>> = names
            .iter()
            .filter_map(|n| {
                let f = self.bundle.file(&format!("{dir}/{n}"))?;
                Some(((*n).to_owned(), f.contents.to_vec()))
            })
            .collect();
        (!map.is_empty()).then(|| VolumeSpec::new(name, dir, VolumeSource::Secret(map)))
    }
}

fn container(
    name: &str,
    image: &str,
    command: Vec<String>,
    ports: &[u16],
    size: (u32, u32),
) -> ContainerSpec {
    let mut c = ContainerSpec::new(name, image, command);
    c.ports = ports.to_vec();
    c.cpu_millis = size.0;
    c.memory_mib = size.1;
    c
}

fn unit(
    spec: &ClusterSpec,
    name: String,
    label: Option<String>,
    mut group: ContainerGroupSpec,
) -> UnitSpec {
    group.dns_label = label;
    UnitSpec::from_group(name, ClusterTag::new(spec.name.as_str()), group)
}

/// A group of `containers` with `volumes`, mounted by every container.
fn group(containers: Vec<ContainerSpec>, volumes: Vec<VolumeSpec>) -> ContainerGroupSpec {
    volumes.into_iter().fold(
        ContainerGroupSpec::new(containers),
        ContainerGroupSpec::volume,
    )
}

fn args(binary: &str, f: &Flags) -> Vec<String> {
    std::iter::once(binary.to_owned()).chain(f.args()).collect()
}

fn without(f: &Flags, drop: &[&str]) -> Flags {
    let mut out = Flags::default();
    for name in f.names() {
        if !drop.contains(&name)
            && let Some(v) = f.get(name)
        {
            out.set(name, v);
        }
    }
    out
}

/// `sh -c` with the script, `set -eu` first.
fn sh(script: &str) -> Vec<String> {
    vec![
        "/bin/sh".into(),
        "-c".into(),
        format!("set -eu\n{}", script.trim()),
    ]
}

const ETCD_PKI: &str = "/etc/kubernetes/pki/etcd";
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

/// Save, verify, ship, point `latest` at it, prune. `$1` is the file name prefix.
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

fn bundle<'a>(rendered: &'a Rendered, node: &NodeSpec) -> Result<Files<'a>, Error> {
    rendered
        .node(node.name.as_str())
        .map(|bundle| Files { bundle })
        .ok_or_else(|| Error::Spec(format!("no rendered bundle for node {}", node.name)))
}

/// Every group of the cluster, from the spec and its rendered bundles.
pub fn units(
    spec: &ClusterSpec,
    rendered: &Rendered,
    opts: &AciOptions,
) -> Result<AciUnits, Error> {
    let az = azure(spec)?;
    let (_, etcd_image) = frankenetes_manifests::etcd_release(spec)?;
    let layout = Layout::machine(spec);
    let kube_tag = spec.kubernetes_version.to_string();
    let image = |c: &str| format!("{}/{c}:{kube_tag}", spec.image_repository);
    let mut groups = Vec::new();
    let etcd_files = [
        "ca.crt",
        "server.crt",
        "server.key",
        "peer.crt",
        "peer.key",
        "healthcheck-client.crt",
        "healthcheck-client.key",
    ];

    for (i, node) in spec.control_plane.iter().enumerate() {
        let files = bundle(rendered, node)?;
        let cp = frankenetes_manifests::control_plane(spec, node, &layout)?;
        // etcd listens on every interface of its group (a name cannot be bound); it
        // advertises its FQDN (from the spec); its data and WAL stay on the emptyDir.
        let mut ef = without(&cp.etcd, &["listen-client-urls", "listen-peer-urls"]);
        ef.set("data-dir", ETCD_DATA);
        ef.set(
            "listen-client-urls",
            format!("https://0.0.0.0:{}", ports::ETCD_CLIENT),
        );
        ef.set(
            "listen-peer-urls",
            format!("https://0.0.0.0:{}", ports::ETCD_PEER),
        );
        let volumes = vec![
            files.secret("etcd-pki", ETCD_PKI, &etcd_files)?,
            VolumeSpec::new("data", ETCD_DATA, VolumeSource::EmptyDir),
            share_volume(az),
        ];
        let every = az.snapshot_interval.get().as_secs();
        let sidecar = format!(
            "while true; do sleep {every}; ( {} ) || echo 'snapshot failed; next try in {every}s'; done",
            snapshot_script("https://127.0.0.1:2379", az.snapshots_kept)
        );
        let containers = vec![
            container(
                "etcd",
                &etcd_image,
                args("etcd", &ef),
                &[ports::ETCD_CLIENT, ports::ETCD_PEER],
                opts.etcd,
            )
            .mounts(["etcd-pki", "data"]),
            // a client of etcd over TLS: the share and the client certificate, not the data
            container(
                "snapshot",
                &opts.tools_image,
                sh(&sidecar),
                &[],
                opts.sidecar,
            )
            .mounts(["etcd-pki", "snapshots"]),
        ];
        let restore = container(
            "restore",
            &opts.tools_image,
            sh(&restore_script(spec, node)),
            &[],
            (0, 0),
        )
        .mounts(["data", "snapshots"]);
        groups.push(AciUnit {
            role: AciRole::Etcd,
            spec: unit(
                spec,
                group_name(spec, &format!("etcd-{i}")),
                Some(az.dns_label(AciComponent::Etcd, i)),
                group(containers, volumes).init_container(restore),
            ),
        });
    }

    for (i, node) in spec.control_plane.iter().enumerate() {
        let files = bundle(rendered, node)?;
        let cp = frankenetes_manifests::control_plane(spec, node, &layout)?;
        // The public IP is unknown before creation: let the apiserver pick its interface.
        let mut af = without(&cp.apiserver, &["advertise-address", "bind-address"]);
        af.set("etcd-servers", spec.etcd_endpoints().join(","));
        let pki = "/etc/kubernetes/pki";
        let mut volumes = vec![
            files.secret(
                "pki",
                pki,
                &[
                    "ca.crt",
                    "apiserver.crt",
                    "apiserver.key",
                    "apiserver-kubelet-client.crt",
                    "apiserver-kubelet-client.key",
                    "apiserver-etcd-client.crt",
                    "apiserver-etcd-client.key",
                    "front-proxy-ca.crt",
                    "front-proxy-client.crt",
                    "front-proxy-client.key",
                    "sa.pub",
                    "sa.key",
                ],
            )?,
            files.secret("etcd-ca", ETCD_PKI, &["ca.crt"])?,
        ];
        // The hardened apiserver's configuration files (audit policy, admission, anonymous
        // access) and the Secrets encryption config, where the spec did not relax them: every
        // flag that names a file gets that file.
        volumes.extend(files.secret_present(
            "apiserver-config",
            frankenetes_manifests::security::CONFIG_DIR,
            &[
                "audit-policy.yaml",
                "admission-config.yaml",
                "authentication-config.yaml",
            ],
        ));
        let enc = frankenetes_pki::encryption::FILE_NAME;
        if let (Some(f), Some(VolumeSource::Secret(m))) = (
            files.bundle.file(&format!("{pki}/{enc}")),
            volumes.first_mut().map(|v| &mut v.source),
        ) {
            m.insert(enc.to_owned(), f.contents.to_vec());
        }
        let containers = vec![container(
            "kube-apiserver",
            &image("kube-apiserver"),
            args("kube-apiserver", &af),
            &[ports::APISERVER],
            opts.apiserver,
        )];
        groups.push(AciUnit {
            role: AciRole::ApiServer,
            spec: unit(
                spec,
                group_name(spec, &format!("apiserver-{i}")),
                Some(az.dns_label(AciComponent::ApiServer, i)),
                group(containers, volumes),
            ),
        });
    }

    let first = spec
        .control_plane
        .first()
        .ok_or_else(|| Error::Spec("spec.controlPlane is empty".into()))?;
    let files = bundle(rendered, first)?;
    let cp = frankenetes_manifests::control_plane(spec, first, &layout)?;
    let pki = "/etc/kubernetes/pki";
    let kube = "/etc/kubernetes";
    let cm_volumes = vec![
        files.secret("kubeconfig", kube, &["controller-manager.conf"])?,
        files.secret(
            "pki",
            pki,
            &["ca.crt", "ca.key", "sa.key", "front-proxy-ca.crt"],
        )?,
    ];
    groups.push(AciUnit {
        role: AciRole::ControllerManager,
        spec: unit(
            spec,
            group_name(spec, "controller-manager"),
            None,
            group(
                vec![container(
                    "kube-controller-manager",
                    &image("kube-controller-manager"),
                    args("kube-controller-manager", &cp.controller_manager),
                    &[],
                    opts.controller_manager,
                )],
                cm_volumes,
            ),
        ),
    });
    let sched_volumes = vec![files.secret("kubeconfig", kube, &["scheduler.conf"])?];
    groups.push(AciUnit {
        role: AciRole::Scheduler,
        spec: unit(
            spec,
            group_name(spec, "scheduler"),
            None,
            group(
                vec![container(
                    "kube-scheduler",
                    &image("kube-scheduler"),
                    args("kube-scheduler", &cp.scheduler),
                    &[],
                    opts.scheduler,
                )],
                sched_volumes,
            ),
        ),
    });

    if let Some(vk) = &az.virtual_kubelet {
        let worker = spec
            .workers
            .iter()
            .find(|w| w.name.as_str() == vk.node_name)
            .ok_or_else(|| {
                Error::Spec(format!(
                    "spec.backend.azure.virtualKubelet: add a worker named {:?} to spec.workers so that it gets a kubelet identity",
                    vk.node_name
                ))
            })?;
        let files = bundle(rendered, worker)?;
        let vk_kube = "/etc/kubernetes";
        let volumes = vec![files.secret("kubeconfig", vk_kube, &["kubelet.conf"])?];
        let mut c = container(
            "virtual-kubelet",
            &vk.image,
            vec![
                "virtual-kubelet".into(),
                "--provider=azure".into(),
                format!("--nodename={}", vk.node_name),
                "--os=Linux".into(),
            ],
            &[ports::KUBELET],
            opts.virtual_kubelet,
        );
        c.env
            .insert("KUBECONFIG".into(), format!("{vk_kube}/kubelet.conf"));
        c.env
            .insert("ACI_RESOURCE_GROUP".into(), vk.pods_resource_group.clone());
        c.env.insert("ACI_REGION".into(), az.location.clone());
        c.env
            .insert("AZURE_SUBSCRIPTION_ID".into(), az.subscription_id.clone());
        groups.push(AciUnit {
            role: AciRole::VirtualKubelet,
            spec: unit(
                spec,
                group_name(spec, "virtual-kubelet"),
                None,
                group(vec![c], volumes),
            ),
        });
    }

    // pause's one-shot snapshot: the init container takes it (a group runs its init
    // containers to completion, in order, before its containers), so the group running at
    // all proves the snapshot was saved, verified and shipped.
    let job_files = bundle(rendered, first)?;
    let endpoints = spec.etcd_endpoints().join(",");
    let job = unit(
        spec,
        group_name(spec, "snapshot"),
        None,
        group(
            vec![
                // it only proves the init container finished: it sees no volume
                container(
                    "done",
                    &opts.tools_image,
                    sh("echo snapshot saved; exec sleep 2147483647"),
                    &[],
                    opts.sidecar,
                )
                .mounts(Vec::<String>::new()),
            ],
            vec![
                job_files.secret(
                    "etcd-pki",
                    ETCD_PKI,
                    &["ca.crt", "healthcheck-client.crt", "healthcheck-client.key"],
                )?,
                share_volume(az),
            ],
        )
        .init_container(container(
            "snapshot",
            &opts.tools_image,
            sh(&snapshot_script(&endpoints, az.snapshots_kept)),
            &[],
            (0, 0),
        )),
    );

    Ok(AciUnits {
        groups,
        snapshot_job: job,
        tag: ClusterTag::new(spec.name.as_str()),
    })
}

fn backend_err(phase: Phase) -> impl Fn(frankenetes_compute::BackendError) -> Error {
    move |source| Error::Backend { phase, source }
}

/// Creates (or adopts, starting stopped ones) the groups and waits for each to run.
async fn ensure_running(
    backend: &dyn ComputeBackend,
    phase: Phase,
    specs: &[&UnitSpec],
    opts: &AciOptions,
) -> Result<Vec<UnitId>, Error> {
    let mut ids = Vec::new();
    for s in specs {
        let mut u = backend.create(s).await.map_err(backend_err(phase))?;
        if u.state == UnitState::Stopped {
            u = backend.start(&u.id).await.map_err(backend_err(phase))?;
        }
        ids.push(u.id);
    }
    let start = std::time::Instant::now();
    for id in &ids {
        loop {
            let u = backend.describe(id).await.map_err(backend_err(phase))?;
            match u.state {
                UnitState::Running => break,
                UnitState::Failed => {
                    return Err(Error::Backend {
                        phase,
                        source: frankenetes_compute::BackendError::new(
                            BackendErrorKind::Other,
                            format!("{} failed: {:?}", u.name, u.details),
                        ),
                    });
                }
                _ if start.elapsed() > opts.ready_timeout => {
                    return Err(Error::Timeout {
                        phase,
                        seconds: start.elapsed().as_secs(),
                        detail: format!("{} is {}", u.name, u.state),
                    });
                }
                _ => tokio::time::sleep(opts.poll).await,
            }
        }
    }
    Ok(ids)
}

/// `up`: etcd groups (all members together: they need each other for quorum; each restores
/// the newest snapshot first if the share has one), then the apiservers, then the
/// controller-manager, the scheduler and virtual-kubelet. Idempotent: existing groups are
/// adopted. The CLI creates the share first (`AciBackend::create_file_share`).
pub async fn up(backend: &dyn ComputeBackend, units: &AciUnits) -> Result<(), Error> {
    up_with(backend, units, &AciOptions::default()).await
}

/// [`up`] with other options (timeouts).
pub async fn up_with(
    backend: &dyn ComputeBackend,
    units: &AciUnits,
    opts: &AciOptions,
) -> Result<(), Error> {
    ensure_running(backend, Phase::Etcd, &units.by_role(&[AciRole::Etcd]), opts).await?;
    ensure_running(
        backend,
        Phase::ApiServer,
        &units.by_role(&[AciRole::ApiServer]),
        opts,
    )
    .await?;
    ensure_running(
        backend,
        Phase::Controllers,
        &units.by_role(&[
            AciRole::ControllerManager,
            AciRole::Scheduler,
            AciRole::VirtualKubelet,
        ]),
        opts,
    )
    .await?;
    Ok(())
}

/// How `pause` releases compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PauseMode {
    /// `stop` each group: billing stops, the definitions and DNS labels stay reserved (no
    /// one can take them meanwhile). The default.
    Stop,
    /// Delete each group: nothing of ACI is left; the labels are free for anyone until
    /// `resume` (a subdomain-takeover risk with the `Unsecure` scope).
    Delete,
}

async fn id_of(
    backend: &dyn ComputeBackend,
    tag: &ClusterTag,
    name: &str,
    phase: Phase,
) -> Result<Option<UnitId>, Error> {
    Ok(backend
        .list(tag)
        .await
        .map_err(backend_err(phase))?
        .into_iter()
        .find(|u| u.name == name)
        .map(|u| u.id))
}

async fn release(
    backend: &dyn ComputeBackend,
    units: &AciUnits,
    roles: &[AciRole],
    mode: PauseMode,
    phase: Phase,
) -> Result<(), Error> {
    let listed = backend.list(&units.tag).await.map_err(backend_err(phase))?;
    for s in units.by_role(roles) {
        let Some(u) = listed.iter().find(|u| u.name == s.name) else {
            continue;
        };
        let r = match mode {
            PauseMode::Stop if u.state == UnitState::Stopped => Ok(()),
            PauseMode::Stop => backend.stop(&u.id).await,
            PauseMode::Delete => backend.delete(&u.id).await,
        };
        match r {
            Ok(()) => {}
            Err(e) if e.kind == BackendErrorKind::NotFound => {}
            Err(e) => return Err(backend_err(phase)(e)),
        }
    }
    Ok(())
}

/// `pause`: stop the writers (apiservers, controllers, virtual-kubelet), take a final snapshot
/// with the snapshot job and wait until it is on the share (the job running proves its init
/// container saved and verified it), remove the job, then stop or delete the etcd groups.
/// The share is kept. If the snapshot fails, etcd keeps running and the error says so.
pub async fn pause(
    backend: &dyn ComputeBackend,
    units: &AciUnits,
    mode: PauseMode,
) -> Result<(), Error> {
    pause_with(backend, units, mode, &AciOptions::default()).await
}

/// [`pause`] with other options (timeouts).
pub async fn pause_with(
    backend: &dyn ComputeBackend,
    units: &AciUnits,
    mode: PauseMode,
    opts: &AciOptions,
) -> Result<(), Error> {
    release(
        backend,
        units,
        &[
            AciRole::VirtualKubelet,
            AciRole::ControllerManager,
            AciRole::Scheduler,
            AciRole::ApiServer,
        ],
        mode,
        Phase::Controllers,
    )
    .await?;
    // A stale job from an interrupted pause would prove nothing: start from scratch.
    if let Some(old) = id_of(backend, &units.tag, &units.snapshot_job.name, Phase::Etcd).await? {
        backend
            .delete(&old)
            .await
            .map_err(backend_err(Phase::Etcd))?;
    }
    let job = ensure_running(backend, Phase::Etcd, &[&units.snapshot_job], opts)
        .await
        .map_err(|e| {
            Error::Snapshot(format!(
                "the final snapshot did not complete, etcd left running: {e}"
            ))
        })?;
    for id in &job {
        backend.delete(id).await.map_err(backend_err(Phase::Etcd))?;
    }
    release(backend, units, &[AciRole::Etcd], mode, Phase::Etcd).await
}

/// `resume`: bring everything back in `up`'s order; each etcd group's init container restores
/// the newest verified snapshot before etcd starts.
pub async fn resume(backend: &dyn ComputeBackend, units: &AciUnits) -> Result<(), Error> {
    up(backend, units).await
}

/// [`resume`] with other options (timeouts).
pub async fn resume_with(
    backend: &dyn ComputeBackend,
    units: &AciUnits,
    opts: &AciOptions,
) -> Result<(), Error> {
    up_with(backend, units, opts).await
}

/// `down`: delete every group carrying the cluster's tag (also ones an interrupted `up` left),
/// and prove the list is empty. The share is the CLI's to delete, only with `--purge`
/// (`AciBackend::delete_file_share`).
pub async fn down(backend: &dyn ComputeBackend, tag: &ClusterTag) -> Result<(), Error> {
    for u in backend.list(tag).await.map_err(backend_err(Phase::Etcd))? {
        match backend.delete(&u.id).await {
            Ok(()) => {}
            Err(e) if e.kind == BackendErrorKind::NotFound => {}
            Err(e) => return Err(backend_err(Phase::Etcd)(e)),
        }
    }
    let left = backend.list(tag).await.map_err(backend_err(Phase::Etcd))?;
    if !left.is_empty() {
        let names: Vec<String> = left.into_iter().map(|u| u.name).collect();
        return Err(Error::Spec(format!(
            "down: still there after deleting: {}",
            names.join(", ")
        )));
    }
    Ok(())
}

/// Every container of every group with its command, for `plan -v` and tests: (group, container,
/// image, command), init containers first, their names shown as `init:{name}`. No secret:
/// volumes are listed by name only.
pub fn describe(units: &AciUnits) -> BTreeMap<String, Vec<(String, String, Vec<String>)>> {
    let mut out = BTreeMap::new();
    for u in units
        .groups
        .iter()
        .map(|g| &g.spec)
        .chain([&units.snapshot_job])
    {
        if let UnitKind::ContainerGroup(g) = &u.kind {
            out.insert(
                u.name.clone(),
                g.init_containers
                    .iter()
                    .map(|c| (format!("init:{}", c.name), c))
                    .chain(g.containers.iter().map(|c| (c.name.clone(), c)))
                    .map(|(name, c)| (name, c.image.clone(), c.command.clone()))
                    .collect(),
            );
        }
    }
    out
}
