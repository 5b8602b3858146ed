//! The lab's resource inventory as types: every [`Kind`] of AWS resource (one table: what it
//! depends on, how it is found and deleted), every [`Role`] a resource plays in a lab, and the
//! [`Resource`]s found. `plan`, `up`, `status`, `down` and the audit all read this module:
//! the delete order is derived from the dependencies, not listed by hand.

use std::fmt;

use frankenetes_spec::NodeName;

/// A kind of AWS resource the lab creates, or that a machine leaves behind (volumes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The VPC.
    Vpc,
    /// A subnet (nodes and load balancer; gateway).
    Subnet,
    /// The internet gateway, attached to the VPC.
    InternetGateway,
    /// A route table, associated with its subnet.
    RouteTable,
    /// A security group with its ingress rules.
    SecurityGroup,
    /// A machine's network interface, at its fixed IP.
    NetworkInterface,
    /// The gateway's Elastic IP.
    ElasticIp,
    /// An EC2 instance (a node or the gateway), made through [`crate::Ec2Backend`].
    Instance,
    /// An EBS volume (root volumes go with their instances; a stray one is deleted).
    Volume,
    /// The IP target group of the control planes.
    TargetGroup,
    /// The internal network load balancer.
    LoadBalancer,
    /// The load balancer's TCP listener.
    Listener,
    /// The private S3 bucket for Ignition configs over EC2's user-data limit.
    PayloadBucket,
}

/// One row of the table of kinds.
pub(crate) struct KindRow {
    pub kind: Kind,
    /// The name in plans, events and audits.
    pub name: &'static str,
    /// What a resource of this kind uses, so must exist before it and outlive it. `down`
    /// deletes a kind only after every kind that depends on it.
    pub depends_on: &'static [Kind],
    /// How it is found: the call (always by the cluster tag; ELBv2 and S3 list and read tags).
    pub describe: &'static str,
    /// How it is deleted (after undoing what the second name says, if any).
    pub delete: &'static str,
}

use Kind as K;

/// The table every operation reads. `describe`/`delete` name the calls `find.rs` and
/// `delete.rs` make for each kind (each `match` there is exhaustive, so a new kind cannot be
/// forgotten).
pub(crate) const KINDS: [KindRow; 13] = [
    KindRow {
        kind: K::Vpc,
        name: "vpc",
        depends_on: &[],
        describe: "DescribeVpcs",
        delete: "DeleteVpc",
    },
    KindRow {
        kind: K::Subnet,
        name: "subnet",
        depends_on: &[K::Vpc],
        describe: "DescribeSubnets",
        delete: "DeleteSubnet",
    },
    KindRow {
        kind: K::InternetGateway,
        name: "internet-gateway",
        depends_on: &[K::Vpc],
        describe: "DescribeInternetGateways",
        delete: "DetachInternetGateway, DeleteInternetGateway",
    },
    KindRow {
        kind: K::RouteTable,
        name: "route-table",
        depends_on: &[K::Vpc, K::Subnet, K::InternetGateway, K::NetworkInterface],
        describe: "DescribeRouteTables",
        delete: "DisassociateRouteTable, DeleteRouteTable",
    },
    KindRow {
        kind: K::SecurityGroup,
        name: "security-group",
        depends_on: &[K::Vpc],
        describe: "DescribeSecurityGroups",
        delete: "DeleteSecurityGroup",
    },
    KindRow {
        kind: K::NetworkInterface,
        name: "network-interface",
        depends_on: &[K::Subnet, K::SecurityGroup],
        describe: "DescribeNetworkInterfaces",
        delete: "DeleteNetworkInterface",
    },
    KindRow {
        kind: K::ElasticIp,
        name: "elastic-ip",
        // AWS associates an address only in a VPC with an internet gateway.
        depends_on: &[K::NetworkInterface, K::InternetGateway],
        describe: "DescribeAddresses",
        delete: "DisassociateAddress, ReleaseAddress",
    },
    KindRow {
        kind: K::Instance,
        name: "instance",
        // Boots from the bucket's config when its own is too large; holds its volumes.
        depends_on: &[K::NetworkInterface, K::Volume, K::PayloadBucket],
        describe: "DescribeInstances",
        delete: "TerminateInstances (then waits until terminated)",
    },
    KindRow {
        kind: K::Volume,
        name: "volume",
        depends_on: &[],
        describe: "DescribeVolumes",
        delete: "DeleteVolume",
    },
    KindRow {
        kind: K::TargetGroup,
        name: "target-group",
        depends_on: &[K::Vpc],
        describe: "DescribeTargetGroups, DescribeTags",
        delete: "DeleteTargetGroup",
    },
    KindRow {
        kind: K::LoadBalancer,
        name: "load-balancer",
        depends_on: &[K::Subnet],
        describe: "DescribeLoadBalancers, DescribeTags",
        delete: "DeleteLoadBalancer (then waits until gone: on AWS its interfaces hold the subnet)",
    },
    KindRow {
        kind: K::Listener,
        name: "listener",
        depends_on: &[K::LoadBalancer, K::TargetGroup],
        describe: "DescribeListeners",
        delete: "DeleteListener",
    },
    KindRow {
        kind: K::PayloadBucket,
        name: "s3-bucket",
        depends_on: &[],
        describe: "ListBuckets (its name is derived from account, region and cluster)",
        delete: "DeleteObject for each object, DeleteBucket",
    },
];

