//! [`sync`]: complete a directory from a plan, and write only what changed.

use std::path::{Path, PathBuf};

use crate::Error;
use crate::build::build;
use crate::fsutil::{self, PUBLIC_MODE, SECRET_MODE};
use crate::id::LeafId;
use crate::modes::{self, LooseMode};
use crate::pki::{OutputFile, Pki};
use crate::plan::PkiPlan;

/// A leaf on disk that no longer matches the plan. It is kept (and listed here) unless
/// [`SyncOptions::renew`] is set, in which case it is replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stale {
    /// Report name (`control-01/apiserver`): the id's `Display`.
    pub name: String,
    /// Which certificate.
    pub id: LeafId,
    /// Certificate file, relative to the output root.
    pub path: PathBuf,
    /// Every reason.
    pub reasons: Vec<String>,
}

/// What [`sync`] did.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct SyncReport {
    /// Files written that did not exist.
    pub created: Vec<PathBuf>,
    /// Files overwritten, with the reason.
    pub replaced: Vec<(PathBuf, String)>,
    /// Files already there with the right content, left untouched.
    pub unchanged: usize,
    /// Leaves that do not match the plan and were kept (only without `renew`).
    pub stale: Vec<Stale>,
    /// Things worth knowing (a leaf clamped to its CA's lifetime, a CA copied back from a node).
    pub notes: Vec<String>,
    /// Secrets already there (keys, `encryption-config.yaml`) and the operator's CA directories
    /// whose mode lets others in: warnings, narrowed only with [`SyncOptions::fix_modes`]
    /// (then [`LooseMode::fixed`] is set).
    pub loose_modes: Vec<LooseMode>,
    /// Temporary files a killed run left (they may hold keys), removed before anything was
    /// read; relative to the output root.
    pub temps_removed: Vec<PathBuf>,
}

impl SyncReport {
    /// Warnings to show: loose modes left as they are.
    pub fn warnings(&self) -> Vec<String> {
        self.loose_modes
            .iter()
            .filter(|m| !m.fixed)
            .map(|m| format!("{m}: others may read it; fix it with chmod, or sync with fix_modes"))
            .collect()
    }
}

/// Options of [`sync`].
#[derive(Debug, Clone, Copy, Default)]
#[non_exhaustive]
pub struct SyncOptions {
    /// Replace leaves that no longer match the plan (SANs, subject, issuer, algorithm,
    /// expiry). CAs are never replaced.
    pub renew: bool,
    /// Narrow loose modes of existing secrets to 0600 and of the operator's CA directories to
    /// 0700 (without it they are only reported in [`SyncReport::loose_modes`]).
    pub fix_modes: bool,
    /// Replace leaves that end within this window of the plan's clock (expired ones too),
    /// even without [`SyncOptions::renew`]: what `up` does so that no certificate expires
    /// unnoticed. The window is capped at half the planned validity, so a short validity
    /// (`certValidity: 240h` in a lab) is not renewed on every run.
    pub renew_within: Option<std::time::Duration>,
}

impl SyncOptions {
    /// Sets [`SyncOptions::renew`].
    #[must_use]
    pub fn renew(mut self, renew: bool) -> Self {
        self.renew = renew;
        self
    }

    /// Sets [`SyncOptions::fix_modes`].
    #[must_use]
    pub fn fix_modes(mut self, fix: bool) -> Self {
        self.fix_modes = fix;
        self
    }

    /// Sets [`SyncOptions::renew_within`].
    #[must_use]
    pub fn renew_within(mut self, window: Option<std::time::Duration>) -> Self {
        self.renew_within = window;
        self
    }
}

/// Writes `files` under `dir`, leaving those that already have the right content untouched;
/// an untouched secret with a loose mode is recorded (and narrowed when `fix_modes`).
pub(crate) fn write_files(
    dir: &Path,
    files: &[OutputFile],
    fix_modes: bool,
    report: &mut SyncReport,
) -> Result<(), Error> {
    let mut batch: Vec<(PathBuf, &[u8], u32)> = Vec::new();
    for f in files {
        let full = dir.join(&f.path);
        match std::fs::read(&full) {
            Ok(existing) if existing == *f.contents => {
                report.unchanged += 1;
                if f.secret
                    && let Some(mut m) = modes::loose_secret(dir, &f.path)
                {
                    if fix_modes {
                        modes::fix(dir, &mut m)?;
                    }
                    report.loose_modes.push(m);
                }
                continue;
            }
            Ok(_) => {
                if !report.replaced.iter().any(|(p, _)| p == &f.path) {
                    report.replaced.push((f.path.clone(), "renewed".into()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                report.created.push(f.path.clone())
            }
            Err(source) => return Err(Error::Read { path: full, source }),
        }
        batch.push((
            full,
            &f.contents,
            if f.secret { SECRET_MODE } else { PUBLIC_MODE },
        ));
    }
    fsutil::write_batch(&batch)
}

/// The operator's directories that hold CA keys, parents first (`cluster/pki`,
/// `cluster/pki/etcd`).
fn ca_key_dirs(plan: &PkiPlan) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for ca in plan.cas() {
        let mut d = plan.ca_master(ca.id);
        while d.pop() && d.starts_with(crate::plan::CLUSTER_PKI) {
            if !dirs.contains(&d) {
                dirs.push(d.clone());
            }
        }
    }
    dirs.sort();
    dirs
}

/// Loads what `dir` already holds, checks it against the plan, generates what is missing (and,
/// with `renew`, replaces leaves that no longer match), and writes the result.
///
/// First, temporary files a killed run left under `dir` are removed
/// ([`SyncReport::temps_removed`]). Nothing is written unless everything loaded cleanly: a
/// corrupted PEM, a key that does not match its certificate, or a CA that would have to be
/// replaced is an error naming the file. The operator's CA directories (`cluster/pki`) are
/// made 0700 and keys 0600, whatever the umask; existing secrets with looser modes are
/// reported in [`SyncReport::loose_modes`] and narrowed with [`SyncOptions::fix_modes`].
/// A second run on a complete directory changes no byte.
pub fn sync(plan: &PkiPlan, dir: &Path, opts: SyncOptions) -> Result<(Pki, SyncReport), Error> {
    let temps_removed = fsutil::remove_stale_temps(dir)?;
    let (pki, mut report) = build(plan, Some(dir), opts)?;
    report.temps_removed = temps_removed;
    report.loose_modes = modes::ensure_private_dirs(dir, &ca_key_dirs(plan), opts.fix_modes)?;
    let reasons: Vec<(PathBuf, String)> = std::mem::take(&mut report.replaced);
    write_files(dir, &pki.files(), opts.fix_modes, &mut report)?;
    report.loose_modes.sort_by(|a, b| a.path.cmp(&b.path));
    // Say why each replaced file was replaced, as the build decided.
    for (file, why) in &mut report.replaced {
        let base = file.with_extension("");
        if let Some((_, r)) = reasons.iter().find(|(b, _)| *b == base) {
            why.clone_from(r);
        }
    }
    Ok((pki, report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaId;

    #[test]
    fn ca_key_dirs_are_the_operators() {
        let plan = PkiPlan::example();
        assert_eq!(
            ca_key_dirs(&plan),
            [
                PathBuf::from("cluster/pki"),
                PathBuf::from("cluster/pki/etcd")
            ]
        );
        assert!(plan.ca_master(CaId::Etcd).starts_with("cluster/pki/etcd"));
    }
}
