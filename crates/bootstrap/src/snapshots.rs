//! etcd snapshots on this machine: verified before they are used — their `.sha256` and etcd's
//! own integrity check (a restore into a scratch directory, which checks the hash etcd appends
//! to every snapshot) — and never replaced by an older one silently: when the newest cannot be
//! used, the caller is told which older one could, and how old it is, and must ask for it.
//!
//! ```no_run
//! use frankenetes_bootstrap::snapshots;
//! # fn run() -> Result<(), snapshots::SnapshotError> {
//! let dir = std::path::Path::new(".frankenetes/kubelius/snapshots");
//! for s in snapshots::list(dir)? {
//!     println!("{} {:?}", s.path.display(), snapshots::verify(&s.path, None).err());
//! }
//! let chosen = snapshots::choose(dir, false, None)?;   // the newest, verified, or an error
//! # let _ = chosen; Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// Why a snapshot cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The file fails verification.
    #[error("{}: {reason}", .file.display())]
    Unusable {
        /// The snapshot.
        file: PathBuf,
        /// What failed (checksum, etcd's integrity check, a missing `.sha256`).
        reason: String,
    },
    /// There is no snapshot at all.
    #[error(
        "no snapshot in {}: nothing to restore from (take one with `frankenetes snapshot`, or bring the cluster up afresh)",
        .dir.display()
    )]
    NoneFound {
        /// Where they were looked for.
        dir: PathBuf,
    },
    /// The newest snapshot cannot be used; an older one could, but using it loses what was
    /// written since: the caller must ask for it.
    #[error(
        "the newest snapshot {} ({} old) cannot be used: {reason}; {}",
        .newest.display(),
        age(.newest_age),
        match .older {
            Some((p, a)) => format!(
                "the newest usable one is {} ({} old), which lacks everything written after it: \
                 use it knowingly with --allow-older-snapshot, or restore it with `frankenetes restore {}`",
                p.display(), age(a), p.display()
            ),
            None => "no older snapshot is usable either".to_owned(),
        }
    )]
    NewestUnusable {
        /// The newest snapshot.
        newest: PathBuf,
        /// How old it is.
        newest_age: Duration,
        /// Why it cannot be used.
        reason: String,
        /// The newest usable older snapshot and its age.
        older: Option<(PathBuf, Duration)>,
    },
    /// A snapshot tool could not be run.
    #[error("cannot run {tool}: {reason}")]
    Tool {
        /// `etcdutl` or `etcdctl`.
        tool: String,
        /// Why.
        reason: String,
    },
    /// A directory could not be read.
    #[error("cannot read {}", .path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl SnapshotError {
    /// Whether the user must change what they gave (a file that is not a usable snapshot).
    pub fn is_bad_input(&self) -> bool {
        false
    }
}

/// `1h 2m`-style ages for messages.
fn age(d: &Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86400 => format!("{}h {}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d {}h", s / 86400, (s % 86400) / 3600),
    }
}

/// A snapshot file and when it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Snapshot {
    /// The `.db` file.
    pub path: PathBuf,
    /// Its modification time.
    pub taken: SystemTime,
}

impl Snapshot {
    /// How long ago it was written.
    pub fn age(&self) -> Duration {
        SystemTime::now()
            .duration_since(self.taken)
            .unwrap_or_default()
    }
}

/// The `*.db` files of `dir`, newest first. A missing directory has none.
pub fn list(dir: &Path) -> Result<Vec<Snapshot>, SnapshotError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: dir.to_owned(),
                source,
            });
        }
    };
    let mut out: Vec<Snapshot> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "db") && p.is_file())
        .filter_map(|path| {
            let taken = std::fs::metadata(&path).ok()?.modified().ok()?;
            Some(Snapshot { path, taken })
        })
        .collect();
    out.sort_by(|a, b| b.taken.cmp(&a.taken).then_with(|| b.path.cmp(&a.path)));
    Ok(out)
}

/// The `.sha256` file of a snapshot.
pub fn checksum_path(file: &Path) -> PathBuf {
    PathBuf::from(format!("{}.sha256", file.display()))
}

/// The SHA-256 of a file, hex.
pub fn sha256_file(file: &Path) -> Result<String, SnapshotError> {
    let mut f = std::fs::File::open(file).map_err(|source| SnapshotError::Io {
        path: file.to_owned(),
        source,
    })?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|source| SnapshotError::Io {
        path: file.to_owned(),
        source,
    })?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks `file` against its `.sha256` (which must exist), then with etcd's own integrity
