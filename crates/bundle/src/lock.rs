//! One lock per directory, so that two commands never write one cluster's files at once: an
//! exclusive `flock` on `<dir>/.lock`, which the kernel releases when the process ends (also
//! when it is killed), holding the PID and the command of its holder for the message the
//! next one gets.
//!
//! ```
//! use frankenetes_bundle::lock::DirLock;
//!
//! let dir = tempfile::tempdir()?;
//! let held = DirLock::acquire(dir.path(), "up", None)?;
//! let busy = DirLock::acquire(dir.path(), "down", None).unwrap_err();
//! assert!(busy.to_string().contains("busy"), "{busy}");
//! drop(held);
//! DirLock::acquire(dir.path(), "down", None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// The lock file's name inside the locked directory.
pub const LOCK_FILE: &str = ".lock";

/// Why a lock was not taken.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "{} is busy: {holder} holds its lock; wait for it to finish (or stop it), or pass --lock-timeout to wait",
        .dir.display()
    )]
    Busy {
        /// The directory.
        dir: PathBuf,
        /// Who holds it (`PID 4242 (frankenetes up)`), as it wrote itself into the lock.
        holder: String,
        /// The holder's PID, when it could be read.
        pid: Option<i32>,
    },
    /// The lock file could not be opened or locked.
    #[error("cannot lock {}", .path.display())]
    Io {
        /// The lock file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A held lock on a directory; released when dropped (or when the process ends).
#[derive(Debug)]
pub struct DirLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl DirLock {
    /// Locks `dir` (created if missing, 0700) for `command`. With `wait`, retries until it is
    /// free or `wait` has passed; without, fails at once when another process holds it.
    pub fn acquire(dir: &Path, command: &str, wait: Option<Duration>) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source: std::io::Error| LockError::Io {
            path: path.clone(),
            source,
        };
        if !dir.exists() {
            crate::fs::ensure_private_dir(dir).map_err(|e| io(std::io::Error::other(e)))?;
        }
        let deadline = wait.map(|w| Instant::now() + w);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(io)?;
        loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(mut lock) => {
                    let me = format!("PID {} (frankenetes {command})\n", std::process::id());
                    lock.set_len(0).map_err(io)?;
                    lock.rewind().map_err(io)?;
                    lock.write_all(me.as_bytes()).map_err(io)?;
                    return Ok(Self { _lock: lock, path });
                }
                Err((f, nix::errno::Errno::EWOULDBLOCK)) => {
                    file = f;
                    if deadline.is_some_and(|d| Instant::now() < d) {
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                    // The holder writes its name just after it takes the lock: give it a
                    // moment rather than report an anonymous holder.
                    let mut holder = String::new();
                    let mut pid = None;
                    for _ in 0..20 {
                        holder.clear();
                        let _ = file.rewind();
                        let _ = file.read_to_string(&mut holder);
                        pid = holder
                            .trim()
                            .strip_prefix("PID ")
                            .and_then(|r| r.split_whitespace().next())
                            .and_then(|p| p.parse().ok());
                        if pid.is_some() && holder.ends_with('\n') {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    let holder = holder.trim().to_owned();
                    return Err(LockError::Busy {
                        dir: dir.to_owned(),
                        holder: if holder.is_empty() {
                            "another process".into()
                        } else {
                            holder
                        },
                        pid,
                    });
                }
                Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
            }
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_names_the_holder_and_waiting_gets_it_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path(), "up", None).unwrap();
        match DirLock::acquire(dir.path(), "pki", None).unwrap_err() {
            LockError::Busy { holder, pid, .. } => {
                assert_eq!(pid, Some(std::process::id() as i32));
                assert!(holder.contains("frankenetes up"), "{holder}");
            }
            e => panic!("{e}"),
        }
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(held);
        });
        let got = DirLock::acquire(dir.path(), "down", Some(Duration::from_secs(10)));
        t.join().unwrap();
        assert!(got.is_ok());
    }
}
