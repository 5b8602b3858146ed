//! What a spec wants: every [`Role`] of its lab, what each needs, and how it reads in a plan.
//! One list for `plan` (details and prices), `up` (the order of creation) and `status`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::Lab;
use super::model::{Machine, Role, Tier};
use crate::plan::PRICES;

/// The API port the NLB listens on and forwards to.
pub const API_PORT: u16 = 6443;

/// One resource the lab is made of.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Desired {
    pub role: Role,
    /// The roles made before it.
    pub needs: Vec<Role>,
    /// What it is (CIDR, IP, type, rules), for the plan.
    pub detail: String,
    /// Its hourly price, when it is billed by the hour.
    pub hourly_usd: Option<f64>,
}

/// One ingress rule of a security group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Rule {
    pub proto: &'static str,
    pub from: i32,
    pub to: i32,
    pub source: Source,
    pub why: &'static str,
}

/// Where a rule admits traffic from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    Cidr(String),
    /// The group itself (members talk to each other).
    Own,
}

impl Rule {
    fn new(proto: &'static str, ports: (i32, i32), source: Source, why: &'static str) -> Self {
        Self {
            proto,
            from: ports.0,
            to: ports.1,
            source,
            why,
        }
    }
}

/// NLB and target-group names: at most 32 letters, digits and hyphens.
pub(crate) fn lb_name(cluster: &str) -> String {
    let mut base: String = cluster.chars().take(28).collect();
    while base.ends_with('-') {
        base.pop();
    }
    format!("{base}-api")
}

impl Lab {
    /// The gateway machine.
    pub(crate) fn gateway_machine(&self) -> Machine {
        Machine::Gateway(self.gateway.name.clone())
    }

    /// Every machine: the gateway first, then the nodes in the spec's order.
    pub(crate) fn machines(&self) -> Vec<Machine> {
        std::iter::once(self.gateway_machine())
            .chain(
                self.spec
                    .nodes()
                    .map(|(n, _)| Machine::Node(n.name.clone())),
            )
            .collect()
    }

    /// A machine's instance type.
    pub(crate) fn size(&self, m: &Machine) -> &str {
        match m {
            Machine::Gateway(_) => &self.aws.gateway_instance_type,
            Machine::Node(_) => &self.aws.instance_type,
        }
    }

    /// A machine's fixed private IP.
    pub(crate) fn ip(&self, m: &Machine) -> Option<std::net::IpAddr> {
        match m {
            Machine::Gateway(_) => Some(self.gateway.ip),
            Machine::Node(n) => self.spec.node(n.as_str()).map(|(node, _)| node.ip),
        }
    }

    /// A subnet's block.
    pub(crate) fn cidr(&self, t: Tier) -> String {
        match t {
            Tier::Nodes => self.aws.subnet_cidr.to_string(),
            Tier::Gateway => self.aws.gateway_subnet_cidr.to_string(),
        }
    }

    /// The load balancer's address in the node subnet.
    pub(crate) fn lb_ip(&self) -> String {
        self.aws
            .load_balancer_address()
            .map(|ip| ip.to_string())
            .unwrap_or_default()
    }

    /// A security group's ingress rules. The gateway's: WireGuard from anywhere, everything
    /// from the VPC (it forwards and masquerades the VPC's traffic). The nodes': the API from
    /// the VPC and the tunnel, etcd and the kubelet between nodes, SSH only from the tunnel.
    pub(crate) fn rules(&self, t: Tier) -> Vec<Rule> {
        let vpc = self.aws.vpc_cidr.to_string();
        let tunnel = self.gateway.tunnel.cidr.to_string();
        match t {
            Tier::Gateway => {
                let port = i32::from(self.gateway.tunnel.listen_port);
                vec![
                    Rule::new(
                        "udp",
                        (port, port),
                        Source::Cidr("0.0.0.0/0".into()),
                        "WireGuard",
                    ),
                    Rule::new("-1", (-1, -1), Source::Cidr(vpc), "NAT for the VPC"),
                ]
            }
            Tier::Nodes => {
                let api = i32::from(API_PORT);
                vec![
                    Rule::new(
                        "tcp",
                        (api, api),
                        Source::Cidr(vpc),
                        "kube-apiserver from the VPC (NLB)",
                    ),
                    Rule::new(
                        "tcp",
                        (api, api),
                        Source::Cidr(tunnel.clone()),
                        "kube-apiserver from the tunnel",
                    ),
                    Rule::new(
                        "tcp",
                        (2379, 2380),
                        Source::Own,
                        "etcd between control planes",
                    ),
                    Rule::new("tcp", (10250, 10250), Source::Own, "kubelet"),
                    Rule::new("tcp", (22, 22), Source::Cidr(tunnel), "SSH from the tunnel"),
                ]
            }
        }
    }

