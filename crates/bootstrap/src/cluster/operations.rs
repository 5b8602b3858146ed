//! The operations on a cluster that is up: status, down, snapshot, restore, pause, resume.

use super::*;

/// A CA this close to its end is reported: rotating one takes planning.
const CA_WARNING_WINDOW: Duration = Duration::from_secs(365 * 24 * 3600);

impl<P: Platform> Cluster<P> {
    /// Each unit's and resource's state, and the cluster's health where it can be checked
    /// from here. Read-only; every check is bounded.
    pub async fn status(&self) -> Result<StatusReport, Error> {
        let resources = self
            .platform
            .inventory(&self.tag)
            .await
            .map_err(backend(Phase::Status))?;
        let mut report = StatusReport {
            cluster: self.spec.name.as_str().to_owned(),
            backend: self.platform.name().to_owned(),
            exists: !resources.is_empty(),
            rows: Vec::new(),
            problems: Vec::new(),
            warnings: Vec::new(),
            certificates: Vec::new(),
            backups: None,
        };
        self.certificate_status(&mut report)?;
        self.backup_status(&mut report)?;
        if !report.exists {
            report.problems.push(format!(
                "cluster {} has nothing on {}: run `frankenetes up`",
                report.cluster, report.backend
            ));
            return Ok(report);
        }
        let reachable = self.platform.reachable();
        let running = |prefix: &str| {
            resources
                .iter()
                .any(|r| r.name.starts_with(prefix) && r.state.as_deref() == Some("running"))
        };
        let etcd = if reachable && running("etcd-") {
            let (eps, auth) = self.etcd_access()?;
            Some(gates::etcd_problem(&eps, &auth, self.spec.control_plane.len()).await)
        } else {
            None
        };
        let api = if reachable && running("kube-apiserver-") {
            let auth = self.api_auth()?;
            let mut per = Vec::new();
            for n in &self.spec.control_plane {
                let h = match gates::api_get(n, "/readyz", &auth).await {
                    Ok((200, _)) => Health::Healthy("/readyz ok".into()),
                    Ok((code, body)) => Health::Unhealthy(format!(
                        "/readyz {code}: {}",
                        body.lines()
                            .filter(|l| l.contains("failed"))
                            .collect::<Vec<_>>()
                            .join("; ")
                    )),
                    Err(e) => Health::Unhealthy(e),
                };
                per.push((format!("kube-apiserver-{}", n.name), h));
            }
            let leases = match self.spec.control_plane.first() {
                Some(first) => gates::leases_problem(first, &auth).await,
                None => None,
            };
            Some((per, leases))
        } else {
            None
        };
        let running_units: Vec<String> = resources
            .iter()
            .filter(|r| r.state.as_deref() == Some("running"))
            .map(|r| r.name.clone())
            .collect();
        let unit_health = self.platform.unit_health(&self.tag, &running_units).await;
        for r in resources {
            let stopped = r.state.as_deref() != Some("running");
            let health = if stopped {
                Health::Unknown(String::new())
            } else if r.name.starts_with("etcd-") {
                match &etcd {
                    Some(None) => Health::Healthy("cluster".into()),
                    Some(Some(p)) => Health::Unhealthy(p.clone()),
                    None => Health::Unknown(String::new()),
                }
            } else if r.name.starts_with("kube-apiserver-") {
                api.as_ref()
                    .and_then(|(per, _)| per.iter().find(|(n, _)| *n == r.name))
                    .map(|(_, h)| h.clone())
                    .unwrap_or(Health::Unknown(String::new()))
            } else if r.name.starts_with("kube-controller-manager-")
                || r.name.starts_with("kube-scheduler-")
            {
                match &api {
                    Some((_, None)) => Health::Healthy("leader lease held".into()),
                    Some((_, Some(p))) => Health::Unhealthy(p.clone()),
                    None => Health::Unknown(String::new()),
                }
            } else if let Some((_, h)) = unit_health.iter().find(|(n, _)| *n == r.name) {
                match h {
                    Ok(seen) => Health::Healthy(seen.clone()),
                    Err(p) => Health::Unhealthy(p.clone()),
                }
            } else {
                Health::Unknown(String::new())
            };
            match (&health, r.state.as_deref()) {
                (Health::Unhealthy(p), _) => report.problems.push(format!("{}: {p}", r.name)),
                (_, Some("failed")) => report
                    .problems
                    .push(format!("{} failed (log: {})", r.name, r.detail)),
                (_, Some("stopped")) => report.problems.push(format!(
                    "{} is stopped (`frankenetes resume` starts it)",
                    r.name
                )),
                _ => {}
            }
            report.rows.push(StatusRow {
                name: r.name,
                kind: r.kind,
                state: r.state,
                id: r.id,
                detail: r.detail,
                health,
            });
        }
        report.problems.dedup();
        Ok(report)
    }

