//! What the lab's operations report: progress [`Event`]s, the [`UpReport`], the
//! [`Inventory`] (what `down` would delete), the [`Audit`] and the [`Status`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

use frankenetes_compute::UnitState;

use super::model::{Kind, Resource};

/// What `up` and `down` report as they go, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A check before the first write passed (the AMI found, the key pair, the instance types).
    Checked(String),
    /// Something to know that does not stop the run.
    Warning(String),
    /// An existing resource was found by its tags and adopted.
    Found(Resource),
    /// A resource was created.
    Created(Resource),
    /// An existing resource was brought in line (rules added, a route set, an address
    /// associated).
    Changed {
        /// The resource.
        resource: Resource,
        /// What was done.
        change: String,
    },
    /// A resource was deleted.
    Deleted(Resource),
    /// Waiting for AWS (instances to run or terminate, a load balancer to go).
    Waiting(String),
    /// A call failed with a retryable error and is tried again.
    Retrying {
        /// What is retried.
        what: String,
        /// The attempt that failed (1 for the first).
        attempt: u32,
        /// Why it failed.
        error: String,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Checked(what) => write!(f, "checked {what}"),
            Event::Warning(what) => write!(f, "warning: {what}"),
            Event::Found(r) => write!(f, "found   {r}"),
            Event::Created(r) => write!(f, "created {r}"),
            Event::Changed { resource, change } => write!(f, "changed {resource}: {change}"),
            Event::Deleted(r) => write!(f, "deleted {r}"),
            Event::Waiting(w) => write!(f, "waiting for {w}"),
            Event::Retrying {
                what,
                attempt,
                error,
            } => write!(f, "retrying {what} (attempt {attempt}): {error}"),
        }
    }
}

/// The progress callback's type.
pub type OnEvent<'a> = &'a (dyn Fn(&Event) + Send + Sync);

/// What `up` did and where the lab can be reached.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpReport {
    /// Resources created by this run (empty on a converged lab).
    pub created: Vec<Resource>,
    /// Resources that existed and were adopted.
    pub found: Vec<Resource>,
    /// Existing resources brought in line, with what was done.
    pub changed: Vec<(Resource, String)>,
    /// The gateway's Elastic IP.
    pub gateway_public_ip: IpAddr,
    /// Where WireGuard clients dial: the Elastic IP and `spec.gateway.tunnel.listenPort` (the
    /// `Endpoint` of every peer config).
    pub wireguard_endpoint: SocketAddr,
    /// The internal NLB's DNS name.
    pub load_balancer_dns: Option<String>,
    /// Instance id of every machine, by unit name (the nodes and the gateway).
    pub instances: BTreeMap<String, String>,
    /// The AMI of each machine, by unit name.
    pub images: BTreeMap<String, String>,
}

/// Every resource in the region that carries the cluster's tag, in the order `down` deletes
/// them (waves: the resources of one wave are deleted concurrently). Read-only to make: show
/// it before `down` (a `--yes` prompt).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Inventory {
    /// The waves, first deleted first; empty waves are left out.
    pub waves: Vec<Vec<Resource>>,
}

impl Inventory {
    /// Every resource, in delete order.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.waves.iter().flatten()
    }

    /// How many resources.
    pub fn len(&self) -> usize {
        self.waves.iter().map(Vec::len).sum()
    }

    /// Whether nothing of the cluster exists.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Those of one kind.
    pub fn of(&self, kind: Kind) -> impl Iterator<Item = &Resource> {
        self.resources().filter(move |r| r.kind == kind)
    }
}

impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return writeln!(
                f,
                "nothing tagged with the cluster exists: nothing to delete"
            );
        }
        writeln!(
            f,
            "{} tagged resource(s), in the order `down` deletes them:",
            self.len()
        )?;
        for (i, wave) in self.waves.iter().enumerate() {
            for r in wave {
                writeln!(f, "  {:>2}. {r}", i + 1)?;
            }
        }
        Ok(())
    }
}

/// What is left of a cluster in the region: every resource still carrying its tag.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Audit {
    /// The leftovers; empty means nothing of the cluster exists (nothing is billed).
    pub leftovers: Vec<Resource>,
}

impl Audit {
    /// Whether nothing tagged with the cluster is left.
    pub fn is_clean(&self) -> bool {
        self.leftovers.is_empty()
    }
}

impl From<Inventory> for Audit {
    fn from(i: Inventory) -> Self {
        Audit {
            leftovers: i.waves.into_iter().flatten().collect(),
        }
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.leftovers.is_empty() {
            return writeln!(f, "no tagged resource left");
        }
        writeln!(f, "{} tagged resource(s) left:", self.leftovers.len())?;
        for r in &self.leftovers {
            writeln!(f, "  {r}")?;
        }
        Ok(())
    }
}

