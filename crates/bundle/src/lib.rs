//! Node bundles: everything one machine gets — files with their modes and systemd units — as
//! plain data, written as a root-filesystem overlay (`nodes/<name>/...`, with the `.wants/`
//! links `systemctl enable` would make) and as one Ignition v3 config (`nodes/<name>.ign`).
//! Also the file writes every frankenetes crate uses: atomic (temporary file + rename, the mode
//! set at creation, whatever the umask), durable (`fdatasync` + directory `fsync`), batched.
//!
//! ```
//! use frankenetes_bundle::{NodeBundle, NodeFile, WriteReport, fs::SECRET_MODE, systemd::Unit};
//!
//! let mut node = NodeBundle::new("gateway");
//! node.files.push(NodeFile::new("/etc/wireguard/wg0.conf", "[Interface]\n", SECRET_MODE));
//! node.units.push(Unit::shipped("wg-quick@wg0.service", "multi-user.target"));
//! let out = tempfile::tempdir()?;
//! let mut report = WriteReport::default();
//! node.write(out.path(), &mut report)?;
//! assert!(out.path().join("nodes/gateway/etc/wireguard/wg0.conf").is_file());
//! assert!(out.path().join("nodes/gateway.ign").is_file());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! No network, no async runtime; Unix only (modes, symlinks, `fsync` of directories).

#![deny(missing_docs)]

pub mod fs;
pub mod ignition;
pub mod layout;
pub mod lock;
mod node;
pub mod systemd;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;

pub use layout::OutputLayout;
pub use node::{BatchWriter, NodeBundle, NodeFile, RemoteFile, WriteReport, write_bundles};

/// Errors of this crate: each names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file or directory could not be written.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file that must be text is not UTF-8.
    #[error("{} is not a text file (not UTF-8)", .path.display())]
    NotText {
        /// The file.
        path: PathBuf,
    },
    /// A value cannot be written in the format it goes into (a systemd unit line, a path).
    #[error("{what}: {reason}")]
    Invalid {
        /// What was being written (`kubelet.service: ExecStart`).
        what: String,
        /// Why it cannot be.
        reason: String,
    },
}
