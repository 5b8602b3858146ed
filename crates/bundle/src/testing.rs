//! Test support (feature `testing`): a scratch root as Fedora CoreOS has it before Ignition
//! runs, for tests that apply a rendered config with the real Ignition engine (Debian's
//! `ignition`, `-platform file`). Not stable API.
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let scratch = frankenetes_bundle::testing::ScratchRoot::create(dir.path())?;
//! assert!(scratch.root.join("etc/passwd").is_file());
//! assert!(scratch.bin.join("setfiles").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::Error;

/// `core`'s uid and gid (Fedora CoreOS's).
pub const CORE_UID: u32 = 1000;

/// A root the engine's `files` stage accepts, and a directory to put first on the engine's
/// `PATH`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ScratchRoot {
    /// `dir/root`: `etc/passwd`, `group`, `shadow` and `gshadow` with `root` and `core`
    /// (uid and gid [`CORE_UID`]), `core`'s home `var/home/core` (its own, mode 0700), and
    /// `etc/selinux/config` with `SELINUXTYPE=targeted`.
    pub root: PathBuf,
    /// `dir/bin`: a no-op `setfiles`, standing in for the engine's SELinux relabelling.
    pub bin: PathBuf,
}

impl ScratchRoot {
    /// Lays out `dir/root` and `dir/bin`. Gives `core`'s home to `core`, so it needs root.
    pub fn create(dir: &Path) -> Result<Self, Error> {
        let root = dir.join("root");
        for (rel, text) in [
            (
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/bash\ncore:x:1000:1000:CoreOS Admin:/var/home/core:/bin/bash\n",
            ),
            ("etc/group", "root:x:0:\ncore:x:1000:\n"),
            (
                "etc/shadow",
                "root:*:19000:0:99999:7:::\ncore:*:19000:0:99999:7:::\n",
            ),
            ("etc/gshadow", "root:*::\ncore:!::\n"),
            (
                "etc/selinux/config",
                "SELINUX=enforcing\nSELINUXTYPE=targeted\n",
            ),
        ] {
            write(&root.join(rel), text, 0o644)?;
        }
        let home = root.join("var/home/core");
        let home_err = |source| Error::Write {
            path: home.clone(),
            source,
        };
        std::fs::create_dir_all(&home).map_err(home_err)?;
        std::os::unix::fs::chown(&home, Some(CORE_UID), Some(CORE_UID)).map_err(home_err)?;
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700))
            .map_err(home_err)?;
        let bin = dir.join("bin");
        write(
            &bin.join("setfiles"),
            "#!/bin/sh\n# SELinux relabelling does not apply here.\nexit 0\n",
            0o755,
        )?;
        Ok(Self { root, bin })
    }
}

/// `root` + an absolute `path`, following the root's own symbolic links inside the root
/// (`/usr/local` → `../var/usrlocal` on Fedora CoreOS; an absolute link target is taken from
/// `root` too).
pub fn in_root(root: &Path, path: &str) -> PathBuf {
    let mut p = root.to_path_buf();
    for part in Path::new(path.trim_start_matches('/')).components() {
        p.push(part);
        if let Ok(target) = std::fs::read_link(&p) {
            p.pop();
            match target.strip_prefix("/") {
                Ok(inside) => p = root.join(inside),
                Err(_) => p.push(target),
            }
        }
    }
    p
}

/// Writes `text` to `path` (its directory made first) with `mode`.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), Error> {
    let err = |source| Error::Write {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(err)?;
    }
    std::fs::write(path, text).map_err(err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_root_follows_the_roots_own_links() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("var/usrlocal/bin")).unwrap();
        std::fs::create_dir_all(root.join("usr")).unwrap();
        std::os::unix::fs::symlink("../var/usrlocal", root.join("usr/local")).unwrap();
        std::os::unix::fs::symlink("/usr/bin", root.join("bin")).unwrap();
        assert_eq!(
            in_root(root, "/usr/local/bin/kubelet"),
            root.join("usr/../var/usrlocal/bin/kubelet")
        );
        assert_eq!(in_root(root, "/bin/sh"), root.join("usr/bin/sh"));
        assert_eq!(in_root(root, "/etc/hosts"), root.join("etc/hosts"));
    }
}