/// Where a resource of the lab is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceState {
    /// The spec wants it and it does not exist: `up` creates it.
    Missing,
    /// It exists.
    Present,
    /// A machine, and where it is in its life.
    Machine(UnitState),
    /// It carries the cluster's tag but the spec no longer wants it (a node removed from the
    /// spec): `down` deletes it, `up` leaves it.
    Stray,
}

impl fmt::Display for ResourceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceState::Missing => f.write_str("missing"),
            ResourceState::Present => f.write_str("present"),
            ResourceState::Machine(s) => write!(f, "{s}"),
            ResourceState::Stray => f.write_str("stray"),
        }
    }
}

/// One resource's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResourceStatus {
    /// Its kind.
    pub kind: Kind,
    /// Its role.
    pub role: String,
    /// Its id, when it exists.
    pub id: Option<String>,
    /// Its state.
    pub state: ResourceState,
}

/// What exists of the lab: every resource the spec wants, with its state, and the strays.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Status {
    /// The cluster.
    pub cluster: String,
    /// Every resource, in the plan's order, strays last.
    pub resources: Vec<ResourceStatus>,
}

impl Status {
    /// How many wanted resources are missing (what `up` would create).
    pub fn to_create(&self) -> usize {
        self.count(|s| s == ResourceState::Missing)
    }

    /// Whether every wanted resource exists and every machine runs.
    pub fn is_up(&self) -> bool {
        self.resources.iter().all(|r| {
            matches!(
                r.state,
                ResourceState::Present
                    | ResourceState::Stray
                    | ResourceState::Machine(UnitState::Running)
            )
        })
    }

    /// Whether nothing of the lab exists.
    pub fn is_absent(&self) -> bool {
        self.resources
            .iter()
            .all(|r| r.state == ResourceState::Missing)
    }

    fn count(&self, f: impl Fn(ResourceState) -> bool) -> usize {
        self.resources.iter().filter(|r| f(r.state)).count()
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let wanted = self.count(|s| s != ResourceState::Stray);
        writeln!(
            f,
            "AWS lab of cluster {}: {} of {wanted} resources exist, {} to create, {} stray",
            self.cluster,
            wanted - self.to_create(),
            self.to_create(),
            self.count(|s| s == ResourceState::Stray)
        )?;
        let w_kind = self
            .resources
            .iter()
            .map(|r| r.kind.name().len())
            .max()
            .unwrap_or(4);
        let w_role = self
            .resources
            .iter()
            .map(|r| r.role.len())
            .max()
            .unwrap_or(4);
        for r in &self.resources {
            writeln!(
                f,
                "  {:<9} {:<w_kind$} {:<w_role$} {}",
                r.state.to_string(),
                r.kind.name(),
                r.role,
                r.id.as_deref().unwrap_or("-")
            )?;
        }
        Ok(())
    }
}

/// Collects what `up` found, created and changed, and forwards each event.
pub(crate) struct Recorder<'a> {
    pub on: OnEvent<'a>,
    created: Mutex<Vec<Resource>>,
    found: Mutex<Vec<Resource>>,
    changed: Mutex<Vec<(Resource, String)>>,
}

impl<'a> Recorder<'a> {
    pub(crate) fn new(on: OnEvent<'a>) -> Self {
        Self {
            on,
            created: Mutex::new(Vec::new()),
            found: Mutex::new(Vec::new()),
            changed: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn found(&self, r: Resource) {
        (self.on)(&Event::Found(r.clone()));
        if let Ok(mut v) = self.found.lock() {
            v.push(r);
        }
    }

    pub(crate) fn created(&self, r: Resource) {
        (self.on)(&Event::Created(r.clone()));
        if let Ok(mut v) = self.created.lock() {
            v.push(r);
        }
    }

    /// `r` found (`existed`) or created.
    pub(crate) fn got(&self, r: Resource, existed: bool) {
        if existed {
            self.found(r)
        } else {
            self.created(r)
        }
    }

    pub(crate) fn changed(&self, resource: Resource, change: impl Into<String>) {
        let change = change.into();
        (self.on)(&Event::Changed {
            resource: resource.clone(),
            change: change.clone(),
        });
        if let Ok(mut v) = self.changed.lock() {
            v.push((resource, change));
        }
    }

    /// What was created, found and changed.
    pub(crate) fn finish(self) -> (Vec<Resource>, Vec<Resource>, Vec<(Resource, String)>) {
        (
            self.created.into_inner().unwrap_or_default(),
            self.found.into_inner().unwrap_or_default(),
            self.changed.into_inner().unwrap_or_default(),
        )
    }
}
