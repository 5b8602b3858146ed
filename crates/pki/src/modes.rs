//! File modes of secrets: keys and kubeconfigs 0600, the operator's CA directories 0700.
//! Loose modes are reported by `check` and `sync`, and narrowed on request.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::fsutil::{PRIVATE_DIR_MODE, SECRET_MODE};
use crate::plan::CLUSTER_PKI;

/// A secret file or a private directory whose mode lets others in.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct LooseMode {
    /// The file or directory, relative to the directory checked or written.
    pub path: PathBuf,
    /// Its mode (permission bits), e.g. `0o644`; serialized as `"0644"`.
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    /// The mode it should have: `0o600` for a file, `0o700` for a directory.
    #[serde(serialize_with = "octal")]
    pub wanted: u32,
    /// Whether it was narrowed to `wanted` (only when asked to fix modes).
    pub fixed: bool,
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{mode:04o}"))
}

impl fmt::Display for LooseMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is {:04o}, should be {:04o}",
            self.path.display(),
            self.mode,
            self.wanted
        )?;
        if self.fixed {
            f.write_str(" (fixed)")?;
        }
        Ok(())
    }
}

/// The permission bits of `path`, if it exists.
fn mode_of(path: &Path) -> Option<u32> {
    Some(std::fs::symlink_metadata(path).ok()?.permissions().mode() & 0o7777)
}

/// `dir/rel` when its mode gives the group or others anything a secret of mode `wanted`
/// ([`SECRET_MODE`] or [`PRIVATE_DIR_MODE`]) does not.
pub(crate) fn loose(dir: &Path, rel: &Path, wanted: u32) -> Option<LooseMode> {
    let mode = mode_of(&dir.join(rel))?;
    (mode & 0o077 != 0).then(|| LooseMode {
        path: rel.to_owned(),
        mode,
        wanted,
        fixed: false,
    })
}

/// A secret file's loose mode, if it has one.
pub(crate) fn loose_secret(dir: &Path, rel: &Path) -> Option<LooseMode> {
    loose(dir, rel, SECRET_MODE)
}

/// Narrows `m.path` (under `dir`) to its wanted mode.
pub(crate) fn fix(dir: &Path, m: &mut LooseMode) -> Result<(), Error> {
    let path = dir.join(&m.path);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(m.wanted))
        .map_err(|source| Error::Write { path, source })?;
    m.fixed = true;
    Ok(())
}

/// The operator's directories that hold CA keys, relative to `dir`: `cluster/pki` and every
/// directory under it that exists.
pub(crate) fn private_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![PathBuf::from(CLUSTER_PKI)];
    while let Some(rel) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(dir.join(&rel)) else {
            continue;
        };
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(rel.join(e.file_name()));
            }
        }
        out.push(rel);
    }
    out.sort();
    out
}

/// Creates the private directories `rels` (under `dir`) that are missing, [`PRIVATE_DIR_MODE`]
/// whatever the umask; returns those that exist with a looser mode, narrowed when `fix`.
pub(crate) fn ensure_private_dirs(
    dir: &Path,
    rels: &[PathBuf],
    fix_modes: bool,
) -> Result<Vec<LooseMode>, Error> {
    let mut out = Vec::new();
    for rel in rels {
        let full = dir.join(rel);
        if !full.exists() {
            frankenetes_bundle::fs::ensure_private_dir(&full)?;
        } else if let Some(mut m) = loose(dir, rel, PRIVATE_DIR_MODE) {
            if fix_modes {
                fix(dir, &mut m)?;
            }
            out.push(m);
        }
    }
    Ok(out)
}
