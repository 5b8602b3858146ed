//! File helpers of this crate: the atomic, durable (batched) writes of [`frankenetes_bundle::fs`] with
//! this crate's errors, and PEM reads.

use std::path::{Path, PathBuf};

pub(crate) use frankenetes_bundle::fs::{PRIVATE_DIR_MODE, PUBLIC_MODE, SECRET_MODE};

use crate::Error;

impl From<frankenetes_bundle::Error> for Error {
    fn from(e: frankenetes_bundle::Error) -> Self {
        use frankenetes_bundle::Error as B;
        match e {
            B::Write { path, source } => Error::Write { path, source },
            B::Read { path, source } => Error::Read { path, source },
            B::NotText { path } => Error::Corrupt {
                path,
                reason: "not a text (PEM) file".into(),
            },
            other => Error::Write {
                path: PathBuf::new(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// [`frankenetes_bundle::fs::write_batch`].
pub(crate) fn write_batch(files: &[(PathBuf, &[u8], u32)]) -> Result<(), Error> {
    Ok(frankenetes_bundle::fs::write_batch(files)?)
}

/// [`frankenetes_bundle::fs::remove_stale_temps`] under `root`, paths relative to `root`.
pub(crate) fn remove_stale_temps(root: &Path) -> Result<Vec<PathBuf>, Error> {
    Ok(frankenetes_bundle::fs::remove_stale_temps(root)?
        .into_iter()
        .map(|p| p.strip_prefix(root).map(Path::to_owned).unwrap_or(p))
        .collect())
}

/// Reads a UTF-8 (PEM) file; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    Ok(frankenetes_bundle::fs::read_text_optional(path)?)
}

/// `base` with an extension appended (`etcd/ca` → `etcd/ca.crt`), keeping dots in the name.
pub(crate) fn with_ext(base: &Path, ext: &str) -> PathBuf {
    let mut s = base.as_os_str().to_owned();
    s.push(".");
    s.push(ext);
    PathBuf::from(s)
}
