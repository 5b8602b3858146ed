//! `status`: every resource the spec wants, with its state, and the strays. Read calls only.

use std::collections::BTreeSet;

use super::Lab;
use super::model::{Kind, Role};
use super::report::{ResourceState, ResourceStatus, Status};
use crate::{Error, ec2};

impl Lab {
    /// What exists of the lab: each resource the spec wants (present, missing, or for a
    /// machine its state), the payload bucket when it exists, and every other resource
    /// carrying the cluster's tag (a stray: `down` deletes it, `up` leaves it). Root volumes go
    /// with their instances and are not listed ([`Lab::inventory`] lists them). Read-only.
    pub async fn status(&self) -> Result<Status, Error> {
        let found = self.find_all().await?;
        let units: Vec<_> = ec2::list_instances(&self.ec2, self.cluster())
            .await?
            .iter()
            .map(ec2::to_unit)
            .collect();
        let mut wanted: Vec<Role> = Vec::new();
        if found
            .get(&Kind::PayloadBucket)
            .is_some_and(|b| !b.is_empty())
        {
            wanted.push(Role::PayloadBucket);
        }
        wanted.extend(self.desired(&BTreeSet::new()).into_iter().map(|d| d.role));
        let mut resources = Vec::new();
        let mut matched = BTreeSet::new();
        for role in &wanted {
            let hit = found
                .get(&role.kind())
                .into_iter()
                .flatten()
                .find(|f| f.res.is(role));
            let state = match (hit, role) {
                (None, _) => ResourceState::Missing,
                (Some(f), Role::Instance(_)) => units
                    .iter()
                    .find(|u| u.id.0 == f.res.id)
                    .map_or(ResourceState::Present, |u| ResourceState::Machine(u.state)),
                (Some(_), _) => ResourceState::Present,
            };
            if let Some(f) = hit {
                matched.insert((f.res.kind, f.res.id.clone()));
            }
            resources.push(ResourceStatus {
                kind: role.kind(),
                role: role.tag(),
                id: hit.map(|f| f.res.id.clone()),
                state,
            });
        }
        for f in found.values().flatten() {
            if f.res.kind != Kind::Volume && !matched.contains(&(f.res.kind, f.res.id.clone())) {
                resources.push(ResourceStatus {
                    kind: f.res.kind,
                    role: f.res.role.clone(),
                    id: Some(f.res.id.clone()),
                    state: ResourceState::Stray,
                });
            }
        }
        Ok(Status {
            cluster: self.cluster().to_owned(),
            resources,
        })
    }
}
