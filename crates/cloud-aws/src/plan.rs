//! `plan`: every resource the lab needs, whether it exists, and what it costs.

use std::fmt;

use crate::Error;
use crate::lab::{API_PORT, Lab, lb_name};

/// Hours in a billing month, as AWS's calculator counts them.
pub const HOURS_PER_MONTH: f64 = 730.0;

/// On-demand prices the estimate uses, with where they come from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PriceTable {
    /// Where the figures come from.
    pub source: &'static str,
    /// When they were collected.
    pub as_of: &'static str,
    /// The region they are for.
    pub region: &'static str,
    /// USD per hour by instance type (Linux, on-demand).
    pub instances: &'static [(&'static str, f64)],
    /// USD per hour of one public IPv4 address (an Elastic IP, attached or not).
    pub public_ipv4_hour: f64,
    /// USD per hour of a Network Load Balancer (capacity units come on top, by traffic).
    pub nlb_hour: f64,
    /// USD per GB-month of gp3 storage.
    pub gp3_gb_month: f64,
    /// The root volume size assumed per instance (the Fedora CoreOS AMI's default), GB.
    pub root_volume_gb: f64,
}

/// The table `plan` uses.
pub const PRICES: PriceTable = PriceTable {
    source: "AWS on-demand prices for us-east-1: public IPv4 $0.005/h from the AWS Networking & Content \
             Delivery blog \"Identify and optimize public IPv4 address usage on AWS\" (in force since \
             1 Feb 2024); NLB $0.0225/h (+$0.006 per NLCU-hour) as published on the Elastic Load Balancing \
             pricing page and quoted by awsnegotiations.com (May 2026); EC2 Linux on-demand rates as listed \
             on the EC2 pricing page (t3a.nano $0.0047 and t2.nano $0.0058 also match the cheap-lab \
             write-up); gp3 $0.08/GB-month. Other regions cost somewhat more (eu-west-3 about +10-15%).",
    as_of: "2026-11",
    region: "us-east-1",
    instances: &[
        ("t2.nano", 0.0058),
        ("t2.micro", 0.0116),
        ("t2.small", 0.023),
        ("t3.nano", 0.0052),
        ("t3.micro", 0.0104),
        ("t3.small", 0.0208),
        ("t3.medium", 0.0416),
        ("t3a.nano", 0.0047),
        ("t3a.micro", 0.0094),
        ("t3a.small", 0.0188),
        ("t3a.medium", 0.0376),
        ("t3a.large", 0.0752),
        ("t4g.nano", 0.0042),
        ("t4g.micro", 0.0084),
        ("t4g.small", 0.0168),
        ("t4g.medium", 0.0336),
        ("t4g.large", 0.0672),
    ],
    public_ipv4_hour: 0.005,
    nlb_hour: 0.0225,
    gp3_gb_month: 0.08,
    root_volume_gb: 10.0,
};

impl PriceTable {
    /// The hourly price of an instance type, if the table has it.
    pub fn instance_hour(&self, instance_type: &str) -> Option<f64> {
        self.instances
            .iter()
            .find(|(t, _)| *t == instance_type)
            .map(|(_, p)| *p)
    }
}

/// One resource of the plan.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PlanItem {
    /// Its kind (`vpc`, `instance`, ...).
    pub kind: &'static str,
    /// Its role (`subnet-nodes`, `control-01`).
    pub role: String,
    /// What it is (CIDR, IP, type, rules).
    pub detail: String,
    /// Whether it exists already (found by its tags); `up` creates only the others.
    pub exists: bool,
    /// What it costs per hour while it exists, when it is billed by the hour.
    pub hourly_usd: Option<f64>,
}

/// What `up` would create, and the cost of the lab.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The cluster.
    pub cluster: String,
    /// Every resource.
    pub items: Vec<PlanItem>,
    /// The AMI the machines boot (given or looked up), when known.
    pub ami: Option<String>,
    /// Things to know (an instance type missing from the price table, no AMI found).
    pub notes: Vec<String>,
    /// USD per hour while the lab is up (instances, public IPv4, NLB).
    pub hourly_usd: f64,
    /// USD per month of storage (root volumes) while the lab exists.
    pub storage_monthly_usd: f64,
    /// The price table used.
    pub prices: PriceTable,
}

impl Plan {
    /// USD per month if the lab stays up all month: hours × rate + storage.
    pub fn monthly_usd(&self) -> f64 {
        self.hourly_usd * HOURS_PER_MONTH + self.storage_monthly_usd
    }

    /// How many resources `up` would create.
    pub fn to_create(&self) -> usize {
        self.items.iter().filter(|i| !i.exists).count()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "AWS lab of cluster {}: {} resources, {} to create",
            self.cluster,
            self.items.len(),
            self.to_create()
        )?;
        let w_kind = self
            .items
            .iter()
            .map(|i| i.kind.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let w_role = self
            .items
            .iter()
            .map(|i| i.role.len())
            .max()
            .unwrap_or(4)
            .max(4);
        writeln!(
            f,
            "  {:<8} {:<w_kind$} {:<w_role$} {:>9}  detail",
            "action", "kind", "role", "$/hour"
        )?;
        for i in &self.items {
            let cost = i
                .hourly_usd
                .map(|c| format!("{c:.4}"))
                .unwrap_or_else(|| "-".into());
            let action = if i.exists { "keep" } else { "create" };
            writeln!(
                f,
                "  {action:<8} {:<w_kind$} {:<w_role$} {cost:>9}  {}",
                i.kind, i.role, i.detail
            )?;
        }
        if let Some(ami) = &self.ami {
            writeln!(f, "  image: {ami}")?;
        }
        writeln!(
            f,
            "estimated cost: ${:.4}/hour while up; ${:.2}/month if left up ({} h), including ${:.2}/month of root volumes",
            self.hourly_usd,
            self.monthly_usd(),
            HOURS_PER_MONTH,
            self.storage_monthly_usd
        )?;
        writeln!(
            f,
            "prices: {} on-demand, as of {} (NLB capacity units and data transfer not included)",
            self.prices.region, self.prices.as_of
        )?;
        writeln!(f, "source: {}", self.prices.source)?;
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        Ok(())
    }
}

