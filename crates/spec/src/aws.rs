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
    /// `availabilityZone`: where both subnets (and so every instance and the NLB) go, e.g.
    /// `eu-west-3a`. When absent, AWS picks one per subnet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_zone: Option<String>,
    /// `keyName`: the name of an EC2 key pair that already exists in the region (`aws ec2
    /// import-key-pair`), set as `KeyName` on every instance, so that its public key reaches
    /// the `core` user (Fedora CoreOS's afterburn reads it from the instance metadata):
    /// `ssh -J core@<gateway public IP> core@<node IP>`. Up to 255 printable ASCII characters,
    /// no leading or trailing space. When absent, instances get no key pair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_name: Option<String>,
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
            availability_zone: None,
            key_name: None,
        }
    }
}

/// AWS keeps the first four addresses of every subnet (network, router, DNS, future use) and
/// the last one.
fn aws_reserved(subnet: &Cidr, ip: &IpAddr) -> bool {
    let last = if subnet.host_bits() >= 128 {
        None
    } else {
        subnet.nth((1u128 << subnet.host_bits()) - 1)
    };
    (0..4).any(|n| subnet.nth(n).as_ref() == Some(ip)) || last.as_ref() == Some(ip)
}

/// Whether `inner` lies inside `outer` (equal counts).
fn inside(inner: &Cidr, outer: &Cidr) -> bool {
    outer.net().contains(&inner.net())
}

fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() >= 3
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
        && parts
            .last()
            .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
}

/// Why `name` cannot be an EC2 key pair name (AWS: up to 255 ASCII characters, no leading or
/// trailing space); control characters are refused too.
fn key_pair_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        Err("it is empty")
    } else if name.len() > 255 {
        Err("AWS allows at most 255 characters")
    } else if !name.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Err("AWS allows printable ASCII characters only")
    } else if name.starts_with(' ') || name.ends_with(' ') {
        Err("AWS refuses a leading or trailing space")
    } else {
        Ok(())
    }
}

/// Where the AWS backend sits in the spec, the start of each of its error paths.
const P: &str = "spec.backend.aws";

impl AwsBackend {
    /// The load balancer's address: `loadBalancerIP`, else the tenth address of `subnetCIDR`.
    pub fn load_balancer_address(&self) -> Option<IpAddr> {
        self.load_balancer_ip.or_else(|| self.subnet_cidr.nth(10))
    }

    /// Cross-field checks against the rest of the spec; `err(path, message)` per problem.
    pub(crate) fn validate(&self, spec: &ClusterSpec, err: &mut impl FnMut(String, String)) {
        self.validate_blocks(spec, err);
        self.validate_node_addresses(spec, err);
        self.validate_gateway(spec, err);
        self.validate_load_balancer(spec, err);
        self.validate_names(err);
    }

    /// The VPC and its two subnets: sizes AWS accepts, nesting, and no overlap with each other
    /// or with the cluster's service and pod blocks.
    fn validate_blocks(&self, spec: &ClusterSpec, err: &mut impl FnMut(String, String)) {
        let vpc = &self.vpc_cidr;
        let v4 = |c: &Cidr| matches!(c.net(), ipnet::IpNet::V4(_));
        if !v4(vpc) || vpc.net().prefix_len() < 16 || vpc.net().prefix_len() > 28 {
            err(
                format!("{P}.vpcCIDR"),
                format!("{vpc} cannot be a VPC block: AWS takes IPv4 blocks from /16 to /28"),
            );
        }
        let subnets = [
            ("subnetCIDR", &self.subnet_cidr),
            ("gatewaySubnetCIDR", &self.gateway_subnet_cidr),
        ];
        for (field, s) in subnets {
            if !v4(s) || s.net().prefix_len() > 28 {
                err(
                    format!("{P}.{field}"),
                    format!("{s} cannot be a subnet: AWS takes IPv4 blocks of /28 or larger"),
                );
            }
            if !inside(s, vpc) {
                err(
                    format!("{P}.{field}"),
                    format!("{s} is not inside {P}.vpcCIDR {vpc}"),
                );
            }
        }
        if self.subnet_cidr.overlaps(&self.gateway_subnet_cidr) {
            err(
                format!("{P}.gatewaySubnetCIDR"),
                format!(
                    "{} overlaps {P}.subnetCIDR {}; the gateway gets its own subnet",
                    self.gateway_subnet_cidr, self.subnet_cidr
                ),
            );
        }
        let mut cluster_blocks = vec![("spec.network.serviceCIDR", spec.network.service_cidr)];
        if let Some(pod) = spec.network.pod_cidr {
            cluster_blocks.push(("spec.network.podCIDR", pod));
        }
        for (field, block) in cluster_blocks {
            if block.overlaps(vpc) {
                err(
                    field.to_owned(),
                    format!("{block} overlaps {P}.vpcCIDR {vpc}; choose disjoint blocks"),
                );
            }
        }
    }

