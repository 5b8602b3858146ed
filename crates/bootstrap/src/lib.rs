//! The frankenetes sequencer: brings a control plane up in order — PKI, bundles, etcd, etcd
//! healthy, apiserver, `/readyz`, controller-manager and scheduler — with a health gate and a
//! timeout at each step, on any [`ComputeBackend`]; the local-process backend; etcd snapshot
//! and restore; pause and resume.
//!
//! ```no_run
//! use frankenetes_bootstrap::{Cluster, LocalBackend, Options};
//! use frankenetes_spec::ClusterSpec;
//!
//! # async fn run() -> Result<(), frankenetes_bootstrap::Error> {
//! let spec = ClusterSpec::example();
//! let dir = std::path::PathBuf::from(".frankenetes/kubelius");
//! let cluster = Cluster::new(spec, LocalBackend::new(dir.join("run")), Options::new(dir));
//! let report = cluster.up().await?;            // etcd healthy; apiservers too if binaries exist
//! println!("{}", cluster.status().await?.table());
//! cluster.down().await?;                        // every process stopped by PID
//! # let _ = report; Ok(()) }
//! ```
//!
//! Every phase is idempotent (the PKI is completed, not replaced; `create` adopts running
//! units), so a second `up` converges instead of starting over, and an interrupted `up`
//! leaves units that `up` resumes and `down` removes: the backend records each unit as soon as
//! it starts. Progress is reported as [`Event`]s.

#![deny(missing_docs)]

pub mod aci;
mod cluster;
pub mod dayone;
pub mod etcd;
pub mod fetch;
mod https;
pub mod local;

use std::path::PathBuf;
use std::sync::Once;

pub use cluster::{Cluster, ComponentStatus, Event, Options, Phase, StatusReport, UpReport};
pub use frankenetes_compute::ComputeBackend;
pub use local::LocalBackend;

/// Errors of the sequencer; each names the phase, unit or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec cannot be run here.
    #[error("{0}")]
    Spec(String),
    /// A binary the cluster needs is missing.
    #[error("`{binary}` was not found{where_}; {hint}")]
    MissingBinary {
        /// The binary.
        binary: String,
        /// Where it was looked for.
        where_: String,
        /// How to get it.
        hint: String,
    },
    /// The PKI could not be completed.
    #[error(transparent)]
    Pki(#[from] frankenetes_pki::Error),
    /// The bundles could not be rendered.
    #[error(transparent)]
    Render(#[from] frankenetes_manifests::Error),
    /// The backend failed.
    #[error("{phase}: {source}")]
    Backend {
        /// The phase.
        phase: Phase,
        /// The backend's error.
        #[source]
        source: frankenetes_compute::BackendError,
    },
    /// A health gate did not open in time.
    #[error("{phase}: not healthy after {seconds}s: {detail}")]
    Timeout {
        /// The phase.
        phase: Phase,
        /// How long it waited.
        seconds: u64,
        /// The last thing seen.
        detail: String,
    },
    /// etcd's API failed.
    #[error("etcd: {0}")]
    Etcd(String),
    /// An HTTPS health check failed.
    #[error("{0}")]
    Http(String),
    /// Applying the day-one objects (RBAC, addons) failed: the apiserver refused one, could not
    /// be reached, or a kubeconfig was unusable. Match on the inner error to tell which.
    #[error("day one: {0}")]
    DayOne(#[from] dayone::Error),
    /// A snapshot is unusable.
    #[error("snapshot: {0}")]
    Snapshot(String),
    /// A file could not be read or written.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// rustls needs one process-wide crypto provider when several are compiled in.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