impl Kind {
    /// Every kind, in the table's order.
    pub const ALL: [Kind; 13] = {
        let mut all = [K::Vpc; 13];
        let mut i = 0;
        while i < 13 {
            all[i] = KINDS[i].kind;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static KindRow {
        // The table is indexed by the enum's order (a unit test checks it).
        &KINDS[self as usize]
    }

    /// Its name (`vpc`, `network-interface`, `s3-bucket`).
    pub fn name(self) -> &'static str {
        self.row().name
    }

    /// The kinds it uses: they exist before it and are deleted after it.
    pub fn depends_on(self) -> &'static [Kind] {
        self.row().depends_on
    }

    /// The calls that find it (by the cluster tag).
    pub fn describe_call(self) -> &'static str {
        self.row().describe
    }

    /// The calls that delete it.
    pub fn delete_call(self) -> &'static str {
        self.row().delete
    }

    /// The order `down` deletes in, derived from [`Kind::depends_on`]: each wave holds the
    /// kinds nothing still left depends on; the kinds of one wave are deleted concurrently.
    pub fn delete_waves() -> Vec<Vec<Kind>> {
        let mut left: Vec<Kind> = Kind::ALL.to_vec();
        let mut waves = Vec::new();
        while !left.is_empty() {
            let wave: Vec<Kind> = left
                .iter()
                .copied()
                .filter(|k| !left.iter().any(|other| other.depends_on().contains(k)))
                .collect();
            if wave.is_empty() {
                // A cycle in the table: cannot happen (a unit test checks), but never loop.
                waves.push(std::mem::take(&mut left));
                break;
            }
            left.retain(|k| !wave.contains(k));
            waves.push(wave);
        }
        waves
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The two subnets (and what comes with each: route table, security group).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Tier {
    /// The private subnet of the nodes and the load balancer.
    Nodes,
    /// The public subnet of the NAT/WireGuard gateway.
    Gateway,
}

impl Tier {
    fn suffix(self) -> &'static str {
        match self {
            Tier::Nodes => "nodes",
            Tier::Gateway => "gateway",
        }
    }
}

/// A machine of the lab.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Machine {
    /// The NAT/WireGuard gateway (`spec.gateway.name`).
    Gateway(NodeName),
    /// A node (control plane or worker).
    Node(NodeName),
}

impl Machine {
    /// The unit name (the node's or the gateway's name).
    pub fn unit(&self) -> &str {
        match self {
            Machine::Gateway(n) | Machine::Node(n) => n.as_str(),
        }
    }

    /// Its subnet.
    pub fn tier(&self) -> Tier {
        match self {
            Machine::Gateway(_) => Tier::Gateway,
            Machine::Node(_) => Tier::Nodes,
        }
    }