    /// The certificates' ends, from the bundle (nothing when there is none): an expired one is
    /// a problem, one inside the renewal window a warning (`up` renews it), a CA within a
    /// year of its end a warning with the steps to rotate it.
    fn certificate_status(&self, report: &mut StatusReport) -> Result<(), Error> {
        let root = self.bundle().root().to_path_buf();
        if !root.join("cluster").is_dir() {
            return Ok(());
        }
        let leaves = frankenetes_pki::expiry::leaf_expiries(&root)?;
        let cas = frankenetes_pki::expiry::ca_expiries(&root)?;
        let now = time::OffsetDateTime::now_utc();
        for e in &leaves {
            if let Some(w) = e.warning(now, self.opts.renew_window) {
                if e.not_after <= now {
                    report
                        .problems
                        .push(format!("{w}: `frankenetes up` renews it"));
                } else {
                    report
                        .warnings
                        .push(format!("{w}: `frankenetes up` renews it"));
                }
            }
        }
        for e in &cas {
            if let Some(w) = e.warning(now, CA_WARNING_WINDOW.max(self.opts.renew_window)) {
                let line = format!(
                    "CA {w}: a CA is not renewed in place; rotate it as {} describes",
                    frankenetes_pki::expiry::CA_ROTATION_DOC
                );
                if e.not_after <= now {
                    report.problems.push(line);
                } else {
                    report.warnings.push(line);
                }
            }
        }
        report.certificates = leaves;
        report
            .certificates
            .extend(cas.into_iter().filter(|c| c.node.is_none()));
        Ok(())
    }

    /// Deletes everything the cluster has on the platform (data, PKI and bundles in the
    /// cluster directory are kept), then lists what is left; with `dry_run`, only lists what
    /// would be deleted. Running it again deletes nothing and succeeds.
    pub async fn down(&self, opts: DownOptions) -> Result<DownReport, Error> {
        let _lock = if opts.dry_run {
            None
        } else {
            Some(self.lock("down")?)
        };
        let found: Vec<Resource> = self
            .platform
            .inventory(&self.tag)
            .await
            .map_err(backend(Phase::Teardown))?;
        let names = |rs: &[Resource]| {
            rs.iter()
                .map(|r| format!("{} {}", r.kind, r.name))
                .collect::<Vec<_>>()
        };
        let mut report = DownReport {
            found: names(&found),
            dry_run: opts.dry_run,
            left: Vec::new(),
        };
        if opts.dry_run {
            return Ok(report);
        }
        let on = self.on_progress(Phase::Teardown);
        self.emit(Event::Started(Phase::Teardown));
        let t = Instant::now();
        let left = self
            .platform
            .teardown(&self.tag, opts.purge, &on)
            .await
            .map_err(backend(Phase::Teardown))?;
        self.emit(Event::Done(Phase::Teardown, t.elapsed()));
        report.left = names(&left);
        Ok(report)
    }

    /// Streams a snapshot of etcd to `file` (0600, with `file.sha256`), verified after
    /// writing; returns its SHA-256.
    pub async fn snapshot(&self, file: &Path) -> Result<String, Error> {
        self.platform
            .supports(Operation::Snapshot)
            .map_err(backend(Phase::Snapshot))?;
        self.require_up(&["etcd-"]).await?;
        self.snapshot_to(file).await
    }

