//! How each [`Kind`] is found by the cluster's tag: the inventory behind `status`, `down` and
//! the audit. Read calls only.

use std::collections::BTreeMap;

use aws_sdk_ec2::types::Filter;
use frankenetes_compute::ClusterTag;
use futures_util::future::try_join_all;

use super::Lab;
use super::model::{Kind, Resource};
use super::report::Inventory;
use crate::Error;
use crate::ec2;
use crate::error::api;
use crate::tags::{self, ROLE_KEY, UNIT_KEY};

/// What must be undone before a resource can be deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Link {
    /// An internet gateway attached to a VPC.
    Attached { vpc: String },
    /// A route table's association with a subnet.
    Association(String),
    /// An Elastic IP's association with an interface.
    Address(String),
}

/// A resource found by its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Found {
    pub res: Resource,
    pub links: Vec<Link>,
}

impl Found {
    fn new(kind: Kind, id: Option<&str>, role: &str) -> Self {
        Found {
            res: Resource::new(kind, id.unwrap_or_default(), role),
            links: Vec::new(),
        }
    }
}

fn role_of(tags: &[aws_sdk_ec2::types::Tag]) -> &str {
    tags::value(tags, ROLE_KEY).unwrap_or_default()
}

/// Every resource of the cluster, by kind.
pub(crate) type ByKind = BTreeMap<Kind, Vec<Found>>;

impl Lab {
    pub(crate) fn cluster_filter(&self) -> Filter {
        tags::filter(ClusterTag::KEY, self.cluster())
    }

    /// Every resource of `kind` carrying the cluster's tag.
    pub(crate) async fn find(&self, kind: Kind) -> Result<Vec<Found>, Error> {
        let c = self.cluster();
        let f = self.cluster_filter();
        let ec2 = &self.ec2;
        Ok(match kind {
            Kind::Vpc
            | Kind::Subnet
            | Kind::InternetGateway
            | Kind::RouteTable
            | Kind::SecurityGroup
            | Kind::NetworkInterface
            | Kind::ElasticIp => self.find_network(kind).await?,
            Kind::Instance => ec2::list_instances(ec2, c)
                .await?
                .iter()
                .map(|i| {
                    Found::new(
                        kind,
                        i.instance_id(),
                        tags::value(i.tags(), UNIT_KEY).unwrap_or_default(),
                    )
                })
                .collect(),
            Kind::Volume => {
                let states = ["creating", "available", "in-use", "error"];
                let out = ec2
                    .describe_volumes()
                    .filters(f)
                    .filters(tags::field("status", &states))
                    .send()
                    .await;
                let out = out.map_err(|e| api("DescribeVolumes", c, e))?;
                out.volumes()
                    .iter()
                    .map(|v| {
                        Found::new(
                            kind,
                            v.volume_id(),
                            tags::value(v.tags(), UNIT_KEY).unwrap_or("volume"),
                        )
                    })
                    .collect()
            }
            Kind::TargetGroup | Kind::LoadBalancer => self
                .tagged_elb(kind)
                .await?
                .into_iter()
                .map(|(arn, role)| Found::new(kind, Some(&arn), &role))
                .collect(),
            Kind::Listener => {
                let mut all = Vec::new();
                for (lb, _) in self.tagged_elb(Kind::LoadBalancer).await? {
                    match self
                        .elb
                        .describe_listeners()
                        .load_balancer_arn(&lb)
                        .send()
                        .await
                    {
                        Ok(out) => all.extend(
                            out.listeners()
                                .iter()
                                .map(|l| Found::new(kind, l.listener_arn(), "listener")),
                        ),
                        Err(e) => {
                            let e = api("DescribeListeners", &lb, e);
                            if !e.is_not_found() {
                                return Err(e);
                            }
                        }
                    }
                }
                all
            }
            Kind::PayloadBucket => match self.store.find().await? {
                (bucket, true) => vec![Found::new(kind, Some(&bucket), "payloads")],
                (_, false) => Vec::new(),
            },
        })
    }

