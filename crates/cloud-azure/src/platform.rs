//! [`AciPlatform`]: the deployment API's platform on Azure Container Instances.

use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComputeBackend, Gate, OnProgress, Operation,
    Platform, PlatformPlan, Progress, Resource, UnitState, Wave, Workload,
};
use frankenetes_spec::ClusterSpec;

use crate::AciBackend;
use crate::topology::{AciOptions, AciRole, AciTopology, ClientSecret, azure, topology};

/// A cluster's control plane as ACI container groups: the file share for snapshots first,
/// then the etcd groups, the apiservers, and the controller-manager, the scheduler and
/// virtual-kubelet, each wave once its groups run. `pause` stops the writers, takes a final
/// verified snapshot to the share with a one-shot job, then stops etcd (compute billing
/// stops; the definitions and DNS labels stay reserved); `resume` starts them again, each
/// etcd group restoring the newest verified snapshot first when its data is gone.
#[derive(Debug)]
pub struct AciPlatform {
    backend: AciBackend,
    spec: ClusterSpec,
    opts: AciOptions,
}

impl AciPlatform {
    /// The platform for an Azure spec. virtual-kubelet's client secret, when
    /// `virtualKubelet.clientSecret` is set and `opts` has none, is read from its `secretEnv`
    /// variable now (missing: `plan` says so).
    pub fn new(
        spec: &ClusterSpec,
        backend: AciBackend,
        mut opts: AciOptions,
    ) -> Result<Self, BackendError> {
        let az = azure(spec)?;
        if opts.virtual_kubelet_secret.is_none()
            && let Some(cs) = az
                .virtual_kubelet
                .as_ref()
                .and_then(|vk| vk.client_secret.as_ref())
        {
            opts.virtual_kubelet_secret = std::env::var(&cs.secret_env)
                .ok()
                .filter(|s| !s.is_empty())
                .map(ClientSecret::new);
        }
        Ok(Self {
            backend,
            spec: spec.clone(),
            opts,
        })
    }

    /// The ACI backend (ARM calls, the file share).
    pub fn aci(&self) -> &AciBackend {
        &self.backend
    }

    /// The groups for a workload.
    pub fn topology(&self, w: &Workload) -> Result<AciTopology, BackendError> {
        topology(&self.spec, w, &self.opts)
    }

    fn share(&self) -> Result<(String, String), BackendError> {
        let az = azure(&self.spec)?;
        Ok((az.storage_account.clone(), az.share_name.clone()))
    }

    /// Creates a group (or adopts it, starting it when stopped) and waits until it runs.
    async fn run_to_completion(
        &self,
        unit: &frankenetes_compute::UnitSpec,
    ) -> Result<frankenetes_compute::UnitId, BackendError> {
        let mut u = self.backend.create(unit).await?;
        if u.state == UnitState::Stopped {
            u = self.backend.start(&u.id).await?;
        }
        let start = std::time::Instant::now();
        loop {
            let d = self.backend.describe(&u.id).await?;
            match d.state {
                UnitState::Running => return Ok(u.id),
                UnitState::Failed => {
                    return Err(BackendError::new(
                        BackendErrorKind::Other,
                        format!("{} failed: {:?}", d.name, d.details),
                    ));
                }
                _ if start.elapsed() > self.opts.ready_timeout => {
                    return Err(BackendError::new(
                        BackendErrorKind::Other,
                        format!(
                            "{} is {} after {}s",
                            d.name,
                            d.state,
                            start.elapsed().as_secs()
                        ),
                    ));
                }
                _ => tokio::time::sleep(self.opts.poll).await,
            }
        }
    }
}

