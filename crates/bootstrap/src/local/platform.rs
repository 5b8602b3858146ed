//! The local platform: a cluster as supervised processes on this machine.

use std::path::{Path, PathBuf};

use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComponentSpec, ComputeBackend, ContainerSpec, Gate,
    NodeRole, OnProgress, Operation, Outputs, Placement, Platform, PlatformPlan, Progress,
    Resource, UnitSpec, UnitState, Wave, Workload,
};

use super::LocalBackend;
use super::nodes::{self, Workers};
use super::preflight::{is_local_address, port_free, port_holder};

use crate::fetch::{self, Binary, Cache, Origin, Search};

/// The Kubernetes binaries the control plane runs besides etcd.
const KUBE_BINARIES: [Binary; 3] = [
    Binary::KubeApiserver,
    Binary::KubeControllerManager,
    Binary::KubeScheduler,
];

/// The binaries a worker runs besides containerd.
const NODE_BINARIES: [Binary; 2] = [Binary::Kubelet, Binary::KubeProxy];

/// How long `up` waits for the workers' gates by default.
const WORKER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// etcd's metrics port (kubeadm's), which it also listens on.
const ETCD_METRICS: u16 = frankenetes_spec::ports::ETCD_METRICS;

/// A cluster as supervised processes on this machine: every node on its own address
/// (127.0.0.11, .12, .13 …), files read from the node overlays in the cluster directory,
/// etcd's data in `<dir>/data/<node>/etcd`, units in `<dir>/run`. Each worker runs its own
/// containerd (and the kubelet, kube-proxy when found) under `<dir>/run/<node>/`: see
/// [`Worker`](super::Worker).
#[derive(Debug)]
pub struct LocalPlatform {
    dir: PathBuf,
    backend: LocalBackend,
    bin_dir: Option<PathBuf>,
    cache: Option<Cache>,
    worker_timeout: std::time::Duration,
}

fn invalid(m: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Invalid, m)
}

/// An executable named `name` in `dir`, else in PATH.
pub(crate) fn find_binary(name: &str, dir: Option<&Path>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    dir.map(Path::to_path_buf)
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// This machine's architecture as Kubernetes release paths name it.
pub(crate) fn release_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// `--flag=value` of a command line.
fn flag<'a>(command: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("--{name}=");
    command.iter().find_map(|a| a.strip_prefix(&prefix))
}

impl LocalPlatform {
    /// A platform keeping its units under `<dir>/run` (`dir` is the cluster directory).
    pub fn new(dir: impl AsRef<Path>) -> Self {
        Self {
            dir: dir.as_ref().to_path_buf(),
            backend: LocalBackend::new(dir.as_ref().join("run")),
            bin_dir: None,
            cache: Cache::from_env().ok(),
            worker_timeout: WORKER_TIMEOUT,
        }
    }

