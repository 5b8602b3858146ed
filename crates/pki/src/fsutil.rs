//! Files: atomic writes with the right mode, reads that name the file on error. Other
//! frankenetes crates write their files through these too.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::Error;

/// Mode of private keys.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of everything else.
pub const PUBLIC_MODE: u32 = 0o644;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` through a temporary file in the same directory and a rename,
/// so a reader sees the old file or the new one, never half of one. The temporary file is
/// created with `mode` already set: a key is never readable by others, not even briefly.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let err = |source: io::Error| Error::Write {
        path: path.to_owned(),
        source,
    };
    let (tmp, mut f) = create_temp(path, mode).map_err(err)?;
    let result = (|| {
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Creates the temporary file `path` is written through: in the same directory (created if
/// needed, so the rename stays on one filesystem), a name no other writer uses, and `mode` set
/// at creation and again exactly (the umask may have cleared bits).
fn create_temp(path: &Path, mode: u32) -> io::Result<(PathBuf, fs::File)> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    if let Err(e) = f.set_permissions(fs::Permissions::from_mode(mode)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok((tmp, f))
}

/// Writes many files, each atomically (temporary file + rename, mode set at creation), and
/// makes exactly those files durable, not the whole filesystem: a bundle of a hundred nodes is
/// thousands of files, and a `syncfs` would also wait for every other process's dirty pages.
///
/// The order: write every temporary file; start write-back of all of them at once
/// (`sync_file_range`, so block allocation and the journal commit are shared); `fdatasync` each
/// (the first waits for the shared commit, the rest find their data already on disk); rename;
/// `fsync` each directory touched, so the renames are durable. After a crash a file is either
/// the old one or the complete new one.
pub fn write_batch(files: &[(PathBuf, &[u8], u32)]) -> Result<(), Error> {
    let mut temps: Vec<(PathBuf, fs::File, &Path)> = Vec::with_capacity(files.len());
    let result = (|| {
        for (path, contents, mode) in files {
            let err = |source: io::Error| Error::Write {
                path: path.clone(),
                source,
            };
            let (tmp, mut f) = create_temp(path, *mode).map_err(err)?;
            temps.push((tmp, f.try_clone().map_err(err)?, path.as_path()));
            f.write_all(contents).map_err(err)?;
        }
        for (_, f, _) in &temps {
            start_writeback(f);
        }
        for (_, f, path) in &temps {
            f.sync_data().map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?;
        }
        for (tmp, _, path) in &temps {
            fs::rename(tmp, path).map_err(|source| Error::Write {
                path: path.to_path_buf(),
                source,
            })?;
        }
        sync_dirs(temps.iter().map(|(_, _, path)| *path))
    })();
    if result.is_err() {
        for (tmp, _, _) in &temps {
            let _ = fs::remove_file(tmp);
        }
    }
    result
}

/// Asks the kernel to start writing `f`'s pages now, without waiting: on Linux,
/// `POSIX_FADV_DONTNEED` starts write-back of the dirty pages (the safe stand-in for
/// `sync_file_range(SYNC_FILE_RANGE_WRITE)`, which no safe binding offers). Only a hint: the
/// `fdatasync` after it is what makes the data durable, so where it does nothing, nothing is
/// lost but time.
fn start_writeback(f: &fs::File) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        use nix::fcntl::{PosixFadviseAdvice, posix_fadvise};
        let _ = posix_fadvise(f, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = f;
}

/// `fsync` on each distinct parent directory of `paths`, so renames into them survive a crash.
fn sync_dirs<'a>(paths: impl Iterator<Item = &'a Path>) -> Result<(), Error> {
    let mut done: Vec<&Path> = Vec::new();
    for path in paths {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if done.contains(&dir) {
            continue;
        }
        let err = |source: io::Error| Error::Write {
            path: dir.to_owned(),
            source,
        };
        fs::File::open(dir).map_err(err)?.sync_all().map_err(err)?;
        done.push(dir);
    }
    Ok(())
}

/// Reads a UTF-8 file; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::Corrupt {
                path: path.to_owned(),
                reason: "not a text (PEM) file".into(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `base` with an extension appended (`etcd/ca` → `etcd/ca.crt`), keeping dots in the name.
pub fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}
