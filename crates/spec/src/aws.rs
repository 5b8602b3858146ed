//! `spec.backend.aws`: the cheap AWS lab (a VPC, a NAT/WireGuard gateway instance, control-plane
//! instances and an internal network load balancer).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::ClusterSpec;
use crate::net::Cidr;

/// `spec.backend.aws`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct AwsBackend {
    /// The region everything is created in (`eu-central-1`). When absent, the standard AWS
    /// chain decides (`AWS_REGION`, the profile).
    #[serde(default)]
    pub region: Option<String>,
    /// `vpcCIDR`: the VPC's block (default 10.10.16.0/20, the write-up's).
    #[serde(rename = "vpcCIDR", default = "default_vpc_cidr")]
    pub vpc_cidr: Cidr,
    /// `subnetCIDR`: the private subnet the nodes and the load balancer live in (default
    /// 10.10.16.0/24).
    #[serde(rename = "subnetCIDR", default = "default_subnet_cidr")]
    pub subnet_cidr: Cidr,
    /// `gatewaySubnetCIDR`: the public subnet of the gateway instance (default 10.10.31.0/24).
    #[serde(rename = "gatewaySubnetCIDR", default = "default_gateway_subnet_cidr")]
    pub gateway_subnet_cidr: Cidr,
    /// `loadBalancerIP`: the internal NLB's fixed address in `subnetCIDR` (default the tenth
    /// address, 10.10.16.10).
    #[serde(rename = "loadBalancerIP", default)]
    pub load_balancer_ip: Option<IpAddr>,
    /// Instance type of the control-plane nodes (default `t3a.small`).
    #[serde(default = "default_node_type")]
    pub instance_type: String,
    /// Instance type of the gateway (default `t3a.nano`).
    #[serde(default = "default_gateway_type")]
    pub gateway_instance_type: String,
    /// The AMI; when absent, the newest Fedora CoreOS stable AMI for the architecture is looked
    /// up by owner and name.
    #[serde(default)]
    pub ami: Option<String>,
}

fn default_vpc_cidr() -> Cidr {
    Cidr::try_from("10.10.16.0/20".to_owned()).unwrap_or_else(|_| unreachable!("constant CIDR"))
}

fn default_subnet_cidr() -> Cidr {
    Cidr::try_from("10.10.16.0/24".to_owned()).unwrap_or_else(|_| unreachable!("constant CIDR"))
}

fn default_gateway_subnet_cidr() -> Cidr {
    Cidr::try_from("10.10.31.0/24".to_owned()).unwrap_or_else(|_| unreachable!("constant CIDR"))
}

fn default_node_type() -> String {
    "t3a.small".into()
}

fn default_gateway_type() -> String {
    "t3a.nano".into()
}

impl Default for AwsBackend {
    fn default() -> Self {
        Self {
            region: None,
            vpc_cidr: default_vpc_cidr(),
            subnet_cidr: default_subnet_cidr(),
            gateway_subnet_cidr: default_gateway_subnet_cidr(),
            load_balancer_ip: None,
            instance_type: default_node_type(),
            gateway_instance_type: default_gateway_type(),
            ami: None,
        }
    }
}

impl AwsBackend {
    /// Cross-field checks against the rest of the spec; `err(path, message)` per problem.
    pub(crate) fn validate(&self, _spec: &ClusterSpec, _err: &mut impl FnMut(String, String)) {}
}