    /// How long `up` waits for the workers' gates (containerd's CRI, the kubelet's
    /// `/healthz`, the node `Ready`); two minutes unless set.
    #[must_use]
    pub fn worker_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.worker_timeout = timeout;
        self
    }

    /// The workers of `w` and what they run here.
    fn workers(&self, w: &Workload) -> Result<Workers, BackendError> {
        let binaries = self.node_binaries(&w.kubernetes_version)?;
        Workers::of(w, &self.dir.join("run"), self.bin_dir.as_deref(), &binaries)
    }

    /// The kubelet and kube-proxy of `version`: found or not (an error: one of another
    /// release where the user pointed).
    fn node_binaries(&self, version: &str) -> Result<Vec<(Binary, Option<PathBuf>)>, BackendError> {
        let version = version
            .parse()
            .map_err(|e| invalid(format!("spec.kubernetesVersion {version:?}: {e}")))?;
        let search = self.search();
        NODE_BINARIES
            .into_iter()
            .map(|b| match search.locate_one(b, &version) {
                Ok(l) => Ok((b, Some(l.path))),
                Err(fetch::Error::NotFound { .. }) => Ok((b, None)),
                Err(e) => Err(invalid(e.to_string())),
            })
            .collect()
    }

    /// Whether the apiserver tier runs (its binaries were found).
    fn apiserver_tier(&self, version: &str) -> Result<bool, BackendError> {
        Ok(self.missing_binaries(version)?.is_empty())
    }

    /// Looks for binaries fetched by `frankenetes fetch` in `cache` (default: the user's
    /// cache, `~/.cache/frankenetes/bin`); `None`: not in any cache.
    #[must_use]
    pub fn cache(mut self, cache: Option<Cache>) -> Self {
        self.cache = cache;
        self
    }

    /// Looks for the Kubernetes binaries in `dir` first.
    #[must_use]
    pub fn bin_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.bin_dir = dir;
        self
    }

    /// The process backend (PIDs, logs).
    pub fn local_backend(&self) -> &LocalBackend {
        &self.backend
    }

    fn etcd_binary(&self) -> Result<PathBuf, BackendError> {
        find_binary("etcd", self.bin_dir.as_deref()).ok_or_else(|| {
            invalid(
                "`etcd` was not found in PATH: install it (Debian: apt-get install etcd-server etcd-client)",
            )
        })
    }

    fn search(&self) -> Search {
        let mut search = match &self.cache {
            Some(c) => Search::new(self.bin_dir.as_deref(), c),
            None => Search::new(self.bin_dir.as_deref(), &Cache::new(PathBuf::new())),
        };
        if self.cache.is_none() {
            search.cache = None;
        }
        search
    }

    /// Each Kubernetes binary of `version`: found (with where), missing, or an error (one of
    /// another release where the user pointed).
    fn kube_binaries(
        &self,
        version: &str,
    ) -> Result<Vec<(Binary, Option<fetch::Located>)>, BackendError> {
        let version = version
            .parse()
            .map_err(|e| invalid(format!("spec.kubernetesVersion {version:?}: {e}")))?;
        let search = self.search();
        KUBE_BINARIES
            .into_iter()
            .map(|b| match search.locate_one(b, &version) {
                Ok(l) => Ok((b, Some(l))),
                Err(fetch::Error::NotFound { .. }) => Ok((b, None)),
                Err(e) => Err(invalid(e.to_string())),
            })
            .collect()
    }

    fn missing_binaries(&self, version: &str) -> Result<Vec<Binary>, BackendError> {
        Ok(self
            .kube_binaries(version)?
            .into_iter()
            .filter(|(_, l)| l.is_none())
            .map(|(b, _)| b)
            .collect())
    }

    /// The unit running `component` of `node`: its command with the binary's full path.
    fn unit(
        &self,
        tag: &ClusterTag,
        node: &str,
        c: &ComponentSpec,
        binaries: &[(Binary, Option<fetch::Located>)],
    ) -> Result<UnitSpec, BackendError> {
        let path = if c.name == "etcd" {
            self.etcd_binary()?
        } else {
            binaries
                .iter()
                .find(|(b, _)| b.name() == c.name)
                .and_then(|(_, l)| l.as_ref())
                .map(|l| l.path.clone())
                .ok_or_else(|| invalid(format!("`{}` was not found", c.name)))?
        };
        let mut command = c.command.clone();
        if let Some(first) = command.first_mut() {
            *first = path.display().to_string();
        }
        Ok(UnitSpec::container_group(
            format!("{}-{node}", c.name),
            tag.clone(),
            vec![ContainerSpec::new(c.name.clone(), "", command)],
        ))
    }

    /// The warning `plan` and `up` show when the apiserver tier cannot run.
    fn missing_warning(&self, version: &str) -> Result<Option<String>, BackendError> {
        let missing = self.missing_binaries(version)?;
        Ok((!missing.is_empty()).then(|| {
            format!(
                "{} not found in {}PATH or the fetch cache: the etcd tier comes up alone; for the \
                 apiserver tier run `frankenetes fetch` (it downloads them from \
                 https://dl.k8s.io/release/{version}/bin/linux/{}/ and checks them against the \
                 published .sha256 files), or pass --bin-dir DIR",
                missing
                    .iter()
                    .map(|b| b.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                self.bin_dir
                    .as_deref()
                    .map(|d| format!("{} or ", d.display()))
                    .unwrap_or_default(),
                release_arch()
            )
        }))
    }

    async fn running_units(&self, tag: &ClusterTag) -> Result<Vec<String>, BackendError> {
        Ok(self
            .backend
            .list(tag)
            .await?
            .into_iter()
            .filter(|u| u.state == UnitState::Running)
            .map(|u| u.name)
            .collect())
    }
}

