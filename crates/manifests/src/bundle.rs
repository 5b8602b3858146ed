//! Node bundles: every file and unit one machine gets, written as a root-filesystem overlay
//! (`nodes/<name>/...`) and as one Ignition config (`nodes/<name>.ign`).

use std::fmt;
use std::path::{Path, PathBuf};

use frankenetes_pki::fsutil::{PUBLIC_MODE, SECRET_MODE, write_batch};
use zeroize::Zeroizing;

use crate::Error;
use crate::systemd::Unit;

/// One file of a node, at its absolute path on the machine.
#[derive(Clone)]
#[non_exhaustive]
pub struct NodeFile {
    /// Absolute path on the machine (`/etc/kubernetes/manifests/etcd.yaml`).
    pub path: String,
    /// Contents.
    pub contents: Zeroizing<Vec<u8>>,
    /// File mode (0600 for keys, kubeconfigs and manifests).
    pub mode: u32,
}

impl fmt::Debug for NodeFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NodeFile")
            .field("path", &self.path)
            .field("mode", &format_args!("{:o}", self.mode))
            .field("len", &self.contents.len())
            .finish()
    }
}

impl NodeFile {
    /// A file.
    pub fn new(path: impl Into<String>, contents: impl Into<Vec<u8>>, mode: u32) -> Self {
        Self {
            path: path.into(),
            contents: Zeroizing::new(contents.into()),
            mode,
        }
    }

    /// Whether it is readable by its owner only.
    pub fn is_secret(&self) -> bool {
        self.mode & 0o077 == 0
    }
}

/// Everything one node gets.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeBundle {
    /// The node's name.
    pub name: String,
    /// Files, by absolute path.
    pub files: Vec<NodeFile>,
    /// systemd units (written to `/etc/systemd/system/`).
    pub units: Vec<Unit>,
}

impl NodeBundle {
    /// An empty bundle.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            files: Vec::new(),
            units: Vec::new(),
        }
    }

    /// A file by absolute path.
    pub fn file(&self, path: &str) -> Option<&NodeFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// Every path the bundle writes on the machine, units included, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut p: Vec<String> = self.files.iter().map(|f| f.path.clone()).collect();
        p.extend(
            self.units
                .iter()
                .map(|u| format!("/etc/systemd/system/{}", u.name)),
        );
        p.sort();
        p
    }
}

/// What writing changed.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct WriteReport {
    /// Files written (new or changed), relative to the output root.
    pub written: Vec<PathBuf>,
    /// Files already right.
    pub unchanged: usize,
}

/// Files waiting to be written together (one filesystem sync for all, not one per file).
pub(crate) type Pending = Vec<(PathBuf, Vec<u8>, u32)>;

/// Queues `contents` for `out/rel` unless the file already holds exactly that.
pub(crate) fn write_if_changed(
    out: &Path,
    rel: &Path,
    contents: &[u8],
    mode: u32,
    report: &mut WriteReport,
    pending: &mut Pending,
) {
    let full = out.join(rel);
    if std::fs::read(&full).is_ok_and(|old| old == contents) {
        report.unchanged += 1;
        return;
    }
    pending.push((full, contents.to_vec(), mode));
    report.written.push(rel.to_owned());
}

/// Writes the queued files, each atomically, with one filesystem sync; contents (some are
/// keys) are zeroized afterwards.
pub(crate) fn flush(pending: Pending) -> Result<(), Error> {
    let batch: Vec<(PathBuf, &[u8], u32)> = pending
        .iter()
        .map(|(p, c, m)| (p.clone(), c.as_slice(), *m))
        .collect();
    write_batch(&batch)?;
    drop(batch);
    for (_, c, _) in pending {
        drop(Zeroizing::new(c));
    }
    Ok(())
}

impl NodeBundle {
    /// Writes the overlay under `out/nodes/<name>/` and the Ignition config to
    /// `out/nodes/<name>.ign` (0600: it holds keys). Enabled units get their
    /// `<target>.wants/` symlink, as `systemctl enable` would make.
    pub fn write(&self, out: &Path, report: &mut WriteReport) -> Result<(), Error> {
        let mut pending = Pending::new();
        self.collect(out, report, &mut pending)?;
        flush(pending)
    }

    pub(crate) fn collect(
        &self,
        out: &Path,
        report: &mut WriteReport,
        pending: &mut Pending,
    ) -> Result<(), Error> {
        let root = Path::new("nodes").join(&self.name);
        for f in &self.files {
            write_if_changed(
                out,
                &root.join(f.path.trim_start_matches('/')),
                &f.contents,
                f.mode,
                report,
                pending,
            );
        }
        for u in &self.units {
            let rel = root.join("etc/systemd/system").join(&u.name);
            write_if_changed(
                out,
                &rel,
                u.to_string().as_bytes(),
                PUBLIC_MODE,
                report,
                pending,
            );
            if let (true, Some(target)) = (u.enabled, u.wanted_by()) {
                let link = out
                    .join(&root)
                    .join(format!("etc/systemd/system/{target}.wants"))
                    .join(&u.name);
                let dest = PathBuf::from("/etc/systemd/system").join(&u.name);
                if std::fs::read_link(&link).ok().as_deref() != Some(dest.as_path()) {
                    let parent = link.parent().unwrap_or(out);
                    std::fs::create_dir_all(parent).map_err(|source| Error::Write {
                        path: parent.to_owned(),
                        source,
                    })?;
                    let _ = std::fs::remove_file(&link);
                    std::os::unix::fs::symlink(&dest, &link).map_err(|source| Error::Write {
                        path: link.clone(),
                        source,
                    })?;
                    report
                        .written
                        .push(link.strip_prefix(out).unwrap_or(&link).to_owned());
                }
            }
        }
        let ign = crate::ignition::to_ignition(self);
        write_if_changed(
            out,
            &Path::new("nodes").join(format!("{}.ign", self.name)),
            ign.as_bytes(),
            SECRET_MODE,
            report,
            pending,
        );
        Ok(())
    }
}
