//! Member replacement: control planes whose etcd data is gone while a quorum of members kept
//! theirs re-join as new members through etcd's runtime reconfiguration — the old member
//! removed, the new one added, started with `--initial-cluster-state=existing` and an empty
//! data directory (it receives the data from the leader), one at a time behind the etcd
//! gate. The healthy members' data is never touched, and quorum is never lost: with `n`
//! members of which `k ≥ n/2+1` kept their data, removing a dead member and adding its
//! replacement leaves `k` started members out of `n`.

use std::time::{Duration, Instant};

use super::rolling::set_flag;
use super::{Cluster, backend};
use crate::etcd;
use crate::{Error, Event, Phase};
use frankenetes_compute::{BackendErrorKind, Gate, Platform, UnitState, Wave, Workload};

/// The etcd unit of a node.
fn etcd_unit(node: &str) -> String {
    format!("etcd-{node}")
}

impl<P: Platform> Cluster<P> {
    /// The members to re-join: those without data when a quorum kept theirs. None when every
    /// member lacks data (a new cluster, or one to restore from a snapshot) or the platform
    /// cannot be reached from here. An error when fewer than a quorum kept their data: no
    /// reconfiguration can save that cluster, a snapshot can.
    pub(super) fn members_to_rejoin(&self, w: &Workload) -> Result<Vec<String>, Error> {
        if !self.platform.reachable() {
            return Ok(Vec::new());
        }
        let lost = self
            .platform
            .members_without_data(w)
            .map_err(backend(Phase::Etcd))?;
        let total = self.spec.control_plane.len();
        if lost.is_empty() || lost.len() == total {
            return Ok(Vec::new());
        }
        let kept = total - lost.len();
        if kept < total / 2 + 1 {
            return Err(Error::Spec(format!(
                "{} of {total} etcd members lost their data ({}): the {kept} left are not a \
                 quorum, so they cannot re-join the others; restore the cluster from a \
                 snapshot with `frankenetes restore FILE` (snapshots are in {})",
                lost.len(),
                lost.join(", "),
                self.snapshot_dir().display()
            )));
        }
        Ok(lost)
    }

    /// The client endpoints of the members that kept their data.
    fn kept_endpoints(&self, lost: &[String]) -> Vec<String> {
        self.spec
            .control_plane
            .iter()
            .filter(|n| !lost.iter().any(|l| l == n.name.as_str()))
            .map(|n| self.spec.etcd_client_url(n))
            .collect()
    }

    /// Re-joins `node` (no data left) as a new member of the cluster the others keep, then
    /// waits for the etcd gate.
    pub(super) async fn rejoin(
        &self,
        wave: &Wave,
        node: &str,
        lost: &[String],
    ) -> Result<(), Error> {
        let name = etcd_unit(node);
        let mut unit = wave
            .units
            .iter()
            .find(|u| u.name == name)
            .cloned()
            .ok_or_else(|| Error::Spec(format!("node {node} has no etcd unit")))?;
        let frankenetes_compute::UnitKind::ContainerGroup(group) = &mut unit.kind else {
            return Err(Error::Spec(format!("{name} is not a container group")));
        };
        let command = group
            .containers
            .iter_mut()
            .find(|c| c.name == "etcd")
            .map(|c| &mut c.command)
            .ok_or_else(|| Error::Spec(format!("{name} runs no etcd container")))?;
        let peer_url = command
            .iter()
            .find_map(|a| a.strip_prefix("--initial-advertise-peer-urls="))
            .map(str::to_owned)
            .ok_or_else(|| {
                Error::Spec(format!(
                    "{name}: etcd's command line has no --initial-advertise-peer-urls"
                ))
            })?;
        // A member that restarts over and over with no data must not race the new one.
        if let Some(u) = self
            .platform
            .backend()
            .list(&self.tag)
            .await
            .map_err(backend(Phase::Etcd))?
            .into_iter()
            .find(|u| u.name == name && u.state != UnitState::Stopped)
        {
            match self.platform.backend().stop(&u.id).await {
                Err(e) if e.kind != BackendErrorKind::NotFound => {
                    return Err(backend(Phase::Etcd)(e));
                }
                _ => {}
            }
        }
        let endpoints = self.kept_endpoints(lost);
        let (_, auth) = self.etcd_access()?;
        self.await_quorum(&endpoints, &auth).await?;
        let members = etcd::members(&endpoints, &auth).await?;
        if let Some(old) = members
            .iter()
            .find(|m| m.name == node || m.peer_urls.contains(&peer_url))
        {
            etcd::remove_member(&endpoints, &auth, old.id).await?;
            self.emit(Event::Info(format!(
                "{node}: its etcd data is gone; removed its old member {:x} from the cluster",
                old.id
            )));
        }
        let (id, members) = self.add_member(&endpoints, &auth, &peer_url).await?;
        let initial: Vec<String> = members
            .iter()
            .flat_map(|m| {
                let n = if m.id == id { node } else { m.name.as_str() };
                m.peer_urls.iter().map(move |u| format!("{n}={u}"))
            })
            .collect();
        set_flag(command, "initial-cluster-state", "existing");
        set_flag(command, "initial-cluster", &initial.join(","));
        self.emit(Event::Info(format!(
            "{node}: added as member {id:x}; it starts empty and receives the data from the leader"
        )));
        let created = self.create(Phase::Etcd, &unit).await?;
        if created.state == UnitState::Stopped {
            self.platform
                .backend()
                .start(&created.id)
                .await
                .map_err(backend(Phase::Etcd))?;
        }
        debug_assert_eq!(wave.gate, Gate::EtcdHealthy);
        self.await_gate(wave, Phase::EtcdHealthy).await
    }

    /// Adds a member at `peer_url`. etcd refuses it while its members have not all been
    /// connected for its health interval (5 s: "unhealthy cluster", right after a removal or
    /// a restart); that is retried within the gate timeout, other errors are not.
    async fn add_member(
        &self,
        endpoints: &[String],
        auth: &etcd::EtcdAuth,
        peer_url: &str,
    ) -> Result<(u64, Vec<etcd::Member>), Error> {
        let deadline = Instant::now() + self.opts.gate_timeout;
        loop {
            match etcd::add_member(endpoints, auth, vec![peer_url.to_owned()]).await {
                Err(Error::Etcd(e))
                    if (e.contains("unhealthy cluster") || e.contains("not enough started"))
                        && Instant::now() < deadline =>
                {
                    self.emit(Event::Waiting(
                        Phase::EtcdHealthy,
                        format!("etcd accepts a new member ({e})"),
                    ));
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                r => return r,
            }
        }
    }

    /// Waits until a key can be written through `endpoints`, within the gate timeout.
    async fn await_quorum(&self, endpoints: &[String], auth: &etcd::EtcdAuth) -> Result<(), Error> {
        let deadline = Instant::now() + self.opts.gate_timeout;
        loop {
            if etcd::has_quorum(endpoints, auth).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(Error::Timeout {
                    phase: Phase::EtcdHealthy,
                    seconds: self.opts.gate_timeout.as_secs(),
                    detail: format!(
                        "the members that kept their data ({}) have no quorum",
                        endpoints.join(", ")
                    ),
                });
            }
            self.emit(Event::Waiting(
                Phase::EtcdHealthy,
                format!("a quorum of {}", endpoints.join(", ")),
            ));
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