    pub(super) async fn snapshot_to(&self, file: &Path) -> Result<String, Error> {
        let (endpoints, auth) = self.etcd_access()?;
        let mut last = None;
        for ep in &endpoints {
            let r = tokio::time::timeout(
                self.opts.gate_timeout,
                crate::etcd::snapshot(ep, &auth, file),
            )
            .await
            .unwrap_or_else(|_| {
                Err(Error::Etcd(format!(
                    "snapshot from {ep}: not finished within {}s",
                    self.opts.gate_timeout.as_secs()
                )))
            });
            match r {
                Ok(sum) => {
                    snapshots::verify(file, None)?;
                    return Ok(sum);
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| Error::Spec("spec.controlPlane is empty".into())))
    }

    /// Fails with [`Error::NotUp`] unless some unit whose name starts with one of `prefixes`
    /// exists.
    pub(super) async fn require_up(
        &self,
        prefixes: &[&str],
    ) -> Result<Vec<frankenetes_compute::Unit>, Error> {
        let units = self
            .platform
            .backend()
            .list(&self.tag)
            .await
            .map_err(backend(Phase::Status))?;
        if !units
            .iter()
            .any(|u| prefixes.iter().any(|p| u.name.starts_with(p)))
        {
            return Err(Error::NotUp {
                cluster: self.spec.name.as_str().to_owned(),
                backend: self.platform.name().to_owned(),
                hint: "run `frankenetes up` first".into(),
            });
        }
        Ok(units)
    }

    /// Rebuilds every etcd member from `file` (verified first: checksum and etcd's own
    /// integrity check) and brings the cluster up on it: units stopped, old data moved aside,
    /// each member of the spec restored with its name and peer URLs — which may differ from
    /// the snapshot's (other node names, other addresses: etcd's restore writes a new member
    /// list; certificates that no longer match the spec are re-issued, CAs kept) — then
    /// `up`'s sequence behind the health gates. Units of nodes no longer in the spec are
    /// deleted.
    pub async fn restore(&self, file: &Path) -> Result<UpReport, Error> {
        self.validate()?;
        let _lock = self.lock("restore")?;
        self.platform
            .supports(Operation::Restore)
            .map_err(backend(Phase::Restore))?;
        snapshots::verify(file, None)?;
        let prepared = self.prepare(true)?;
        let w = &prepared.workload;
        self.stop_all(w, None, false).await?;
        let on = self.on_progress(Phase::Restore);
        self.platform
            .restore(w, file, &[], &on)
            .await
            .map_err(backend(Phase::Restore))?;
        self.delete_orphans(w).await?;
        self.converge(Some(prepared)).await
    }

    /// Deletes the units of no wave of `w` (nodes taken out of the spec), except the backup
    /// schedule.
    async fn delete_orphans(&self, w: &frankenetes_compute::Workload) -> Result<(), Error> {
        let waves = self.platform.waves(w).map_err(backend(Phase::Restore))?;
        let units = self
            .platform
            .backend()
            .list(&self.tag)
            .await
            .map_err(backend(Phase::Restore))?;
        for u in units.iter().filter(|u| {
            u.name != super::BACKUP_UNIT
                && !waves
                    .iter()
                    .any(|wv| wv.units.iter().any(|s| s.name == u.name))
        }) {
            match self.platform.backend().delete(&u.id).await {
                Err(e) if e.kind != frankenetes_compute::BackendErrorKind::NotFound => {
                    return Err(backend(Phase::Restore)(e));
                }
                _ => self.emit(Event::Info(format!(
                    "deleted {}: its node is not in the spec",
                    u.name
                ))),
            }
        }
        Ok(())
    }

    /// Stops every unit, last wave first; before the first wave (etcd) stops, takes a
    /// snapshot to `snapshot` when given. Returns the units stopped.
    async fn stop_all(
        &self,
        w: &frankenetes_compute::Workload,
        snapshot: Option<&Path>,
        pausing: bool,
    ) -> Result<Vec<String>, Error> {
        let units = self
            .platform
            .backend()
            .list(&self.tag)
            .await
            .map_err(backend(Phase::Stop))?;
        let waves = self.platform.waves(w).map_err(backend(Phase::Stop))?;
        let mut stopped = Vec::new();
        let wave_of = |name: &str| {
            waves
                .iter()
                .position(|wv| wv.units.iter().any(|u| u.name == name))
                .unwrap_or(usize::MAX)
        };
        let mut ordered: Vec<_> = units.iter().collect();
        ordered.sort_by_key(|u| std::cmp::Reverse(wave_of(&u.name)));
        let mut snapshot_taken = false;
        for u in ordered {
            if wave_of(&u.name) == 0 && !snapshot_taken {
                snapshot_taken = true;
                if let Some(file) = snapshot {
                    self.emit(Event::Started(Phase::Snapshot));
                    let t = Instant::now();
                    self.snapshot_to(file).await?;
                    self.emit(Event::Done(Phase::Snapshot, t.elapsed()));
                }
                if pausing {
                    let on = self.on_progress(Phase::Snapshot);
                    self.platform
                        .before_pause(w, &on)
                        .await
                        .map_err(backend(Phase::Snapshot))?;
                }
            }
            if u.state == UnitState::Stopped {
                continue;
            }
            match self.platform.backend().stop(&u.id).await {
                Ok(()) => stopped.push(u.name.clone()),
                Err(e) if e.kind == frankenetes_compute::BackendErrorKind::NotFound => {}
                Err(e) => return Err(backend(Phase::Stop)(e)),
            }
        }
        Ok(stopped)
    }

    /// Starts every wave again in order, each behind its gate.
    async fn start_all(&self, w: &frankenetes_compute::Workload) -> Result<(), Error> {
        let mut report = UpReport::default();
        for wave in self.platform.waves(w).map_err(backend(Phase::Units))? {
            self.start_wave(w, &wave, &[], &mut report).await?;
        }
        if self.spec.etcd.backup.is_some() {
            self.start_backups().await?;
        }
        Ok(())
    }

    /// Stops every unit, keeping its data: the writers first, then — after a verified
    /// snapshot into `snapshots/pause-<time>.db` (0600) when etcd can be reached from here —
    /// etcd. A second `pause` finds nothing running and says so.
    pub async fn pause(&self) -> Result<PauseReport, Error> {
        let _lock = self.lock("pause")?;
        self.platform
            .supports(Operation::PauseResume)
            .map_err(backend(Phase::Stop))?;
        let units = self.require_up(&[""]).await?;
        if units.iter().all(|u| u.state == UnitState::Stopped) {
            return Ok(PauseReport {
                already_paused: true,
                ..Default::default()
            });
        }
        let prepared = self.prepare(true)?;
        let etcd_running = units
            .iter()
            .any(|u| u.name.starts_with("etcd-") && u.state == UnitState::Running);
        let file = (self.platform.reachable()
            && etcd_running
            && self.platform.supports(Operation::Snapshot).is_ok())
        .then(|| {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            self.snapshot_dir().join(format!("pause-{stamp}.db"))
        });
        if file.is_some() {
            frankenetes_bundle::fs::ensure_private_dir(&self.snapshot_dir())?;
        }
        let stopped = self
            .stop_all(&prepared.workload, file.as_deref(), true)
            .await?;
        Ok(PauseReport {
            snapshot: file,
            stopped,
            already_paused: false,
        })
    }

    /// Starts every unit again in `up`'s order behind the gates. When every member's data is
    /// gone, the newest verified snapshot is restored first — never an older one unless
    /// `opts.allow_older_snapshot` (and then the choice is reported).
    pub async fn resume(&self, opts: ResumeOptions) -> Result<(), Error> {
        let _lock = self.lock("resume")?;
        self.platform
            .supports(Operation::PauseResume)
            .map_err(backend(Phase::Units))?;
        self.require_up(&[""]).await?;
        let prepared = self.prepare(true)?;
        let w = &prepared.workload;
        let missing = self
            .platform
            .members_without_data(w)
            .map_err(backend(Phase::Restore))?;
        // Some members lost their data while a quorum kept theirs: the etcd wave re-joins
        // them (see `members`); every member lost it: restore the newest snapshot first.
        let missing = if missing.len() < self.spec.control_plane.len() {
            Vec::new()
        } else {
            missing
        };
        if !missing.is_empty() {
            let (file, warning) =
                snapshots::choose(&self.snapshot_dir(), opts.allow_older_snapshot, None)?;
            if let Some(text) = warning {
                self.emit(Event::Warning(text));
            }
            self.emit(Event::Info(format!(
                "restoring {} from {}",
                missing.join(", "),
                file.display()
            )));
            let on = self.on_progress(Phase::Restore);
            self.platform
                .restore(w, &file, &missing, &on)
                .await
                .map_err(backend(Phase::Restore))?;
        }
        self.start_all(w).await
    }
}