#[async_trait::async_trait]
impl Platform for LocalPlatform {
    fn backend(&self) -> &dyn ComputeBackend {
        &self.backend
    }

    fn reachable(&self) -> bool {
        true
    }

    fn placement(&self) -> Placement {
        Placement::Host
    }

    fn etcd_version(&self) -> Result<Option<String>, BackendError> {
        let etcd = self.etcd_binary()?;
        let out = std::process::Command::new(&etcd)
            .arg("--version")
            .output()
            .map_err(|e| invalid(format!("cannot run {} --version: {e}", etcd.display())))?;
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find_map(|l| l.strip_prefix("etcd Version: "))
            .map(|v| Some(v.trim().to_owned()))
            .ok_or_else(|| {
                invalid(format!(
                    "cannot read the version of {}: {}",
                    etcd.display(),
                    text.trim()
                ))
            })
    }

    fn plan(&self, w: &Workload) -> Result<PlatformPlan, BackendError> {
        let mut plan = PlatformPlan::default();
        for wave in self.waves(w)? {
            for u in wave.units {
                let detail = match &u.kind {
                    frankenetes_compute::UnitKind::ContainerGroup(g) => g
                        .containers
                        .first()
                        .and_then(|c| c.command.first())
                        .cloned()
                        .unwrap_or_default(),
                    _ => String::new(),
                };
                plan.resources
                    .push(Resource::new("process", u.name).detail(detail));
            }
        }
        plan.warnings
            .extend(self.missing_warning(&w.kubernetes_version)?);
        plan.warnings.extend(self.workers(w)?.warnings);
        for (b, l) in self.kube_binaries(&w.kubernetes_version)? {
            let Some(l) = l else { continue };
            let origin = match l.origin {
                Origin::BinDir => "--bin-dir",
                Origin::Path => "PATH",
                Origin::Cache => "the fetch cache",
            };
            plan.notes.push(format!(
                "{} {} from {origin}: {}",
                b.name(),
                l.version,
                l.path.display()
            ));
            for (p, why) in &l.passed_over {
                plan.notes
                    .push(format!("passed over {} ({why})", p.display()));
            }
        }
        Ok(plan)
    }

    fn waves(&self, w: &Workload) -> Result<Vec<Wave>, BackendError> {
        let tag = &w.tag;
        let planes: Vec<_> = w.nodes_of(NodeRole::ControlPlane).collect();
        let binaries = self.kube_binaries(&w.kubernetes_version)?;
        let wave = |component: &str| -> Result<Vec<UnitSpec>, BackendError> {
            planes
                .iter()
                .filter_map(|n| n.component(component).map(|c| (n, c)))
                .map(|(n, c)| self.unit(tag, &n.name, c, &binaries))
                .collect()
        };
        let mut waves = vec![Wave::new("etcd", wave("etcd")?, Gate::EtcdHealthy)];
        if binaries.iter().all(|(_, l)| l.is_some()) {
            waves.push(Wave::new(
                "apiservers",
                wave("kube-apiserver")?,
                Gate::ApiServerReady,
            ));
            let mut controllers = wave("kube-controller-manager")?;
            controllers.extend(wave("kube-scheduler")?);
            waves.push(Wave::new(
                "controller-managers and schedulers",
                controllers,
                Gate::Leases,
            ));
        }
        let workers = self.workers(w)?.units(tag, &self.dir)?;
        if !workers.is_empty() {
            waves.push(Wave::new("workers", workers, Gate::Running));
        }
        Ok(waves)
    }

