//! `up`'s network half: each EC2 network role found by its tags, or created with them, and
//! brought in line (attachments, rules, routes, associations) with write calls only where
//! something differs.

use std::collections::BTreeSet;

use aws_sdk_ec2::types::{
    AttributeBooleanValue, DomainType, Filter, IpPermission, IpRange, ResourceType, UserIdGroupPair,
};
use frankenetes_compute::ClusterTag;

use super::Lab;
use super::desired::{Rule, Source};
use super::model::{Machine, Resource, Role, Tier};
use super::report::Recorder;
use crate::Error;
use crate::error::api;
use crate::tags::{self, ROLE_KEY};

/// Where a route sends traffic.
pub(crate) enum Target {
    Igw(String),
    Eni(String),
}

impl Lab {
    /// The filters of one role: the cluster's tag and the role's.
    pub(crate) fn role_filters(&self, role: &Role) -> Vec<Filter> {
        vec![
            tags::filter(ClusterTag::KEY, self.cluster()),
            tags::filter(ROLE_KEY, &role.tag()),
        ]
    }

    fn tag_spec(&self, rt: ResourceType, role: &Role) -> aws_sdk_ec2::types::TagSpecification {
        let tag = role.tag();
        tags::spec(rt, self.cluster(), &tag, &self.name(&tag), &[])
    }

    fn record(&self, rec: &Recorder<'_>, role: &Role, id: &str, existed: bool) -> Resource {
        let r = Resource::new(role.kind(), id, role.tag());
        rec.got(r.clone(), existed);
        r
    }

    pub(crate) async fn ensure_vpc(&self, rec: &Recorder<'_>) -> Result<String, Error> {
        let role = Role::Vpc;
        let out = self
            .ec2
            .describe_vpcs()
            .set_filters(Some(self.role_filters(&role)))
            .send()
            .await;
        let out = out.map_err(|e| api("DescribeVpcs", role.tag(), e))?;
        if let Some(id) = out.vpcs().first().and_then(|v| v.vpc_id()) {
            self.record(rec, &role, id, true);
            return Ok(id.to_owned());
        }
        let out = self
            .ec2
            .create_vpc()
            .cidr_block(self.aws.vpc_cidr.to_string())
            .tag_specifications(self.tag_spec(ResourceType::Vpc, &role))
            .send()
            .await
            .map_err(|e| api("CreateVpc", self.aws.vpc_cidr, e))?;
        let id = out.vpc().and_then(|v| v.vpc_id()).ok_or(Error::Missing {
            op: "CreateVpc",
            field: "VpcId",
        })?;
        self.record(rec, &role, id, false);
        Ok(id.to_owned())
    }

    pub(crate) async fn ensure_subnet(
        &self,
        rec: &Recorder<'_>,
        vpc: &str,
        t: Tier,
    ) -> Result<String, Error> {
        let role = Role::Subnet(t);
        let out = self
            .ec2
            .describe_subnets()
            .set_filters(Some(self.role_filters(&role)))
            .send()
            .await;
        let out = out.map_err(|e| api("DescribeSubnets", role.tag(), e))?;
        if let Some(id) = out.subnets().first().and_then(|v| v.subnet_id()) {
            self.record(rec, &role, id, true);
            return Ok(id.to_owned());
        }
        let cidr = self.cidr(t);
        let out = self
            .ec2
            .create_subnet()
            .vpc_id(vpc)
            .cidr_block(&cidr)
            .set_availability_zone(self.aws.availability_zone.clone())
            .tag_specifications(self.tag_spec(ResourceType::Subnet, &role))
            .send()
            .await
            .map_err(|e| api("CreateSubnet", &cidr, e))?;
        let id = out
            .subnet()
            .and_then(|v| v.subnet_id())
            .ok_or(Error::Missing {
                op: "CreateSubnet",
                field: "SubnetId",
            })?;
        self.record(rec, &role, id, false);
        Ok(id.to_owned())
    }

