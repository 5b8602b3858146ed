//! Node bundles: every file and unit one machine gets, written as a root-filesystem overlay
//! (`nodes/<name>/...`) and as one Ignition config (`nodes/<name>.ign`).

use std::fmt;
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::Error;
use crate::fs::{PUBLIC_MODE, SECRET_MODE, write_batch};
use crate::systemd::{UNIT_DIR, Unit};

/// One file of a node, at its absolute path on the machine.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeFile {
    /// Absolute path on the machine (`/etc/kubernetes/manifests/etcd.yaml`).
    pub path: String,
    /// Contents, zeroized when dropped: some files hold private keys.
    pub contents: Zeroizing<Vec<u8>>,
    /// File mode (0600 for keys, kubeconfigs and manifests).
    pub mode: u32,
}

impl fmt::Debug for NodeFile {
    /// Path, mode and length: never the contents.
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

    /// The contents as text (lossy: node files are text, but this never fails).
    pub fn text(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.contents)
    }
}

/// A file the machine downloads itself at first boot — an official release binary — pinned by
/// its SHA-256: in the Ignition config as `contents.source` with `contents.verification.hash`
/// (Ignition refuses a download whose hash differs, and the boot stops there). An overlay has
/// no place for it: on a machine you lay the overlay on, install it yourself from the same URL
/// and check the same hash.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RemoteFile {
    /// Absolute path on the machine (`/usr/local/bin/kubelet`).
    pub path: String,
    /// File mode (0755 for a binary).
    pub mode: u32,
    /// Where it is downloaded from: an `https://` URL.
    pub url: String,
    /// Its SHA-256, 64 lower-case hex digits.
    pub sha256: String,
}

impl RemoteFile {
    /// A remote file; refuses a URL that is not `https://` (or holds white space or a control
    /// character) and a SHA-256 that is not 64 lower-case hex digits.
    pub fn new(
        path: impl Into<String>,
        mode: u32,
        url: impl Into<String>,
        sha256: impl Into<String>,
    ) -> Result<Self, Error> {
        let (path, url, sha256) = (path.into(), url.into(), sha256.into());
        if !url.starts_with("https://")
            || url.len() <= "https://".len()
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::Invalid {
                what: format!("{path}: source {url:?}"),
                reason: "must be an https:// URL without white space".into(),
            });
        }
        if sha256.len() != 64
            || !sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(Error::Invalid {
                what: format!("{path}: SHA-256 {sha256:?}"),
                reason: "must be 64 lower-case hex digits".into(),
            });
        }
        Ok(Self {
            path,
            mode,
            url,
            sha256,
        })
    }
}

/// Everything one node gets.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NodeBundle {
    /// The node's name.
    pub name: String,
    /// Files, by absolute path.
    pub files: Vec<NodeFile>,
    /// systemd units (their files go to `/etc/systemd/system/`).
    pub units: Vec<Unit>,
    /// OpenSSH public keys (`ssh-ed25519 AAAA… comment`) that may log in as the machine's
    /// admin user (`core` on Fedora CoreOS): in the Ignition config's `passwd`. An overlay
    /// cannot set a file's owner, so the overlay does not carry them.
    pub ssh_authorized_keys: Vec<String>,
    /// Files the machine downloads at first boot, pinned by SHA-256 (Ignition only: see
    /// [`RemoteFile`]).
    pub remote_files: Vec<RemoteFile>,
}

impl NodeBundle {
    /// An empty bundle.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            files: Vec::new(),
            units: Vec::new(),
            ssh_authorized_keys: Vec::new(),
            remote_files: Vec::new(),
        }
    }

    /// A file by absolute path.
    pub fn file(&self, path: &str) -> Option<&NodeFile> {
        self.files.iter().find(|f| f.path == path)
    }

    /// A unit by name.
    pub fn unit(&self, name: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.name == name)
    }

    /// Every path the bundle writes on the machine, unit files and downloads included, sorted.
    pub fn paths(&self) -> Vec<String> {
        let mut p: Vec<String> = self.files.iter().map(|f| f.path.clone()).collect();
        p.extend(self.remote_files.iter().map(|f| f.path.clone()));
        p.extend(
            self.units
                .iter()
                .filter(|u| u.contents().is_some())
                .map(|u| format!("{UNIT_DIR}/{}", u.name)),
        );
        p.sort();
        p
    }

    /// The overlay's root: `<out>/nodes/<name>`.
    pub fn root(&self, out: &Path) -> PathBuf {
        out.join("nodes").join(&self.name)
    }

    /// The bundle as one Ignition v3 config ([`crate::ignition::build`]). It holds the node's
    /// private keys: store it like one.
    pub fn to_ignition(&self) -> String {
        crate::ignition::from_bundle(self)
    }

    /// Writes the overlay under `out/nodes/<name>/` and the Ignition config to
    /// `out/nodes/<name>.ign` (0600: it holds keys), leaving identical files untouched.
    /// Enabled units get their `<target>.wants/` symlink, masked units their link to
    /// `/dev/null`, as `systemctl enable`/`mask` would make them.
    ///
    /// Copy the overlay onto `/` of the machine (`cp -a` or `rsync -a`, keeping links and
    /// modes), then `systemctl daemon-reload` and start the units, or reboot.
    pub fn write(&self, out: &Path, report: &mut WriteReport) -> Result<(), Error> {
        let mut w = BatchWriter::new(out);
        w.bundle(self)?;
        let r = w.finish()?;
        report.merge(r);
        Ok(())
    }
}

