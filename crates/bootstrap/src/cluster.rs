//! The sequencer and the cluster operations: up, status, down, snapshot, restore, pause, resume.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use frankenetes_compute::{
    BackendError, ClusterTag, ComputeBackend, ContainerSpec, Unit, UnitId, UnitSpec, UnitState,
};
use frankenetes_manifests::{ControlPlane, Layout};
use frankenetes_pki::{PkiPlan, SyncOptions};
use frankenetes_spec::{ClusterSpec, EtcdVersion, NodeSpec, ports};
use serde::{Deserialize, Serialize};

use crate::Error;
use crate::etcd::{self, EtcdAuth};

/// A step of `up`, in order; each waits for the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Phase {
    /// Generate or complete the PKI.
    Pki,
    /// Render the node bundles.
    Render,
    /// Start the etcd members.
    Etcd,
    /// Gate: every member started, every endpoint answering, a probe key written and read.
    EtcdHealthy,
    /// Start the apiservers.
    ApiServer,
    /// Gate: every apiserver's `/readyz` answers `ok`.
    ApiServerReady,
    /// The day-one objects applied (RBAC, `cluster-info`, kubeadm's config maps, CoreDNS,
    /// kube-proxy, the CNI manifest if any).
    DayOne,
    /// Start the controller-managers and schedulers.
    Controllers,
    /// Gate: the controller-manager's and scheduler's leader leases are held.
    Leases,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Pki => "pki",
            Phase::Render => "render",
            Phase::Etcd => "etcd",
            Phase::EtcdHealthy => "etcd healthy",
            Phase::ApiServer => "apiserver",
            Phase::ApiServerReady => "apiserver /readyz",
            Phase::DayOne => "day-one objects",
            Phase::Controllers => "controller-manager and scheduler",
            Phase::Leases => "leader leases",
        })
    }
}

/// Progress of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A phase began.
    Started(Phase),
    /// A phase finished.
    Done(Phase, Duration),
    /// A gate is waiting; what it saw last.
    Waiting(Phase, String),
    /// Something the user should know (missing binaries, stale certificates).
    Warning(String),
    /// Plain information.
    Info(String),
}

/// Options of a [`Cluster`].
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// The cluster's working directory: `bundle/` (PKI and bundles), `data/` (etcd),
    /// `snapshots/`, `state.json`.
    pub dir: PathBuf,
    /// Where kube-apiserver, kube-controller-manager and kube-scheduler are (else PATH).
    pub bin_dir: Option<PathBuf>,
    /// How long each health gate waits.
    pub gate_timeout: Duration,
    /// Receives progress.
    pub events: Arc<dyn Fn(&Event) + Send + Sync>,
    /// The day-one objects: rendered to `bundle/cluster/addons/` and applied once the
    /// apiservers are ready (default: on, no network plugin).
    pub addons: frankenetes_manifests::AddonOptions,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("dir", &self.dir)
            .field("bin_dir", &self.bin_dir)
            .field("gate_timeout", &self.gate_timeout)
            .field("addons", &self.addons)
            .finish()
    }
}

impl Options {
    /// Defaults: binaries from PATH, 90 s per gate, events traced.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            bin_dir: None,
            gate_timeout: Duration::from_secs(90),
            events: Arc::new(|e| tracing::info!(event = ?e, "progress")),
            addons: frankenetes_manifests::AddonOptions::default(),
        }
    }

    /// Which day-one objects to render and apply.
    #[must_use]
    pub fn addons(mut self, addons: frankenetes_manifests::AddonOptions) -> Self {
        self.addons = addons;
        self
    }

    /// Looks for the Kubernetes binaries in `dir` first.
    #[must_use]
    pub fn bin_dir(mut self, dir: Option<PathBuf>) -> Self {
        self.bin_dir = dir;
        self
    }

    /// Sends progress to `f`.
    #[must_use]
    pub fn on_event(mut self, f: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.events = Arc::new(f);
        self
    }

    /// How long each gate waits.
    #[must_use]
    pub fn gate_timeout(mut self, d: Duration) -> Self {
        self.gate_timeout = d;
        self
    }
}