    /// The value of the instance's `frankenetes.dev/role` tag.
    pub(crate) fn role_tag(&self) -> &'static str {
        match self {
            Machine::Gateway(_) => "gateway",
            Machine::Node(_) => "node",
        }
    }
}

/// The role a resource plays in the lab: each role is one resource, found again by its
/// `frankenetes.dev/role` tag ([`Role::tag`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Role {
    /// The VPC.
    Vpc,
    /// A subnet.
    Subnet(Tier),
    /// The internet gateway.
    InternetGateway,
    /// A subnet's route table.
    RouteTable(Tier),
    /// A subnet's security group.
    SecurityGroup(Tier),
    /// A machine's network interface.
    NetworkInterface(Machine),
    /// The gateway's Elastic IP.
    ElasticIp,
    /// A machine.
    Instance(Machine),
    /// The control planes' target group.
    TargetGroup,
    /// The internal NLB.
    LoadBalancer,
    /// Its listener.
    Listener,
    /// The payload bucket.
    PayloadBucket,
}

impl Role {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Role::Vpc => Kind::Vpc,
            Role::Subnet(_) => Kind::Subnet,
            Role::InternetGateway => Kind::InternetGateway,
            Role::RouteTable(_) => Kind::RouteTable,
            Role::SecurityGroup(_) => Kind::SecurityGroup,
            Role::NetworkInterface(_) => Kind::NetworkInterface,
            Role::ElasticIp => Kind::ElasticIp,
            Role::Instance(_) => Kind::Instance,
            Role::TargetGroup => Kind::TargetGroup,
            Role::LoadBalancer => Kind::LoadBalancer,
            Role::Listener => Kind::Listener,
            Role::PayloadBucket => Kind::PayloadBucket,
        }
    }

    /// The value of its `frankenetes.dev/role` tag (`subnet-nodes`, `eni-control-01`); for an
    /// instance, its unit name (instances are found by `frankenetes.dev/unit`).
    pub fn tag(&self) -> String {
        match self {
            Role::Vpc => "vpc".into(),
            Role::Subnet(t) => format!("subnet-{}", t.suffix()),
            Role::InternetGateway => "igw".into(),
            Role::RouteTable(t) => format!("rt-{}", t.suffix()),
            Role::SecurityGroup(t) => format!("sg-{}", t.suffix()),
            Role::NetworkInterface(Machine::Gateway(_)) => "eni-gateway".into(),
            Role::NetworkInterface(Machine::Node(n)) => format!("eni-{}", n.as_str()),
            Role::ElasticIp => "eip-gateway".into(),
            Role::Instance(m) => m.unit().to_owned(),
            Role::TargetGroup => "target-group".into(),
            Role::LoadBalancer => "load-balancer".into(),
            Role::Listener => "listener".into(),
            Role::PayloadBucket => "payloads".into(),
        }
    }

    /// The roles it uses (they are made first). `gateway`: the lab's gateway; `in_bucket`: the
    /// machine boots from the payload bucket (its config is over EC2's user-data limit even
    /// compressed).
    pub(crate) fn needs(&self, gateway: &Machine, in_bucket: bool) -> Vec<Role> {
        match self {
            Role::Vpc | Role::PayloadBucket => vec![],
            Role::Subnet(_)
            | Role::InternetGateway
            | Role::SecurityGroup(_)
            | Role::TargetGroup => {
                vec![Role::Vpc]
            }
            Role::NetworkInterface(m) => {
                vec![Role::Subnet(m.tier()), Role::SecurityGroup(m.tier())]
            }
            Role::RouteTable(Tier::Gateway) => {
                vec![
                    Role::Vpc,
                    Role::Subnet(Tier::Gateway),
                    Role::InternetGateway,
                ]
            }
            Role::RouteTable(Tier::Nodes) => vec![
                Role::Vpc,
                Role::Subnet(Tier::Nodes),
                Role::NetworkInterface(gateway.clone()),
            ],
            Role::ElasticIp => vec![
                Role::NetworkInterface(gateway.clone()),
                Role::InternetGateway,
            ],
            Role::Instance(m) => {
                let mut v = vec![Role::NetworkInterface(m.clone())];
                if in_bucket {
                    v.push(Role::PayloadBucket);
                }
                v
            }
            Role::LoadBalancer => vec![Role::Subnet(Tier::Nodes)],
            Role::Listener => vec![Role::LoadBalancer, Role::TargetGroup],
        }
    }
}

