//! [`AwsPlatform`]: the deployment API's platform on AWS — the cheap lab.
//!
//! The lab makes its network, gateway, machines (through [`Ec2Backend`](crate::Ec2Backend))
//! and load balancer in one idempotent pass that creates each resource as soon as what it
//! needs exists, so the whole lab is the platform's `provision` step; there are no waves to
//! gate from here (the nodes are private: their health is checked from inside, by the
//! day-one unit on the first control plane). `down` deletes by tag and audits.

use std::collections::BTreeMap;

use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComputeBackend, NodeRole, OnProgress, Outputs,
    Platform, PlatformPlan, Progress, Resource, Wave, Workload,
};
use frankenetes_spec::{ClusterSpec, NodeName};

use crate::{Error, Event, Lab, LabPayloads};

/// The AWS lab as a [`Platform`].
#[derive(Debug)]
pub struct AwsPlatform {
    lab: Lab,
    report: std::sync::Mutex<Option<crate::UpReport>>,
}

fn backend_error(e: Error) -> BackendError {
    let kind = if e.is_bad_input() {
        BackendErrorKind::Invalid
    } else {
        BackendErrorKind::Other
    };
    BackendError::new(kind, e.to_string())
}

/// The lab's payloads from a workload: every node's Ignition config, the gateway's.
fn payloads(w: &Workload) -> Result<LabPayloads, BackendError> {
    let mut nodes = BTreeMap::new();
    let mut gateway = Vec::new();
    for n in &w.nodes {
        match n.role {
            NodeRole::Gateway => gateway = n.ignition.to_vec(),
            _ => {
                let name = NodeName::try_from(n.name.as_str()).map_err(|e| {
                    BackendError::new(BackendErrorKind::Invalid, format!("node {}: {e}", n.name))
                })?;
                nodes.insert(name, n.ignition.to_vec());
            }
        }
    }
    Ok(LabPayloads::new(gateway, nodes))
}