/// What `up` did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UpReport {
    /// Phases completed.
    pub phases: Vec<Phase>,
    /// Kubernetes binaries that were not found (the etcd tier is up without them).
    pub missing_binaries: Vec<String>,
    /// Where the operator's kubeconfig is.
    pub admin_kubeconfig: PathBuf,
}

/// One line of `status`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ComponentStatus {
    /// The unit (`etcd-control-01`).
    pub unit: String,
    /// Backend state.
    pub state: UnitState,
    /// Health as checked, or why not.
    pub health: String,
    /// The main process's PID, when known.
    pub pid: Option<String>,
}

/// What `status` found.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct StatusReport {
    /// One row per unit.
    pub components: Vec<ComponentStatus>,
    /// etcd's overall health.
    pub etcd_healthy: bool,
}

impl StatusReport {
    /// A table: unit, state, PID, health.
    pub fn table(&self) -> String {
        let mut out = format!("{:<34} {:<9} {:<8} {}\n", "UNIT", "STATE", "PID", "HEALTH");
        for c in &self.components {
            out.push_str(&format!(
                "{:<34} {:<9} {:<8} {}\n",
                c.unit,
                c.state.to_string(),
                c.pid.as_deref().unwrap_or("-"),
                c.health
            ));
        }
        if self.components.is_empty() {
            out.push_str("(no units)\n");
        }
        out
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct State {
    phases: Vec<Phase>,
    etcd_version: Option<String>,
}

/// A cluster on a backend.
pub struct Cluster<B: ComputeBackend> {
    spec: ClusterSpec,
    backend: B,
    opts: Options,
    tag: ClusterTag,
}

impl<B: ComputeBackend> fmt::Debug for Cluster<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.spec.name)
            .field("backend", &self.backend.name())
            .field("opts", &self.opts)
            .finish()
    }
}

/// Finds an executable in `dir` or PATH.
fn find_binary(name: &str, dir: Option<&Path>) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    dir.map(Path::to_path_buf)
        .into_iter()
        .chain(std::env::split_paths(&path))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The release of an `etcd` binary (`etcd --version`).