impl Role {
    /// What identifies the role in AWS: its kind and tag.
    pub(crate) fn key(&self) -> (Kind, String) {
        (self.kind(), self.tag())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind(), self.tag())
    }
}

/// One AWS resource of the lab, as found or made.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub struct Resource {
    /// Its kind.
    pub kind: Kind,
    /// AWS's id, ARN or (for the bucket) name.
    pub id: String,
    /// Its role in the lab ([`Role::tag`]), from its tags: `subnet-nodes`, `eni-control-01`;
    /// for an instance or a volume, its unit (`control-01`).
    pub role: String,
}

impl Resource {
    /// A resource.
    pub fn new(kind: Kind, id: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
            role: role.into(),
        }
    }

    /// Whether it plays `role`.
    pub fn is(&self, role: &Role) -> bool {
        let (kind, tag) = role.key();
        self.kind == kind && self.role == tag
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.kind, self.id, self.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_in_the_enums_order() {
        for (i, row) in KINDS.iter().enumerate() {
            assert_eq!(row.kind as usize, i, "{}", row.name);
            assert_eq!(Kind::ALL[i], row.kind);
        }
    }

    #[test]
    fn the_delete_order_follows_the_dependencies() {
        let waves = Kind::delete_waves();
        let flat: Vec<Kind> = waves.iter().flatten().copied().collect();
        assert_eq!(flat.len(), Kind::ALL.len(), "every kind once: {waves:?}");
        let at = |k: Kind| flat.iter().position(|x| *x == k).unwrap();
        let wave = |k: Kind| waves.iter().position(|w| w.contains(&k)).unwrap();
        for k in Kind::ALL {
            for d in k.depends_on() {
                assert!(
                    wave(k) < wave(*d),
                    "{k} is deleted before {d}, which it uses"
                );
            }
        }
        // What AWS insists on: listeners before load balancers, instances before their
        // interfaces, interfaces before subnets and groups, addresses before the internet
        // gateway, everything in the VPC before the VPC.
        assert!(at(Kind::Listener) < at(Kind::LoadBalancer));
        assert!(at(Kind::Listener) < at(Kind::TargetGroup));
        assert!(at(Kind::Instance) < at(Kind::NetworkInterface));
        assert!(at(Kind::Instance) < at(Kind::PayloadBucket));
        assert!(at(Kind::NetworkInterface) < at(Kind::Subnet));
        assert!(at(Kind::NetworkInterface) < at(Kind::SecurityGroup));
        assert!(at(Kind::ElasticIp) < at(Kind::InternetGateway));
        assert!(at(Kind::LoadBalancer) < at(Kind::Subnet));
        assert_eq!(*waves.last().unwrap(), vec![Kind::Vpc]);
    }

    #[test]
    fn role_tags_are_the_ones_up_wrote_before() {
        let n = NodeName::try_from("control-01").unwrap();
        let g = NodeName::try_from("gw").unwrap();
        assert_eq!(Role::Subnet(Tier::Nodes).tag(), "subnet-nodes");
        assert_eq!(Role::RouteTable(Tier::Gateway).tag(), "rt-gateway");
        assert_eq!(Role::SecurityGroup(Tier::Nodes).tag(), "sg-nodes");
        assert_eq!(
            Role::NetworkInterface(Machine::Node(n.clone())).tag(),
            "eni-control-01"
        );
        assert_eq!(
            Role::NetworkInterface(Machine::Gateway(g.clone())).tag(),
            "eni-gateway"
        );
        assert_eq!(Role::Instance(Machine::Gateway(g)).tag(), "gw");
        assert_eq!(Role::Instance(Machine::Node(n)).tag(), "control-01");
        assert_eq!(Role::ElasticIp.tag(), "eip-gateway");
        assert_eq!(Kind::PayloadBucket.to_string(), "s3-bucket");
    }
}
