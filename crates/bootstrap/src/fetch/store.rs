//! The cache directory on disk: temporary files moved into place, checksum records, the
//! directory lock, the clean-up of a killed run's leftovers.

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{Error, io_err};

/// A temporary file in the cache directory, removed on drop unless persisted.
pub(super) struct TempFile {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    pending: Vec<u8>,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);
const TEMP_MARK: &str = ".tmp-";

impl TempFile {
    pub(super) fn create(dir: &Path, name: &str) -> Result<TempFile, Error> {
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}{TEMP_MARK}{}-{n}", std::process::id()));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(TempFile {
            path,
            file: Some(tokio::fs::File::from_std(file)),
            pending: Vec::new(),
        })
    }

    /// Buffers a chunk; the buffer is written out in 1 MiB pieces.
    pub(super) async fn write(&mut self, chunk: &[u8]) -> Result<(), Error> {
        self.pending.extend_from_slice(chunk);
        if self.pending.len() >= 1 << 20 {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), Error> {
        if let Some(f) = &mut self.file {
            f.write_all(&self.pending)
                .await
                .map_err(io_err(&self.path))?;
            self.pending.clear();
        }
        Ok(())
    }

    /// Writes out, fsyncs, makes it 0755 and renames it to `to`.
    pub(super) async fn persist(mut self, to: &Path) -> Result<(), Error> {
        self.flush().await?;
        if let Some(mut f) = self.file.take() {
            f.flush().await.map_err(io_err(&self.path))?;
            f.sync_all().await.map_err(io_err(&self.path))?;
        }
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o755))
            .map_err(io_err(&self.path))?;
        std::fs::rename(&self.path, to).map_err(io_err(to))?;
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `dir/name` through a fsynced temporary file and a rename (0644).
pub(super) fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), Error> {
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}{TEMP_MARK}{}-{n}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, dir.join(name))
    })();
    result.map_err(|source| {
        let _ = std::fs::remove_file(&tmp);
        Error::Io { path: tmp, source }
    })
}

pub(super) fn sync_dir(dir: &Path) -> Result<(), Error> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

/// An exclusive lock on `dir/.lock`, held while the returned file lives; waits for another
/// `fetch` working in the same directory to finish.
pub(super) async fn lock_dir(dir: &Path) -> Result<std::fs::File, Error> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o644)
        .open(&path)
        .map_err(io_err(&path))?;
    let mut waited = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {
                if !waited {
                    tracing::info!("waiting for another fetch working in {}", dir.display());
                    waited = true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(std::fs::TryLockError::Error(source)) => return Err(Error::Io { path, source }),
        }
    }
}

/// Removes the temporary files a killed run left behind (under the directory's lock, so no
/// live download is touched).
pub(super) fn remove_stale_temps(dir: &Path) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name.contains(TEMP_MARK) {
            let path = entry.path();
            tracing::debug!("removing the stale temporary file {}", path.display());
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(Error::Io { path, source: e });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// The SHA-256 of the binary at `path` if it equals the one recorded in `<path>.sha256`.
pub(super) fn verified_entry(path: &Path) -> Result<Option<String>, Error> {
    let mut record_path = path.as_os_str().to_owned();
    record_path.push(".sha256");
    let record_path = PathBuf::from(record_path);
    let record = match std::fs::read_to_string(&record_path) {
        Ok(r) => r,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: record_path,
                source,
            });
        }
    };
    let Some(recorded) = parse_sha256(&record) else {
        return Ok(None);
    };
    let Some(actual) = sha256_file(path)? else {
        return Ok(None);
    };
    if actual == recorded {
        Ok(Some(actual))
    } else {
        tracing::warn!(
            "{} no longer matches its recorded SHA-256; it will be downloaded again",
            path.display()
        );
        Ok(None)
    }
}

/// The SHA-256 of a file, `None` if it does not exist.
fn sha256_file(path: &Path) -> Result<Option<String>, Error> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(Error::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io_err(path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(Some(hex(&hasher.finalize())))
}

/// The first word of a `sha256sum`-style line, if it is 64 hex digits (lowercased).
pub(super) fn parse_sha256(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    (word.len() == 64 && word.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| word.to_ascii_lowercase())
}

pub(super) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Runs blocking file work off the async threads.
pub(super) async fn blocking<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Io {
            path: path.to_owned(),
            source: std::io::Error::other(e.to_string()),
        })?
}
