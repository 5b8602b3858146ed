//! The deployment API: one [`Cluster`] over any [`Platform`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use frankenetes_bundle::OutputLayout;
use frankenetes_bundle::lock::DirLock;
use frankenetes_compute::{
    BackendError, ClusterTag, Gate, Operation, Platform, PlatformPlan, Progress, Resource,
    UnitSpec, UnitState, Wave,
};
use frankenetes_spec::{ClusterSpec, ports};

use crate::etcd::EtcdAuth;
use crate::gates::{self, ApiAuth};
use crate::prepare::{self, Inputs, Prepared};
use crate::snapshots;
use crate::{Error, Event, Phase};

/// Options of a [`Cluster`].
#[derive(Clone)]
#[non_exhaustive]
pub struct Options {
    /// The cluster's working directory: `bundle/` (PKI and bundles), `data/` (etcd, local),
    /// `snapshots/`, `run/` (local units), `.lock`.
    pub dir: PathBuf,
    /// How long each health gate waits (and the bound of every network wait in it).
    pub gate_timeout: Duration,
    /// Receives progress.
    pub events: Arc<dyn Fn(&Event) + Send + Sync>,
    /// The day-one objects: rendered to `bundle/cluster/addons/` and applied once the
    /// apiservers are ready (default: on, no network plugin).
    pub addons: frankenetes_manifests::AddonOptions,
    /// How long to wait for another command's lock on the directory (default: not at all).
    pub lock_timeout: Option<Duration>,
    /// Certificates ending within this window are renewed by `up` (leaves, kubeconfigs with
    /// them) and reported by `status` (CAs: with the steps to rotate one). Default: 30 days
    /// ([`frankenetes_pki::expiry::WARNING_WINDOW`]).
    pub renew_window: Duration,
    /// The program that carries out `spec.etcd.backup` on the local platform, as a
    /// supervised unit (`backup-etcd`) started by `up`: it must call [`Cluster::backup`]
    /// every `spec.etcd.backup.interval` (the CLI sets `frankenetes backup --schedule -f
    /// <spec>`). Without it a spec with `backup` is refused: a schedule that never runs is
    /// worse than none.
    pub backup_command: Option<Vec<String>>,
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("dir", &self.dir)
            .field("gate_timeout", &self.gate_timeout)
            .field("addons", &self.addons)
            .field("lock_timeout", &self.lock_timeout)
            .field("renew_window", &self.renew_window)
            .field("backup_command", &self.backup_command)
            .finish()
    }
}

impl Options {
    /// Defaults: 90 s per gate, events traced, no waiting for a lock.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            gate_timeout: Duration::from_secs(90),
            events: Arc::new(|e| tracing::info!(event = %e, "progress")),
            addons: frankenetes_manifests::AddonOptions::default(),
            lock_timeout: None,
            renew_window: frankenetes_pki::expiry::WARNING_WINDOW,
            backup_command: None,
        }
    }

    /// The program that runs the scheduled backups (see [`Options::backup_command`]).
    #[must_use]
    pub fn backup_command(mut self, argv: Option<Vec<String>>) -> Self {
        self.backup_command = argv;
        self
    }

    /// The certificate renewal and warning window.
    #[must_use]
    pub fn renew_window(mut self, d: Duration) -> Self {
        self.renew_window = d;
        self
    }

    /// Which day-one objects to render and apply.
    #[must_use]
    pub fn addons(mut self, addons: frankenetes_manifests::AddonOptions) -> Self {
        self.addons = addons;
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

    /// Waits this long for another command's lock on the directory.
    #[must_use]
    pub fn lock_timeout(mut self, d: Option<Duration>) -> Self {
        self.lock_timeout = d;
        self
    }
}

mod backups;
mod members;
mod operations;
mod reports;
mod rolling;

pub use backups::{BACKUP_UNIT, BackupReport, BackupStatus};
pub use rolling::Restart;

pub use reports::{
    DownOptions, DownReport, Health, PauseReport, ResumeOptions, StatusReport, StatusRow, UpReport,
};

/// A cluster on a platform: the one deployment API.
pub struct Cluster<P: Platform> {
    spec: ClusterSpec,
    platform: P,
    opts: Options,
    tag: ClusterTag,
}

impl<P: Platform> fmt::Debug for Cluster<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cluster")
            .field("name", &self.spec.name)
            .field("platform", &self.platform.name())
            .field("opts", &self.opts)
            .finish()
    }
}

