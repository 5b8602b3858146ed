//! The cheap lab: a VPC, a NAT/WireGuard gateway instance, the cluster's nodes and an internal
//! NLB in front of the control planes — up (idempotent), down (leak-free) and audited.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, InstanceStateName, IpPermission, IpRange,
    ResourceType, UserIdGroupPair,
};
use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
    SubnetMapping, TargetDescription, TargetTypeEnum,
};
use frankenetes_compute::ClusterTag;
use frankenetes_spec::{AwsBackend, BackendSpec, ClusterSpec, GatewaySpec, NodeName};
use futures_util::future::{try_join, try_join_all};

use crate::Error;
use crate::ec2::{self, Launch, Placement, Timing};
use crate::error::api;
use crate::store::Store;
use crate::tags::{self, ROLE_KEY};

/// The Fedora CoreOS publisher's AWS account (owner of the official AMIs).
pub const FEDORA_COREOS_OWNER: &str = "125523088429";
/// The API port the NLB listens on and forwards to.
pub const API_PORT: u16 = 6443;

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

/// One AWS resource of the lab.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
#[non_exhaustive]
pub struct Resource {
    /// Its kind (`vpc`, `subnet`, `instance`, `load-balancer`, ...).
    pub kind: &'static str,
    /// AWS's id or ARN.
    pub id: String,
    /// Its role in the lab (`subnet-nodes`), from its tag.
    pub role: String,
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.kind, self.id, self.role)
    }
}

/// What `up` and `down` report as they go, for a progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An existing resource was found by its tags and adopted.
    Found(Resource),
    /// A resource was created.
    Created(Resource),
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
            Event::Found(r) => write!(f, "found   {r}"),
            Event::Created(r) => write!(f, "created {r}"),
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

/// What `up` did and where the lab can be reached.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpReport {
    /// Resources created by this run (empty on a converged lab).
    pub created: Vec<Resource>,
    /// Resources that existed and were adopted.
    pub found: Vec<Resource>,
    /// The gateway's Elastic IP: WireGuard clients dial it.
    pub gateway_public_ip: Option<String>,
    /// The internal NLB's DNS name.
    pub load_balancer_dns: Option<String>,
    /// Instance id of every machine, by unit name (the nodes and the gateway).
    pub instances: BTreeMap<String, String>,
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

/// The progress callback's type.
pub type OnEvent<'a> = &'a (dyn Fn(&Event) + Send + Sync);

/// The lab of one cluster: `plan`, `up`, `down`, `audit`. Needs `spec.backend.aws` and
/// `spec.gateway`.
#[derive(Debug, Clone)]
pub struct Lab {
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) elb: aws_sdk_elasticloadbalancingv2::Client,
    pub(crate) spec: ClusterSpec,
    pub(crate) aws: AwsBackend,
    pub(crate) gateway: GatewaySpec,
    payloads: LabPayloads,
    pub(crate) store: Store,
    timing: Timing,
}

/// Collects what `up` found and created, and forwards each event.
struct Recorder<'a> {
    on: OnEvent<'a>,
    created: Mutex<Vec<Resource>>,
    found: Mutex<Vec<Resource>>,
}

impl Recorder<'_> {
    fn found(&self, kind: &'static str, id: &str, role: &str) {
        let r = Resource {
            kind,
            id: id.to_owned(),
            role: role.to_owned(),
        };
        (self.on)(&Event::Found(r.clone()));
        if let Ok(mut v) = self.found.lock() {
            v.push(r);
        }
    }
    fn created(&self, kind: &'static str, id: &str, role: &str) {
        let r = Resource {
            kind,
            id: id.to_owned(),
            role: role.to_owned(),
        };
        (self.on)(&Event::Created(r.clone()));
        if let Ok(mut v) = self.created.lock() {
            v.push(r);
        }
    }
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

/// The node name of the machine a unit is, and its role tag.
pub(crate) fn lb_name(cluster: &str) -> String {
    // NLB and target-group names: at most 32 letters, digits and hyphens.
    let mut base: String = cluster.chars().take(28).collect();
    while base.ends_with('-') {
        base.pop();
    }
    format!("{base}-api")
}

impl Lab {
    /// The lab of `spec` (which must have `backend: aws` and a `gateway`), on the credentials,
    /// region and endpoint of `sdk`; `spec.backend.aws.region`, when set, overrides the region.
    pub fn new(
        sdk: &aws_config::SdkConfig,
        spec: &ClusterSpec,
        payloads: LabPayloads,
    ) -> Result<Self, Error> {
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
        Ok(Self {
            ec2: aws_sdk_ec2::Client::from_conf(ec2_conf.build()),
            elb: aws_sdk_elasticloadbalancingv2::Client::from_conf(elb_conf.build()),
            spec: spec.clone(),
            aws: aws.clone(),
            gateway,
            payloads,
            store: Store::new(sdk, aws.region.as_deref(), spec.name.as_str()),
            timing: Timing::default(),
        })
    }

    /// The lab of `spec` for [`Lab::desired_plan`] only: no credentials are read and every
    /// AWS call fails (its endpoint is `http://offline.invalid`).
    pub fn offline(spec: &ClusterSpec, payloads: LabPayloads) -> Result<Self, Error> {
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
        Self::new(&sdk, spec, payloads)
    }