    fn validate(&self, w: &Workload) -> Result<(), BackendError> {
        for n in &w.nodes {
            if !is_local_address(n.ip) {
                return Err(invalid(format!(
                    "node {} has the address {}, which is not on this machine: the local backend runs \
                     every node here, each on its own address; use loopback addresses (127.0.0.11, \
                     127.0.0.12, …: `frankenetes init` writes them) or addresses of this machine's interfaces",
                    n.name, n.ip
                )));
            }
        }
        self.etcd_binary()?;
        // A binary of another release where the user pointed is refused here.
        self.kube_binaries(&w.kubernetes_version)?;
        self.node_binaries(&w.kubernetes_version)?;
        Ok(())
    }

    async fn preflight(&self, w: &Workload) -> Result<(), BackendError> {
        let running = self.running_units(&w.tag).await?;
        for n in w.nodes_of(NodeRole::ControlPlane) {
            for c in &n.components {
                if running.contains(&format!("{}-{}", c.name, n.name)) {
                    continue;
                }
                let mut ports = c.ports.clone();
                if c.name == "etcd" {
                    ports.push(ETCD_METRICS);
                }
                for port in ports {
                    if !port_free(n.ip, port) {
                        let holder = port_holder(n.ip, port)
                            .map(|h| format!(" by {h}"))
                            .unwrap_or_default();
                        return Err(invalid(format!(
                            "{} of node {} needs {}:{port}, which is already taken{holder}: stop \
                             that process, or give the node another address",
                            c.name, n.name, n.ip
                        )));
                    }
                }
            }
        }
        self.workers(w)?.preflight(&running)
    }

    async fn unit_health(
        &self,
        tag: &ClusterTag,
        running: &[String],
    ) -> Vec<(String, Result<String, String>)> {
        let admin = frankenetes_bundle::OutputLayout::new(self.dir.join("bundle")).admin_conf();
        let tier = running.iter().any(|u| u.starts_with("kube-apiserver-"));
        nodes::unit_health(
            &self.dir.join("run"),
            &tag.cluster,
            running,
            tier.then_some(&admin),
        )
        .await
    }

    async fn inventory(&self, tag: &ClusterTag) -> Result<Vec<Resource>, BackendError> {
        Ok(self
            .backend
            .list(tag)
            .await?
            .into_iter()
            .map(|u| {
                let pid = u
                    .details
                    .iter()
                    .find(|(k, _)| k.ends_with(".pid"))
                    .map(|(_, v)| v.clone())
                    .filter(|p| !p.is_empty());
                let log = u
                    .details
                    .iter()
                    .find(|(k, _)| k.ends_with(".log"))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let mut r = Resource::new("process", u.name.clone())
                    .id(u.id.0.clone())
                    .state(u.state.to_string())
                    .detail(log);
                if let Some(pid) = pid {
                    r.id = Some(pid);
                }
                r
            })
            .collect())
    }

    async fn provision(&self, w: &Workload, on: OnProgress<'_>) -> Result<(), BackendError> {
        // etcd refuses a data directory others can read.
        for n in w.nodes_of(NodeRole::ControlPlane) {
            if let Some(d) = n
                .component("etcd")
                .and_then(|c| flag(&c.command, "data-dir"))
            {
                frankenetes_bundle::fs::ensure_private_dir(Path::new(d))
                    .map_err(|e| BackendError::new(BackendErrorKind::Other, e.to_string()))?;
            }
        }
        self.workers(w)?.provision(w, &self.dir, on)
    }

    async fn complete(&self, w: &Workload, on: OnProgress<'_>) -> Result<Outputs, BackendError> {
        let admin = frankenetes_bundle::OutputLayout::new(self.dir.join("bundle")).admin_conf();
        let tier = self.apiserver_tier(&w.kubernetes_version)?;
        self.workers(w)?
            .await_gates(tier.then_some(admin.as_path()), self.worker_timeout, on)
            .await?;
        Ok(Outputs::default())
    }

