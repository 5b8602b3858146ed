//! Scheduled backups (`spec.etcd.backup`): a snapshot every interval, each with its checksum
//! and verified after writing (etcd's own integrity check), the oldest beyond `keep` removed;
//! `status` shows the newest one's age and every backup whose checksum no longer holds.
//!
//! On the local platform `up` starts a supervised unit, [`BACKUP_UNIT`], running
//! [`Options::backup_command`] (the CLI's `frankenetes backup --schedule`), which calls
//! [`Cluster::backup_schedule`]; `down` removes it with the other units.

use frankenetes_compute::ContainerSpec;
use serde::Serialize;

use super::*;

/// The unit that runs the schedule (not `etcd-…`: that prefix names etcd's members).
pub const BACKUP_UNIT: &str = "backup-etcd";
/// Backups are `backup-<UTC time>.db` (+ `.sha256`): names sort by time.
const PREFIX: &str = "backup-";

/// One backup taken.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackupReport {
    /// The snapshot written (0600, verified), with its `.sha256` next to it.
    pub file: PathBuf,
    /// Its SHA-256.
    pub sha256: String,
    /// Older backups removed to keep `spec.etcd.backup.keep`.
    pub removed: Vec<PathBuf>,
}

/// What `status` says of the backups.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct BackupStatus {
    /// Where they are.
    pub dir: PathBuf,
    /// How many pass verification.
    pub verified: usize,
    /// The newest verified one and its age in seconds.
    pub newest: Option<(PathBuf, u64)>,
    /// Each that fails verification, with why.
    pub unusable: Vec<(PathBuf, String)>,
}

impl<P: Platform> Cluster<P> {
    /// Where scheduled backups go: `spec.etcd.backup.dir` under the cluster directory's
    /// `backups/` (or as given when absolute).
    pub fn backup_dir(&self) -> PathBuf {
        let base = self
            .opts
            .dir
            .join(frankenetes_spec::components::EtcdBackup::LOCAL_DIR);
        match &self.spec.etcd.backup {
            Some(b) => b.dir_under(&base),
            None => base,
        }
    }