fn progress(on: OnProgress<'_>) -> impl Fn(&Event) + Send + Sync + '_ {
    move |e: &Event| {
        let kind = |r: &crate::Resource| r.kind.to_string();
        let name = |r: &crate::Resource| format!("{} {}", r.role, r.id);
        on(match e {
            Event::Found(r) => Progress::Found {
                kind: kind(r),
                name: name(r),
            },
            Event::Created(r) => Progress::Created {
                kind: kind(r),
                name: name(r),
            },
            Event::Deleted(r) => Progress::Deleted {
                kind: kind(r),
                name: name(r),
            },
            Event::Waiting(w) => Progress::Waiting(w.clone()),
            Event::Retrying { .. } => Progress::Retrying(e.to_string()),
            other => Progress::Info(other.to_string()),
        });
    }
}

fn resource(r: &crate::Resource) -> Resource {
    Resource::new(r.kind.to_string(), r.role.clone()).id(r.id.clone())
}

impl AwsPlatform {
    /// The lab of `spec` on the credentials, region and endpoint of `sdk`.
    pub fn new(sdk: &aws_config::SdkConfig, spec: &ClusterSpec) -> Result<Self, Error> {
        Ok(Self::from_lab(Lab::new(sdk, spec)?))
    }

    /// A platform over a lab made elsewhere (other timings, an emulator).
    pub fn from_lab(lab: Lab) -> Self {
        Self {
            lab,
            report: std::sync::Mutex::new(None),
        }
    }

    /// The lab.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }
}

#[async_trait::async_trait]
impl Platform for AwsPlatform {
    fn backend(&self) -> &dyn ComputeBackend {
        &self.lab.machines
    }

    fn name(&self) -> &str {
        "aws"
    }

    fn reachable(&self) -> bool {
        false
    }

    /// Nodes boot stock Fedora CoreOS: their configs download the kubelet (and kubeadm,
    /// kubectl) for the instance type's architecture.
    fn node_binaries_arch(&self) -> Option<&'static str> {
        let t = &self.lab.aws.instance_type;
        let arch = crate::catalog::instance_type(t)
            .map_or_else(|| crate::catalog::guess_arch(t), |i| i.arch);
        Some(arch.name())
    }

    fn plan(&self, w: &Workload) -> Result<PlatformPlan, BackendError> {
        let p = self.lab.plan(&payloads(w)?).map_err(backend_error)?;
        let mut plan = PlatformPlan::default();
        for item in &p.items {
            let mut r =
                Resource::new(item.kind.to_string(), item.role.clone()).detail(item.detail.clone());
            r.usd_per_hour = item.hourly_usd;
            plan.resources.push(r);
        }
        plan.warnings.extend(p.notes.iter().cloned());
        plan.notes.push(format!(
            "storage (root volumes): {:.2} USD per month while the lab exists; {:.2} USD per 30 days in all when it runs all month",
            p.storage_monthly_usd,
            p.monthly_usd()
        ));
        plan.price_source = Some(format!(
            "{} ({}, {})",
            p.prices.source, p.prices.region, p.prices.as_of
        ));
        Ok(plan)
    }

    fn waves(&self, _w: &Workload) -> Result<Vec<Wave>, BackendError> {
        Ok(Vec::new())
    }

    fn validate(&self, w: &Workload) -> Result<(), BackendError> {
        // Sizing and the address plan: refused offline, before anything is made.
        self.lab
            .plan(&payloads(w)?)
            .map(|_| ())
            .map_err(backend_error)
    }

    async fn provision(&self, w: &Workload, on: OnProgress<'_>) -> Result<(), BackendError> {
        let on = progress(on);
        let report = self
            .lab
            .up(&payloads(w)?, &on)
            .await
            .map_err(backend_error)?;
        if let Ok(mut r) = self.report.lock() {
            *r = Some(report);
        }
        Ok(())
    }

    async fn complete(&self, _w: &Workload, _on: OnProgress<'_>) -> Result<Outputs, BackendError> {
        let mut out = Outputs::default();
        let Some(r) = self.report.lock().ok().and_then(|r| r.clone()) else {
            return Ok(out);
        };
        out.vpn_endpoint = Some(r.wireguard_endpoint.to_string());
        out.values
            .push(("gateway public IP".into(), r.gateway_public_ip.to_string()));
        out.values.push((
            "ssh to a node".into(),
            format!("ssh -J core@{} core@<node IP>", r.gateway_public_ip),
        ));
        if let Some(dns) = &r.load_balancer_dns {
            out.values.push(("API load balancer".into(), dns.clone()));
        }
        for (unit, id) in &r.instances {
            out.values.push((format!("instance {unit}"), id.clone()));
        }
        Ok(out)
    }

    async fn inventory(&self, _tag: &ClusterTag) -> Result<Vec<Resource>, BackendError> {
        let status = self.lab.status().await.map_err(backend_error)?;
        Ok(status
            .resources
            .iter()
            .filter(|r| r.id.is_some())
            .map(|r| {
                Resource::new(r.kind.to_string(), r.role.clone())
                    .id(r.id.clone().unwrap_or_default())
                    .state(r.state.to_string())
            })
            .collect())
    }

    async fn teardown(
        &self,
        _tag: &ClusterTag,
        _purge: bool,
        on: OnProgress<'_>,
    ) -> Result<Vec<Resource>, BackendError> {
        let on = progress(on);
        let audit = self.lab.down(&on).await.map_err(backend_error)?;
        Ok(audit.leftovers.iter().map(resource).collect())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn platform(instance_type: &str) -> AwsPlatform {
        let yaml = format!(
            r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: kubelius }}
spec:
  kubernetesVersion: v1.35.0
  controlPlane: [{{ name: control-01, ip: 10.10.16.11 }}]
  gateway: {{ ip: 10.10.31.10, privateCIDR: 10.10.16.0/20 }}
  backend:
    aws: {{ region: eu-west-3, instanceType: {instance_type} }}
"#
        );
        let spec = ClusterSpec::from_yaml(&yaml).unwrap().spec;
        AwsPlatform::from_lab(Lab::offline(&spec).unwrap())
    }

    /// Stock Fedora CoreOS has no kubelet: the nodes download it for the instance type's
    /// architecture (Graviton types are arm64, also those the price table lacks).
    #[test]
    fn nodes_download_binaries_for_the_instance_types_architecture() {
        for (t, arch) in [
            ("t3a.small", "amd64"),
            ("m6i.large", "amd64"),
            ("t4g.small", "arm64"),
            ("c7gn.large", "arm64"),
        ] {
            assert_eq!(platform(t).node_binaries_arch(), Some(arch), "{t}");
        }
    }
}