    /// Every resource the spec wants, in an order where each comes after what it needs.
    /// `in_bucket`: the machines whose config goes through the payload bucket.
    pub(crate) fn desired(&self, in_bucket: &BTreeSet<String>) -> Vec<Desired> {
        let p = PRICES;
        let gw = self.gateway_machine();
        let mut out = Vec::new();
        let mut add = |role: Role, detail: String, hourly_usd: Option<f64>| {
            let needs = role.needs(
                &gw,
                matches!(&role, Role::Instance(m) if in_bucket.contains(m.unit())),
            );
            out.push(Desired {
                role,
                needs,
                detail,
                hourly_usd,
            });
        };
        if !in_bucket.is_empty() {
            let units: Vec<&str> = in_bucket.iter().map(String::as_str).collect();
            add(
                Role::PayloadBucket,
                format!(
                    "private; Ignition configs over 16 KiB even compressed: {}",
                    units.join(", ")
                ),
                None,
            );
        }
        add(Role::Vpc, self.aws.vpc_cidr.to_string(), None);
        add(
            Role::Subnet(Tier::Nodes),
            format!("{} (nodes, load balancer)", self.cidr(Tier::Nodes)),
            None,
        );
        add(
            Role::Subnet(Tier::Gateway),
            format!("{} (gateway)", self.cidr(Tier::Gateway)),
            None,
        );
        add(Role::InternetGateway, "attached to the VPC".into(), None);
        for t in [Tier::Gateway, Tier::Nodes] {
            add(Role::SecurityGroup(t), describe_rules(&self.rules(t)), None);
        }
        let lb = lb_name(self.cluster());
        let targets: Vec<String> = self
            .spec
            .control_plane
            .iter()
            .map(|n| n.ip.to_string())
            .collect();
        add(
            Role::TargetGroup,
            format!("{lb}: TCP {API_PORT}, IP targets {}", targets.join(", ")),
            None,
        );
        for m in self.machines() {
            let ip = self.ip(&m).map(|ip| ip.to_string()).unwrap_or_default();
            let detail = match m.tier() {
                Tier::Gateway => format!("{ip} in subnet-gateway, source/dest check off"),
                Tier::Nodes => format!("{ip} in subnet-nodes"),
            };
            add(Role::NetworkInterface(m), detail, None);
        }
        add(
            Role::RouteTable(Tier::Gateway),
            "0.0.0.0/0 -> internet gateway; subnet-gateway".into(),
            None,
        );
        add(
            Role::RouteTable(Tier::Nodes),
            format!(
                "0.0.0.0/0 and {} -> gateway ENI; subnet-nodes",
                self.gateway.tunnel.cidr
            ),
            None,
        );
        add(
            Role::ElasticIp,
            "on the gateway ENI (WireGuard endpoint)".into(),
            Some(p.public_ipv4_hour),
        );
        for m in self.machines() {
            let size = self.size(&m).to_owned();
            let mut detail = format!("{size} on {}", Role::NetworkInterface(m.clone()).tag());
            let _ = write!(
                detail,
                ", Ignition: {}",
                match m {
                    Machine::Gateway(_) => "gateway bundle",
                    Machine::Node(_) => "node bundle",
                }
            );
            if in_bucket.contains(m.unit()) {
                detail += " (from the payload bucket)";
            }
            if let Some(key) = &self.aws.key_name {
                let _ = write!(detail, ", key pair {key}");
            }
            add(Role::Instance(m), detail, p.instance_hour(&size));
        }
        add(
            Role::LoadBalancer,
            format!("{lb}: internal NLB at {}", self.lb_ip()),
            Some(p.nlb_hour),
        );
        add(Role::Listener, format!("TCP {API_PORT} -> {lb}"), None);
        out
    }
}