impl Lab {
    /// The plan from the spec alone: every resource marked to create, no AWS call.
    pub fn desired_plan(&self) -> Plan {
        let p = PRICES;
        let aws = &self.aws;
        let gw = &self.gateway;
        let mut items = Vec::new();
        let mut notes = Vec::new();
        let mut item = |kind: &'static str, role: &str, detail: String, hourly: Option<f64>| {
            items.push(PlanItem {
                kind,
                role: role.to_owned(),
                detail,
                exists: false,
                hourly_usd: hourly,
            });
        };
        item("vpc", "vpc", aws.vpc_cidr.to_string(), None);
        item(
            "subnet",
            "subnet-nodes",
            format!("{} (nodes, load balancer)", aws.subnet_cidr),
            None,
        );
        item(
            "subnet",
            "subnet-gateway",
            format!("{} (gateway)", aws.gateway_subnet_cidr),
            None,
        );
        item(
            "internet-gateway",
            "igw",
            "attached to the VPC".into(),
            None,
        );
        item(
            "route-table",
            "rt-gateway",
            "0.0.0.0/0 -> internet gateway; subnet-gateway".into(),
            None,
        );
        item(
            "route-table",
            "rt-nodes",
            format!(
                "0.0.0.0/0 and {} -> gateway ENI; subnet-nodes",
                gw.tunnel.cidr
            ),
            None,
        );
        let rules = |rules: Vec<crate::lab::Rule>| {
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
                        crate::lab::Source::Cidr(c) => c.clone(),
                        crate::lab::Source::Own => "itself".into(),
                    };
                    format!("{ports} from {src}")
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        item(
            "security-group",
            "sg-gateway",
            rules(self.gateway_rules()),
            None,
        );
        item("security-group", "sg-nodes", rules(self.node_rules()), None);
        item(
            "network-interface",
            "eni-gateway",
            format!("{} in subnet-gateway, source/dest check off", gw.ip),
            None,
        );
        item(
            "elastic-ip",
            "eip-gateway",
            "on the gateway ENI (WireGuard endpoint)".into(),
            Some(p.public_ipv4_hour),
        );
        let mut hourly = p.public_ipv4_hour + p.nlb_hour;
        let mut instances = 0.0;
        let mut price = |t: &str| {
            let h = p.instance_hour(t);
            match h {
                Some(h) => hourly += h,
                None => notes.push(format!(
                    "{t} is not in the price table; its cost is not included"
                )),
            }
            instances += 1.0;
            h
        };
        let gw_price = price(&aws.gateway_instance_type);
        let node_prices: Vec<_> = self
            .spec
            .nodes()
            .map(|(n, _)| (n, price(&aws.instance_type)))
            .collect();
        item(
            "instance",
            gw.name.as_str(),
            format!(
                "{} on eni-gateway, Ignition: gateway bundle",
                aws.gateway_instance_type
            ),
            gw_price,
        );
        for (n, h) in node_prices {
            let role = format!("eni-{}", n.name.as_str());
            item(
                "network-interface",
                &role,
                format!("{} in subnet-nodes", n.ip),
                None,
            );
            item(
                "instance",
                n.name.as_str(),
                format!("{} on {role}, Ignition: node bundle", aws.instance_type),
                h,
            );
        }
        let lb = lb_name(self.cluster());
        item(
            "load-balancer",
            "load-balancer",
            format!("{lb}: internal NLB at {}", self.lb_ip()),
            Some(p.nlb_hour),
        );
        item(
            "target-group",
            "target-group",
            format!(
                "{lb}: TCP {API_PORT}, IP targets {}",
                self.spec
                    .control_plane
                    .iter()
                    .map(|n| n.ip.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None,
        );
        item(
            "listener",
            "listener",
            format!("TCP {API_PORT} -> {lb}"),
            None,
        );
        let oversized = self.oversized_units();
        if !oversized.is_empty() {
            item(
                "s3-bucket",
                "payloads",
                format!(
                    "private; Ignition configs over 16 KiB even compressed: {}",
                    oversized.join(", ")
                ),
                None,
            );
        }
        Plan {
            cluster: self.cluster().to_owned(),
            items,
            ami: self.aws.ami.clone(),
            notes,
            hourly_usd: hourly,
            storage_monthly_usd: instances * p.root_volume_gb * p.gp3_gb_month,
            prices: p,
        }
    }

    /// The plan, with what already exists marked and the AMI looked up. Makes read calls
    /// only (Describe*), never a write.
    pub async fn plan(&self) -> Result<Plan, Error> {
        let mut plan = self.desired_plan();
        let audit = self.audit().await?;
        for item in &mut plan.items {
            item.exists = audit
                .leftovers
                .iter()
                .any(|r| r.kind == item.kind && r.role == item.role);
        }
        match self.resolve_ami(&self.aws.instance_type).await {
            Ok(ami) => plan.ami = Some(ami),
            Err(Error::Spec { field, message }) => plan.notes.push(format!("{field}: {message}")),
            Err(e) => return Err(e),
        }
        Ok(plan)
    }
}