    /// [`Lab::find`] for the EC2 network kinds (the others return nothing here).
    async fn find_network(&self, kind: Kind) -> Result<Vec<Found>, Error> {
        let c = self.cluster();
        let f = self.cluster_filter();
        let ec2 = &self.ec2;
        Ok(match kind {
            Kind::Vpc => {
                let out = ec2.describe_vpcs().filters(f).send().await;
                let out = out.map_err(|e| api("DescribeVpcs", c, e))?;
                out.vpcs()
                    .iter()
                    .map(|v| Found::new(kind, v.vpc_id(), role_of(v.tags())))
                    .collect()
            }
            Kind::Subnet => {
                let out = ec2.describe_subnets().filters(f).send().await;
                let out = out.map_err(|e| api("DescribeSubnets", c, e))?;
                out.subnets()
                    .iter()
                    .map(|s| Found::new(kind, s.subnet_id(), role_of(s.tags())))
                    .collect()
            }
            Kind::InternetGateway => {
                let out = ec2.describe_internet_gateways().filters(f).send().await;
                let out = out.map_err(|e| api("DescribeInternetGateways", c, e))?;
                out.internet_gateways()
                    .iter()
                    .map(|g| {
                        let mut found =
                            Found::new(kind, g.internet_gateway_id(), role_of(g.tags()));
                        found.links = g
                            .attachments()
                            .iter()
                            .filter_map(|a| a.vpc_id())
                            .map(|vpc| Link::Attached {
                                vpc: vpc.to_owned(),
                            })
                            .collect();
                        found
                    })
                    .collect()
            }
            Kind::RouteTable => {
                let out = ec2.describe_route_tables().filters(f).send().await;
                let out = out.map_err(|e| api("DescribeRouteTables", c, e))?;
                out.route_tables()
                    .iter()
                    .map(|t| {
                        let mut found = Found::new(kind, t.route_table_id(), role_of(t.tags()));
                        found.links = t
                            .associations()
                            .iter()
                            .filter(|a| a.main() != Some(true))
                            .filter_map(|a| a.route_table_association_id())
                            .map(|id| Link::Association(id.to_owned()))
                            .collect();
                        found
                    })
                    .collect()
            }
            Kind::SecurityGroup => {
                let out = ec2.describe_security_groups().filters(f).send().await;
                let out = out.map_err(|e| api("DescribeSecurityGroups", c, e))?;
                out.security_groups()
                    .iter()
                    .map(|g| Found::new(kind, g.group_id(), role_of(g.tags())))
                    .collect()
            }
            Kind::NetworkInterface => {
                let out = ec2.describe_network_interfaces().filters(f).send().await;
                let out = out.map_err(|e| api("DescribeNetworkInterfaces", c, e))?;
                out.network_interfaces()
                    .iter()
                    .map(|n| Found::new(kind, n.network_interface_id(), role_of(n.tag_set())))
                    .collect()
            }
            Kind::ElasticIp => {
                // Moto reports these as `vpc-elastic-ip` to the tagging API: describe by tag.
                let out = ec2.describe_addresses().filters(f).send().await;
                let out = out.map_err(|e| api("DescribeAddresses", c, e))?;
                out.addresses()
                    .iter()
                    .map(|a| {
                        let mut found = Found::new(kind, a.allocation_id(), role_of(a.tags()));
                        found.links = a
                            .association_id()
                            .map(|id| Link::Address(id.to_owned()))
                            .into_iter()
                            .collect();
                        found
                    })
                    .collect()
            }
            _ => Vec::new(),
        })
    }

    /// Every resource of the cluster, every kind looked up concurrently.
    pub(crate) async fn find_all(&self) -> Result<ByKind, Error> {
        let found = try_join_all(
            Kind::ALL
                .iter()
                .map(|k| async move { Ok::<_, Error>((*k, self.find(*k).await?)) }),
        )
        .await?;
        Ok(found.into_iter().collect())
    }

    /// Everything carrying the cluster's tag in the region, in the order [`Lab::down`] would
    /// delete it. Read calls only: show it, then ask before `down`.
    pub async fn inventory(&self) -> Result<Inventory, Error> {
        Ok(arrange(&self.find_all().await?))
    }

    /// The cluster's load balancers (or target groups) with their role: ELBv2 has no tag
    /// filter, so list them all and read their tags, 20 ARNs per call.
    async fn tagged_elb(&self, kind: Kind) -> Result<Vec<(String, String)>, Error> {
        let c = self.cluster();
        let mut arns = Vec::new();
        if kind == Kind::TargetGroup {
            let mut pages = self.elb.describe_target_groups().into_paginator().send();
            while let Some(p) = pages.next().await {
                let p = p.map_err(|e| api("DescribeTargetGroups", c, e))?;
                arns.extend(
                    p.target_groups()
                        .iter()
                        .filter_map(|t| t.target_group_arn().map(str::to_owned)),
                );
            }
        } else {
            let mut pages = self.elb.describe_load_balancers().into_paginator().send();
            while let Some(p) = pages.next().await {
                let p = p.map_err(|e| api("DescribeLoadBalancers", c, e))?;
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
                .map_err(|e| api("DescribeTags", c, e))?;
            for d in out.tag_descriptions() {
                let tag = |k: &str| {
                    d.tags()
                        .iter()
                        .find(|t| t.key() == Some(k))
                        .and_then(|t| t.value())
                };
                if tag(ClusterTag::KEY) == Some(c) {
                    ours.push((
                        d.resource_arn().unwrap_or_default().to_owned(),
                        tag(ROLE_KEY).unwrap_or_default().to_owned(),
                    ));
                }
            }
        }
        Ok(ours)
    }
}

/// The resources found, in [`Kind::delete_waves`] order.
pub(crate) fn arrange(found: &ByKind) -> Inventory {
    let mut inv = Inventory::default();
    for wave in Kind::delete_waves() {
        let resources: Vec<Resource> = wave
            .iter()
            .flat_map(|k| found.get(k).into_iter().flatten())
            .map(|f| f.res.clone())
            .collect();
        if !resources.is_empty() {
            inv.waves.push(resources);
        }
    }
    inv
}