    pub(crate) async fn ensure_igw(&self, rec: &Recorder<'_>, vpc: &str) -> Result<String, Error> {
        let role = Role::InternetGateway;
        let out = self
            .ec2
            .describe_internet_gateways()
            .set_filters(Some(self.role_filters(&role)))
            .send()
            .await
            .map_err(|e| api("DescribeInternetGateways", role.tag(), e))?;
        let (res, attached) = if let Some(g) = out.internet_gateways().first() {
            let id = g.internet_gateway_id().unwrap_or_default();
            let attached = g.attachments().iter().any(|a| a.vpc_id() == Some(vpc));
            (self.record(rec, &role, id, true), attached)
        } else {
            let out = self
                .ec2
                .create_internet_gateway()
                .tag_specifications(self.tag_spec(ResourceType::InternetGateway, &role))
                .send()
                .await
                .map_err(|e| api("CreateInternetGateway", role.tag(), e))?;
            let id = out
                .internet_gateway()
                .and_then(|g| g.internet_gateway_id())
                .ok_or(Error::Missing {
                    op: "CreateInternetGateway",
                    field: "InternetGatewayId",
                })?;
            (self.record(rec, &role, id, false), false)
        };
        if !attached {
            self.ec2
                .attach_internet_gateway()
                .internet_gateway_id(&res.id)
                .vpc_id(vpc)
                .send()
                .await
                .map_err(|e| api("AttachInternetGateway", &res.id, e))?;
            rec.changed(res.clone(), format!("attached to {vpc}"));
        }
        Ok(res.id)
    }

    pub(crate) async fn ensure_sg(
        &self,
        rec: &Recorder<'_>,
        vpc: &str,
        t: Tier,
    ) -> Result<String, Error> {
        let role = Role::SecurityGroup(t);
        let out = self
            .ec2
            .describe_security_groups()
            .set_filters(Some(self.role_filters(&role)))
            .send()
            .await
            .map_err(|e| api("DescribeSecurityGroups", role.tag(), e))?;
        let res = if let Some(id) = out.security_groups().first().and_then(|g| g.group_id()) {
            self.record(rec, &role, id, true)
        } else {
            let description = match t {
                Tier::Gateway => "frankenetes gateway: WireGuard in, NAT for the VPC",
                Tier::Nodes => "frankenetes nodes: API, etcd, kubelet, SSH from the tunnel",
            };
            let out = self
                .ec2
                .create_security_group()
                .group_name(self.name(&role.tag()))
                .description(description)
                .vpc_id(vpc)
                .tag_specifications(self.tag_spec(ResourceType::SecurityGroup, &role))
                .send()
                .await
                .map_err(|e| api("CreateSecurityGroup", role.tag(), e))?;
            let id = out.group_id().ok_or(Error::Missing {
                op: "CreateSecurityGroup",
                field: "GroupId",
            })?;
            self.record(rec, &role, id, false)
        };
        self.ensure_rules(rec, &res, &role, self.rules(t)).await?;
        Ok(res.id)
    }

