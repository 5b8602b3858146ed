//! File helpers of this crate: [`frankenetes_bundle::fs`] with this crate's errors.

use std::path::Path;

pub(crate) use frankenetes_bundle::fs::SECRET_MODE;
use zeroize::Zeroizing;

use crate::Error;

impl From<frankenetes_bundle::Error> for Error {
    fn from(e: frankenetes_bundle::Error) -> Self {
        use frankenetes_bundle::Error as B;
        match e {
            B::Write { path, source } => Error::Write { path, source },
            B::Read { path, source } => Error::Read { path, source },
            other => Error::Write {
                path: std::path::PathBuf::new(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// [`frankenetes_bundle::fs::write_if_changed`].
pub(crate) fn write_if_changed(path: &Path, contents: &[u8], mode: u32) -> Result<bool, Error> {
    Ok(frankenetes_bundle::fs::write_if_changed(
        path, contents, mode,
    )?)
}

/// [`frankenetes_bundle::fs::read_optional`].
pub(crate) fn read_optional(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>, Error> {
    Ok(frankenetes_bundle::fs::read_optional(path)?)
}