    /// Drains the workers' containers through their containerd, deletes every unit, then
    /// removes what the workers' runtimes left (shims, pod networking, mounts, sockets).
    async fn teardown(
        &self,
        tag: &ClusterTag,
        _purge: bool,
        on: OnProgress<'_>,
    ) -> Result<Vec<Resource>, BackendError> {
        let run = self.dir.join("run");
        let cluster = tag.cluster.clone();
        let r = run.clone();
        tokio::task::spawn_blocking(move || nodes::drain_all(&r, &cluster))
            .await
            .map_err(|e| BackendError::new(BackendErrorKind::Other, e.to_string()))?;
        frankenetes_compute::platform::delete_units(&self.backend, tag, on).await?;
        nodes::sweep_all(&run, &tag.cluster, on);
        self.inventory(tag).await
    }

    fn supports(&self, _op: Operation) -> Result<(), BackendError> {
        Ok(())
    }

    fn members_without_data(&self, w: &Workload) -> Result<Vec<String>, BackendError> {
        Ok(w.nodes_of(NodeRole::ControlPlane)
            .filter(|n| {
                n.component("etcd")
                    .and_then(|c| flag(&c.command, "data-dir"))
                    .is_some_and(|d| !Path::new(d).join("member").exists())
            })
            .map(|n| n.name.clone())
            .collect())
    }

    async fn restore(
        &self,
        w: &Workload,
        file: &Path,
        members: &[String],
        on: OnProgress<'_>,
    ) -> Result<(), BackendError> {
        let tools = self.etcd_binary()?.parent().map(Path::to_path_buf);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for n in w.nodes_of(NodeRole::ControlPlane) {
            if !members.is_empty() && !members.contains(&n.name) {
                continue;
            }
            let etcd = n
                .component("etcd")
                .ok_or_else(|| invalid(format!("node {} runs no etcd", n.name)))?;
            let get = |f: &str| {
                flag(&etcd.command, f).ok_or_else(|| {
                    invalid(format!("node {}: etcd's command line has no --{f}", n.name))
                })
            };
            let data = PathBuf::from(get("data-dir")?);
            if data.exists() {
                let aside = data.with_file_name(format!("etcd.replaced-{stamp}"));
                std::fs::rename(&data, &aside).map_err(|e| {
                    BackendError::new(
                        BackendErrorKind::Other,
                        format!("cannot move {} aside: {e}", data.display()),
                    )
                })?;
                on(Progress::Info(format!(
                    "{}: the old data is kept in {}",
                    n.name,
                    aside.display()
                )));
            }
            if let Some(parent) = data.parent() {
                frankenetes_bundle::fs::ensure_private_dir(parent)
                    .map_err(|e| BackendError::new(BackendErrorKind::Other, e.to_string()))?;
            }
            let mut cmd = crate::snapshots::restore_command(tools.as_deref())
                .map_err(|e| invalid(e.to_string()))?;
            let out = cmd
                .arg("snapshot")
                .arg("restore")
                .arg(file)
                .arg(format!("--name={}", get("name")?))
                .arg(format!("--initial-cluster={}", get("initial-cluster")?))
                .arg(format!(
                    "--initial-cluster-token={}",
                    get("initial-cluster-token")?
                ))
                .arg(format!(
                    "--initial-advertise-peer-urls={}",
                    get("initial-advertise-peer-urls")?
                ))
                .arg(format!("--data-dir={}", data.display()))
                .output()
                .map_err(|e| BackendError::new(BackendErrorKind::Other, e.to_string()))?;
            if !out.status.success() {
                return Err(BackendError::new(
                    BackendErrorKind::Other,
                    format!(
                        "restoring {} from {}: {}",
                        n.name,
                        file.display(),
                        String::from_utf8_lossy(&out.stderr).trim()
                    ),
                ));
            }
            let _ = std::fs::set_permissions(
                &data,
                std::os::unix::fs::PermissionsExt::from_mode(0o700),
            );
            on(Progress::Info(format!(
                "{}: restored from {}",
                n.name,
                file.display()
            )));
        }
        Ok(())
    }
}
