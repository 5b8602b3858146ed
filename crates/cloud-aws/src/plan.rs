//! `plan`: every resource the lab needs, whether it exists, and what it costs.

use std::fmt;

use crate::Error;
use crate::catalog::{INSTANCE_TYPES, InstanceType};
use crate::lab::{Kind, Lab, LabPayloads};

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
    /// The instance types with their USD per hour (Linux, on-demand).
    pub instances: &'static [InstanceType],
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
    instances: INSTANCE_TYPES,
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
            .find(|t| t.name == instance_type)
            .map(|t| t.usd_hour)
    }
}

/// One resource of the plan.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct PlanItem {
    /// Its kind.
    pub kind: Kind,
    /// Its role (`subnet-nodes`, `control-01`).
    pub role: String,
    /// What it is (CIDR, IP, type, rules).
    pub detail: String,
    /// What it costs per hour while it exists, when it is billed by the hour.
    pub hourly_usd: Option<f64>,
}

/// What the lab is made of (what `up` creates on an empty region), and its cost.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Plan {
    /// The cluster.
    pub cluster: String,
    /// Every resource.
    pub items: Vec<PlanItem>,
    /// The AMI the machines boot (given or looked up), when known.
    pub ami: Option<String>,
    /// Things to know (an instance type missing from the table).
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
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "AWS lab of cluster {}: {} resources",
            self.cluster,
            self.items.len()
        )?;
        let w_kind = self
            .items
            .iter()
            .map(|i| i.kind.name().len())
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
            "  {:<w_kind$} {:<w_role$} {:>9}  detail",
            "kind", "role", "$/hour"
        )?;
        for i in &self.items {
            let cost = i
                .hourly_usd
                .map(|c| format!("{c:.4}"))
                .unwrap_or_else(|| "-".into());
            writeln!(
                f,
                "  {:<w_kind$} {:<w_role$} {cost:>9}  {}",
                i.kind.name(),
                i.role,
                i.detail
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
    /// Every resource the lab is made of, with its cost; no AWS call. `payloads` decide
    /// whether the payload bucket is needed (configs over EC2's user-data limit even
    /// compressed). Refuses (bad input, [`Error::Spec`] on `spec.backend.aws.instanceType`)
    /// control planes on an instance type the table knows to be too small
    /// ([`crate::catalog::CONTROL_PLANE`]), naming the smallest that fits and its cost.
    pub fn plan(&self, payloads: &LabPayloads) -> Result<Plan, Error> {
        self.check_size_offline()?;
        let p = PRICES;
        let mut notes = Vec::new();
        for (field, t) in [
            ("instanceType", &self.aws.instance_type),
            ("gatewayInstanceType", &self.aws.gateway_instance_type),
        ] {
            if p.instance_hour(t).is_none() {
                notes.push(format!(
                    "{field} {t} is not in the price table: its cost is not included{}",
                    if field == "instanceType" {
                        ", and `up` checks its memory against a control plane's needs with DescribeInstanceTypes"
                    } else {
                        ""
                    }
                ));
            }
        }
        let items: Vec<PlanItem> = self
            .desired(&self.oversized(payloads))
            .into_iter()
            .map(|d| PlanItem {
                kind: d.role.kind(),
                role: d.role.tag(),
                detail: d.detail,
                hourly_usd: d.hourly_usd,
            })
            .collect();
        let instances = items.iter().filter(|i| i.kind == Kind::Instance).count();
        Ok(Plan {
            cluster: self.cluster().to_owned(),
            hourly_usd: items.iter().filter_map(|i| i.hourly_usd).sum(),
            storage_monthly_usd: instances as f64 * p.root_volume_gb * p.gp3_gb_month,
            items,
            ami: self.aws.ami.clone(),
            notes,
            prices: p,
        })
    }
}
