//! `custom_backend`: embedding frankenetes in another Rust tool with a backend of your own.
//!
//! `ChildProcesses` below is a `ComputeBackend` written outside the workspace crates: each
//! container of a unit runs as a child process of *this* program (tokio's process API), its
//! output in a log file, and everything stops when the program ends (`kill_on_drop`). That is
//! what a test harness or an IDE plugin wants, where the bundled local backend's detached,
//! persistent supervisors would outlive it. It
//!
//! 1. passes the compute conformance suite (`frankenetes_compute::testing::lifecycle`, the
//!    same suite the local, EC2 and ACI backends pass), then
//! 2. is driven by the deployment API through a small [`Platform`] of its own (`ChildPlatform`:
//!    which units, in which waves, behind which gates — here the etcd tier): a three-member
//!    etcd cluster with mutual TLS comes up behind its health gates, with the progress events
//!    printed as they arrive, then goes down.
//!
//! Needs `etcd` on PATH (Debian: `etcd-server`).
//!
//! Run: `cargo run -p frankenetes-examples --bin custom_backend`

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints what it does

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{ExitCode, Stdio};

use frankenetes_bootstrap::{Cluster, DownOptions, Event, Options};
use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComputeBackend, ContainerSpec, Gate, NodeRole,
    Placement, Platform, PlatformPlan, Unit, UnitId, UnitKind, UnitSpec, UnitState, Wave, Workload,
};
use frankenetes_spec::{ClusterName, ClusterSpec, KubernetesVersion, NodeName, NodeSpec};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

/// One unit: its tag and its running children.
struct Running {
    tag: ClusterTag,
    children: Vec<(String, Child)>,
}

/// Units as child processes of this program.
struct ChildProcesses {
    logs: PathBuf,
    units: Mutex<BTreeMap<String, Running>>,
}

impl ChildProcesses {
    fn new(logs: PathBuf) -> Self {
        Self {
            logs,
            units: Mutex::new(BTreeMap::new()),
        }
    }

    fn unit(name: &str, r: &mut Running) -> Unit {
        // A unit runs while all of its containers run; one that exited makes it failed.
        let exited = r
            .children
            .iter_mut()
            .any(|(_, c)| !matches!(c.try_wait(), Ok(None)));
        let state = if exited {
            UnitState::Failed
        } else {
            UnitState::Running
        };
        let mut unit = Unit::new(UnitId(name.to_owned()), name, r.tag.clone(), state);
        if let Some(pid) = r.children.first().and_then(|(_, c)| c.id()) {
            unit.details.insert("main.pid".into(), pid.to_string());
        }
        unit
    }

    fn spawn(&self, unit: &str, c: &ContainerSpec) -> Result<Child, BackendError> {
        let fail = |what: String| BackendError::new(BackendErrorKind::Other, what);
        let (program, args) = c
            .command
            .split_first()
            .ok_or_else(|| fail(format!("{unit}/{}: empty command", c.name)))?;
        std::fs::create_dir_all(&self.logs)
            .map_err(|e| fail(format!("{}: {e}", self.logs.display())))?;
        let log_path = self.logs.join(format!("{unit}-{}.log", c.name));
        let log = std::fs::File::create(&log_path)
            .map_err(|e| fail(format!("{}: {e}", log_path.display())))?;
        let err = log
            .try_clone()
            .map_err(|e| fail(format!("{}: {e}", log_path.display())))?;
        Command::new(program)
            .args(args)
            .envs(&c.env)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| fail(format!("{unit}/{}: cannot start {program}: {e}", c.name)))
    }
}

#[async_trait::async_trait]
impl ComputeBackend for ChildProcesses {
    fn name(&self) -> &str {
        "child-processes"
    }

    async fn create(&self, spec: &UnitSpec) -> Result<Unit, BackendError> {
        let UnitKind::ContainerGroup(group) = &spec.kind else {
            return Err(BackendError::new(
                BackendErrorKind::Unsupported,
                format!(
                    "{}: this backend runs container groups, not machines",
                    spec.name
                ),
            ));
        };
        let mut units = self.units.lock().await;
        if let Some(r) = units.get_mut(&spec.name) {
            if r.tag != spec.tag {
                return Err(BackendError::new(
                    BackendErrorKind::AlreadyExists,
                    format!("{} belongs to cluster {}", spec.name, r.tag.cluster),
                ));
            }
            return Ok(Self::unit(&spec.name, r)); // adopted, not duplicated
        }
        let mut children = Vec::new();
        for c in &group.containers {
            children.push((c.name.clone(), self.spawn(&spec.name, c)?));
        }
        let r = units.entry(spec.name.clone()).or_insert(Running {
            tag: spec.tag.clone(),
            children,
        });
        Ok(Self::unit(&spec.name, r))
    }

    async fn describe(&self, id: &UnitId) -> Result<Unit, BackendError> {
        let mut units = self.units.lock().await;
        let r = units.get_mut(&id.0).ok_or_else(|| {
            BackendError::new(BackendErrorKind::NotFound, format!("{id}: no such unit"))
        })?;
        Ok(Self::unit(&id.0, r))
    }

