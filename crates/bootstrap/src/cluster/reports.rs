//! What the deployment API's calls report, and their options.

use std::fmt;
use std::path::PathBuf;

use frankenetes_compute::Outputs;

use crate::Phase;
use serde::Serialize;

/// What `up` did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct UpReport {
    /// Phases completed, in order.
    pub phases: Vec<Phase>,
    /// What the user should know (binaries missing: the etcd tier is up without them).
    pub warnings: Vec<String>,
    /// Where the operator's kubeconfig is.
    pub admin_kubeconfig: PathBuf,
    /// What the platform found out (a public IP, an endpoint).
    pub outputs: Outputs,
    /// Running units restarted because what the spec renders for them changed, one at a
    /// time behind their wave's gate, in order.
    pub restarted: Vec<super::Restart>,
    /// Control planes whose etcd data was gone, re-joined as new members.
    pub rejoined: Vec<String>,
}

/// A health verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", content = "detail", rename_all = "lowercase")]
#[non_exhaustive]
pub enum Health {
    /// Checked and fine.
    Healthy(String),
    /// Checked and not fine: what is wrong.
    Unhealthy(String),
    /// Not checked (not reachable from here, or nothing to check).
    Unknown(String),
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Health::Healthy(d) if d.is_empty() => f.write_str("healthy"),
            Health::Healthy(d) => write!(f, "healthy ({d})"),
            Health::Unhealthy(d) => write!(f, "UNHEALTHY: {d}"),
            Health::Unknown(d) if d.is_empty() => f.write_str("-"),
            Health::Unknown(d) => f.write_str(d),
        }
    }
}

/// One line of `status`.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StatusRow {
    /// The unit or resource (`etcd-control-01`).
    pub name: String,
    /// Its kind (`process`, `container group`, `instance`, `vpc`).
    pub kind: String,
    /// The platform's state (`running`, `stopped`).
    pub state: Option<String>,
    /// The provider's id, or the PID of a local process.
    pub id: Option<String>,
    /// Details (a log file, an FQDN).
    pub detail: String,
    /// Its health, as checked.
    pub health: Health,
}

/// What `status` found.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct StatusReport {
    /// The cluster's name.
    pub cluster: String,
    /// The platform.
    pub backend: String,
    /// Whether anything of the cluster exists.
    pub exists: bool,
    /// One row per unit or resource.
    pub rows: Vec<StatusRow>,
    /// Every problem found, one sentence each; empty when healthy.
    pub problems: Vec<String>,
    /// What needs attention soon but is not wrong yet (a certificate inside the renewal
    /// window, a CA within a year of its end).
    pub warnings: Vec<String>,
    /// The earliest-ending certificate of the operator's files and of each node, then each
    /// CA (read from the cluster directory's bundle).
    pub certificates: Vec<frankenetes_pki::expiry::Expiry>,
    /// The scheduled backups, when `spec.etcd.backup` is set.
    pub backups: Option<super::BackupStatus>,
}

impl StatusReport {
    /// Whether the cluster exists and nothing is wrong.
    pub fn is_healthy(&self) -> bool {
        self.exists && self.problems.is_empty()
    }

    /// A table: name, state, id/PID, health; then the problems.
    pub fn table(&self) -> String {
        use fmt::Write as _;
        let mut out = format!(
            "{:<36} {:<9} {:<12} {}\n",
            "UNIT", "STATE", "ID/PID", "HEALTH"
        );
        for r in &self.rows {
            let _ = writeln!(
                out,
                "{:<36} {:<9} {:<12} {}",
                r.name,
                r.state.as_deref().unwrap_or("-"),
                r.id.as_deref().unwrap_or("-"),
                r.health
            );
        }
        if !self.exists {
            let _ = writeln!(
                out,
                "cluster {} has nothing on {} (run `frankenetes up`)",
                self.cluster, self.backend
            );
        }
        if !self.certificates.is_empty() {
            let now = time::OffsetDateTime::now_utc();
            let _ = writeln!(out, "\n{:<36} {:<24} FIRST TO END", "CERTIFICATES", "ENDS");
            for c in &self.certificates {
                let whose = match (&c.node, c.name.starts_with("ca") || c.name.contains("-ca")) {
                    (Some(n), _) => n.clone(),
                    (None, true) => format!("CA {}", c.name),
                    (None, false) => "operator".into(),
                };
                let left = if c.not_after <= now {
                    "expired".to_owned()
                } else {
                    format!("{}d left", (c.not_after - now).whole_days())
                };
                let _ = writeln!(
                    out,
                    "{:<36} {:<24} {}",
                    whose,
                    format!("{} ({left})", c.not_after.date()),
                    c.path.display()
                );
            }
        }
        if let Some(b) = &self.backups {
            let newest = match &b.newest {
                Some((f, age)) => format!(
                    "newest {} ({age}s old)",
                    f.file_name().unwrap_or_default().to_string_lossy()
                ),
                None => "none yet".into(),
            };
            let _ = writeln!(
                out,
                "\nBACKUPS {}: {} verified, {newest}{}",
                b.dir.display(),
                b.verified,
                if b.unusable.is_empty() {
                    String::new()
                } else {
                    format!(", {} UNUSABLE", b.unusable.len())
                }
            );
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        for p in &self.problems {
            let _ = writeln!(out, "problem: {p}");
        }
        out
    }
}

/// Options of `down`.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct DownOptions {
    /// Also delete what holds data outside the units (a snapshot share).
    pub purge: bool,
    /// Only list what would be deleted.
    pub dry_run: bool,
}

impl DownOptions {
    /// Only list what would be deleted.
    #[must_use]
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }

    /// Also delete what holds data outside the units.
    #[must_use]
    pub fn purge(mut self, yes: bool) -> Self {
        self.purge = yes;
        self
    }
}

/// What `down` did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Default, Serialize)]
#[non_exhaustive]
pub struct DownReport {
    /// What existed before (what a dry run would delete).
    pub found: Vec<String>,
    /// Whether this was a dry run.
    pub dry_run: bool,
    /// What is still there afterwards (empty when clean).
    pub left: Vec<String>,
}

/// What `pause` did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct PauseReport {
    /// The snapshot taken before etcd stopped (local: `snapshots/pause-<time>.db`).
    pub snapshot: Option<PathBuf>,
    /// The units stopped.
    pub stopped: Vec<String>,
    /// Nothing was running: it was paused already.
    pub already_paused: bool,
}

/// Options of `resume`.
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct ResumeOptions {
    /// When the newest snapshot cannot be used, restore the newest older one that can
    /// (what was written after it is lost; the choice is reported).
    pub allow_older_snapshot: bool,
}

impl ResumeOptions {
    /// Allows an older snapshot when the newest is unusable.
    #[must_use]
    pub fn allow_older_snapshot(mut self, yes: bool) -> Self {
        self.allow_older_snapshot = yes;
        self
    }
}