/// What writing changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteReport {
    /// Files and links written (new or changed), relative to the output root.
    pub written: Vec<PathBuf>,
    /// Files and links already right.
    pub unchanged: usize,
    /// Files removed (e.g. the client configurations of removed VPN peers), relative to the
    /// output root.
    pub removed: Vec<PathBuf>,
}

impl WriteReport {
    /// Adds `other`'s counts and paths to this report.
    pub fn merge(&mut self, other: WriteReport) {
        self.written.extend(other.written);
        self.unchanged += other.unchanged;
        self.removed.extend(other.removed);
    }
}

/// Files queued to be written together by [`write_batch`]: one durable batch for a whole
/// rendering instead of one sync per file.
#[derive(Debug)]
pub struct BatchWriter<'a> {
    out: &'a Path,
    report: WriteReport,
    pending: Vec<(PathBuf, Zeroizing<Vec<u8>>, u32)>,
}

impl<'a> BatchWriter<'a> {
    /// A writer of files under `out`.
    pub fn new(out: &'a Path) -> Self {
        Self {
            out,
            report: WriteReport::default(),
            pending: Vec::new(),
        }
    }

    /// Queues `contents` for `out/rel` unless the file already holds exactly that with `mode`.
    pub fn file(&mut self, rel: &Path, contents: &[u8], mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        let full = self.out.join(rel);
        let same_mode =
            std::fs::metadata(&full).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
        if same_mode && std::fs::read(&full).is_ok_and(|old| old == contents) {
            self.report.unchanged += 1;
            return;
        }
        self.pending
            .push((full, Zeroizing::new(contents.to_vec()), mode));
        self.report.written.push(rel.to_owned());
    }

    /// Queues a node's overlay and Ignition config; makes its unit links now.
    pub fn bundle(&mut self, b: &NodeBundle) -> Result<(), Error> {
        let root = Path::new("nodes").join(&b.name);
        for f in &b.files {
            self.file(
                &root.join(f.path.trim_start_matches('/')),
                &f.contents,
                f.mode,
            );
        }
        let system = root.join(UNIT_DIR.trim_start_matches('/'));
        for u in &b.units {
            if let Some(c) = u.contents() {
                self.file(&system.join(&u.name), c.as_bytes(), PUBLIC_MODE);
            }
            if let Some((link, target)) = u.link() {
                self.link(&system.join(link), Path::new(&target))?;
            }
        }
        let ign = b.to_ignition();
        self.file(
            &Path::new("nodes").join(format!("{}.ign", b.name)),
            ign.as_bytes(),
            SECRET_MODE,
        );
        Ok(())
    }

    /// Makes `out/rel` a symlink to `target` unless it is one already.
    fn link(&mut self, rel: &Path, target: &Path) -> Result<(), Error> {
        let link = self.out.join(rel);
        if std::fs::read_link(&link).ok().as_deref() == Some(target) {
            self.report.unchanged += 1;
            return Ok(());
        }
        let parent = link.parent().unwrap_or(self.out);
        crate::fs::create_dir_for(parent)?;
        match std::fs::remove_file(&link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(Error::Write { path: link, source }),
        }
        std::os::unix::fs::symlink(target, &link)
            .map_err(|source| Error::Write { path: link, source })?;
        self.report.written.push(rel.to_owned());
        Ok(())
    }

    /// Writes the queued files, each atomically, with one durable batch; their contents (some
    /// are keys) are zeroized afterwards.
    pub fn finish(self) -> Result<WriteReport, Error> {
        let batch: Vec<(PathBuf, &[u8], u32)> = self
            .pending
            .iter()
            .map(|(p, c, m)| (p.clone(), c.as_slice(), *m))
            .collect();
        write_batch(&batch)?;
        Ok(self.report)
    }
}

/// Writes several bundles and loose files (`rel` to `out`) in one durable batch.
pub fn write_bundles<'b>(
    out: &Path,
    files: impl IntoIterator<Item = (&'b Path, &'b NodeFile)>,
    bundles: impl IntoIterator<Item = &'b NodeBundle>,
) -> Result<WriteReport, Error> {
    let mut w = BatchWriter::new(out);
    for (rel, f) in files {
        w.file(rel, &f.contents, f.mode);
    }
    for b in bundles {
        w.bundle(b)?;
    }
    w.finish()
}