    async fn list(&self, tag: &ClusterTag) -> Result<Vec<Unit>, BackendError> {
        let mut units = self.units.lock().await;
        Ok(units
            .iter_mut()
            .filter(|(_, r)| &r.tag == tag)
            .map(|(n, r)| Self::unit(n, r))
            .collect())
    }

    async fn delete(&self, id: &UnitId) -> Result<(), BackendError> {
        let removed = self.units.lock().await.remove(&id.0);
        let Some(mut r) = removed else {
            return Err(BackendError::new(
                BackendErrorKind::NotFound,
                format!("{id}: no such unit"),
            ));
        };
        for (name, child) in &mut r.children {
            // SIGKILL and reap: no zombies, nothing left behind.
            child.kill().await.map_err(|e| {
                BackendError::new(
                    BackendErrorKind::Other,
                    format!("{id}/{name}: cannot stop: {e}"),
                )
            })?;
        }
        Ok(())
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The platform: what to run for a cluster on `ChildProcesses`. Every node shares this host
/// (files read from the bundle overlays, data under the cluster directory), etcd from PATH.
struct ChildPlatform {
    backend: ChildProcesses,
}

impl ChildPlatform {
    fn etcd(&self) -> Result<String, BackendError> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|d| d.join("etcd"))
            .find(|p| p.is_file())
            .map(|p| p.display().to_string())
            .ok_or_else(|| BackendError::new(BackendErrorKind::Invalid, "etcd is not in PATH"))
    }
}

#[async_trait::async_trait]
impl Platform for ChildPlatform {
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
        let out = std::process::Command::new(self.etcd()?)
            .arg("--version")
            .output()
            .map_err(|e| BackendError::new(BackendErrorKind::Other, e.to_string()))?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix("etcd Version: "))
            .map(|v| v.trim().to_owned()))
    }

    fn plan(&self, _w: &Workload) -> Result<PlatformPlan, BackendError> {
        Ok(PlatformPlan::default())
    }

    /// One wave: an etcd unit per control-plane node, its command as rendered, with the
    /// binary's path in front.
    fn waves(&self, w: &Workload) -> Result<Vec<Wave>, BackendError> {
        let etcd = self.etcd()?;
        let units = w
            .nodes_of(NodeRole::ControlPlane)
            .filter_map(|n| n.component("etcd").map(|c| (n, c)))
            .map(|(n, c)| {
                let mut command = c.command.clone();
                command[0] = etcd.clone();
                UnitSpec::container_group(
                    format!("etcd-{}", n.name),
                    w.tag.clone(),
                    vec![ContainerSpec::new("etcd", "", command)],
                )
            })
            .collect();
        Ok(vec![Wave::new("etcd", units, Gate::EtcdHealthy)])
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let work = tempfile::tempdir()?;
    let backend = ChildProcesses::new(work.path().join("logs"));

    // 1. The conformance suite, on a unit that only sleeps.
    let probe = UnitSpec::container_group(
        "conformance-probe",
        ClusterTag::new("custom-backend-conformance"),
        vec![ContainerSpec::new("sleep", "", ["sleep", "60"])],
    );
    frankenetes_compute::testing::lifecycle(&backend, probe).await;
    println!("conformance: {} passes the lifecycle suite", backend.name());

    // 2. The sequencer on it: etcd on 127.0.0.61-63 (the apiserver tier joins in when
    //    FRANKENETES_BIN_DIR has the Kubernetes binaries).
    let nodes = (1..=3u8)
        .map(|i| -> Result<NodeSpec, Box<dyn std::error::Error>> {
            Ok(NodeSpec::new(
                NodeName::try_from(format!("member-{i}"))?,
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 60 + i)),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let spec = ClusterSpec::new(
        ClusterName::try_from("embedded")?,
        "v1.35.0".parse::<KubernetesVersion>()?,
        nodes,
    );
    spec.validate()?;
    let opts = Options::new(work.path().join("cluster")).on_event(|e| match e {
        Event::Started(p) => println!("event: started {p}"),
        Event::Done(p, d) => println!("event: done {p} in {d:.1?}"),
        Event::Waiting(p, what) => println!("event: {p} waiting: {what}"),
        Event::Warning(w) => println!("event: warning: {w}"),
        other => println!("event: {other}"),
    });
    let cluster = Cluster::new(spec, ChildPlatform { backend }, opts);
    let up = cluster.up().await;
    if up.is_ok() {
        print!("{}", cluster.status().await?.table());
    }
    let removed = cluster.down(DownOptions::default()).await?;
    println!("down: removed {}", removed.found.join(", "));
    up?;
    // Nothing of the cluster is left in the backend.
    let left = cluster.platform().backend().list(cluster.tag()).await?;
    if !left.is_empty() {
        return Err(format!("units left after down: {left:?}").into());
    }
    Ok(())
}