/// The phases a wave's start and its gate report as.
fn phases_of(gate: Gate) -> (Phase, Phase) {
    match gate {
        Gate::EtcdHealthy => (Phase::Etcd, Phase::EtcdHealthy),
        Gate::ApiServerReady => (Phase::ApiServer, Phase::ApiServerReady),
        Gate::Leases => (Phase::Controllers, Phase::Leases),
        _ => (Phase::Units, Phase::UnitsRunning),
    }
}

fn backend(phase: Phase) -> impl Fn(BackendError) -> Error {
    move |source| Error::Backend { phase, source }
}

/// The last `n` lines of a log file.
fn tail(path: &Path, n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| (*l).to_owned())
        .collect()
}

impl<P: Platform> Cluster<P> {
    /// A cluster.
    pub fn new(spec: ClusterSpec, platform: P, mut opts: Options) -> Self {
        // Every node on one host: the local workers run kube-proxy as one host process, and a
        // DaemonSet's would clash with it (and with each other) on the host's ports.
        if platform.placement() == frankenetes_compute::Placement::Host {
            opts.addons = opts.addons.kube_proxy_daemonset(false);
        }
        let tag = ClusterTag::new(spec.name.as_str());
        Self {
            spec,
            platform,
            opts,
            tag,
        }
    }

    /// The platform.
    pub fn platform(&self) -> &P {
        &self.platform
    }

    /// The spec.
    pub fn spec(&self) -> &ClusterSpec {
        &self.spec
    }

    /// The cluster's tag.
    pub fn tag(&self) -> &ClusterTag {
        &self.tag
    }

    /// The output layout of the cluster's bundle: `<dir>/bundle`.
    pub fn bundle(&self) -> OutputLayout {
        OutputLayout::new(self.opts.dir.join("bundle"))
    }

    /// Where `pause` keeps its snapshots: `<dir>/snapshots`.
    pub fn snapshot_dir(&self) -> PathBuf {
        self.opts.dir.join("snapshots")
    }

    fn emit(&self, e: Event) {
        (self.opts.events)(&e);
    }

