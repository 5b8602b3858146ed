//! Files: atomic writes with the right mode from the start, reads that name the file.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use zeroize::Zeroizing;

use crate::Error;

/// Mode of files that hold keys.
pub const SECRET_MODE: u32 = 0o600;
/// Mode of everything else.
pub const PUBLIC_MODE: u32 = 0o644;

/// Writes `contents` to `path` through a temporary file created with `mode` and a rename:
/// [`frankenetes_pki::fsutil::write_atomic`], with this crate's error.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), Error> {
    frankenetes_pki::fsutil::write_atomic(path, contents, mode).map_err(|e| match e {
        frankenetes_pki::Error::Write { path, source } => Error::Write { path, source },
        other => Error::Write {
            path: path.to_owned(),
            source: io::Error::other(other.to_string()),
        },
    })
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