fn etcd_binary_version(etcd: &Path) -> Result<EtcdVersion, Error> {
    let out = std::process::Command::new(etcd)
        .arg("--version")
        .output()
        .map_err(|source| Error::Io {
            path: etcd.to_owned(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("etcd Version: "))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| {
            Error::Spec(format!(
                "cannot read the version of {}: {text}",
                etcd.display()
            ))
        })
}

impl<B: ComputeBackend> Cluster<B> {
    /// A cluster.
    pub fn new(spec: ClusterSpec, backend: B, opts: Options) -> Self {
        let tag = ClusterTag::new(spec.name.as_str());
        Self {
            spec,
            backend,
            opts,
            tag,
        }
    }

    /// The backend.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    fn emit(&self, e: Event) {
        (self.opts.events)(&e);
    }

    fn bundle(&self) -> PathBuf {
        self.opts.dir.join("bundle")
    }

    fn node_root(&self, node: &NodeSpec) -> PathBuf {
        self.bundle().join("nodes").join(node.name.as_str())
    }

    fn data_dir(&self, node: &NodeSpec) -> PathBuf {
        self.opts
            .dir
            .join("data")
            .join(node.name.as_str())
            .join("etcd")
    }

    fn node_pki(&self, node: &NodeSpec) -> PathBuf {
        self.node_root(node).join("etc/kubernetes/pki")
    }

    fn auth(&self) -> Result<EtcdAuth, Error> {
        let n = self
            .spec
            .control_plane
            .first()
            .ok_or_else(|| Error::Spec("no control-plane node".into()))?;
        Ok(EtcdAuth::healthcheck(&self.node_pki(n)))
    }

    fn state_path(&self) -> PathBuf {
        self.opts.dir.join("state.json")
    }

    fn load_state(&self) -> State {
        std::fs::read(self.state_path())
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    fn save_state(&self, s: &State) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(s).map_err(|e| Error::Spec(e.to_string()))?;
        Ok(frankenetes_bundle::fs::write_atomic(
            &self.state_path(),
            &bytes,
            0o644,
        )?)
    }

    /// The etcd binary and the spec with `etcd.version` set to its release.
    fn local_spec(&self) -> Result<(PathBuf, ClusterSpec), Error> {
        let etcd = find_binary("etcd", None).ok_or_else(|| Error::MissingBinary {
            binary: "etcd".into(),
            where_: " in PATH".into(),
            hint: "install it (Debian: apt-get install etcd-server etcd-client)".into(),
        })?;
        let mut spec = self.spec.clone();
        if spec.etcd.version.is_none() {
            spec.etcd.version = Some(etcd_binary_version(&etcd)?);
        }
        Ok((etcd, spec))
    }

    fn control_plane_of(&self, spec: &ClusterSpec, node: &NodeSpec) -> Result<ControlPlane, Error> {
        let layout = Layout::under(self.node_root(node), self.data_dir(node));
        Ok(frankenetes_manifests::control_plane(spec, node, &layout)?)
    }

    async fn create(&self, phase: Phase, unit: &UnitSpec) -> Result<Unit, Error> {
        let mut delay = Duration::from_millis(200);
        let deadline = Instant::now() + self.opts.gate_timeout;
        loop {
            match self.backend.create(unit).await {
                Ok(u) => return Ok(u),
                Err(e) if e.is_retryable() && Instant::now() < deadline => {
                    self.emit(Event::Waiting(
                        phase,
                        format!("{}: {e}; retrying", unit.name),
                    ));
                    tokio::time::sleep(e.retry_after.unwrap_or(delay)).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(source) => return Err(Error::Backend { phase, source }),
            }
        }
    }

    /// The unit `<component>-<node>` running one process: `binary` with `flags`.
    fn unit(
        &self,
        component: &str,
        node: &NodeSpec,
        binary: &Path,
        flags: &frankenetes_manifests::Flags,
    ) -> UnitSpec {
        let mut command = vec![binary.display().to_string()];
        command.extend(flags.args());
        UnitSpec::container_group(
            format!("{component}-{}", node.name),
            self.tag.clone(),
            vec![ContainerSpec::new(component, "", command)],
        )
    }

    /// Waits until `check` says healthy (returns `Ok(None)`), or the gate times out.
    async fn gate<F, Fut>(&self, phase: Phase, mut check: F) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<String>>,
    {
        let start = Instant::now();
        let mut last = String::new();
        let mut last_emit = Instant::now() - Duration::from_secs(10);
        loop {
            match check().await {
                None => return Ok(()),
                Some(detail) => {
                    if detail != last || last_emit.elapsed() > Duration::from_secs(5) {
                        self.emit(Event::Waiting(phase, detail.clone()));
                        last_emit = Instant::now();
                    }
                    last = detail;
                }
            }
            if start.elapsed() > self.opts.gate_timeout {
                return Err(Error::Timeout {
                    phase,
                    seconds: self.opts.gate_timeout.as_secs(),
                    detail: last,
                });
            }
            // Short: an open gate is noticed within 50 ms (`up` is benchmarked against a
            // plain start-and-poll script, benches/up-baseline.sh).
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Checks etcd once: `None` when healthy, else what is wrong.
    async fn etcd_problem(&self) -> Option<String> {
        let auth = match self.auth() {
            Ok(a) => a,
            Err(e) => return Some(e.to_string()),
        };
        match etcd::health(&self.spec.etcd_endpoints(), &auth).await {
            Ok(h) if h.is_healthy(self.spec.control_plane.len()) => None,
            Ok(h) => Some(format!(
                "{} of {} members started, endpoints: {}",
                h.members.len(),
                self.spec.control_plane.len(),
                h.endpoints
                    .iter()
                    .map(|(e, r)| format!("{e} {}", if r.is_ok() { "ok" } else { "down" }))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
            Err(e) => Some(e.to_string()),
        }
    }

    async fn run_phase<T>(
        &self,
        phase: Phase,
        state: &mut State,
        report: &mut UpReport,
        f: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.emit(Event::Started(phase));
        let t = Instant::now();
        let out = f.await?;
        self.emit(Event::Done(phase, t.elapsed()));
        if !state.phases.contains(&phase) {
            state.phases.push(phase);
        }
        report.phases.push(phase);
        self.save_state(state)?;
        Ok(out)
    }

    /// Brings the cluster up, or converges it if it is partly or wholly up already.
    pub async fn up(&self) -> Result<UpReport, Error> {
        let mut state = self.load_state();
        let mut report = UpReport {
            admin_kubeconfig: self.bundle().join("cluster/admin.conf"),
            ..Default::default()
        };
        let (etcd_bin, spec) = self.local_spec()?;
        state.etcd_version = spec.etcd.version.map(|v| v.to_string());

        let bundle = self.bundle();
        let pki = self
            .run_phase(Phase::Pki, &mut state, &mut report, async {
                let (pki, r) =
                    frankenetes_pki::sync(&PkiPlan::from(&spec), &bundle, SyncOptions::default())?;
                for s in &r.stale {
                    self.emit(Event::Warning(format!(
                        "{} no longer matches the spec ({}); `frankenetes pki --renew` replaces it",
                        s.name,
                        s.reasons.join("; ")
                    )));
                }
                Ok(pki)
            })
            .await?;
        self.run_phase(Phase::Render, &mut state, &mut report, async {
            Ok(
                frankenetes_manifests::render_with(&spec, &pki, &self.opts.addons)?
                    .write(&bundle)?,
            )
        })
        .await?;

        let planes: Vec<(NodeSpec, ControlPlane)> = spec
            .control_plane
            .iter()
            .map(|n| Ok((n.clone(), self.control_plane_of(&spec, n)?)))
            .collect::<Result<_, Error>>()?;
        self.run_phase(Phase::Etcd, &mut state, &mut report, async {
            for (node, cp) in &planes {
                std::fs::create_dir_all(self.data_dir(node)).map_err(|source| Error::Io {
                    path: self.data_dir(node),
                    source,
                })?;
                // etcd refuses a data directory others can read.
                let _ = std::fs::set_permissions(
                    self.data_dir(node),
                    std::os::unix::fs::PermissionsExt::from_mode(0o700),
                );
                self.create(Phase::Etcd, &self.unit("etcd", node, &etcd_bin, &cp.etcd))
                    .await?;
            }
            Ok(())
        })
        .await?;
        self.run_phase(
            Phase::EtcdHealthy,
            &mut state,
            &mut report,
            self.gate(Phase::EtcdHealthy, || self.etcd_problem()),
        )
        .await?;

        let bin = self.opts.bin_dir.as_deref();
        let found: Vec<(&str, Option<PathBuf>)> = [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ]
        .into_iter()
        .map(|b| (b, find_binary(b, bin)))
        .collect();
        report.missing_binaries = found
            .iter()
            .filter(|(_, p)| p.is_none())
            .map(|(b, _)| (*b).to_owned())
            .collect();
        if !report.missing_binaries.is_empty() {
            self.emit(Event::Warning(format!(
                "{} not found in {}PATH: the etcd tier is up and healthy; for the apiserver tier download them from \
                 https://dl.k8s.io/release/{}/bin/linux/amd64/ and run `frankenetes up --bin-dir DIR`",
                report.missing_binaries.join(", "),
                bin.map(|d| format!("{} or ", d.display())).unwrap_or_default(),
                spec.kubernetes_version
            )));
            return Ok(report);
        }
        let path = |name: &str| {
            found
                .iter()
                .find(|(b, _)| *b == name)
                .and_then(|(_, p)| p.clone())
                .unwrap_or_default()
        };
        self.run_phase(Phase::ApiServer, &mut state, &mut report, async {
            for (node, cp) in &planes {
                self.create(
                    Phase::ApiServer,
                    &self.unit(
                        "kube-apiserver",
                        node,
                        &path("kube-apiserver"),
                        &cp.apiserver,
                    ),
                )
                .await?;
            }
            Ok(())
        })
        .await?;
        let cluster_pki = bundle.join("cluster/pki");
        let ca = self.node_pki(&spec.control_plane[0]).join("ca.crt");
        let get = |node: &NodeSpec, p: &'static str| {
            let (ca, cert, key) = (
                ca.clone(),
                cluster_pki.join("super-admin.crt"),
                cluster_pki.join("super-admin.key"),
            );
            let addr = SocketAddr::new(node.ip, ports::APISERVER);
            let name = node.ip.to_string();
            async move { crate::https::get(addr, &name, p, &ca, &cert, &key).await }
        };
        self.run_phase(
            Phase::ApiServerReady,
            &mut state,
            &mut report,
            self.gate(Phase::ApiServerReady, || async {
                for (node, _) in &planes {
                    match get(node, "/readyz").await {
                        Ok((200, _)) => {}
                        Ok((code, body)) => {
                            return Some(format!(
                                "{}: /readyz {code} {}",
                                node.name,
                                body.lines().last().unwrap_or_default()
                            ));
                        }
                        Err(e) => return Some(format!("{}: {e}", node.name)),
                    }
                }
                None
            }),
        )
        .await?;
        if self.opts.addons.enabled {
            let objects = frankenetes_manifests::addons::objects(&spec, &pki, &self.opts.addons)?;
            let first = &spec.control_plane[0];
            // One apiserver directly, as the /readyz gate talks to it.
            let server = format!(
                "https://{}",
                frankenetes_spec::host_port(first.ip, ports::APISERVER)
            );
            self.run_phase(Phase::DayOne, &mut state, &mut report, async {
                let admin =
                    crate::dayone::client(&bundle.join("cluster/admin.conf"), Some(&server))
                        .await?;
                let super_admin = crate::dayone::client(
                    &bundle.join("cluster/super-admin.conf"),
                    Some(&server),
                )
                .await?;
                let r = crate::dayone::apply(
                    &objects,
                    &admin,
                    &super_admin,
                    &crate::dayone::ApplyOptions::default().retry_for(self.opts.gate_timeout),
                )
                .await?;
                self.emit(Event::Info(format!(
                    "day one: {} objects applied (server-side apply, field manager {}); add workers with `frankenetes token create`",
                    r.applied.len(),
                    frankenetes_manifests::addons::FIELD_MANAGER
                )));
                Ok(())
            })
            .await?;
        }
        self.run_phase(Phase::Controllers, &mut state, &mut report, async {
            for (node, cp) in &planes {
                self.create(
                    Phase::Controllers,
                    &self.unit(
                        "kube-controller-manager",
                        node,
                        &path("kube-controller-manager"),
                        &cp.controller_manager,
                    ),
                )
                .await?;
                self.create(
                    Phase::Controllers,
                    &self.unit(
                        "kube-scheduler",
                        node,
                        &path("kube-scheduler"),
                        &cp.scheduler,
                    ),
                )
                .await?;
            }
            Ok(())
        })
        .await?;
        let first = spec.control_plane[0].clone();
        self.run_phase(Phase::Leases, &mut state, &mut report, self.gate(Phase::Leases, || async {
            for lease in ["kube-controller-manager", "kube-scheduler"] {
                let path: &'static str = if lease == "kube-scheduler" {
                    "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-scheduler"
                } else {
                    "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager"
                };
                match get(&first, path).await {
                    Ok((200, body)) if body.contains("holderIdentity") => {}
                    Ok((code, _)) => return Some(format!("lease {lease}: {code}")),
                    Err(e) => return Some(e.to_string()),
                }
            }
            None
        }))
        .await?;
        Ok(report)
    }

    /// Each unit's state and health.
    pub async fn status(&self) -> Result<StatusReport, Error> {
        let units = self
            .backend
            .list(&self.tag)
            .await
            .map_err(|source| Error::Backend {
                phase: Phase::Etcd,
                source,
            })?;
        let etcd_problem = if units.iter().any(|u| u.name.starts_with("etcd-")) {
            self.etcd_problem().await
        } else {
            Some("not running".into())
        };
        let mut report = StatusReport {
            etcd_healthy: etcd_problem.is_none(),
            components: Vec::new(),
        };
        for u in units {
            let health = if u.name.starts_with("etcd-") {
                match &etcd_problem {
                    None => "healthy (cluster)".to_owned(),
                    Some(p) => p.clone(),
                }
            } else {
                "-".to_owned()
            };
            let pid = u
                .details
                .iter()
                .find(|(k, _)| k.ends_with(".pid"))
                .map(|(_, v)| v.clone());
            report.components.push(ComponentStatus {
                unit: u.name,
                state: u.state,
                health,
                pid,
            });
        }
        Ok(report)
    }

    /// Stops and deletes every unit of the cluster (data, PKI and bundles are kept). Returns the
    /// units removed; running it again removes nothing and succeeds.
    pub async fn down(&self) -> Result<Vec<String>, Error> {
        let units = self
            .backend
            .list(&self.tag)
            .await
            .map_err(|source| Error::Backend {
                phase: Phase::Etcd,
                source,
            })?;
        let mut removed = Vec::new();
        // Reverse start order: controllers, apiservers, then etcd.
        let mut ordered = units;
        ordered.sort_by_key(|u| {
            if u.name.starts_with("etcd-") {
                2
            } else if u.name.starts_with("kube-apiserver-") {
                1
            } else {
                0
            }
        });
        for u in ordered {
            match self.backend.delete(&u.id).await {
                Ok(()) => removed.push(u.name),
                Err(e) if e.kind == frankenetes_compute::BackendErrorKind::NotFound => {}
                Err(source) => {
                    return Err(Error::Backend {
                        phase: Phase::Etcd,
                        source,
                    });
                }
            }
        }
        let _ = std::fs::remove_file(self.state_path());
        Ok(removed)
    }

    /// Streams a snapshot of etcd to `file` (with `file.sha256`); returns the checksum.
    pub async fn snapshot(&self, file: &Path) -> Result<String, Error> {
        let auth = self.auth()?;
        let mut last = None;
        for ep in self.spec.etcd_endpoints() {
            match etcd::snapshot(&ep, &auth, file).await {
                Ok(sum) => return Ok(sum),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Spec("no etcd endpoint".into())))
    }

    async fn stop_etcd(&self) -> Result<Vec<UnitId>, Error> {
        let units = self
            .backend
            .list(&self.tag)
            .await
            .map_err(|source| Error::Backend {
                phase: Phase::Etcd,
                source,
            })?;
        let mut ids = Vec::new();
        for u in units {
            self.backend
                .stop(&u.id)
                .await
                .map_err(|source| Error::Backend {
                    phase: Phase::Etcd,
                    source,
                })?;
            ids.push(u.id);
        }
        Ok(ids)
    }

    /// Rebuilds every member from a verified snapshot: units stopped, data directories moved
    /// aside (`etcd.replaced-<time>`), each member restored with its own name and peer URL,
    /// units started, health awaited.
    pub async fn restore(&self, file: &Path) -> Result<(), Error> {
        etcd::verify_snapshot(file)?;
        let (etcd_bin, spec) = self.local_spec()?;
        let ids = self.stop_etcd().await?;
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        for node in &spec.control_plane {
            let data = self.data_dir(node);
            if data.exists() {
                let aside = data.with_file_name(format!("etcd.replaced-{stamp}"));
                std::fs::rename(&data, &aside).map_err(|source| Error::Io {
                    path: data.clone(),
                    source,
                })?;
            }
            restore_member(&etcd_bin, &spec, node, file, &data)?;
        }
        if ids.is_empty() {
            return Ok(());
        }
        for id in &ids {
            self.backend
                .start(id)
                .await
                .map_err(|source| Error::Backend {
                    phase: Phase::Etcd,
                    source,
                })?;
        }
        self.gate(Phase::EtcdHealthy, || self.etcd_problem()).await
    }

    /// Snapshot (into `snapshots/pause-<time>.db`), then stop every unit, keeping data.
    pub async fn pause(&self) -> Result<PathBuf, Error> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let file = self
            .opts
            .dir
            .join("snapshots")
            .join(format!("pause-{stamp}.db"));
        self.snapshot(&file).await?;
        self.stop_etcd().await?;
        Ok(file)
    }

    /// Starts every unit again; a member whose data is missing is first restored from the
    /// newest verified snapshot in `snapshots/`.
    pub async fn resume(&self) -> Result<(), Error> {
        let (etcd_bin, spec) = self.local_spec()?;
        let missing: Vec<&NodeSpec> = spec
            .control_plane
            .iter()
            .filter(|n| !self.data_dir(n).join("member").exists())
            .collect();
        if !missing.is_empty() {
            let newest = self.newest_snapshot()?;
            self.emit(Event::Info(format!(
                "restoring {} from {}",
                missing
                    .iter()
                    .map(|n| n.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                newest.display()
            )));
            if missing.len() == spec.control_plane.len() {
                for n in &missing {
                    restore_member(&etcd_bin, &spec, n, &newest, &self.data_dir(n))?;
                }
            } else {
                return Err(Error::Snapshot(format!(
                    "{} lost their data while others kept it; restore the whole cluster with `frankenetes restore {}`",
                    missing
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    newest.display()
                )));
            }
        }
        let units = self
            .backend
            .list(&self.tag)
            .await
            .map_err(|source| Error::Backend {
                phase: Phase::Etcd,
                source,
            })?;
        for u in units {
            self.backend
                .start(&u.id)
                .await
                .map_err(|source| Error::Backend {
                    phase: Phase::Etcd,
                    source,
                })?;
        }
        self.gate(Phase::EtcdHealthy, || self.etcd_problem()).await
    }

    fn newest_snapshot(&self) -> Result<PathBuf, Error> {
        let dir = self.opts.dir.join("snapshots");
        let mut snaps: Vec<(std::time::SystemTime, PathBuf)> = std::fs::read_dir(&dir)
            .map_err(|source| Error::Io {
                path: dir.clone(),
                source,
            })?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "db"))
            .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
            .collect();
        snaps.sort();
        while let Some((_, p)) = snaps.pop() {
            if etcd::verify_snapshot(&p).is_ok() {
                return Ok(p);
            }
        }
        Err(Error::Snapshot(format!(
            "no verified snapshot in {}",
            dir.display()
        )))
    }

    /// The cluster's tag.
    pub fn tag(&self) -> &ClusterTag {
        &self.tag
    }

    /// The etcd client endpoints and the healthcheck credentials (for tools and tests).
    pub fn etcd_access(&self) -> Result<(Vec<String>, EtcdAuth), Error> {
        Ok((self.spec.etcd_endpoints(), self.auth()?))
    }

    /// A unit error as this crate's error.
    pub fn backend_error(phase: Phase, source: BackendError) -> Error {
        Error::Backend { phase, source }
    }
}

/// `etcdctl snapshot restore` (3.4) or `etcdutl snapshot restore` (3.5+) for one member.
fn restore_member(
    etcd_bin: &Path,
    spec: &ClusterSpec,
    node: &NodeSpec,
    file: &Path,
    data: &Path,
) -> Result<(), Error> {
    let version = spec.etcd.version.unwrap_or(EtcdVersion::new(3, 4, 0));
    let dir = etcd_bin.parent().map(Path::to_path_buf);
    let (tool, api) = if version >= EtcdVersion::new(3, 5, 0) {
        ("etcdutl", false)
    } else {
        ("etcdctl", true)
    };
    let bin = find_binary(tool, dir.as_deref()).ok_or_else(|| Error::MissingBinary {
        binary: tool.into(),
        where_: " in PATH".into(),
        hint: "install it (Debian: apt-get install etcd-client)".into(),
    })?;
    if let Some(parent) = data.parent() {
        std::fs::create_dir_all(parent).map_err(|source| Error::Io {
            path: parent.to_owned(),
            source,
        })?;
    }
    let mut cmd = std::process::Command::new(&bin);
    if api {
        cmd.env("ETCDCTL_API", "3");
    }
    let out = cmd
        .arg("snapshot")
        .arg("restore")
        .arg(file)
        .arg(format!("--name={}", node.name))
        .arg(format!("--initial-cluster={}", spec.etcd_initial_cluster()))
        .arg(format!("--initial-cluster-token={}", spec.name))
        .arg(format!(
            "--initial-advertise-peer-urls={}",
            spec.etcd_peer_url(node)
        ))
        .arg(format!("--data-dir={}", data.display()))
        .output()
        .map_err(|source| Error::Io {
            path: bin.clone(),
            source,
        })?;
    if !out.status.success() {
        return Err(Error::Snapshot(format!(
            "{} restore for {}: {}",
            tool,
            node.name,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    let _ = std::fs::set_permissions(data, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    Ok(())
}
