//! Progress: the steps of an operation and the one event type every backend reports through.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A step of an operation, in `up`'s order; each waits for the one before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Phase {
    /// Generate or complete the PKI.
    Pki,
    /// Render the node bundles.
    Render,
    /// Check what can be checked before anything is created.
    Preflight,
    /// Create what must exist before the first unit (a network, a share).
    Provision,
    /// Start the etcd members.
    Etcd,
    /// Gate: every member started, every endpoint answering, a probe key written and read.
    EtcdHealthy,
    /// Start the apiservers.
    ApiServer,
    /// Gate: every apiserver's `/readyz` answers `ok`.
    ApiServerReady,
    /// The day-one objects applied (RBAC, `cluster-info`, kubeadm's config maps, CoreDNS,
    /// kube-proxy, the CNI manifest if any).
    DayOne,
    /// Start the controller-managers and schedulers.
    Controllers,
    /// Gate: the controller-manager's and scheduler's leader leases are held.
    Leases,
    /// Start other units (machines, workers).
    Units,
    /// Gate: every unit of the wave runs.
    UnitsRunning,
    /// What needs every unit (a load balancer's targets).
    Complete,
    /// Stop the units (`pause`).
    Stop,
    /// A snapshot of etcd.
    Snapshot,
    /// Rebuild etcd's members from a snapshot.
    Restore,
    /// Delete everything (`down`).
    Teardown,
    /// Read what exists and check its health (`status`).
    Status,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Pki => "pki",
            Phase::Render => "render",
            Phase::Preflight => "preflight",
            Phase::Provision => "provision",
            Phase::Etcd => "etcd",
            Phase::EtcdHealthy => "etcd healthy",
            Phase::ApiServer => "apiserver",
            Phase::ApiServerReady => "apiserver /readyz",
            Phase::DayOne => "day-one objects",
            Phase::Controllers => "controller-manager and scheduler",
            Phase::Leases => "leader leases",
            Phase::Units => "units",
            Phase::UnitsRunning => "units running",
            Phase::Complete => "complete",
            Phase::Stop => "stop",
            Phase::Snapshot => "snapshot",
            Phase::Restore => "restore",
            Phase::Teardown => "teardown",
            Phase::Status => "status",
        })
    }
}

/// Progress of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A phase began.
    Started(Phase),
    /// A phase finished.
    Done(Phase, Duration),
    /// A gate is waiting; what it saw last.
    Waiting(Phase, String),
    /// What the platform did (created, found, deleted a resource; retried).
    Platform(Phase, frankenetes_compute::Progress),
    /// Something the user should know (missing binaries, stale certificates, an older
    /// snapshot used).
    Warning(String),
    /// Plain information.
    Info(String),
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started(p) => write!(f, "==> {p}"),
            Event::Done(p, d) => write!(f, "✓ {p} ({d:.1?})"),
            Event::Waiting(p, what) => write!(f, "    {p}: waiting: {what}"),
            Event::Platform(_, p) => write!(f, "    {p}"),
            Event::Warning(w) => write!(f, "warning: {w}"),
            Event::Info(i) => write!(f, "    {i}"),
        }
    }
}