    /// With other poll intervals and timeouts (tests poll fast).
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }

    /// The machines whose Ignition config does not fit in user data even compressed: they
    /// fetch it from the payload bucket.
    pub(crate) fn oversized_units(&self) -> Vec<String> {
        let too_large = |unit: &str, p: &[u8]| {
            matches!(
                crate::userdata::encode(unit, p),
                Err(Error::UserDataTooLarge { .. })
            )
        };
        let mut out = Vec::new();
        if too_large(self.gateway.name.as_str(), &self.payloads.gateway) {
            out.push(self.gateway.name.as_str().to_owned());
        }
        for (name, p) in &self.payloads.nodes {
            if too_large(name.as_str(), p) {
                out.push(name.as_str().to_owned());
            }
        }
        out
    }

    pub(crate) fn cluster(&self) -> &str {
        self.spec.name.as_str()
    }

    fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.cluster())
    }

    /// The load balancer's address in the node subnet.
    pub(crate) fn lb_ip(&self) -> String {
        self.aws
            .load_balancer_address()
            .map(|ip| ip.to_string())
            .unwrap_or_default()
    }

    /// The gateway's ingress rules: WireGuard from anywhere, everything from the VPC (it
    /// forwards and masquerades the VPC's traffic).
    pub(crate) fn gateway_rules(&self) -> Vec<Rule> {
        let port = i32::from(self.gateway.tunnel.listen_port);
        vec![
            Rule {
                proto: "udp",
                from: port,
                to: port,
                source: Source::Cidr("0.0.0.0/0".into()),
                why: "WireGuard",
            },
            Rule {
                proto: "-1",
                from: -1,
                to: -1,
                source: Source::Cidr(self.aws.vpc_cidr.to_string()),
                why: "NAT for the VPC",
            },
        ]
    }

    /// The nodes' ingress rules: the API from the VPC and the tunnel, etcd and the kubelet
    /// between nodes, SSH only from the tunnel.
    pub(crate) fn node_rules(&self) -> Vec<Rule> {
        let vpc = self.aws.vpc_cidr.to_string();
        let tunnel = self.gateway.tunnel.cidr.to_string();
        let api = i32::from(API_PORT);
        vec![
            Rule {
                proto: "tcp",
                from: api,
                to: api,
                source: Source::Cidr(vpc),
                why: "kube-apiserver from the VPC (NLB)",
            },
            Rule {
                proto: "tcp",
                from: api,
                to: api,
                source: Source::Cidr(tunnel.clone()),
                why: "kube-apiserver from the tunnel",
            },
            Rule {
                proto: "tcp",
                from: 2379,
                to: 2380,
                source: Source::Own,
                why: "etcd between control planes",
            },
            Rule {
                proto: "tcp",
                from: 10250,
                to: 10250,
                source: Source::Own,
                why: "kubelet",
            },
            Rule {
                proto: "tcp",
                from: 22,
                to: 22,
                source: Source::Cidr(tunnel),
                why: "SSH from the tunnel",
            },
        ]
    }

    /// The architecture of an instance type (`t4g.small` → `arm64`).
    pub(crate) fn arch(instance_type: &str) -> &'static str {
        let family = instance_type.split('.').next().unwrap_or_default();
        let graviton = family.len() > 2 && family[2..].contains('g') && !family.starts_with("g");
        if graviton { "arm64" } else { "x86_64" }
    }

    /// The AMI: `spec.backend.aws.ami`, or the newest Fedora CoreOS image for the architecture.
    pub(crate) async fn resolve_ami(&self, instance_type: &str) -> Result<String, Error> {
        if let Some(ami) = &self.aws.ami {
            return Ok(ami.clone());
        }
        let arch = Self::arch(instance_type);
        let out = self
            .ec2
            .describe_images()
            .owners(FEDORA_COREOS_OWNER)
            .filters(tags::field("name", &["fedora-coreos-*"]))
            .filters(tags::field("architecture", &[arch]))
            .filters(tags::field("state", &["available"]))
            .send()
            .await
            .map_err(|e| api("DescribeImages", "fedora-coreos-*", e))?;
        out.images()
            .iter()
            .filter(|i| i.name().is_some_and(|n| !n.contains("-dev") && !n.contains("next") && !n.contains("testing")))
            .max_by(|a, b| a.creation_date().cmp(&b.creation_date()))
            .or_else(|| out.images().iter().max_by(|a, b| a.creation_date().cmp(&b.creation_date())))
            .and_then(|i| i.image_id())
            .map(str::to_owned)
            .ok_or_else(|| Error::Spec {
                field: "spec.backend.aws.ami".into(),
                message: format!(
                    "no Fedora CoreOS {arch} AMI (owner {FEDORA_COREOS_OWNER}) found in this region; give one as `ami: ami-...`"
                ),
            })
    }

    // ---------------------------------------------------------------------------------- up

    /// Creates whatever of the lab is missing and adopts what exists (found by its tags);
    /// a second run creates nothing. Every resource carries the cluster tag from its create
    /// call on. Independent resources are created concurrently. `on` sees every step.
    pub async fn up(&self, on: OnEvent<'_>) -> Result<UpReport, Error> {
        let rec = Recorder {
            on,
            created: Mutex::new(Vec::new()),
            found: Mutex::new(Vec::new()),
        };
        // Payloads first: fail before creating anything.
        let gw_name = self.gateway.name.as_str().to_owned();
        let mut machines: Vec<(String, &'static str, String, Vec<u8>, String)> = Vec::new();
        for (node, _) in self.spec.nodes() {
            let payload = self
                .payloads
                .nodes
                .get(&node.name)
                .ok_or_else(|| Error::Spec {
                    field: format!("payloads.nodes[{}]", node.name.as_str()),
                    message:
                        "no Ignition config given for this node; render the node bundles first"
                            .into(),
                })?;
            machines.push((
                node.name.as_str().to_owned(),
                "node",
                self.aws.instance_type.clone(),
                payload.clone(),
                node.ip.to_string(),
            ));
        }
        // Configs over EC2's limit even compressed go to the payload bucket; the machine gets
        // a stub that fetches its config from there.
        let mut gw_payload = self.payloads.gateway.clone();
        let too_large = |unit: &str, p: &[u8]| {
            matches!(
                crate::userdata::encode(unit, p),
                Err(Error::UserDataTooLarge { .. })
            )
        };
        let needs_store =
            too_large(&gw_name, &gw_payload) || machines.iter().any(|m| too_large(&m.0, &m.3));
        if needs_store {
            let (bucket, created) = self.store.ensure().await?;
            if created {
                rec.created("s3-bucket", &bucket, "payloads");
            } else {
                rec.found("s3-bucket", &bucket, "payloads");
            }
            // A machine that already runs booted from its config: upload only for the others,
            // so a converged lab makes no write call here either.
            let live: BTreeSet<String> = ec2::list_instances(&self.ec2, self.cluster())
                .await?
                .iter()
                .filter_map(|i| tags::value(i.tags(), tags::UNIT_KEY).map(str::to_owned))
                .collect();
            if too_large(&gw_name, &gw_payload) && !live.contains(&gw_name) {
                gw_payload = self.store.put(&bucket, &gw_name, &gw_payload).await?;
            }
            for m in &mut machines {
                if too_large(&m.0, &m.3) && !live.contains(&m.0) {
                    m.3 = self.store.put(&bucket, &m.0, &m.3).await?;
                }
            }
        }

        let (node_ami, vpc) = try_join(
            self.resolve_ami(&self.aws.instance_type),
            self.ensure_vpc(&rec),
        )
        .await?;
        let gw_ami =
            if Self::arch(&self.aws.gateway_instance_type) == Self::arch(&self.aws.instance_type) {
                node_ami.clone()
            } else {
                self.resolve_ami(&self.aws.gateway_instance_type).await?
            };

        let az = self.aws.availability_zone.clone();
        let (nodes_cidr, gw_cidr) = (
            self.aws.subnet_cidr.to_string(),
            self.aws.gateway_subnet_cidr.to_string(),
        );
        let (subnet_nodes, subnet_gw, igw, sg_gw, sg_nodes, tg) = tokio::try_join!(
            self.ensure_subnet(&rec, &vpc, "subnet-nodes", &nodes_cidr, az.as_deref()),
            self.ensure_subnet(&rec, &vpc, "subnet-gateway", &gw_cidr, az.as_deref()),
            self.ensure_igw(&rec, &vpc),
            self.ensure_sg(
                &rec,
                &vpc,
                "sg-gateway",
                "frankenetes gateway: WireGuard in, NAT for the VPC",
                self.gateway_rules()
            ),
            self.ensure_sg(
                &rec,
                &vpc,
                "sg-nodes",
                "frankenetes nodes: API, etcd, kubelet, SSH from the tunnel",
                self.node_rules()
            ),
            self.ensure_target_group(&rec, &vpc),
        )?;

        let gateway_branch = async {
            let eni = self
                .ensure_eni(
                    &rec,
                    &subnet_gw,
                    &sg_gw,
                    &self.gateway.ip.to_string(),
                    "eni-gateway",
                    false,
                )
                .await?;
            let rt_nodes = async {
                let mut routes = vec![("0.0.0.0/0".to_owned(), Target::Eni(eni.clone()))];
                routes.push((
                    self.gateway.tunnel.cidr.to_string(),
                    Target::Eni(eni.clone()),
                ));
                self.ensure_route_table(&rec, &vpc, "rt-nodes", &subnet_nodes, routes)
                    .await
            };
            let rt_gw = self.ensure_route_table(
                &rec,
                &vpc,
                "rt-gateway",
                &subnet_gw,
                vec![("0.0.0.0/0".to_owned(), Target::Igw(igw.clone()))],
            );
            let inst = self.ensure_instance(
                &rec,
                &gw_name,
                "gateway",
                &self.aws.gateway_instance_type,
                &gw_ami,
                &gw_payload,
                &eni,
            );
            let (eip, (), (), inst) =
                tokio::try_join!(self.ensure_eip(&rec, &eni), rt_nodes, rt_gw, inst)?;
            Ok::<_, Error>((eip, (gw_name.clone(), inst)))
        };
        let nodes_branch = try_join_all(machines.iter().map(|(name, role, size, payload, ip)| {
            let (subnet, sg, ami, rec) = (&subnet_nodes, &sg_nodes, &node_ami, &rec);
            async move {
                let eni = self
                    .ensure_eni(rec, subnet, sg, ip, &format!("eni-{name}"), true)
                    .await?;
                let id = self
                    .ensure_instance(rec, name, role, size, ami, payload, &eni)
                    .await?;
                Ok::<_, Error>((name.clone(), id))
            }
        }));
        let lb_branch = async {
            let targets = self.ensure_targets(&tg);
            let lb = async {
                let (arn, dns) = self.ensure_lb(&rec, &subnet_nodes).await?;
                self.ensure_listener(&rec, &arn, &tg).await?;
                Ok::<_, Error>(dns)
            };
            let ((), dns) = try_join(targets, lb).await?;
            Ok::<_, Error>(dns)
        };
        let ((eip, gw_inst), nodes, dns) =
            tokio::try_join!(gateway_branch, nodes_branch, lb_branch)?;

        let mut instances: BTreeMap<String, String> = nodes.into_iter().collect();
        instances.insert(gw_inst.0, gw_inst.1);
        self.wait_running(on, &instances.values().cloned().collect::<Vec<_>>())
            .await?;
        Ok(UpReport {
            created: rec.created.into_inner().unwrap_or_default(),
            found: rec.found.into_inner().unwrap_or_default(),
            gateway_public_ip: Some(eip),
            load_balancer_dns: dns,
            instances,
        })
    }

    fn tag_filters(&self, role: &str) -> [Filter; 2] {
        [
            tags::filter(ClusterTag::KEY, self.cluster()),
            tags::filter(ROLE_KEY, role),
        ]
    }

    async fn ensure_vpc(&self, rec: &Recorder<'_>) -> Result<String, Error> {
        let role = "vpc";
        let out = self
            .ec2
            .describe_vpcs()
            .set_filters(Some(self.tag_filters(role).to_vec()))
            .send()
            .await
            .map_err(|e| api("DescribeVpcs", role, e))?;
        if let Some(id) = out.vpcs().first().and_then(|v| v.vpc_id()) {
            rec.found("vpc", id, role);
            return Ok(id.to_owned());
        }
        let out = self
            .ec2
            .create_vpc()
            .cidr_block(self.aws.vpc_cidr.to_string())
            .tag_specifications(tags::spec(
                ResourceType::Vpc,
                self.cluster(),
                role,
                &self.name("vpc"),
                &[],
            ))
            .send()
            .await
            .map_err(|e| api("CreateVpc", self.aws.vpc_cidr, e))?;
        let id = out.vpc().and_then(|v| v.vpc_id()).ok_or(Error::Missing {
            op: "CreateVpc",
            field: "VpcId",
        })?;
        rec.created("vpc", id, role);
        Ok(id.to_owned())
    }

    async fn ensure_subnet(
        &self,
        rec: &Recorder<'_>,
        vpc: &str,
        role: &str,
        cidr: &str,
        az: Option<&str>,
    ) -> Result<String, Error> {
        let out = self
            .ec2
            .describe_subnets()
            .set_filters(Some(self.tag_filters(role).to_vec()))
            .send()
            .await
            .map_err(|e| api("DescribeSubnets", role, e))?;
        if let Some(id) = out.subnets().first().and_then(|v| v.subnet_id()) {
            rec.found("subnet", id, role);
            return Ok(id.to_owned());
        }
        let out = self
            .ec2
            .create_subnet()
            .vpc_id(vpc)
            .cidr_block(cidr)
            .set_availability_zone(az.map(str::to_owned))
            .tag_specifications(tags::spec(
                ResourceType::Subnet,
                self.cluster(),
                role,
                &self.name(role),
                &[],
            ))
            .send()
            .await
            .map_err(|e| api("CreateSubnet", cidr, e))?;
        let id = out
            .subnet()
            .and_then(|v| v.subnet_id())
            .ok_or(Error::Missing {
                op: "CreateSubnet",
                field: "SubnetId",
            })?;
        rec.created("subnet", id, role);
        Ok(id.to_owned())
    }

    async fn ensure_igw(&self, rec: &Recorder<'_>, vpc: &str) -> Result<String, Error> {
        let role = "igw";
        let out = self
            .ec2
            .describe_internet_gateways()
            .set_filters(Some(self.tag_filters(role).to_vec()))
            .send()
            .await
            .map_err(|e| api("DescribeInternetGateways", role, e))?;
        let (id, attached) = if let Some(g) = out.internet_gateways().first() {
            let id = g.internet_gateway_id().unwrap_or_default().to_owned();
            rec.found("internet-gateway", &id, role);
            let attached = g.attachments().iter().any(|a| a.vpc_id() == Some(vpc));
            (id, attached)
        } else {
            let out = self
                .ec2
                .create_internet_gateway()
                .tag_specifications(tags::spec(
                    ResourceType::InternetGateway,
                    self.cluster(),
                    role,
                    &self.name(role),
                    &[],
                ))
                .send()
                .await
                .map_err(|e| api("CreateInternetGateway", role, e))?;
            let id = out
                .internet_gateway()
                .and_then(|g| g.internet_gateway_id())
                .ok_or(Error::Missing {
                    op: "CreateInternetGateway",
                    field: "InternetGatewayId",
                })?
                .to_owned();
            rec.created("internet-gateway", &id, role);
            (id, false)
        };
        if !attached {
            self.ec2
                .attach_internet_gateway()
                .internet_gateway_id(&id)
                .vpc_id(vpc)
                .send()
                .await
                .map_err(|e| api("AttachInternetGateway", &id, e))?;
        }
        Ok(id)
    }

    async fn ensure_sg(
        &self,
        rec: &Recorder<'_>,
        vpc: &str,
        role: &str,
        description: &str,
        rules: Vec<Rule>,
    ) -> Result<String, Error> {
        let out = self
            .ec2
            .describe_security_groups()
            .set_filters(Some(self.tag_filters(role).to_vec()))
            .send()
            .await
            .map_err(|e| api("DescribeSecurityGroups", role, e))?;
        let id = if let Some(id) = out.security_groups().first().and_then(|g| g.group_id()) {
            rec.found("security-group", id, role);
            id.to_owned()
        } else {
            let out = self
                .ec2
                .create_security_group()
                .group_name(self.name(role))
                .description(description)
                .vpc_id(vpc)
                .tag_specifications(tags::spec(
                    ResourceType::SecurityGroup,
                    self.cluster(),
                    role,
                    &self.name(role),
                    &[],
                ))
                .send()
                .await
                .map_err(|e| api("CreateSecurityGroup", role, e))?;
            let id = out
                .group_id()
                .ok_or(Error::Missing {
                    op: "CreateSecurityGroup",
                    field: "GroupId",
                })?
                .to_owned();
            rec.created("security-group", &id, role);
            id
        };
        // Only the rules that are missing: a converged lab makes no write call.
        let existing = self
            .ec2
            .describe_security_group_rules()
            .filters(tags::field("group-id", &[&id]))
            .send()
            .await
            .map_err(|e| api("DescribeSecurityGroupRules", &id, e))?;
        let have: BTreeSet<(String, i32, i32, String)> = existing
            .security_group_rules()
            .iter()
            .filter(|r| r.is_egress() != Some(true))
            .map(|r| {
                let proto = r.ip_protocol().unwrap_or_default().to_owned();
                let (from, to) = if proto == "-1" {
                    (-1, -1)
                } else {
                    (r.from_port().unwrap_or(-1), r.to_port().unwrap_or(-1))
                };
                let src = r
                    .cidr_ipv4()
                    .map(str::to_owned)
                    .or_else(|| {
                        r.referenced_group_info()
                            .and_then(|g| g.group_id())
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                (proto, from, to, src)
            })
            .collect();
        let missing: Vec<IpPermission> = rules
            .iter()
            .filter(|r| {
                let src = match &r.source {
                    Source::Cidr(c) => c.clone(),
                    Source::Own => id.clone(),
                };
                !have.contains(&(r.proto.to_owned(), r.from, r.to, src))
            })
            .map(|r| {
                let b = IpPermission::builder()
                    .ip_protocol(r.proto)
                    .from_port(r.from)
                    .to_port(r.to);
                match &r.source {
                    Source::Cidr(c) => {
                        b.ip_ranges(IpRange::builder().cidr_ip(c).description(r.why).build())
                    }
                    Source::Own => b.user_id_group_pairs(
                        UserIdGroupPair::builder()
                            .group_id(&id)
                            .description(r.why)
                            .build(),
                    ),
                }
                .build()
            })
            .collect();
        if !missing.is_empty() {
            let n = missing.len();
            let res = self
                .ec2
                .authorize_security_group_ingress()
                .group_id(&id)
                .set_ip_permissions(Some(missing))
                .tag_specifications(tags::spec(
                    ResourceType::SecurityGroupRule,
                    self.cluster(),
                    role,
                    &self.name(role),
                    &[],
                ))
                .send()
                .await;
            match res.map_err(|e| api("AuthorizeSecurityGroupIngress", &id, e)) {
                Ok(_) => rec.created("security-group-rules", &format!("{id} (+{n})"), role),
                Err(e) if e.code() == Some("InvalidPermission.Duplicate") => {}
                Err(e) => return Err(e),
            }
        }
        Ok(id)
    }

    async fn ensure_eni(
        &self,
        rec: &Recorder<'_>,
        subnet: &str,
        sg: &str,
        ip: &str,
        role: &str,
        source_dest_check: bool,
    ) -> Result<String, Error> {
        let out = self
            .ec2
            .describe_network_interfaces()
            .set_filters(Some(self.tag_filters(role).to_vec()))
            .send()
            .await
            .map_err(|e| api("DescribeNetworkInterfaces", role, e))?;
        let (id, sdc) = if let Some(n) = out.network_interfaces().first() {
            let id = n.network_interface_id().unwrap_or_default().to_owned();
            rec.found("network-interface", &id, role);
            (id, n.source_dest_check())
        } else {
            let out = self
                .ec2
                .create_network_interface()
                .subnet_id(subnet)
                .private_ip_address(ip)
                .groups(sg)
                .description(self.name(role))
                .tag_specifications(tags::spec(
                    ResourceType::NetworkInterface,
                    self.cluster(),
                    role,
                    &self.name(role),
                    &[],
                ))
                .send()
                .await
                .map_err(|e| api("CreateNetworkInterface", ip, e))?;
            let n = out.network_interface().ok_or(Error::Missing {
                op: "CreateNetworkInterface",
                field: "NetworkInterface",
            })?;
            let id = n.network_interface_id().unwrap_or_default().to_owned();
            rec.created("network-interface", &id, role);
            (id, n.source_dest_check())
        };
        if sdc != Some(source_dest_check) {
            self.ec2
                .modify_network_interface_attribute()
                .network_interface_id(&id)
                .source_dest_check(
                    AttributeBooleanValue::builder()
                        .value(source_dest_check)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| api("ModifyNetworkInterfaceAttribute", &id, e))?;
        }
        Ok(id)
    }

    async fn ensure_eip(&self, rec: &Recorder<'_>, eni: &str) -> Result<String, Error> {
        let role = "eip-gateway";
        let out = self
            .ec2
            .describe_addresses()
            .set_filters(Some(self.tag_filters(role).to_vec()))
            .send()
            .await
            .map_err(|e| api("DescribeAddresses", role, e))?;
        let (alloc, ip, on) = if let Some(a) = out.addresses().first() {
            let alloc = a.allocation_id().unwrap_or_default().to_owned();
            rec.found("elastic-ip", &alloc, role);
            (
                alloc,
                a.public_ip().unwrap_or_default().to_owned(),
                a.network_interface_id().map(str::to_owned),
            )
        } else {
            let out = self
                .ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(tags::spec(
                    ResourceType::ElasticIp,
                    self.cluster(),
                    role,
                    &self.name(role),
                    &[],
                ))
                .send()
                .await
                .map_err(|e| api("AllocateAddress", role, e))?;
            let alloc = out
                .allocation_id()
                .ok_or(Error::Missing {
                    op: "AllocateAddress",
                    field: "AllocationId",
                })?
                .to_owned();
            rec.created("elastic-ip", &alloc, role);
            (alloc, out.public_ip().unwrap_or_default().to_owned(), None)
        };
        if on.as_deref() != Some(eni) {
            self.ec2
                .associate_address()
                .allocation_id(&alloc)
                .network_interface_id(eni)
                .send()
                .await
                .map_err(|e| api("AssociateAddress", &alloc, e))?;
        }
        Ok(ip)
    }

    async fn ensure_route_table(
        &self,
        rec: &Recorder<'_>,
        vpc: &str,
        role: &str,
        subnet: &str,
        routes: Vec<(String, Target)>,
    ) -> Result<(), Error> {
        let out = self
            .ec2
            .describe_route_tables()
            .set_filters(Some(self.tag_filters(role).to_vec()))
            .send()
            .await
            .map_err(|e| api("DescribeRouteTables", role, e))?;
        let (id, table) = if let Some(t) = out.route_tables().first() {
            let id = t.route_table_id().unwrap_or_default().to_owned();
            rec.found("route-table", &id, role);
            (id, Some(t.clone()))
        } else {
            let out = self
                .ec2
                .create_route_table()
                .vpc_id(vpc)
                .tag_specifications(tags::spec(
                    ResourceType::RouteTable,
                    self.cluster(),
                    role,
                    &self.name(role),
                    &[],
                ))
                .send()
                .await
                .map_err(|e| api("CreateRouteTable", role, e))?;
            let t = out.route_table().ok_or(Error::Missing {
                op: "CreateRouteTable",
                field: "RouteTable",
            })?;
            let id = t.route_table_id().unwrap_or_default().to_owned();
            rec.created("route-table", &id, role);
            (id, Some(t.clone()))
        };
        let existing = table
            .as_ref()
            .map(|t| t.routes().to_vec())
            .unwrap_or_default();
        for (dest, target) in routes {
            let current = existing
                .iter()
                .find(|r| r.destination_cidr_block() == Some(dest.as_str()));
            let ok = current.is_some_and(|r| match &target {
                Target::Igw(g) => r.gateway_id() == Some(g.as_str()),
                Target::Eni(n) => r.network_interface_id() == Some(n.as_str()),
            });
            if ok {
                continue;
            }
            if current.is_some() {
                let b = self
                    .ec2
                    .replace_route()
                    .route_table_id(&id)
                    .destination_cidr_block(&dest);
                let b = match &target {
                    Target::Igw(g) => b.gateway_id(g),
                    Target::Eni(n) => b.network_interface_id(n),
                };
                b.send().await.map_err(|e| api("ReplaceRoute", &id, e))?;
            } else {
                let b = self
                    .ec2
                    .create_route()
                    .route_table_id(&id)
                    .destination_cidr_block(&dest);
                let b = match &target {
                    Target::Igw(g) => b.gateway_id(g),
                    Target::Eni(n) => b.network_interface_id(n),
                };
                b.send().await.map_err(|e| api("CreateRoute", &id, e))?;
            }
        }
        let associated = table.as_ref().is_some_and(|t| {
            t.associations()
                .iter()
                .any(|a| a.subnet_id() == Some(subnet))
        });
        if !associated {
            self.ec2
                .associate_route_table()
                .route_table_id(&id)
                .subnet_id(subnet)
                .send()
                .await
                .map_err(|e| api("AssociateRouteTable", &id, e))?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)] // one call site per role; a struct would only rename them
    async fn ensure_instance(
        &self,
        rec: &Recorder<'_>,
        unit: &str,
        role: &str,
        size: &str,
        image: &str,
        payload: &[u8],
        eni: &str,
    ) -> Result<String, Error> {
        if let Some(i) = ec2::find_instance(&self.ec2, self.cluster(), unit).await? {
            let id = i.instance_id().unwrap_or_default().to_owned();
            rec.found("instance", &id, unit);
            return Ok(id);
        }
        let i = ec2::launch(
            &self.ec2,
            Launch {
                cluster: self.cluster(),
                unit,
                role,
                size,
                image,
                payload,
                placement: Placement::Eni(eni.to_owned()),
            },
        )
        .await?;
        let id = i.instance_id().unwrap_or_default().to_owned();
        rec.created("instance", &id, unit);
        Ok(id)
    }

    fn elb_tags(&self, role: &str) -> Vec<aws_sdk_elasticloadbalancingv2::types::Tag> {
        use aws_sdk_elasticloadbalancingv2::types::Tag;
        vec![
            Tag::builder()
                .key(ClusterTag::KEY)
                .value(self.cluster())
                .build(),
            Tag::builder().key(ROLE_KEY).value(role).build(),
            Tag::builder().key("Name").value(self.name(role)).build(),
        ]
    }

    async fn ensure_target_group(&self, rec: &Recorder<'_>, vpc: &str) -> Result<String, Error> {
        let role = "target-group";
        let name = lb_name(self.cluster());
        match self.elb.describe_target_groups().names(&name).send().await {
            Ok(out) => {
                if let Some(tg) = out.target_groups().first() {
                    if tg.vpc_id() != Some(vpc) {
                        return Err(Error::Spec {
                            field: "metadata.name".into(),
                            message: format!(
                                "target group {name} exists in another VPC; rename the cluster or delete it"
                            ),
                        });
                    }
                    let arn = tg.target_group_arn().unwrap_or_default().to_owned();
                    rec.found("target-group", &arn, role);
                    return Ok(arn);
                }
            }
            Err(e) => {
                let e = api("DescribeTargetGroups", &name, e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
        let out = self
            .elb
            .create_target_group()
            .name(&name)
            .protocol(ProtocolEnum::Tcp)
            .port(i32::from(API_PORT))
            .target_type(TargetTypeEnum::Ip)
            .vpc_id(vpc)
            .health_check_protocol(ProtocolEnum::Tcp)
            .set_tags(Some(self.elb_tags(role)))
            .send()
            .await
            .map_err(|e| api("CreateTargetGroup", &name, e))?;
        let arn = out
            .target_groups()
            .first()
            .and_then(|t| t.target_group_arn())
            .ok_or(Error::Missing {
                op: "CreateTargetGroup",
                field: "TargetGroupArn",
            })?
            .to_owned();
        rec.created("target-group", &arn, role);
        Ok(arn)
    }

    async fn ensure_targets(&self, tg: &str) -> Result<(), Error> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(tg)
            .send()
            .await
            .map_err(|e| api("DescribeTargetHealth", tg, e))?;
        let have: BTreeSet<&str> = out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target().and_then(|t| t.id()))
            .collect();
        let missing: Vec<TargetDescription> = self
            .spec
            .control_plane
            .iter()
            .map(|n| n.ip.to_string())
            .filter(|ip| !have.contains(ip.as_str()))
            .map(|ip| {
                TargetDescription::builder()
                    .id(ip)
                    .port(i32::from(API_PORT))
                    .build()
            })
            .collect();
        if !missing.is_empty() {
            self.elb
                .register_targets()
                .target_group_arn(tg)
                .set_targets(Some(missing))
                .send()
                .await
                .map_err(|e| api("RegisterTargets", tg, e))?;
        }
        Ok(())
    }

    async fn ensure_lb(
        &self,
        rec: &Recorder<'_>,
        subnet: &str,
    ) -> Result<(String, Option<String>), Error> {
        let role = "load-balancer";
        let name = lb_name(self.cluster());
        match self.elb.describe_load_balancers().names(&name).send().await {
            Ok(out) => {
                if let Some(lb) = out.load_balancers().first() {
                    let arn = lb.load_balancer_arn().unwrap_or_default().to_owned();
                    rec.found("load-balancer", &arn, role);
                    return Ok((arn, lb.dns_name().map(str::to_owned)));
                }
            }
            Err(e) => {
                let e = api("DescribeLoadBalancers", &name, e);
                if !e.is_not_found() {
                    return Err(e);
                }
            }
        }
        let out = self
            .elb
            .create_load_balancer()
            .name(&name)
            .r#type(LoadBalancerTypeEnum::Network)
            .scheme(LoadBalancerSchemeEnum::Internal)
            .subnet_mappings(
                SubnetMapping::builder()
                    .subnet_id(subnet)
                    .private_ipv4_address(self.lb_ip())
                    .build(),
            )
            .set_tags(Some(self.elb_tags(role)))
            .send()
            .await
            .map_err(|e| api("CreateLoadBalancer", &name, e))?;
        let lb = out.load_balancers().first().ok_or(Error::Missing {
            op: "CreateLoadBalancer",
            field: "LoadBalancers",
        })?;
        let arn = lb.load_balancer_arn().unwrap_or_default().to_owned();
        rec.created("load-balancer", &arn, role);
        Ok((arn, lb.dns_name().map(str::to_owned)))
    }

    async fn ensure_listener(&self, rec: &Recorder<'_>, lb: &str, tg: &str) -> Result<(), Error> {
        let role = "listener";
        let out = self
            .elb
            .describe_listeners()
            .load_balancer_arn(lb)
            .send()
            .await
            .map_err(|e| api("DescribeListeners", lb, e))?;
        if let Some(l) = out
            .listeners()
            .iter()
            .find(|l| l.port() == Some(i32::from(API_PORT)))
        {
            rec.found("listener", l.listener_arn().unwrap_or_default(), role);
            return Ok(());
        }
        let out = self
            .elb
            .create_listener()
            .load_balancer_arn(lb)
            .protocol(ProtocolEnum::Tcp)
            .port(i32::from(API_PORT))
            .default_actions(
                Action::builder()
                    .r#type(ActionTypeEnum::Forward)
                    .target_group_arn(tg)
                    .build(),
            )
            .set_tags(Some(self.elb_tags(role)))
            .send()
            .await
            .map_err(|e| api("CreateListener", lb, e))?;
        let arn = out
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default();
        rec.created("listener", arn, role);
        Ok(())
    }

    async fn wait_running(&self, on: OnEvent<'_>, ids: &[String]) -> Result<(), Error> {
        let start = Instant::now();
        on(&Event::Waiting(format!("{} instance(s) to run", ids.len())));
        loop {
            let out = self
                .ec2
                .describe_instances()
                .set_instance_ids(Some(ids.to_vec()))
                .send()
                .await
                .map_err(|e| api("DescribeInstances", ids.join(","), e));
            let pending = match out {
                Ok(out) => out
                    .reservations()
                    .iter()
                    .flat_map(|r| r.instances())
                    .filter(|i| {
                        i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Running)
                    })
                    .count(),
                // Just launched: not yet visible everywhere (eventual consistency).
                Err(e) if e.is_not_found() => ids.len(),
                Err(e) => return Err(e),
            };
            if pending == 0 {
                return Ok(());
            }
            if start.elapsed() > self.timing.timeout {
                return Err(Error::Timeout {
                    what: format!("{pending} instance(s) to run"),
                    seconds: self.timing.timeout.as_secs(),
                });
            }
            tokio::time::sleep(self.timing.interval).await;
        }
    }

    // -------------------------------------------------------------------------------- down

    /// Deletes every resource tagged with the cluster in the region, in dependency order,
    /// retrying `DependencyViolation`, "in use" and throttling with backoff, and returns the
    /// audit that follows (clean when nothing is left). Needs no state: it works after a
    /// crashed `up` and after an earlier `down`. A resource that appears while it runs (a
    /// launch still in flight when `up` died) is caught by a further pass, up to three.
    pub async fn down(&self, on: OnEvent<'_>) -> Result<Audit, Error> {
        let mut audit;
        let mut pass = 0;
        loop {
            pass += 1;
            let deleted = self.down_pass(on).await?;
            audit = self.audit().await?;
            if audit.is_clean() || deleted == 0 || pass == 3 {
                return Ok(audit);
            }
        }
    }

    /// One pass of [`Lab::down`]; returns how many resources it deleted.
    async fn down_pass(&self, on: OnEvent<'_>) -> Result<usize, Error> {
        let count = std::sync::atomic::AtomicUsize::new(0);
        let deleted = |kind: &'static str, id: &str, role: &str| {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            on(&Event::Deleted(Resource {
                kind,
                id: id.to_owned(),
                role: role.to_owned(),
            }));
        };

        // 1. Listeners, load balancers (and wait for them to go: on AWS their ENIs hold the
        //    subnet), target groups.
        let lbs = self.tagged_elb(false).await?;
        for (arn, role) in &lbs {
            let listeners = self
                .elb
                .describe_listeners()
                .load_balancer_arn(arn)
                .send()
                .await;
            if let Ok(out) = listeners {
                for l in out.listeners() {
                    if let Some(larn) = l.listener_arn() {
                        self.retry_gone(on, &format!("delete listener {larn}"), || async {
                            self.elb
                                .delete_listener()
                                .listener_arn(larn)
                                .send()
                                .await
                                .map_err(|e| api("DeleteListener", larn, e))
                        })
                        .await?;
                        deleted("listener", larn, "listener");
                    }
                }
            }
            self.retry_gone(on, &format!("delete load balancer {arn}"), || async {
                self.elb
                    .delete_load_balancer()
                    .load_balancer_arn(arn)
                    .send()
                    .await
                    .map_err(|e| api("DeleteLoadBalancer", arn, e))
            })
            .await?;
            deleted("load-balancer", arn, role);
        }
        if !lbs.is_empty() {
            on(&Event::Waiting("load balancers to go".into()));
            let arns: Vec<String> = lbs.iter().map(|(a, _)| a.clone()).collect();
            self.poll_until("load balancers to be deleted", || async {
                match self
                    .elb
                    .describe_load_balancers()
                    .set_load_balancer_arns(Some(arns.clone()))
                    .send()
                    .await
                {
                    Ok(out) => Ok(out.load_balancers().is_empty()),
                    Err(e) => {
                        let e = api("DescribeLoadBalancers", "lab", e);
                        if e.is_not_found() { Ok(true) } else { Err(e) }
                    }
                }
            })
            .await?;
        }
        for (arn, role) in self.tagged_elb(true).await? {
            self.retry_gone(on, &format!("delete target group {arn}"), || async {
                self.elb
                    .delete_target_group()
                    .target_group_arn(&arn)
                    .send()
                    .await
                    .map_err(|e| api("DeleteTargetGroup", &arn, e))
            })
            .await?;
            deleted("target-group", &arn, &role);
        }

        // 2. Instances, and wait until terminated.
        let instances = ec2::list_instances(&self.ec2, self.cluster()).await?;
        let ids: Vec<String> = instances
            .iter()
            .filter_map(|i| i.instance_id().map(str::to_owned))
            .collect();
        if !ids.is_empty() {
            self.retry_gone(on, "terminate instances", || async {
                self.ec2
                    .terminate_instances()
                    .set_instance_ids(Some(ids.clone()))
                    .send()
                    .await
                    .map_err(|e| api("TerminateInstances", ids.join(","), e))
            })
            .await?;
            for i in &instances {
                let unit = tags::value(i.tags(), tags::UNIT_KEY).unwrap_or_default();
                deleted("instance", i.instance_id().unwrap_or_default(), unit);
            }
            on(&Event::Waiting(format!(
                "{} instance(s) to terminate",
                ids.len()
            )));
            ec2::wait_terminated(&self.ec2, &ids, self.timing).await?;
        }

        // 3. Elastic IPs: disassociate, release.
        let out = self
            .ec2
            .describe_addresses()
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| api("DescribeAddresses", self.cluster(), e))?;
        for a in out.addresses() {
            let alloc = a.allocation_id().unwrap_or_default();
            if let Some(assoc) = a.association_id() {
                self.retry_gone(on, &format!("disassociate {alloc}"), || async {
                    self.ec2
                        .disassociate_address()
                        .association_id(assoc)
                        .send()
                        .await
                        .map_err(|e| api("DisassociateAddress", assoc, e))
                })
                .await?;
            }
            self.retry_gone(on, &format!("release {alloc}"), || async {
                self.ec2
                    .release_address()
                    .allocation_id(alloc)
                    .send()
                    .await
                    .map_err(|e| api("ReleaseAddress", alloc, e))
            })
            .await?;
            deleted("elastic-ip", alloc, role_of(a.tags()));
        }

        // 4. Network interfaces (on AWS they detach a moment after termination).
        let out = self
            .ec2
            .describe_network_interfaces()
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| api("DescribeNetworkInterfaces", self.cluster(), e))?;
        try_join_all(out.network_interfaces().iter().map(|n| async move {
            let id = n.network_interface_id().unwrap_or_default();
            self.retry_gone(on, &format!("delete {id}"), || async {
                self.ec2
                    .delete_network_interface()
                    .network_interface_id(id)
                    .send()
                    .await
                    .map_err(|e| api("DeleteNetworkInterface", id, e))
            })
            .await?;
            deleted("network-interface", id, role_of(n.tag_set()));
            Ok::<_, Error>(())
        }))
        .await?;

        // 5. Route tables: disassociate, delete.
        let out = self
            .ec2
            .describe_route_tables()
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| api("DescribeRouteTables", self.cluster(), e))?;
        for t in out.route_tables() {
            let id = t.route_table_id().unwrap_or_default();
            for a in t.associations() {
                if a.main() == Some(true) {
                    continue;
                }
                if let Some(assoc) = a.route_table_association_id() {
                    self.retry_gone(on, &format!("disassociate {assoc}"), || async {
                        self.ec2
                            .disassociate_route_table()
                            .association_id(assoc)
                            .send()
                            .await
                            .map_err(|e| api("DisassociateRouteTable", assoc, e))
                    })
                    .await?;
                }
            }
            self.retry_gone(on, &format!("delete {id}"), || async {
                self.ec2
                    .delete_route_table()
                    .route_table_id(id)
                    .send()
                    .await
                    .map_err(|e| api("DeleteRouteTable", id, e))
            })
            .await?;
            deleted("route-table", id, role_of(t.tags()));
        }

        // 6. Security groups.
        let out = self
            .ec2
            .describe_security_groups()
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| api("DescribeSecurityGroups", self.cluster(), e))?;
        for g in out.security_groups() {
            let id = g.group_id().unwrap_or_default();
            self.retry_gone(on, &format!("delete {id}"), || async {
                self.ec2
                    .delete_security_group()
                    .group_id(id)
                    .send()
                    .await
                    .map_err(|e| api("DeleteSecurityGroup", id, e))
            })
            .await?;
            deleted("security-group", id, role_of(g.tags()));
        }

        // 7. Subnets.
        let out = self
            .ec2
            .describe_subnets()
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| api("DescribeSubnets", self.cluster(), e))?;
        for s in out.subnets() {
            let id = s.subnet_id().unwrap_or_default();
            self.retry_gone(on, &format!("delete {id}"), || async {
                self.ec2
                    .delete_subnet()
                    .subnet_id(id)
                    .send()
                    .await
                    .map_err(|e| api("DeleteSubnet", id, e))
            })
            .await?;
            deleted("subnet", id, role_of(s.tags()));
        }

        // 8. Internet gateways: detach, delete.
        let out = self
            .ec2
            .describe_internet_gateways()
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| api("DescribeInternetGateways", self.cluster(), e))?;
        for g in out.internet_gateways() {
            let id = g.internet_gateway_id().unwrap_or_default();
            for a in g.attachments() {
                if let Some(vpc) = a.vpc_id() {
                    self.retry_gone(on, &format!("detach {id}"), || async {
                        self.ec2
                            .detach_internet_gateway()
                            .internet_gateway_id(id)
                            .vpc_id(vpc)
                            .send()
                            .await
                            .map_err(|e| api("DetachInternetGateway", id, e))
                    })
                    .await?;
                }
            }
            self.retry_gone(on, &format!("delete {id}"), || async {
                self.ec2
                    .delete_internet_gateway()
                    .internet_gateway_id(id)
                    .send()
                    .await
                    .map_err(|e| api("DeleteInternetGateway", id, e))
            })
            .await?;
            deleted("internet-gateway", id, role_of(g.tags()));
        }

        // 9. VPCs.
        let out = self
            .ec2
            .describe_vpcs()
            .filters(self.cluster_filter())
            .send()
            .await
            .map_err(|e| api("DescribeVpcs", self.cluster(), e))?;
        for v in out.vpcs() {
            let id = v.vpc_id().unwrap_or_default();
            self.retry_gone(on, &format!("delete {id}"), || async {
                self.ec2
                    .delete_vpc()
                    .vpc_id(id)
                    .send()
                    .await
                    .map_err(|e| api("DeleteVpc", id, e))
            })
            .await?;
            deleted("vpc", id, role_of(v.tags()));
        }

        // 10. Volumes left behind (root volumes normally go with their instances).
        for v in self.tagged_volumes().await? {
            let id = v.clone();
            self.retry_gone(on, &format!("delete {id}"), || async {
                self.ec2
                    .delete_volume()
                    .volume_id(&id)
                    .send()
                    .await
                    .map_err(|e| api("DeleteVolume", &id, e))
            })
            .await?;
            deleted("volume", &v, "volume");
        }

        // 11. The payload bucket (its objects first). Found by its derived name, so also when
        //     an `up` died before tagging it.
        if let Some(bucket) = self.store.delete().await? {
            deleted("s3-bucket", &bucket, "payloads");
        }
        Ok(count.into_inner())
    }

    fn cluster_filter(&self) -> Filter {
        tags::filter(ClusterTag::KEY, self.cluster())
    }

    async fn tagged_volumes(&self) -> Result<Vec<String>, Error> {
        let out = self
            .ec2
            .describe_volumes()
            .filters(self.cluster_filter())
            .filters(tags::field(
                "status",
                &["creating", "available", "in-use", "error"],
            ))
            .send()
            .await
            .map_err(|e| api("DescribeVolumes", self.cluster(), e))?;
        Ok(out
            .volumes()
            .iter()
            .filter_map(|v| v.volume_id().map(str::to_owned))
            .collect())
    }

    /// The cluster's load balancers (or target groups) with their role: ELBv2 has no tag
    /// filter, so list them all and read their tags, 20 ARNs per call.
    async fn tagged_elb(&self, target_groups: bool) -> Result<Vec<(String, String)>, Error> {
        let mut arns = Vec::new();
        if target_groups {
            let mut pages = self.elb.describe_target_groups().into_paginator().send();
            while let Some(p) = pages.next().await {
                let p = p.map_err(|e| api("DescribeTargetGroups", self.cluster(), e))?;
                arns.extend(
                    p.target_groups()
                        .iter()
                        .filter_map(|t| t.target_group_arn().map(str::to_owned)),
                );
            }
        } else {
            let mut pages = self.elb.describe_load_balancers().into_paginator().send();
            while let Some(p) = pages.next().await {
                let p = p.map_err(|e| api("DescribeLoadBalancers", self.cluster(), e))?;
                arns.extend(
                    p.load_balancers()
                        .iter()
                        .filter_map(|l| l.load_balancer_arn().map(str::to_owned)),
                );
            }
        }
        let mut ours = Vec::new();
        for chunk in arns.chunks(20) {
            let out = self
                .elb
                .describe_tags()
                .set_resource_arns(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| api("DescribeTags", self.cluster(), e))?;
            for d in out.tag_descriptions() {
                let tag = |k: &str| {
                    d.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                };
                if tag(ClusterTag::KEY) == Some(self.cluster()) {
                    ours.push((
                        d.resource_arn().unwrap_or_default().to_owned(),
                        tag(ROLE_KEY).unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
        Ok(ours)
    }

    /// Runs `f` until it succeeds or fails for good, backing off on retryable errors until
    /// the timeout.
    /// [`Self::retry`] for a delete: a resource already gone counts as deleted.
    async fn retry_gone<T, F, Fut>(
        &self,
        on: OnEvent<'_>,
        what: &str,
        mut f: F,
    ) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        self.retry(on, what, || {
            let call = f();
            async move { ignore_missing(call.await) }
        })
        .await
    }

    async fn retry<T, F, Fut>(&self, on: OnEvent<'_>, what: &str, mut f: F) -> Result<T, Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let start = Instant::now();
        let mut delay = self.timing.interval;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_retryable() && start.elapsed() < self.timing.timeout => {
                    on(&Event::Retrying {
                        what: what.to_owned(),
                        attempt,
                        error: e.to_string(),
                    });
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2)
                        .min(self.timing.interval.max(std::time::Duration::from_secs(30)));
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn poll_until<F, Fut>(&self, what: &str, mut f: F) -> Result<(), Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<bool, Error>>,
    {
        let start = Instant::now();
        loop {
            if f().await? {
                return Ok(());
            }
            if start.elapsed() > self.timing.timeout {
                return Err(Error::Timeout {
                    what: what.to_owned(),
                    seconds: self.timing.timeout.as_secs(),
                });
            }
            tokio::time::sleep(self.timing.interval).await;
        }
    }

    // ------------------------------------------------------------------------------- audit

    /// Every resource in the region that still carries the cluster's tag: instances (not
    /// terminated), volumes, network interfaces, Elastic IPs, security groups, route tables,
    /// internet gateways, subnets, VPCs, load balancers and their listeners, target groups, and the payload bucket (S3).
    /// Read-only.
    pub async fn audit(&self) -> Result<Audit, Error> {
        let mut left = Vec::new();
        let f = self.cluster_filter();
        let r = |kind: &'static str, id: Option<&str>, tags: &[aws_sdk_ec2::types::Tag]| Resource {
            kind,
            id: id.unwrap_or_default().to_owned(),
            role: role_of(tags).to_owned(),
        };
        for i in ec2::list_instances(&self.ec2, self.cluster()).await? {
            left.push(Resource {
                kind: "instance",
                id: i.instance_id().unwrap_or_default().to_owned(),
                role: tags::value(i.tags(), tags::UNIT_KEY)
                    .unwrap_or_default()
                    .to_owned(),
            });
        }
        for v in self.tagged_volumes().await? {
            left.push(Resource {
                kind: "volume",
                id: v,
                role: "volume".into(),
            });
        }
        let c = self.cluster();
        let out = self
            .ec2
            .describe_network_interfaces()
            .filters(f.clone())
            .send()
            .await
            .map_err(|e| api("DescribeNetworkInterfaces", c, e))?;
        left.extend(
            out.network_interfaces()
                .iter()
                .map(|n| r("network-interface", n.network_interface_id(), n.tag_set())),
        );
        let out = self
            .ec2
            .describe_addresses()
            .filters(f.clone())
            .send()
            .await
            .map_err(|e| api("DescribeAddresses", c, e))?;
        left.extend(
            out.addresses()
                .iter()
                .map(|a| r("elastic-ip", a.allocation_id(), a.tags())),
        );
        let out = self
            .ec2
            .describe_security_groups()
            .filters(f.clone())
            .send()
            .await
            .map_err(|e| api("DescribeSecurityGroups", c, e))?;
        left.extend(
            out.security_groups()
                .iter()
                .map(|g| r("security-group", g.group_id(), g.tags())),
        );
        let out = self
            .ec2
            .describe_route_tables()
            .filters(f.clone())
            .send()
            .await
            .map_err(|e| api("DescribeRouteTables", c, e))?;
        left.extend(
            out.route_tables()
                .iter()
                .map(|t| r("route-table", t.route_table_id(), t.tags())),
        );
        let out = self
            .ec2
            .describe_internet_gateways()
            .filters(f.clone())
            .send()
            .await
            .map_err(|e| api("DescribeInternetGateways", c, e))?;
        left.extend(
            out.internet_gateways()
                .iter()
                .map(|g| r("internet-gateway", g.internet_gateway_id(), g.tags())),
        );
        let out = self
            .ec2
            .describe_subnets()
            .filters(f.clone())
            .send()
            .await
            .map_err(|e| api("DescribeSubnets", c, e))?;
        left.extend(
            out.subnets()
                .iter()
                .map(|s| r("subnet", s.subnet_id(), s.tags())),
        );
        let out = self
            .ec2
            .describe_vpcs()
            .filters(f)
            .send()
            .await
            .map_err(|e| api("DescribeVpcs", c, e))?;
        left.extend(out.vpcs().iter().map(|v| r("vpc", v.vpc_id(), v.tags())));
        for (arn, role) in self.tagged_elb(false).await? {
            if let Ok(out) = self
                .elb
                .describe_listeners()
                .load_balancer_arn(&arn)
                .send()
                .await
            {
                for l in out.listeners() {
                    left.push(Resource {
                        kind: "listener",
                        id: l.listener_arn().unwrap_or_default().to_owned(),
                        role: "listener".into(),
                    });
                }
            }
            left.push(Resource {
                kind: "load-balancer",
                id: arn,
                role,
            });
        }
        for (arn, role) in self.tagged_elb(true).await? {
            left.push(Resource {
                kind: "target-group",
                id: arn,
                role,
            });
        }
        if let (bucket, true) = self.store.find().await? {
            left.push(Resource {
                kind: "s3-bucket",
                id: bucket,
                role: "payloads".into(),
            });
        }
        Ok(Audit { leftovers: left })
    }
}

/// Where a route sends traffic.
pub(crate) enum Target {
    Igw(String),
    Eni(String),
}

fn role_of(tags: &[aws_sdk_ec2::types::Tag]) -> &str {
    tags::value(tags, ROLE_KEY).unwrap_or_default()
}

/// A delete of something already gone is done.
fn ignore_missing<T>(r: Result<T, Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn architecture_follows_the_instance_family() {
        assert_eq!(Lab::arch("t4g.small"), "arm64");
        assert_eq!(Lab::arch("m7g.large"), "arm64");
        assert_eq!(Lab::arch("c7gn.large"), "arm64");
        assert_eq!(Lab::arch("t3a.nano"), "x86_64");
        assert_eq!(Lab::arch("g5.xlarge"), "x86_64");
        assert_eq!(Lab::arch("m6i.large"), "x86_64");
    }

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