/// `tcp/6443 from 10.10.16.0/20, ...`.
fn describe_rules(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| {
            let ports = if r.proto == "-1" {
                "all".to_owned()
            } else if r.from == r.to {
                format!("{}/{}", r.proto, r.from)
            } else {
                format!("{}/{}-{}", r.proto, r.from, r.to)
            };
            let src = match &r.source {
                Source::Cidr(c) => c.clone(),
                Source::Own => "itself".into(),
            };
            format!("{ports} from {src}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::model::Kind;

    /// The write-up's lab with two workers, control-02 booting from the bucket.
    fn desired() -> Vec<Desired> {
        let yaml = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: kubelius }
spec:
  kubernetesVersion: v1.35.0
  controlPlaneEndpoint: 10.10.16.10:6443
  controlPlane:
    - { name: control-01, ip: 10.10.16.11 }
    - { name: control-02, ip: 10.10.16.12 }
  workers:
    - { name: worker-01, ip: 10.10.16.21 }
  gateway: { name: gw, ip: 10.10.31.10, privateCIDR: 10.10.16.0/20 }
  backend:
    aws: { region: eu-west-3 }
"#;
        let spec = frankenetes_spec::ClusterSpec::from_yaml(yaml).unwrap().spec;
        let lab = Lab::offline(&spec).unwrap();
        lab.desired(&BTreeSet::from(["control-02".to_owned()]))
    }

    #[test]
    fn every_role_comes_after_what_it_needs_and_the_kinds_table_agrees() {
        let all = desired();
        for (i, d) in all.iter().enumerate() {
            for n in &d.needs {
                let at = all.iter().position(|x| x.role == *n);
                assert!(
                    at.is_some_and(|at| at < i),
                    "{} needs {n}, made later or never",
                    d.role
                );
                assert!(
                    d.role.kind().depends_on().contains(&n.kind()),
                    "{} needs {n}, but Kind::{:?} does not depend on Kind::{:?}",
                    d.role,
                    d.role.kind(),
                    n.kind()
                );
            }
        }
        // Each role once; every kind but volumes (made by the instances) is there.
        let keys: BTreeSet<_> = all.iter().map(|d| d.role.key()).collect();
        assert_eq!(keys.len(), all.len());
        let kinds: BTreeSet<Kind> = all.iter().map(|d| d.role.kind()).collect();
        assert_eq!(kinds.len(), Kind::ALL.len() - 1);
        assert!(!kinds.contains(&Kind::Volume));
        let instance = |unit: &str| {
            all.iter()
                .find(|d| d.role.tag() == unit && d.role.kind() == Kind::Instance)
                .unwrap()
        };
        assert!(instance("control-02").needs.contains(&Role::PayloadBucket));
        assert!(!instance("control-01").needs.contains(&Role::PayloadBucket));
        assert!(
            instance("gw")
                .needs
                .iter()
                .any(|n| n.tag() == "eni-gateway")
        );
        assert_eq!(
            all.iter()
                .filter(|d| d.role.kind() == Kind::Instance)
                .count(),
            4
        );
    }

    #[test]
    fn names_fit_elbv2_limits() {
        assert_eq!(lb_name("kubelius"), "kubelius-api");
        let long = "a".repeat(63);
        assert!(lb_name(&long).len() <= 32);
        assert_eq!(
            lb_name("abcdefghijklmnopqrstuvwxyz-abcdef"),
            "abcdefghijklmnopqrstuvwxyz-a-api"
        );
        assert_eq!(
            lb_name("abcdefghijklmnopqrstuvwxyza-bcdef"),
            "abcdefghijklmnopqrstuvwxyza-api"
        );
    }
}