    fn on_progress(&self, phase: Phase) -> impl Fn(Progress) + Send + Sync + '_ {
        move |p| self.emit(Event::Platform(phase, p))
    }

    /// Takes the cluster directory's lock (made 0700) for `command`.
    fn lock(&self, command: &str) -> Result<DirLock, Error> {
        frankenetes_bundle::fs::ensure_private_dir(&self.opts.dir)?;
        Ok(DirLock::acquire(
            &self.opts.dir,
            command,
            self.opts.lock_timeout,
        )?)
    }

    /// The prepare step: PKI, bundles, the gateway, the workload. With `write`, the PKI and
    /// bundles are made or completed in `<dir>/bundle`; without, everything is made in memory
    /// with throwaway keys (for `plan`).
    pub fn prepare(&self, write: bool) -> Result<Prepared, Error> {
        let out = self.bundle();
        let data_root = self.opts.dir.join("data");
        let events = |e: &Event| self.emit(e.clone());
        prepare::prepare(
            &Inputs {
                spec: &self.spec,
                out: &out,
                data_root: &data_root,
                addons: &self.opts.addons,
                write,
                renew_window: self.opts.renew_window,
                events: &events,
            },
            &self.platform,
        )
    }

    /// What `up` would make and create, and what it costs. Offline: nothing is written and no
    /// call is made.
    pub fn plan(&self) -> Result<(Prepared, PlatformPlan), Error> {
        let prepared = self.prepare(false)?;
        let plan = self
            .platform
            .plan(&prepared.workload)
            .map_err(backend(Phase::Preflight))?;
        Ok((prepared, plan))
    }

    async fn timed<T>(
        &self,
        phase: Phase,
        report: &mut UpReport,
        f: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        self.emit(Event::Started(phase));
        let t = Instant::now();
        let out = f.await?;
        self.emit(Event::Done(phase, t.elapsed()));
        report.phases.push(phase);
        Ok(out)
    }

    /// The cluster's nodes with their roles and addresses only: what
    /// [`Platform::validate`] checks before anything is made.
    pub fn skeleton(&self) -> frankenetes_compute::Workload {
        use frankenetes_compute::{NodeRole, NodeWork};
        let mut nodes: Vec<NodeWork> = self
            .spec
            .nodes()
            .map(|(n, role)| {
                let role = match role {
                    frankenetes_spec::Role::ControlPlane => NodeRole::ControlPlane,
                    _ => NodeRole::Worker,
                };
                NodeWork::new(n.name.as_str(), role, n.ip)
            })
            .collect();
        if let Some(gw) = &self.spec.gateway {
            nodes.push(NodeWork::new(gw.name.as_str(), NodeRole::Gateway, gw.ip));
        }
        frankenetes_compute::Workload::new(
            self.tag.clone(),
            self.spec.kubernetes_version.to_string(),
            nodes,
        )
    }

    /// Checks the spec against the platform ([`Platform::validate`]) and renders nothing.
    pub fn validate(&self) -> Result<(), Error> {
        // A setting that would do nothing is refused rather than silently ignored: a user who
        // asked for scheduled backups must not believe they have them.
        if self.spec.etcd.backup.is_some() {
            let why = if self.platform.placement() != frankenetes_compute::Placement::Host {
                Some(format!(
                    "spec.etcd.backup: scheduled backups run on the local platform only for now,                      not on {}; remove the field and take snapshots with `frankenetes snapshot                      FILE` (from cron or a systemd timer)",
                    self.platform.name()
                ))
            } else if self.opts.backup_command.is_none() {
                Some(
                    "spec.etcd.backup: no program runs the schedule (Options::backup_command;                      the CLI sets it)"
                        .to_owned(),
                )
            } else {
                None
            };
            if let Some(why) = why {
                return Err(Error::Backend {
                    phase: Phase::Preflight,
                    source: frankenetes_compute::BackendError::new(
                        frankenetes_compute::BackendErrorKind::Unsupported,
                        why,
                    ),
                });
            }
        }
        self.platform
            .validate(&self.skeleton())
            .map_err(backend(Phase::Preflight))
    }

    /// Brings the cluster up, or converges it if it is partly or wholly up already: what is
    /// missing is started; a running unit whose rendered command changed is restarted, one
    /// at a time behind its wave's gate ([`UpReport::restarted`]; [`Cluster::restarts`]
    /// tells beforehand); control planes whose etcd data is gone while a quorum kept theirs
    /// re-join as new members ([`UpReport::rejoined`]).
    pub async fn up(&self) -> Result<UpReport, Error> {
        // Bad input is refused before the lock's directory or anything else is made.
        self.validate()?;
        let _lock = self.lock("up")?;
        self.converge(None).await
    }

    /// `up` under the lock; `prepared`: what the caller's prepare step made already (it
    /// is not done twice).
    async fn converge(&self, prepared: Option<Prepared>) -> Result<UpReport, Error> {
        let mut report = UpReport {
            admin_kubeconfig: self.bundle().admin_conf(),
            ..Default::default()
        };
        let prepared = match prepared {
            Some(p) => p,
            None => {
                self.timed(Phase::Render, &mut report, async { self.prepare(true) })
                    .await?
            }
        };
        let w = &prepared.workload;
        let plan = self.platform.plan(w).map_err(backend(Phase::Preflight))?;
        for note in &plan.notes {
            self.emit(Event::Info(note.clone()));
        }
        for warning in &plan.warnings {
            self.emit(Event::Warning(warning.clone()));
        }
        report.warnings = plan.warnings;
        self.timed(Phase::Preflight, &mut report, async {
            self.platform
                .preflight(w)
                .await
                .map_err(backend(Phase::Preflight))
        })
        .await?;
        let on = self.on_progress(Phase::Provision);
        self.timed(Phase::Provision, &mut report, async {
            self.platform
                .provision(w, &on)
                .await
                .map_err(backend(Phase::Provision))
        })
        .await?;
        for wave in self.platform.waves(w).map_err(backend(Phase::Units))? {
            self.start_wave(w, &wave, &prepared.renewed, &mut report)
                .await?;
            if wave.gate == Gate::ApiServerReady
                && self.platform.reachable()
                && self.opts.addons.enabled
            {
                self.timed(Phase::DayOne, &mut report, self.day_one(&prepared))
                    .await?;
            }
        }
        if self.spec.etcd.backup.is_some() {
            self.start_backups().await?;
        }
        let on = self.on_progress(Phase::Complete);
        report.outputs = self
            .timed(Phase::Complete, &mut report, async {
                self.platform
                    .complete(w, &on)
                    .await
                    .map_err(backend(Phase::Complete))
            })
            .await?;
        // A gateway whose public address the spec leaves open learns it from the platform
        // (an EC2 Elastic IP): the peer configs in the bundle get their Endpoint line.
        if let (Some(gw), Some(ep)) = (&self.spec.gateway, &report.outputs.vpn_endpoint)
            && gw.tunnel.endpoint.is_none()
        {
            frankenetes_netgw::set_endpoint(self.bundle().root(), gw, Some(ep))?;
        }
        Ok(report)
    }

    /// Creates (or adopts, starting stopped ones) a wave's units and awaits its gate; in the
    /// etcd wave, re-joins members whose data is gone first; then restarts the running units
    /// whose command changed, one at a time, each behind the gate again.
    async fn start_wave(
        &self,
        w: &frankenetes_compute::Workload,
        wave: &Wave,
        renewed: &[PathBuf],
        report: &mut UpReport,
    ) -> Result<(), Error> {
        let (start, gate) = phases_of(wave.gate);
        let rejoin = if wave.gate == Gate::EtcdHealthy {
            self.members_to_rejoin(w)?
        } else {
            Vec::new()
        };
        let units = self
            .platform
            .backend()
            .list(&self.tag)
            .await
            .map_err(backend(start))?;
        let mut restarts = Vec::new();
        self.timed(start, report, async {
            for u in &wave.units {
                if rejoin.iter().any(|n| u.name == format!("etcd-{n}")) {
                    continue;
                }
                let running = units
                    .iter()
                    .find(|r| r.name == u.name && r.state == UnitState::Running);
                match running.map(|r| rolling::compare(u, r)) {
                    Some(rolling::Compare::Same) => {
                        if let Some(why) = rolling::reads_renewed(u, renewed) {
                            restarts.push(Restart {
                                unit: u.name.clone(),
                                why,
                            });
                        }
                        continue;
                    }
                    Some(rolling::Compare::Changed(why)) => {
                        restarts.push(Restart {
                            unit: u.name.clone(),
                            why,
                        });
                        continue;
                    }
                    Some(rolling::Compare::Unknown) | None => {}
                }
                let created = self.create(start, u).await?;
                if created.state == UnitState::Stopped {
                    self.platform
                        .backend()
                        .start(&created.id)
                        .await
                        .map_err(backend(start))?;
                }
            }
            Ok(())
        })
        .await?;
        for node in &rejoin {
            self.rejoin(wave, node, &rejoin).await?;
            report.rejoined.push(node.clone());
        }
        self.timed(gate, report, self.await_gate(wave, gate))
            .await?;
        for r in restarts {
            let Some(u) = wave.units.iter().find(|u| u.name == r.unit) else {
                continue;
            };
            self.emit(Event::Info(format!(
                "restarting {} ({}), then waiting for {}",
                r.unit, r.why, gate
            )));
            self.create(start, u).await?;
            self.await_gate(wave, gate).await?;
            report.restarted.push(r);
        }
        Ok(())
    }

    /// Creates a unit, retrying transient errors until the gate timeout.
    async fn create(
        &self,
        phase: Phase,
        unit: &UnitSpec,
    ) -> Result<frankenetes_compute::Unit, Error> {
        let mut delay = Duration::from_millis(200);
        let deadline = Instant::now() + self.opts.gate_timeout;
        loop {
            match self.platform.backend().create(unit).await {
                Ok(u) => return Ok(u),
                Err(e) if e.is_retryable() && Instant::now() < deadline => {
                    self.emit(Event::Platform(
                        phase,
                        Progress::Retrying(format!("{}: {e}", unit.name)),
                    ));
                    tokio::time::sleep(e.retry_after.unwrap_or(delay)).await;
                    delay = (delay * 2).min(Duration::from_secs(10));
                }
                Err(source) => return Err(Error::Backend { phase, source }),
            }
        }
    }

    /// The etcd client endpoints and the healthcheck credentials (for tools and tests).
    pub fn etcd_access(&self) -> Result<(Vec<String>, EtcdAuth), Error> {
        let first = self
            .spec
            .control_plane
            .first()
            .ok_or_else(|| Error::Spec("spec.controlPlane is empty".into()))?;
        Ok(gates::etcd_access(
            &self.spec,
            &self.bundle().node_pki(first.name.as_str()),
        ))
    }

    fn api_auth(&self) -> Result<ApiAuth, Error> {
        let first = self
            .spec
            .control_plane
            .first()
            .ok_or_else(|| Error::Spec("spec.controlPlane is empty".into()))?;
        let out = self.bundle();
        Ok(ApiAuth::new(
            &out.node_pki(first.name.as_str()),
            &out.cluster_pki(),
        ))
    }

    /// What keeps a gate closed right now, or `None`.
    async fn gate_problem(&self, wave: &Wave, gate: Gate) -> Option<String> {
        // The units themselves first: a failed one is the answer.
        match self.platform.backend().list(&self.tag).await {
            Ok(units) => {
                for spec in &wave.units {
                    match units.iter().find(|u| u.name == spec.name) {
                        None => return Some(format!("{} is gone", spec.name)),
                        Some(u) if u.state == UnitState::Failed => {
                            return Some(format!("{} failed", u.name));
                        }
                        Some(u) if u.state != UnitState::Running => {
                            return Some(format!("{} is {}", u.name, u.state));
                        }
                        _ => {}
                    }
                }
            }
            Err(e) => return Some(e.to_string()),
        }
        if !self.platform.reachable() {
            return None;
        }
        match gate {
            Gate::EtcdHealthy => {
                let (eps, auth) = self.etcd_access().ok()?;
                gates::etcd_problem(&eps, &auth, self.spec.control_plane.len()).await
            }
            Gate::ApiServerReady => {
                let auth = self.api_auth().ok()?;
                gates::readyz_problem(&self.spec.control_plane, &auth).await
            }
            Gate::Leases => {
                let auth = self.api_auth().ok()?;
                gates::leases_problem(self.spec.control_plane.first()?, &auth).await
            }
            _ => None,
        }
    }

    /// Waits until the gate opens, within the gate timeout (every check inside is bounded by
    /// what is left of it). On timeout the error names the units' logs and their last lines.
    async fn await_gate(&self, wave: &Wave, phase: Phase) -> Result<(), Error> {
        let start = Instant::now();
        let deadline = start + self.opts.gate_timeout;
        let mut last = String::new();
        let mut last_emit = Instant::now() - Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let problem = tokio::time::timeout(
                left.max(Duration::from_millis(100)),
                self.gate_problem(wave, wave.gate),
            )
            .await
            .unwrap_or_else(|_| Some(format!("{last} (the check itself did not finish in time)")));
            match problem {
                None => return Ok(()),
                Some(detail) => {
                    if detail != last || last_emit.elapsed() > Duration::from_secs(5) {
                        self.emit(Event::Waiting(phase, detail.clone()));
                        last_emit = Instant::now();
                    }
                    last = detail;
                }
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    phase,
                    seconds: self.opts.gate_timeout.as_secs(),
                    detail: format!("{last}{}", self.logs_of(wave).await),
                });
            }
            let pause =
                Duration::from_millis(100).min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
    }

    /// The log files of a wave's units with their last lines, for an error message.
    async fn logs_of(&self, wave: &Wave) -> String {
        let Ok(units) = self.platform.backend().list(&self.tag).await else {
            return String::new();
        };
        let mut out = String::new();
        for u in units
            .iter()
            .filter(|u| wave.units.iter().any(|w| w.name == u.name))
        {
            for (k, v) in u.details.iter().filter(|(k, _)| k.ends_with(".log")) {
                let _ = k;
                let lines = tail(Path::new(v), 5);
                out.push_str(&format!("\n  {} log: {v}", u.name));
                for l in lines {
                    out.push_str(&format!("\n    | {l}"));
                }
            }
        }
        out
    }

    /// Applies the day-one objects through the first apiserver.
    async fn day_one(&self, prepared: &Prepared) -> Result<(), Error> {
        let objects =
            frankenetes_manifests::addons::objects(&self.spec, &prepared.pki, &self.opts.addons)?;
        let first = self
            .spec
            .control_plane
            .first()
            .ok_or_else(|| Error::Spec("spec.controlPlane is empty".into()))?;
        // One apiserver directly, as the /readyz gate talks to it.
        let server = format!(
            "https://{}",
            frankenetes_spec::host_port(first.ip, ports::APISERVER)
        );
        let out = self.bundle();
        let admin = crate::dayone::client(&out.admin_conf(), Some(&server)).await?;
        let super_admin = crate::dayone::client(&out.super_admin_conf(), Some(&server)).await?;
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
    }
}
