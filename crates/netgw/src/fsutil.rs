//! Files: atomic writes with the right mode from the start, reads that name the file.

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::Error;

/// Mode of files that hold keys.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of everything else.
pub const PUBLIC_MODE: u32 = 0o644;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `contents` to `path` through a temporary file in the same directory and a rename, so
/// a reader sees the old file or the new one, never half of one. The temporary file is created
/// with `mode` already set: a key is never readable by others, not even briefly. Parent
/// directories are created.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    let err = |source: io::Error| Error::Write {
        path: path.to_owned(),
        source,
    };
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(parent).map_err(err)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have cleared bits of `mode`; set it exactly.
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(contents)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// [`write_atomic`] unless `path` already holds exactly `contents` with `mode`. Returns whether
/// it wrote.
pub fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> Result<bool, Error> {
    let same_mode = fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same_mode && read_optional(path)?.is_some_and(|old| old.as_slice() == contents) {
        return Ok(false);
    }
    write_atomic(path, contents, mode)?;
    Ok(true)
}

/// Reads a file into memory that is zeroized when dropped; `Ok(None)` when it does not exist.
pub fn read_optional(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(Zeroizing::new(bytes))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_sets_mode_and_skips_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/key");
        assert!(write_if_changed(&p, b"secret", SECRET_MODE).unwrap());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(!write_if_changed(&p, b"secret", SECRET_MODE).unwrap());
        assert!(write_if_changed(&p, b"secret", PUBLIC_MODE).unwrap());
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
        assert!(write_if_changed(&p, b"other", PUBLIC_MODE).unwrap());
        assert_eq!(fs::read(&p).unwrap(), b"other");
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(p.parent().unwrap()).unwrap().count(), 1);
    }
}