    /// Takes one backup now: a snapshot to `backup-<UTC time>.db` in [`Cluster::backup_dir`],
    /// verified after writing; then removes the oldest beyond `spec.etcd.backup.keep` (1 when
    /// the spec has no `backup`). Backups that fail verification are never counted as kept
    /// nor removed: `status` reports them.
    pub async fn backup(&self) -> Result<BackupReport, Error> {
        self.platform
            .supports(Operation::Snapshot)
            .map_err(backend(Phase::Snapshot))?;
        self.require_up(&["etcd-"]).await?;
        let dir = self.backup_dir();
        frankenetes_bundle::fs::ensure_private_dir(&dir).map_err(|e| Error::Io {
            path: dir.clone(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let now = time::OffsetDateTime::now_utc();
        let name = format!(
            "{PREFIX}{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z.db",
            now.year(),
            u8::from(now.month()),
            now.day(),
            now.hour(),
            now.minute(),
            now.second(),
            now.millisecond()
        );
        let file = dir.join(name);
        let sha256 = self.snapshot_to(&file).await?;
        let keep = self.spec.etcd.backup.as_ref().map_or(1, |b| b.keep) as usize;
        let removed = prune_verified(&dir, keep)?;
        Ok(BackupReport {
            file,
            sha256,
            removed,
        })
    }

    /// Takes a backup every `spec.etcd.backup.interval`, for ever (what the backup unit runs).
    /// A failed backup is reported through the events and tried again at the next tick; it
    /// returns only when the cluster is gone ([`Error::NotUp`]).
    pub async fn backup_schedule(&self) -> Result<(), Error> {
        let interval = self
            .spec
            .etcd
            .backup
            .as_ref()
            .map(|b| b.interval.get())
            .ok_or_else(|| {
                Error::Spec("spec.etcd.backup is not set: nothing to schedule".into())
            })?;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match self.backup().await {
                Ok(r) => self.emit(Event::Info(format!(
                    "backup {} ({}), {} older removed",
                    r.file.display(),
                    r.sha256,
                    r.removed.len()
                ))),
                Err(e @ Error::NotUp { .. }) => return Err(e),
                Err(e) => self.emit(Event::Warning(format!("backup failed: {e}"))),
            }
        }
    }

    /// Starts (or keeps) the unit that runs the schedule.
    pub(super) async fn start_backups(&self) -> Result<(), Error> {
        let Some(argv) = &self.opts.backup_command else {
            return Ok(());
        };
        let spec = UnitSpec::container_group(
            BACKUP_UNIT,
            self.tag.clone(),
            vec![ContainerSpec::new("backup", "", argv.clone())],
        );
        self.platform
            .backend()
            .create(&spec)
            .await
            .map_err(backend(Phase::Units))?;
        self.emit(Event::Info(format!(
            "scheduled backups every {} to {} (unit {BACKUP_UNIT})",
            self.spec
                .etcd
                .backup
                .as_ref()
                .map(|b| b.interval.to_string())
                .unwrap_or_default(),
            self.backup_dir().display()
        )));
        Ok(())
    }

    /// The backups' state for `status`: the newest verified one's age; each that fails
    /// verification is a problem; none at all while the schedule runs, a warning.
    pub(super) fn backup_status(&self, report: &mut StatusReport) -> Result<(), Error> {
        let Some(b) = &self.spec.etcd.backup else {
            return Ok(());
        };
        let dir = self.backup_dir();
        let mut st = BackupStatus {
            dir: dir.clone(),
            verified: 0,
            newest: None,
            unusable: Vec::new(),
        };
        for s in backups(&dir)? {
            // The checksum only: etcd's own check ran right after the backup was written and
            // runs again before any restore; a restore into a scratch directory per backup on
            // every `status` would grow with the database.
            match snapshots::verify_checksum(&s.path) {
                Ok(_) => {
                    st.verified += 1;
                    if st.newest.is_none() {
                        st.newest = Some((s.path.clone(), s.age().as_secs()));
                    }
                }
                Err(e) => {
                    report.problems.push(format!(
                        "backup {e}; it is never used for a restore: remove it"
                    ));
                    st.unusable.push((s.path.clone(), e.to_string()));
                }
            }
        }
        match &st.newest {
            None => report.warnings.push(format!(
                "no verified backup in {} yet (one every {})",
                dir.display(),
                b.interval
            )),
            Some((_, age)) if *age > 2 * b.interval.get().as_secs().max(60) => {
                report.warnings.push(format!(
                    "the newest backup in {} is {age}s old, though one is due every {}: is the \
                     {BACKUP_UNIT} unit running?",
                    dir.display(),
                    b.interval
                ));
            }
            Some(_) => {}
        }
        report.backups = Some(st);
        Ok(())
    }
}

/// The backups in `dir`, newest first.
fn backups(dir: &Path) -> Result<Vec<snapshots::Snapshot>, Error> {
    Ok(snapshots::list(dir)?
        .into_iter()
        .filter(|s| {
            s.path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(PREFIX))
        })
        .collect())
}

/// Keeps the `keep` newest backups whose checksum holds, removing the older ones with
/// their `.sha256`; a backup whose checksum fails is left for `status` to report.
fn prune_verified(dir: &Path, keep: usize) -> Result<Vec<PathBuf>, Error> {
    let mut kept = 0;
    let mut removed = Vec::new();
    for s in backups(dir)? {
        if snapshots::verify_checksum(&s.path).is_err() {
            continue;
        }
        if kept < keep {
            kept += 1;
            continue;
        }
        snapshots::remove(&s.path)?;
        removed.push(s.path);
    }
    Ok(removed)
}
