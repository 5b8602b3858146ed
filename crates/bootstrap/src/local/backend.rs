//! The local backend: each container of a container group runs as a supervised process on this
//! machine, restarted with backoff when it exits, its output in a log file, its PIDs on disk.
//!
//! A unit lives in `<dir>/units/<name>/`: `unit.json` (name, tag, commands, the supervisor's
//! PID), one `<container>.log` and `<container>.pid` per container. The supervisor is a small
//! POSIX shell loop (`supervise.sh`, written next to the units) that leads its own process
//! group; stopping a unit signals that group, so nothing it started survives. The supervisor
//! is detached from the process that started it, so units keep running after `up` returns.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComputeBackend, RestartPolicy, Unit, UnitId,
    UnitKind, UnitSpec, UnitState,
};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

const SUPERVISOR: &str = r#"#!/bin/sh
# Written by frankenetes: runs a command and restarts it with backoff (1s doubling to 30s,
# reset after 30s of uptime) when it exits. Stopped by signalling its process group.
# The log is rotated by size (copy to <log>.1, then truncate: the command appends, so it
# goes on writing at the new end): at most FRANKENETES_LOG_MAX bytes (10 MiB) twice.
# Logs, PID files and whatever the command writes are the operator's alone, whatever the
# umask frankenetes was started with.
umask 077
log="$1"; pidfile="$2"; shift 2
max="${FRANKENETES_LOG_MAX:-10485760}"; every="${FRANKENETES_LOG_CHECK:-10}"
( while sleep "$every"; do
    size=$(wc -c <"$log" 2>/dev/null || echo 0)
    if [ "$size" -gt "$max" ]; then cp "$log" "$log.1" && : >"$log"; fi
  done ) </dev/null >/dev/null 2>&1 &
delay=1
child=
trap 'kill -TERM "$child" 2>/dev/null; wait "$child" 2>/dev/null; exit 0' TERM INT HUP
while :; do
  started=$(date +%s)
  "$@" >>"$log" 2>&1 </dev/null &
  child=$!
  echo "$child" >"$pidfile"
  wait "$child"
  code=$?
  echo "frankenetes: $1 exited with status $code; restarting in ${delay}s" >>"$log"
  if [ $(( $(date +%s) - started )) -ge 30 ]; then delay=1; fi
  sleep "$delay" & wait $!
  delay=$(( delay * 2 )); if [ "$delay" -gt 30 ]; then delay=30; fi
done
"#;

/// What is recorded for a unit.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    name: String,
    cluster: String,
    containers: Vec<(String, Vec<String>)>,
    /// The supervisors' PIDs (each leads its process group); empty when stopped.
    supervisors: Vec<i32>,
    stopped: bool,
}

/// Runs container groups as supervised local processes.
#[derive(Debug)]
pub struct LocalBackend {
    dir: PathBuf,
    /// Supervisors this process started, reaped when they exit (no zombies in tests).
    children: Mutex<HashMap<i32, Child>>,
}

fn err(kind: BackendErrorKind, m: impl Into<String>) -> BackendError {
    BackendError::new(kind, m)
}

fn io(what: &str, p: &Path, e: &std::io::Error) -> BackendError {
    err(
        BackendErrorKind::Other,
        format!("{what} {}: {e}", p.display()),
    )
}

/// Whether a process exists and is not a zombie.
pub fn process_alive(pid: i32) -> bool {
    frankenetes_bundle::fs::process_alive(pid)
}