    /// Every node's address lies in the node subnet and is not one AWS reserves.
    fn validate_node_addresses(&self, spec: &ClusterSpec, err: &mut impl FnMut(String, String)) {
        let mut counters = (0usize, 0usize);
        for (node, role) in spec.nodes() {
            let i = match role {
                crate::Role::ControlPlane => &mut counters.0,
                crate::Role::Worker => &mut counters.1,
            };
            let path = match role {
                crate::Role::ControlPlane => format!("spec.controlPlane[{i}].ip"),
                crate::Role::Worker => format!("spec.workers[{i}].ip"),
            };
            *i += 1;
            if !self.subnet_cidr.contains(&node.ip) {
                err(
                    path,
                    format!(
                        "{} is outside {P}.subnetCIDR {}; nodes live in the node subnet",
                        node.ip, self.subnet_cidr
                    ),
                );
            } else if aws_reserved(&self.subnet_cidr, &node.ip) {
                err(
                    path,
                    format!(
                        "{} is reserved by AWS (the first four and the last address of {})",
                        node.ip, self.subnet_cidr
                    ),
                );
            }
        }
    }

    /// The lab needs a gateway, in the gateway subnet, routing for the whole VPC.
    fn validate_gateway(&self, spec: &ClusterSpec, err: &mut impl FnMut(String, String)) {
        let vpc = &self.vpc_cidr;
        match &spec.gateway {
            None => err(
                "spec.gateway".into(),
                "the AWS lab needs a gateway (NAT and WireGuard); add e.g. \
                 `gateway: { ip: 10.10.31.10, privateCIDR: 10.10.16.0/20 }`"
                    .into(),
            ),
            Some(gw) => {
                if !self.gateway_subnet_cidr.contains(&gw.ip) {
                    err(
                        "spec.gateway.ip".into(),
                        format!(
                            "{} is outside {P}.gatewaySubnetCIDR {}",
                            gw.ip, self.gateway_subnet_cidr
                        ),
                    );
                } else if aws_reserved(&self.gateway_subnet_cidr, &gw.ip) {
                    err(
                        "spec.gateway.ip".into(),
                        format!(
                            "{} is reserved by AWS (the first four and the last address of {})",
                            gw.ip, self.gateway_subnet_cidr
                        ),
                    );
                }
                if !inside(vpc, &gw.private_cidr) {
                    err(
                        "spec.gateway.privateCIDR".into(),
                        format!(
                            "{} must equal or contain {P}.vpcCIDR {vpc}: the gateway routes for the whole VPC",
                            gw.private_cidr
                        ),
                    );
                }
            }
        }
    }

    /// The load balancer's address: in the node subnet, not reserved, not a node's.
    fn validate_load_balancer(&self, spec: &ClusterSpec, err: &mut impl FnMut(String, String)) {
        match self.load_balancer_address() {
            None => err(
                format!("{P}.loadBalancerIP"),
                format!(
                    "{P}.subnetCIDR {} has no tenth address; give one",
                    self.subnet_cidr
                ),
            ),
            Some(lb) => {
                let field = format!("{P}.loadBalancerIP");
                if !self.subnet_cidr.contains(&lb) {
                    err(
                        field,
                        format!("{lb} is outside {P}.subnetCIDR {}", self.subnet_cidr),
                    );
                } else if aws_reserved(&self.subnet_cidr, &lb) {
                    err(field, format!("{lb} is reserved by AWS"));
                } else if let Some((n, _)) = spec.nodes().find(|(n, _)| n.ip == lb) {
                    err(
                        field,
                        format!(
                            "{lb} is node {}'s address; the load balancer needs its own",
                            n.name.as_str()
                        ),
                    );
                }
            }
        }
    }