    /// Adds the rules the group lacks (none on a converged lab).
    async fn ensure_rules(
        &self,
        rec: &Recorder<'_>,
        sg: &Resource,
        role: &Role,
        rules: Vec<Rule>,
    ) -> Result<(), Error> {
        let id = &sg.id;
        let existing = self
            .ec2
            .describe_security_group_rules()
            .filters(tags::field("group-id", &[id]))
            .send()
            .await
            .map_err(|e| api("DescribeSecurityGroupRules", id, e))?;
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
                    .or_else(|| r.referenced_group_info().and_then(|g| g.group_id()))
                    .unwrap_or_default()
                    .to_owned();
                (proto, from, to, src)
            })
            .collect();
        let source = |r: &Rule| match &r.source {
            Source::Cidr(c) => c.clone(),
            Source::Own => id.clone(),
        };
        let missing: Vec<IpPermission> = rules
            .iter()
            .filter(|r| !have.contains(&(r.proto.to_owned(), r.from, r.to, source(r))))
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
                            .group_id(id)
                            .description(r.why)
                            .build(),
                    ),
                }
                .build()
            })
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let n = missing.len();
        let res = self
            .ec2
            .authorize_security_group_ingress()
            .group_id(id)
            .set_ip_permissions(Some(missing))
            .tag_specifications(self.tag_spec(ResourceType::SecurityGroupRule, role))
            .send()
            .await;
        match res.map_err(|e| api("AuthorizeSecurityGroupIngress", id, e)) {
            Ok(_) => rec.changed(sg.clone(), format!("{n} ingress rule(s) added")),
            Err(e) if e.code() == Some("InvalidPermission.Duplicate") => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    pub(crate) async fn ensure_eni(
        &self,
        rec: &Recorder<'_>,
        m: &Machine,
        subnet: &str,
        sg: &str,
    ) -> Result<String, Error> {
        let role = Role::NetworkInterface(m.clone());
        // The gateway forwards the VPC's traffic: no source/dest check on its interface.
        let source_dest_check = m.tier() == Tier::Nodes;
        let out = self
            .ec2
            .describe_network_interfaces()
            .set_filters(Some(self.role_filters(&role)))
            .send()
            .await
            .map_err(|e| api("DescribeNetworkInterfaces", role.tag(), e))?;
        let (res, sdc) = if let Some(n) = out.network_interfaces().first() {
            let id = n.network_interface_id().unwrap_or_default();
            (self.record(rec, &role, id, true), n.source_dest_check())
        } else {
            let ip = self.ip(m).map(|ip| ip.to_string()).unwrap_or_default();
            let out = self
                .ec2
                .create_network_interface()
                .subnet_id(subnet)
                .private_ip_address(&ip)
                .groups(sg)
                .description(self.name(&role.tag()))
                .tag_specifications(self.tag_spec(ResourceType::NetworkInterface, &role))
                .send()
                .await
                .map_err(|e| api("CreateNetworkInterface", &ip, e))?;
            let n = out.network_interface().ok_or(Error::Missing {
                op: "CreateNetworkInterface",
                field: "NetworkInterface",
            })?;
            let id = n.network_interface_id().unwrap_or_default();
            (self.record(rec, &role, id, false), n.source_dest_check())
        };
        if sdc != Some(source_dest_check) {
            self.ec2
                .modify_network_interface_attribute()
                .network_interface_id(&res.id)
                .source_dest_check(
                    AttributeBooleanValue::builder()
                        .value(source_dest_check)
                        .build(),
                )
                .send()
                .await
                .map_err(|e| api("ModifyNetworkInterfaceAttribute", &res.id, e))?;
            rec.changed(
                res.clone(),
                format!(
                    "source/dest check {}",
                    if source_dest_check { "on" } else { "off" }
                ),
            );
        }
        Ok(res.id)
    }

    /// The gateway's Elastic IP on its interface; returns the allocation id and the address.
    pub(crate) async fn ensure_eip(
        &self,
        rec: &Recorder<'_>,
        eni: &str,
    ) -> Result<(String, String), Error> {
        let role = Role::ElasticIp;
        let out = self
            .ec2
            .describe_addresses()
            .set_filters(Some(self.role_filters(&role)))
            .send()
            .await
            .map_err(|e| api("DescribeAddresses", role.tag(), e))?;
        let (res, ip, on) = if let Some(a) = out.addresses().first() {
            let res = self.record(rec, &role, a.allocation_id().unwrap_or_default(), true);
            (
                res,
                a.public_ip().map(str::to_owned),
                a.network_interface_id().map(str::to_owned),
            )
        } else {
            let out = self
                .ec2
                .allocate_address()
                .domain(DomainType::Vpc)
                .tag_specifications(self.tag_spec(ResourceType::ElasticIp, &role))
                .send()
                .await
                .map_err(|e| api("AllocateAddress", role.tag(), e))?;
            let alloc = out.allocation_id().ok_or(Error::Missing {
                op: "AllocateAddress",
                field: "AllocationId",
            })?;
            (
                self.record(rec, &role, alloc, false),
                out.public_ip().map(str::to_owned),
                None,
            )
        };
        let ip = ip.ok_or(Error::Missing {
            op: "DescribeAddresses",
            field: "PublicIp",
        })?;
        if on.as_deref() != Some(eni) {
            self.ec2
                .associate_address()
                .allocation_id(&res.id)
                .network_interface_id(eni)
                .send()
                .await
                .map_err(|e| api("AssociateAddress", &res.id, e))?;
            rec.changed(res.clone(), format!("associated with {eni}"));
        }
        Ok((res.id, ip))
    }

    pub(crate) async fn ensure_route_table(
        &self,
        rec: &Recorder<'_>,
        t: Tier,
        vpc: &str,
        subnet: &str,
        routes: Vec<(String, Target)>,
    ) -> Result<String, Error> {
        let role = Role::RouteTable(t);
        let out = self
            .ec2
            .describe_route_tables()
            .set_filters(Some(self.role_filters(&role)))
            .send()
            .await
            .map_err(|e| api("DescribeRouteTables", role.tag(), e))?;
        let (res, table) = if let Some(t) = out.route_tables().first() {
            (
                self.record(rec, &role, t.route_table_id().unwrap_or_default(), true),
                t.clone(),
            )
        } else {
            let out = self
                .ec2
                .create_route_table()
                .vpc_id(vpc)
                .tag_specifications(self.tag_spec(ResourceType::RouteTable, &role))
                .send()
                .await
                .map_err(|e| api("CreateRouteTable", role.tag(), e))?;
            let t = out.route_table().ok_or(Error::Missing {
                op: "CreateRouteTable",
                field: "RouteTable",
            })?;
            (
                self.record(rec, &role, t.route_table_id().unwrap_or_default(), false),
                t.clone(),
            )
        };
        let id = res.id.as_str();
        for (dest, target) in routes {
            let current = table
                .routes()
                .iter()
                .find(|r| r.destination_cidr_block() == Some(dest.as_str()));
            let ok = current.is_some_and(|r| match &target {
                Target::Igw(g) => r.gateway_id() == Some(g.as_str()),
                Target::Eni(n) => r.network_interface_id() == Some(n.as_str()),
            });
            if ok {
                continue;
            }
            let (igw, eni) = match &target {
                Target::Igw(g) => (Some(g.clone()), None),
                Target::Eni(n) => (None, Some(n.clone())),
            };
            if current.is_some() {
                let b = self
                    .ec2
                    .replace_route()
                    .route_table_id(id)
                    .destination_cidr_block(&dest);
                let b = b.set_gateway_id(igw).set_network_interface_id(eni);
                b.send().await.map_err(|e| api("ReplaceRoute", id, e))?;
            } else {
                let b = self
                    .ec2
                    .create_route()
                    .route_table_id(id)
                    .destination_cidr_block(&dest);
                let b = b.set_gateway_id(igw).set_network_interface_id(eni);
                b.send().await.map_err(|e| api("CreateRoute", id, e))?;
            }
            rec.changed(res.clone(), format!("route {dest} set"));
        }
        if !table
            .associations()
            .iter()
            .any(|a| a.subnet_id() == Some(subnet))
        {
            self.ec2
                .associate_route_table()
                .route_table_id(id)
                .subnet_id(subnet)
                .send()
                .await
                .map_err(|e| api("AssociateRouteTable", id, e))?;
            rec.changed(res.clone(), format!("associated with {subnet}"));
        }
        Ok(res.id)
    }
}