impl AciPlatform {
    /// With published images only, an etcd group cannot decide at start whether to restore
    /// (etcd's image has no shell), so once a verified snapshot is on the share each etcd
    /// group is re-created with the restore chain: from then on it restores the share's
    /// newest snapshot whenever it starts (its `emptyDir` does not survive stop and start).
    /// Groups with a `toolsImage` restore by themselves: nothing to do.
    async fn arm_restore(&self, w: &Workload, on: OnProgress<'_>) -> Result<(), BackendError> {
        let t = self.topology(w)?;
        if t.restore_groups.is_empty() {
            return Ok(());
        }
        let existing = self.backend.list(&w.tag).await?;
        for g in &t.restore_groups {
            if let Some(old) = existing.iter().find(|u| u.name == g.name) {
                self.backend.delete(&old.id).await?;
            }
            self.backend.create(g).await?;
            on(Progress::Info(format!(
                "{}: re-created to restore the share's newest snapshot when it starts",
                g.name
            )));
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Platform for AciPlatform {
    fn backend(&self) -> &dyn ComputeBackend {
        &self.backend
    }

    fn reachable(&self) -> bool {
        false
    }

    fn plan(&self, w: &Workload) -> Result<PlatformPlan, BackendError> {
        let t = self.topology(w)?;
        let (account, share) = self.share()?;
        let mut plan = PlatformPlan::default();
        plan.resources.push(
            Resource::new("file share", format!("{account}/{share}"))
                .detail("etcd snapshots (billed by size, kept by pause and down)"),
        );
        for g in &t.groups {
            let (cpu, mem) = g.size();
            plan.resources.push(
                Resource::new("container group", g.spec.name.clone())
                    .detail(format!(
                        "{} {:.2} vCPU {:.2} GB",
                        g.fqdn.as_deref().unwrap_or("-"),
                        f64::from(cpu) / 1000.0,
                        f64::from(mem) / 1024.0
                    ))
                    .usd_per_hour(self.opts.prices.per_hour(cpu, mem)),
            );
        }
        plan.price_source = Some(self.opts.prices.source.to_owned());
        plan.warnings.extend(t.warnings.iter().cloned());
        Ok(plan)
    }

    fn waves(&self, w: &Workload) -> Result<Vec<Wave>, BackendError> {
        let t = self.topology(w)?;
        Ok(vec![
            // All members together: they need each other for quorum.
            Wave::new("etcd", t.of(&[AciRole::Etcd]), Gate::Running),
            Wave::new("apiservers", t.of(&[AciRole::ApiServer]), Gate::Running),
            Wave::new(
                "controller-manager, scheduler, virtual-kubelet",
                t.of(&[
                    AciRole::ControllerManager,
                    AciRole::Scheduler,
                    AciRole::VirtualKubelet,
                ]),
                Gate::Running,
            ),
        ])
    }

    async fn provision(&self, _w: &Workload, on: OnProgress<'_>) -> Result<(), BackendError> {
        let (account, share) = self.share()?;
        self.backend.create_file_share(&account, &share).await?;
        on(Progress::Found {
            kind: "file share".into(),
            name: format!("{account}/{share}"),
        });
        Ok(())
    }

    async fn inventory(&self, tag: &ClusterTag) -> Result<Vec<Resource>, BackendError> {
        Ok(self
            .backend
            .list(tag)
            .await?
            .into_iter()
            .map(|u| {
                Resource::new("container group", u.name.clone())
                    .id(u.id.0.clone())
                    .state(u.state.to_string())
                    .detail(u.details.get("fqdn").cloned().unwrap_or_default())
            })
            .collect())
    }

    async fn teardown(
        &self,
        tag: &ClusterTag,
        purge: bool,
        on: OnProgress<'_>,
    ) -> Result<Vec<Resource>, BackendError> {
        frankenetes_compute::platform::delete_units(&self.backend, tag, on).await?;
        let (account, share) = self.share()?;
        if purge {
            self.backend.delete_file_share(&account, &share).await?;
            on(Progress::Deleted {
                kind: "file share".into(),
                name: format!("{account}/{share}"),
            });
        } else {
            on(Progress::Info(format!(
                "kept the file share {account}/{share} with the snapshots (`down --purge` deletes it)"
            )));
        }
        self.inventory(tag).await
    }

    fn supports(&self, op: Operation) -> Result<(), BackendError> {
        match op {
            Operation::PauseResume => Ok(()),
            _ => Err(BackendError::new(
                BackendErrorKind::Unsupported,
                "on azure, snapshots are taken to the file share on a schedule and by `pause`; \
                 `resume` restores the newest",
            )),
        }
    }

    /// The final snapshot: a one-shot group whose init container saves, verifies and ships
    /// it; the group running proves it is on the share. A stale job from an interrupted
    /// pause proves nothing, so it is deleted first; the job is deleted afterwards. If the
    /// snapshot fails, etcd keeps running and the error says so.
    async fn before_pause(&self, w: &Workload, on: OnProgress<'_>) -> Result<(), BackendError> {
        let job = self.topology(w)?.snapshot_job;
        if let Some(old) = self
            .backend
            .list(&w.tag)
            .await?
            .into_iter()
            .find(|u| u.name == job.name)
        {
            self.backend.delete(&old.id).await?;
        }
        on(Progress::Info(
            "taking the final snapshot to the file share".into(),
        ));
        let id = self.run_to_completion(&job).await.map_err(|e| {
            BackendError::new(
                e.kind,
                format!("the final snapshot did not complete, etcd left running: {e}"),
            )
        })?;
        self.backend.delete(&id).await?;
        on(Progress::Info("final snapshot saved and verified".into()));
        self.arm_restore(w, on).await
    }
}
