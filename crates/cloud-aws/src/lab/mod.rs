//! The cheap lab: a VPC, a NAT/WireGuard gateway instance, the cluster's nodes and an internal
//! NLB in front of the control planes — planned offline, up (idempotent), status, down
//! (leak-free, previewed by the inventory) and audited.
//!
//! Built around one typed inventory ([`model`]): every [`Kind`] of resource with what it
//! depends on, how it is found by tag ([`find`]) and deleted ([`delete`]); every [`Role`] a
//! resource plays, with what it needs ([`desired`]). `plan`, `up`, `status`, `down` and the
//! audit all read it.

mod create;
mod delete;
mod desired;
mod elb;
mod find;
pub(crate) mod model;
mod preflight;
mod report;
mod retry;
mod status;
mod up;

use std::collections::BTreeMap;
use std::fmt;

use frankenetes_spec::{AwsBackend, BackendSpec, ClusterSpec, GatewaySpec, NodeName};

use crate::Error;
use crate::ec2::{Ec2Backend, Timing};
use crate::store::Store;

pub use desired::API_PORT;
pub use model::{Kind, Machine, Resource, Role, Tier};
pub use preflight::FEDORA_COREOS_OWNER;
pub use report::{
    Audit, Event, Inventory, OnEvent, ResourceState, ResourceStatus, Status, UpReport,
};

/// The Ignition configs of the lab's machines. Opaque bytes; they hold keys, so `Debug` shows
/// only their sizes.
#[derive(Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LabPayloads {
    /// The gateway's (the `netgw` bundle).
    pub gateway: Vec<u8>,
    /// Each node's (its node bundle), by node name.
    pub nodes: BTreeMap<NodeName, Vec<u8>>,
}

impl LabPayloads {
    /// Payloads for the gateway and the nodes.
    pub fn new(gateway: Vec<u8>, nodes: BTreeMap<NodeName, Vec<u8>>) -> Self {
        Self { gateway, nodes }
    }
}

impl fmt::Debug for LabPayloads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LabPayloads")
            .field("gateway", &format_args!("<{} bytes>", self.gateway.len()))
            .field(
                "nodes",
                &self
                    .nodes
                    .iter()
                    .map(|(n, p)| (n.as_str(), p.len()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish()
    }
}

/// The lab of one cluster: [`plan`](Lab::plan) (offline), [`up`](Lab::up),
/// [`status`](Lab::status), [`inventory`](Lab::inventory), [`down`](Lab::down),
/// [`audit`](Lab::audit). Needs `spec.backend.aws` and `spec.gateway`. The machines are made
/// through [`Ec2Backend`].
#[derive(Debug, Clone)]
pub struct Lab {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) machines: Ec2Backend,
    pub(crate) spec: ClusterSpec,
    pub(crate) aws: AwsBackend,
    pub(crate) gateway: GatewaySpec,
    pub(crate) store: Store,
    pub(crate) timing: Timing,
}

impl Lab {
    /// The lab of `spec` (which must have `backend: aws` and a `gateway`), on the credentials,
    /// region and endpoint of `sdk`; `spec.backend.aws.region`, when set, overrides the region.
    pub fn new(sdk: &aws_config::SdkConfig, spec: &ClusterSpec) -> Result<Self, Error> {
        let BackendSpec::Aws(aws) = &spec.backend else {
            return Err(Error::Spec {
                field: "spec.backend".into(),
                message: format!(
                    "is `{}`; the AWS lab needs `aws: {{...}}`",
                    spec.backend.kind()
                ),
            });
        };
        let Some(gateway) = spec.gateway.clone() else {
            return Err(Error::Spec {
                field: "spec.gateway".into(),
                message: "the AWS lab needs a gateway (NAT and WireGuard); add `gateway: { ip: 10.10.31.10, privateCIDR: 10.10.16.0/20 }`".into(),
            });
        };
        let mut ec2_conf = aws_sdk_ec2::config::Builder::from(sdk);
        let mut elb_conf = aws_sdk_elasticloadbalancingv2::config::Builder::from(sdk);
        if let Some(region) = &aws.region {
            ec2_conf = ec2_conf.region(aws_sdk_ec2::config::Region::new(region.clone()));
            elb_conf = elb_conf.region(aws_sdk_elasticloadbalancingv2::config::Region::new(
                region.clone(),
            ));
        }
        let ec2 = aws_sdk_ec2::Client::from_conf(ec2_conf.build());
        let defaults = crate::MachineDefaults {
            key_name: aws.key_name.clone(),
            ..Default::default()
        };
        let timing = Timing::default();
        Ok(Self {
            machines: Ec2Backend::from_client(ec2.clone())
                .with_defaults(defaults)
                .with_timing(timing),
            ec2,
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb_conf.build()),
            spec: spec.clone(),
            aws: aws.clone(),
            gateway,
            store: Store::new(sdk, aws.region.as_deref(), spec.name.as_str()),
            timing,
        })
    }

    /// The lab of `spec` for [`Lab::plan`] only: no credentials are read and every AWS call
    /// fails (its endpoint is `http://offline.invalid`).
    pub fn offline(spec: &ClusterSpec) -> Result<Self, Error> {
        let region = match &spec.backend {
            BackendSpec::Aws(a) => a.region.clone(),
            _ => None,
        };
        let sdk = crate::static_sdk_config(
            "http://offline.invalid",
            region.as_deref().unwrap_or("us-east-1"),
            "offline",
            "offline",
        );
        Self::new(&sdk, spec)
    }

    /// With other poll intervals and timeouts (tests poll fast).
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self.machines = self.machines.with_timing(timing);
        self
    }

    /// The cluster's name.
    pub(crate) fn cluster(&self) -> &str {
        self.spec.name.as_str()
    }

    /// `<cluster>-<what>`: the `Name` tag.
    pub(crate) fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.cluster())
    }

    /// The region the lab's EC2 client calls.
    pub(crate) fn region(&self) -> String {
        self.ec2
            .config()
            .region()
            .map(|r| r.as_ref().to_owned())
            .unwrap_or_else(|| "(the default region)".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_debug_shows_sizes_only() {
        let mut nodes = BTreeMap::new();
        nodes.insert(
            NodeName::try_from("control-01").unwrap(),
            b"-----BEGIN PRIVATE KEY-----".to_vec(),
        );
        let p = LabPayloads::new(b"secret".to_vec(), nodes);
        let d = format!("{p:?}");
        assert!(!d.contains("PRIVATE") && !d.contains("secret"), "{d}");
        assert!(d.contains("control-01"), "{d}");
    }
}