/// check: a restore into a scratch directory (`etcdutl`, or `etcdctl` for etcd 3.4, from
/// `tools_dir` or PATH), which verifies the hash etcd appended when it took the snapshot.
/// Returns the SHA-256.
pub fn verify(file: &Path, tools_dir: Option<&Path>) -> Result<String, SnapshotError> {
    let unusable = |reason: String| SnapshotError::Unusable {
        file: file.to_owned(),
        reason,
    };
    let got = verify_checksum(file)?;
    let scratch = tempfile::Builder::new()
        .prefix(".frankenetes-verify-")
        .tempdir()
        .map_err(|source| SnapshotError::Io {
            path: std::env::temp_dir(),
            source,
        })?;
    let data = scratch.path().join("data");
    let mut cmd = restore_command(tools_dir)?;
    let out = cmd
        .arg("snapshot")
        .arg("restore")
        .arg(file)
        .arg(format!("--data-dir={}", data.display()))
        .output()
        .map_err(|e| SnapshotError::Tool {
            tool: format!("{:?}", cmd.get_program()),
            reason: e.to_string(),
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(unusable(format!(
            "etcd's integrity check failed: {}",
            last.trim()
        )));
    }
    Ok(got)
}

/// Checks `file` against its `.sha256` (which must exist) only: the cheap half of [`verify`].
/// Returns the SHA-256.
pub fn verify_checksum(file: &Path) -> Result<String, SnapshotError> {
    let unusable = |reason: String| SnapshotError::Unusable {
        file: file.to_owned(),
        reason,
    };
    let sum_path = checksum_path(file);
    let want = std::fs::read_to_string(&sum_path).map_err(|e| {
        unusable(format!(
            "its checksum file {} cannot be read ({e}); a snapshot without one is not used",
            sum_path.display()
        ))
    })?;
    let got = sha256_file(file)?;
    if want.split_whitespace().next() != Some(got.as_str()) {
        return Err(unusable(format!(
            "its SHA-256 {got} does not match {} (the file changed after it was written)",
            sum_path.display()
        )));
    }
    Ok(got)
}

/// The command that restores snapshots: `etcdutl` (etcd 3.5+), else `ETCDCTL_API=3 etcdctl`
/// (3.4), from `tools_dir` or PATH.
pub fn restore_command(tools_dir: Option<&Path>) -> Result<Command, SnapshotError> {
    let find = |name: &str| -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        tools_dir
            .map(Path::to_path_buf)
            .into_iter()
            .chain(std::env::split_paths(&path))
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    };
    if let Some(utl) = find("etcdutl") {
        return Ok(Command::new(utl));
    }
    if let Some(ctl) = find("etcdctl") {
        let mut c = Command::new(ctl);
        c.env("ETCDCTL_API", "3");
        return Ok(c);
    }
    Err(SnapshotError::Tool {
        tool: "etcdutl/etcdctl".into(),
        reason: "neither is installed (Debian: apt-get install etcd-client)".into(),
    })
}

/// The snapshot to restore from `dir`: the newest when it verifies. When it does not, an
/// error that names it, why, and the newest older one that verifies — unless `allow_older`,
/// which takes that one (the caller must say so loudly: the second value is the warning to
/// show). Never an older one silently.
pub fn choose(
    dir: &Path,
    allow_older: bool,
    tools_dir: Option<&Path>,
) -> Result<(PathBuf, Option<String>), SnapshotError> {
    let all = list(dir)?;
    let Some(newest) = all.first() else {
        return Err(SnapshotError::NoneFound {
            dir: dir.to_owned(),
        });
    };
    let reason = match verify(&newest.path, tools_dir) {
        Ok(_) => return Ok((newest.path.clone(), None)),
        Err(SnapshotError::Unusable { reason, .. }) => reason,
        Err(e) => return Err(e),
    };
    let older = all[1..]
        .iter()
        .find(|s| verify(&s.path, tools_dir).is_ok())
        .map(|s| (s.path.clone(), s.age()));
    match (&older, allow_older) {
        (Some((path, a)), true) => {
            let warning = format!(
                "the newest snapshot {} cannot be used ({reason}); restoring the older {} ({} old) as asked: what was written after it is lost",
                newest.path.display(),
                path.display(),
                age(a)
            );
            Ok((path.clone(), Some(warning)))
        }
        _ => Err(SnapshotError::NewestUnusable {
            newest: newest.path.clone(),
            newest_age: newest.age(),
            reason,
            older,
        }),
    }
}

/// Removes a snapshot and its `.sha256` (either may be gone already).
pub fn remove(file: &Path) -> Result<(), SnapshotError> {
    for p in [file.to_owned(), checksum_path(file)] {
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(SnapshotError::Io { path: p, source }),
        }
    }
    Ok(())
}

/// Keeps the `keep` newest snapshots of `dir` whose names start with `prefix`, removing the
/// others with their `.sha256`. Returns the files removed.
pub fn prune(dir: &Path, prefix: &str, keep: usize) -> Result<Vec<PathBuf>, SnapshotError> {
    let mut removed = Vec::new();
    for s in list(dir)?
        .into_iter()
        .filter(|s| {
            s.path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(prefix))
        })
        .skip(keep)
    {
        remove(&s.path)?;
        removed.push(s.path);
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_well() {
        assert_eq!(age(&Duration::from_secs(42)), "42s");
        assert_eq!(age(&Duration::from_secs(125)), "2m 5s");
        assert_eq!(age(&Duration::from_secs(7260)), "2h 1m");
        assert_eq!(age(&Duration::from_secs(90000)), "1d 1h");
    }

    #[test]
    fn a_missing_checksum_file_makes_a_snapshot_unusable() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.db");
        std::fs::write(&f, b"not a snapshot").unwrap();
        let e = verify(&f, None).unwrap_err();
        assert!(e.to_string().contains("checksum file"), "{e}");
        std::fs::write(checksum_path(&f), "0000  a.db\n").unwrap();
        let e = verify(&f, None).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
    }

    #[test]
    fn nothing_to_choose_from_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let e = choose(&dir.path().join("none"), false, None).unwrap_err();
        assert!(matches!(e, SnapshotError::NoneFound { .. }), "{e}");
    }
}