    /// The names AWS checks on its side: region, zone, AMI id, key pair, instance types.
    fn validate_names(&self, err: &mut impl FnMut(String, String)) {
        if let Some(r) = &self.region
            && !is_region(r)
        {
            err(
                format!("{P}.region"),
                format!("{r:?} is not an AWS region name (like eu-west-3)"),
            );
        }
        if let Some(az) = &self.availability_zone {
            let ok = match &self.region {
                Some(r) => az.len() > r.len() && az.starts_with(r.as_str()),
                None => az.len() > 1 && is_region(&az[..az.len() - 1]),
            };
            if !ok {
                err(
                    format!("{P}.availabilityZone"),
                    format!("{az:?} is not a zone of the region (like eu-west-3a)"),
                );
            }
        }
        if let Some(ami) = &self.ami
            && (!ami.starts_with("ami-") || ami.len() < 8)
        {
            err(
                format!("{P}.ami"),
                format!("{ami:?} is not an AMI id (ami-...)"),
            );
        }
        if let Some(name) = &self.key_name
            && let Err(why) = key_pair_name(name)
        {
            err(
                format!("{P}.keyName"),
                format!("{name:?} is not an EC2 key pair name: {why}"),
            );
        }
        for (field, t) in [
            ("instanceType", &self.instance_type),
            ("gatewayInstanceType", &self.gateway_instance_type),
        ] {
            let ok = t.split_once('.').is_some_and(|(a, b)| {
                !a.is_empty()
                    && !b.is_empty()
                    && t.bytes().all(|c| {
                        c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-'
                    })
            });
            if !ok {
                err(
                    format!("{P}.{field}"),
                    format!("{t:?} is not an EC2 instance type (like t3a.small)"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::ClusterSpec;

    const LAB: &str = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: kubelius }
spec:
  kubernetesVersion: v1.35.0
  controlPlaneEndpoint: 10.10.16.10:6443
  controlPlane:
    - { name: control-01, ip: 10.10.16.11 }
    - { name: control-02, ip: 10.10.16.12 }
    - { name: control-03, ip: 10.10.16.13 }
  gateway: { ip: 10.10.31.10, privateCIDR: 10.10.16.0/20 }
  backend:
    aws: { region: eu-west-3, availabilityZone: eu-west-3a, instanceType: t3a.nano, ami: ami-0123456789abcdef0 }
"#;

    fn problems(yaml: &str) -> Vec<String> {
        match ClusterSpec::from_yaml(yaml) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems().iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn the_write_ups_lab_is_valid() {
        let parsed = ClusterSpec::from_yaml(LAB).unwrap();
        let crate::BackendSpec::Aws(aws) = &parsed.spec.backend else {
            panic!()
        };
        assert_eq!(
            aws.load_balancer_address().unwrap().to_string(),
            "10.10.16.10"
        );
        assert_eq!(aws.vpc_cidr.to_string(), "10.10.16.0/20");
        assert_eq!(aws.availability_zone.as_deref(), Some("eu-west-3a"));
        assert_eq!(aws.key_name, None);
    }

    #[test]
    fn key_pair_names_as_aws_takes_them() {
        for good in ["laptop", "ops key (2026)", "a.b-c_d@e", &"k".repeat(255)] {
            assert_eq!(super::key_pair_name(good), Ok(()), "{good:?}");
        }
        for bad in ["", " lead", "trail ", "tab\there", "é", &"k".repeat(256)] {
            assert!(super::key_pair_name(bad).is_err(), "{bad:?}");
        }
        let yaml = LAB.replace(
            "ami: ami-0123456789abcdef0",
            "ami: ami-0123456789abcdef0, keyName: my-laptop",
        );
        let parsed = ClusterSpec::from_yaml(&yaml).unwrap();
        let crate::BackendSpec::Aws(aws) = &parsed.spec.backend else {
            panic!()
        };
        assert_eq!(aws.key_name.as_deref(), Some("my-laptop"));
    }

    #[test]
    fn each_mistake_names_its_field() {
        let cases: &[(&str, &str, &str)] = &[
            (
                "ip: 10.10.16.13 }",
                "ip: 10.10.17.13 }",
                "spec.controlPlane[2].ip: 10.10.17.13 is outside spec.backend.aws.subnetCIDR",
            ),
            (
                "ip: 10.10.16.11 }",
                "ip: 10.10.16.3 }",
                "spec.controlPlane[0].ip: 10.10.16.3 is reserved by AWS",
            ),
            (
                "{ ip: 10.10.31.10,",
                "{ ip: 10.10.30.10,",
                "spec.gateway.ip: 10.10.30.10 is outside spec.backend.aws.gatewaySubnetCIDR",
            ),
            (
                "privateCIDR: 10.10.16.0/20",
                "privateCIDR: 10.10.16.0/24",
                "spec.gateway.privateCIDR: 10.10.16.0/24 must equal or contain",
            ),
            (
                "region: eu-west-3,",
                "region: eu-west-3, subnetCIDR: 10.20.0.0/24,",
                "spec.backend.aws.subnetCIDR: 10.20.0.0/24 is not inside",
            ),
            (
                "region: eu-west-3,",
                "region: eu-west-3, gatewaySubnetCIDR: 10.10.16.128/25,",
                "spec.backend.aws.gatewaySubnetCIDR: 10.10.16.128/25 overlaps",
            ),
            (
                "region: eu-west-3,",
                "region: eu-west-3, loadBalancerIP: 10.10.16.12,",
                "spec.backend.aws.loadBalancerIP: 10.10.16.12 is node control-02's address",
            ),
            (
                "region: eu-west-3,",
                "region: eu-west-3, loadBalancerIP: 10.10.20.1,",
                "spec.backend.aws.loadBalancerIP: 10.10.20.1 is outside",
            ),
            (
                "region: eu-west-3,",
                "region: eu-west-3, vpcCIDR: 10.0.0.0/8,",
                "spec.backend.aws.vpcCIDR: 10.0.0.0/8 cannot be a VPC block",
            ),
            (
                "region: eu-west-3,",
                "region: Paris,",
                "spec.backend.aws.region: \"Paris\" is not an AWS region",
            ),
            (
                "availabilityZone: eu-west-3a",
                "availabilityZone: us-east-1a",
                "spec.backend.aws.availabilityZone",
            ),
            (
                "ami: ami-0123456789abcdef0",
                "ami: fedora",
                "spec.backend.aws.ami: \"fedora\" is not an AMI id",
            ),
            (
                "instanceType: t3a.nano",
                "instanceType: small",
                "spec.backend.aws.instanceType: \"small\" is not an EC2 instance type",
            ),
            (
                "ami: ami-0123456789abcdef0",
                "ami: ami-0123456789abcdef0, keyName: \"laptop\\tkey\"",
                // The spec-wide control-character check names it first.
                "spec.backend.aws.keyName: holds a control character ('\\t', U+0009)",
            ),
            (
                "ami: ami-0123456789abcdef0",
                "ami: ami-0123456789abcdef0, keyName: \" laptop\"",
                "spec.backend.aws.keyName: \" laptop\" is not an EC2 key pair name: AWS refuses a leading",
            ),
            (
                "ami: ami-0123456789abcdef0",
                "ami: ami-0123456789abcdef0, keyName: \"\"",
                "spec.backend.aws.keyName: \"\" is not an EC2 key pair name: it is empty",
            ),
            (
                "  gateway: { ip: 10.10.31.10, privateCIDR: 10.10.16.0/20 }\n",
                "",
                "spec.gateway: the AWS lab needs a gateway",
            ),
            (
                "  kubernetesVersion: v1.35.0\n",
                "  kubernetesVersion: v1.35.0\n  network: { serviceCIDR: 10.10.0.0/16 }\n",
                "spec.network.serviceCIDR: 10.10.0.0/16 overlaps spec.backend.aws.vpcCIDR",
            ),
        ];
        for (from, to, want) in cases {
            assert!(LAB.contains(from), "fixture lacks {from:?}");
            let yaml = LAB.replacen(from, to, 1);
            let got = problems(&yaml);
            assert!(
                got.iter().any(|p| p.contains(want)),
                "{to:?}: want {want:?} in {got:#?}"
            );
        }
    }

    #[test]
    fn other_backends_need_no_gateway() {
        let yaml = LAB
            .replace("  gateway: { ip: 10.10.31.10, privateCIDR: 10.10.16.0/20 }\n", "")
            .replace(
                "    aws: { region: eu-west-3, availabilityZone: eu-west-3a, instanceType: t3a.nano, ami: ami-0123456789abcdef0 }",
                "    local: {}",
            );
        assert!(problems(&yaml).is_empty(), "{:?}", problems(&yaml));
    }
}
