//! The frankenetes deployment API: one [`Cluster`] type that runs `plan`, `up`, `status`,
//! `down`, `pause`, `resume`, `snapshot` and `restore` on any [`Platform`] — local processes
//! ([`LocalPlatform`], here), Azure Container Instances (`frankenetes-cloud-azure`), the AWS
//! lab (`frankenetes-cloud-aws`), or your own.
//!
//! ```no_run
//! use frankenetes_bootstrap::{Cluster, LocalPlatform, Options};
//! use frankenetes_spec::ClusterSpec;
//!
//! # async fn run() -> Result<(), frankenetes_bootstrap::Error> {
//! let spec = ClusterSpec::example();
//! let dir = std::path::PathBuf::from(".frankenetes/kubelius");
//! let cluster = Cluster::new(spec, LocalPlatform::new(&dir), Options::new(&dir));
//! let report = cluster.up().await?;            // etcd healthy; apiservers too if binaries exist
//! println!("{}", cluster.status().await?.table());
//! cluster.down(Default::default()).await?;     // every process stopped by PID
//! # let _ = report; Ok(()) }
//! ```
//!
//! One prepare step serves every platform: the PKI is made or completed (never replaced), the
//! node bundles rendered once and written, the gateway's bundle rendered, and all of it handed
//! to the platform as a backend-neutral [`Workload`](frankenetes_compute::Workload). Then the
//! platform's waves start in order, each behind its gate (etcd healthy, every `/readyz`, the
//! leader leases; checked from here when the cluster is reachable). Every step is idempotent,
//! so a second `up` converges, and an interrupted one leaves what `up` resumes and `down`
//! removes. One lock per cluster directory keeps two commands from interleaving. Progress is
//! reported as [`Event`]s.

#![deny(missing_docs)]

mod cluster;
pub mod dayone;
pub mod etcd;
mod events;
pub mod fetch;
mod gates;
mod https;
pub mod local;
mod prepare;
pub mod snapshots;

use std::path::PathBuf;
use std::sync::Once;

pub use cluster::{
    BACKUP_UNIT, BackupReport, BackupStatus, Cluster, DownOptions, DownReport, Health, Options,
    PauseReport, Restart, ResumeOptions, StatusReport, StatusRow, UpReport,
};
pub use events::{Event, Phase};
pub use frankenetes_bundle::lock::LockError;
pub use frankenetes_compute::{ComputeBackend, Platform};
pub use local::{LocalBackend, LocalPlatform};
pub use prepare::Prepared;

/// Errors of the deployment API; each names the phase, unit or file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The spec cannot be run here (bad input).
    #[error("{0}")]
    Spec(String),
    /// A binary the cluster needs is missing (bad input: install it or point at it).
    #[error("`{binary}` was not found{where_}; {hint}")]
    MissingBinary {
        /// The binary.
        binary: String,
        /// Where it was looked for.
        where_: String,
        /// How to get it.
        hint: String,
    },
    /// Another command holds the cluster directory's lock.
    #[error(transparent)]
    Busy(#[from] LockError),
    /// The PKI could not be completed.
    #[error(transparent)]
    Pki(#[from] frankenetes_pki::Error),
    /// The bundles could not be rendered.
    #[error(transparent)]
    Render(#[from] frankenetes_manifests::Error),
    /// The gateway's bundle could not be rendered.
    #[error(transparent)]
    Gateway(#[from] frankenetes_netgw::Error),
    /// The platform failed.
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
        /// The last thing seen, and where to look (the units' logs and their last lines).
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
    /// A snapshot cannot be used, or none can.
    #[error(transparent)]
    Snapshot(#[from] snapshots::SnapshotError),
    /// The cluster has nothing to act on (never brought up, or removed).
    #[error("cluster {cluster} has no units on {backend}: {hint}")]
    NotUp {
        /// The cluster's name.
        cluster: String,
        /// The platform.
        backend: String,
        /// What to do.
        hint: String,
    },
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

impl Error {
    /// Whether the user must change what they gave (the spec, an argument, a binary): the CLI
    /// exits 2 for these, 1 for the rest.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::Spec(_) | Error::MissingBinary { .. } => true,
            Error::Pki(e) => e.is_bad_input(),
            Error::Render(e) => e.is_bad_input(),
            Error::Gateway(e) => e.is_bad_input(),
            Error::Backend { source, .. } => matches!(
                source.kind,
                frankenetes_compute::BackendErrorKind::Invalid
                    | frankenetes_compute::BackendErrorKind::Unsupported
            ),
            Error::DayOne(e) => matches!(e, dayone::Error::Invalid(_)),
            Error::Snapshot(e) => e.is_bad_input(),
            _ => false,
        }
    }
}

impl From<frankenetes_bundle::Error> for Error {
    fn from(e: frankenetes_bundle::Error) -> Self {
        use frankenetes_bundle::Error as B;
        match e {
            B::Write { path, source } | B::Read { path, source } => Error::Io { path, source },
            other => Error::Spec(other.to_string()),
        }
    }
}

/// rustls needs one process-wide crypto provider when several are compiled in.
pub(crate) fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}