impl LocalBackend {
    /// A backend keeping its units under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            children: Mutex::new(HashMap::new()),
        }
    }

    fn unit_dir(&self, name: &str) -> PathBuf {
        self.dir.join("units").join(name)
    }

    fn read(&self, name: &str) -> Result<Option<Record>, BackendError> {
        let p = self.unit_dir(name).join("unit.json");
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| err(BackendErrorKind::Other, format!("{}: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("cannot read", &p, &e)),
        }
    }

    fn write(&self, r: &Record) -> Result<(), BackendError> {
        let p = self.unit_dir(&r.name).join("unit.json");
        let bytes = serde_json::to_vec_pretty(r)
            .map_err(|e| err(BackendErrorKind::Other, e.to_string()))?;
        frankenetes_bundle::fs::write_atomic(&p, &bytes, 0o600)
            .map_err(|e| err(BackendErrorKind::Other, e.to_string()))
    }

    fn reap(&self) {
        if let Ok(mut c) = self.children.lock() {
            c.retain(|_, child| matches!(child.try_wait(), Ok(None)));
        }
    }

    fn alive(&self, pid: i32) -> bool {
        self.reap();
        process_alive(pid)
    }

    fn to_unit(&self, r: &Record) -> Unit {
        let running = !r.supervisors.is_empty() && r.supervisors.iter().all(|p| self.alive(*p));
        let state = if r.stopped {
            UnitState::Stopped
        } else if running {
            UnitState::Running
        } else {
            UnitState::Failed
        };
        let mut u = Unit::new(
            UnitId(r.name.clone()),
            r.name.clone(),
            ClusterTag::new(r.cluster.clone()),
            state,
        );
        for (c, argv) in &r.containers {
            u.commands.insert(c.clone(), argv.clone());
            let pid = std::fs::read_to_string(self.unit_dir(&r.name).join(format!("{c}.pid")))
                .unwrap_or_default();
            u.details.insert(format!("{c}.pid"), pid.trim().to_owned());
            u.details.insert(
                format!("{c}.log"),
                self.unit_dir(&r.name)
                    .join(format!("{c}.log"))
                    .display()
                    .to_string(),
            );
        }
        u.details.insert(
            "supervisors".into(),
            r.supervisors
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(","),
        );
        u
    }

    fn spawn(&self, r: &mut Record) -> Result<(), BackendError> {
        let script = self.dir.join("supervise.sh");
        if std::fs::read_to_string(&script).ok().as_deref() != Some(SUPERVISOR) {
            frankenetes_bundle::fs::write_atomic(&script, SUPERVISOR.as_bytes(), 0o755)
                .map_err(|e| err(BackendErrorKind::Other, e.to_string()))?;
        }
        let dir = self.unit_dir(&r.name);
        r.supervisors.clear();
        for (c, argv) in &r.containers {
            if argv.is_empty() {
                return Err(err(
                    BackendErrorKind::Other,
                    format!("{}/{c}: empty command", r.name),
                ));
            }
            let mut cmd = std::process::Command::new("sh");
            cmd.arg(&script)
                .arg(dir.join(format!("{c}.log")))
                .arg(dir.join(format!("{c}.pid")))
                .args(argv)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            // Its own process group: not killed by the terminal's Ctrl-C, stopped as a group.
            std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
            let child = cmd.spawn().map_err(|e| {
                err(
                    BackendErrorKind::Other,
                    format!("cannot start {}/{c}: {e}", r.name),
                )
            })?;
            let pid = i32::try_from(child.id())
                .map_err(|_| err(BackendErrorKind::Other, "pid out of range"))?;
            r.supervisors.push(pid);
            if let Ok(mut m) = self.children.lock() {
                m.insert(pid, child);
            }
        }
        r.stopped = false;
        self.write(r)
    }

    /// Signals every supervisor's group and waits (10 s, then SIGKILL) until all are gone.
    fn kill(&self, r: &mut Record) -> Result<(), BackendError> {
        for pid in &r.supervisors {
            if self.alive(*pid) {
                let _ = killpg(Pid::from_raw(*pid), Signal::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.supervisors.iter().any(|p| self.alive(*p)) || self.children_alive(r) {
            if Instant::now() > deadline {
                for pid in &r.supervisors {
                    let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
                }
            }
            if Instant::now() > deadline + Duration::from_secs(5) {
                return Err(err(
                    BackendErrorKind::Other,
                    format!("{}: processes {:?} would not stop", r.name, r.supervisors),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        r.supervisors.clear();
        Ok(())
    }

    /// Whether any container process recorded for the unit still runs.
    fn children_alive(&self, r: &Record) -> bool {
        r.containers.iter().any(|(c, _)| {
            std::fs::read_to_string(self.unit_dir(&r.name).join(format!("{c}.pid")))
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
                .is_some_and(process_alive)
        })
    }

    /// The PID of a container's current process (what the supervisor last started).
    pub fn container_pid(&self, unit: &str, container: &str) -> Option<i32> {
        std::fs::read_to_string(self.unit_dir(unit).join(format!("{container}.pid")))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Stops every unit under this backend's directory, whatever its cluster, and waits for
    /// its processes to end. For cleanup guards in tests and tools; returns the units stopped.
    pub fn stop_all(&self) -> Vec<String> {
        let mut stopped = Vec::new();
        let Ok(rd) = std::fs::read_dir(self.dir.join("units")) else {
            return stopped;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(Some(mut r)) = self.read(&name)
                && self.kill(&mut r).is_ok()
            {
                stopped.push(name);
            }
        }
        stopped
    }

    /// A container's log file.
    pub fn log_path(&self, unit: &str, container: &str) -> PathBuf {
        self.unit_dir(unit).join(format!("{container}.log"))
    }
}

#[async_trait::async_trait]
impl ComputeBackend for LocalBackend {
    fn name(&self) -> &str {
        "local"
    }

    async fn create(&self, spec: &UnitSpec) -> Result<Unit, BackendError> {
        let UnitKind::ContainerGroup(group) = &spec.kind else {
            return Err(err(
                BackendErrorKind::Unsupported,
                format!(
                    "{}: the local backend runs container groups, not machines",
                    spec.name
                ),
            ));
        };
        // Every container is supervised and restarted: refuse what would need more, rather
        // than run the group differently from what it asks.
        if !group.init_containers.is_empty() || group.restart_policy != RestartPolicy::Always {
            return Err(err(
                BackendErrorKind::Unsupported,
                format!(
                    "{}: the local backend runs no init containers and only restart policy Always (got {} init containers, restart policy {})",
                    spec.name,
                    group.init_containers.len(),
                    group.restart_policy
                ),
            ));
        }
        if let Some(mut r) = self.read(&spec.name)? {
            if r.cluster != spec.tag.cluster {
                return Err(err(
                    BackendErrorKind::AlreadyExists,
                    format!("{} belongs to cluster {}", spec.name, r.cluster),
                ));
            }
            let running = !r.supervisors.is_empty() && r.supervisors.iter().all(|p| self.alive(*p));
            let same = r.containers
                == group
                    .containers
                    .iter()
                    .map(|c| (c.name.clone(), c.command.clone()))
                    .collect::<Vec<_>>();
            if running && same {
                return Ok(self.to_unit(&r));
            }
            // Dead, stopped, or its command changed: (re)start it.
            self.kill(&mut r)?;
        }
        let dir = self.unit_dir(&spec.name);
        // Its logs and record are the operator's alone, whatever the umask.
        frankenetes_bundle::fs::ensure_private_dir(&dir).map_err(|e| {
            err(
                BackendErrorKind::Other,
                format!("cannot create {}: {e}", dir.display()),
            )
        })?;
        let mut r = Record {
            name: spec.name.clone(),
            cluster: spec.tag.cluster.clone(),
            containers: group
                .containers
                .iter()
                .map(|c| (c.name.clone(), c.command.clone()))
                .collect(),
            supervisors: Vec::new(),
            stopped: false,
        };
        self.spawn(&mut r)?;
        Ok(self.to_unit(&r))
    }

    async fn describe(&self, id: &UnitId) -> Result<Unit, BackendError> {
        match self.read(&id.0)? {
            Some(r) => Ok(self.to_unit(&r)),
            None => Err(err(
                BackendErrorKind::NotFound,
                format!("no local unit {id}"),
            )),
        }
    }

    async fn list(&self, tag: &ClusterTag) -> Result<Vec<Unit>, BackendError> {
        let units = self.dir.join("units");
        let rd = match std::fs::read_dir(&units) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io("cannot list", &units, &e)),
        };
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut out = Vec::new();
        for n in names {
            if let Some(r) = self.read(&n)?
                && r.cluster == tag.cluster
            {
                out.push(self.to_unit(&r));
            }
        }
        Ok(out)
    }

    async fn delete(&self, id: &UnitId) -> Result<(), BackendError> {
        let Some(mut r) = self.read(&id.0)? else {
            return Err(err(
                BackendErrorKind::NotFound,
                format!("no local unit {id}"),
            ));
        };
        self.kill(&mut r)?;
        let dir = self.unit_dir(&id.0);
        std::fs::remove_dir_all(&dir).map_err(|e| io("cannot remove", &dir, &e))
    }

    async fn stop(&self, id: &UnitId) -> Result<(), BackendError> {
        let Some(mut r) = self.read(&id.0)? else {
            return Err(err(
                BackendErrorKind::NotFound,
                format!("no local unit {id}"),
            ));
        };
        self.kill(&mut r)?;
        r.stopped = true;
        self.write(&r)
    }

    async fn start(&self, id: &UnitId) -> Result<Unit, BackendError> {
        let Some(mut r) = self.read(&id.0)? else {
            return Err(err(
                BackendErrorKind::NotFound,
                format!("no local unit {id}"),
            ));
        };
        if r.stopped || !r.supervisors.iter().all(|p| self.alive(*p)) || r.supervisors.is_empty() {
            self.kill(&mut r)?;
            self.spawn(&mut r)?;
        }
        Ok(self.to_unit(&r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use frankenetes_compute::{ContainerGroupSpec, ContainerSpec};

    #[tokio::test]
    async fn init_containers_and_other_restart_policies_are_unsupported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let b = LocalBackend::new(dir.path());
        let sleep = || ContainerSpec::new("sleep", "", ["sleep", "300"]);
        for group in [
            ContainerGroupSpec::new(vec![sleep()]).init_container(ContainerSpec::new(
                "init",
                "",
                ["true"],
            )),
            ContainerGroupSpec::new(vec![sleep()]).restart_policy(RestartPolicy::Never),
        ] {
            let unit = UnitSpec::from_group("g", ClusterTag::new("t"), group);
            let e = b.create(&unit).await.unwrap_err();
            assert_eq!(e.kind, BackendErrorKind::Unsupported, "{e}");
            assert!(e.message.starts_with("g: "), "{e}");
            // nothing was started
            assert!(!dir.path().join("units/g").exists());
        }
    }
}
