//! [`Ec2Backend`]: the compute layer's machines as EC2 instances.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use aws_sdk_ec2::types::{
    Instance, InstanceNetworkInterfaceSpecification, InstanceStateName, InstanceType, ResourceType,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ComputeBackend, Unit, UnitId, UnitKind, UnitSpec,
    UnitState,
};

use crate::error::api;
use crate::tags::{self, UNIT_KEY};
use crate::{Error, userdata};

/// The states in which an instance still exists (and is billed, or may be again).
pub(crate) const LIVE_STATES: [&str; 5] =
    ["pending", "running", "stopping", "stopped", "shutting-down"];

/// How often to poll and how long to wait for AWS to reach a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Timing {
    /// Between two polls (and the first retry delay).
    pub interval: Duration,
    /// The longest wait for one thing (an instance terminated, a VPC's dependencies gone).
    pub timeout: Duration,
}

impl Default for Timing {
    /// 3 s between polls, 15 minutes at most: an NLB takes minutes to go away on AWS.
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3),
            timeout: Duration::from_secs(900),
        }
    }
}

impl Timing {
    /// A timing with these values.
    pub fn new(interval: Duration, timeout: Duration) -> Self {
        Self { interval, timeout }
    }
}

/// Where [`Ec2Backend::create`] puts machines that the spec does not place.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MachineDefaults {
    /// The AMI when the unit names none.
    pub image: Option<String>,
    /// The subnet (else the default VPC's default subnet).
    pub subnet_id: Option<String>,
    /// Security groups (else the VPC's default group).
    pub security_group_ids: Vec<String>,
    /// The EC2 key pair every instance gets (`KeyName`), so that its public key reaches the
    /// machine (Fedora CoreOS: the `core` user).
    pub key_name: Option<String>,
}

/// What one machine gets beyond its [`MachineSpec`](frankenetes_compute::MachineSpec) and the
/// [`MachineDefaults`]: EC2 placement the compute layer has no words for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MachineOptions {
    /// An existing network interface to boot on (device 0): it carries the fixed IP, the
    /// security groups and the source/dest check, and outlives the instance. When set, the
    /// machine's `private_ip` and the default subnet and groups are not used.
    pub network_interface_id: Option<String>,
    /// The value of the instance's `frankenetes.dev/role` tag (default `machine`).
    pub role: Option<String>,
}

impl MachineOptions {
    /// Boot on this network interface.
    #[must_use]
    pub fn network_interface(mut self, id: impl Into<String>) -> Self {
        self.network_interface_id = Some(id.into());
        self
    }

    /// Tag the instance with this role.
    #[must_use]
    pub fn role(mut self, role: impl Into<String>) -> Self {
        self.role = Some(role.into());
        self
    }
}

/// Where an instance's primary network interface comes from.
enum Placement {
    /// An existing ENI (fixed IP, security groups and source/dest check set on it).
    Eni(String),
    /// A new interface in a subnet (or the default one).
    Subnet {
        subnet_id: Option<String>,
        private_ip: Option<IpAddr>,
        groups: Vec<String>,
    },
}

/// What to launch.
struct Launch<'a> {
    cluster: &'a str,
    unit: &'a str,
    role: &'a str,
    size: &'a str,
    image: &'a str,
    payload: &'a [u8],
    key_name: Option<&'a str>,
    placement: Placement,
}

/// EC2 as a [`ComputeBackend`]: each machine unit is one instance tagged with its cluster
/// ([`ClusterTag::KEY`]) and its unit name (`frankenetes.dev/unit`), both given in the
/// `RunInstances` call itself, so a crash can never leave an untagged instance.
#[derive(Debug, Clone)]
pub struct Ec2Backend {
    ec2: aws_sdk_ec2::Client,
    defaults: MachineDefaults,
    machines: BTreeMap<String, MachineOptions>,
    timing: Timing,
}

impl Ec2Backend {
    /// A backend on the region, credentials and endpoint of `sdk`.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self::from_client(aws_sdk_ec2::Client::new(sdk))
    }

    /// A backend on this EC2 client.
    pub(crate) fn from_client(ec2: aws_sdk_ec2::Client) -> Self {
        Self {
            ec2,
            defaults: MachineDefaults::default(),
            machines: BTreeMap::new(),
            timing: Timing::default(),
        }
    }

    /// With EC2 options for the machine (unit) named `unit`.
    #[must_use]
    pub fn with_machine(mut self, unit: impl Into<String>, options: MachineOptions) -> Self {
        self.machines.insert(unit.into(), options);
        self
    }

    /// With placement defaults.
    #[must_use]
    pub fn with_defaults(mut self, defaults: MachineDefaults) -> Self {
        self.defaults = defaults;
        self
    }

    /// With other poll intervals and timeouts.
    #[must_use]
    pub fn with_timing(mut self, timing: Timing) -> Self {
        self.timing = timing;
        self
    }
}

/// The live instance of `unit` in `cluster`, if any.
pub(crate) async fn find_instance(
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
    unit: &str,
) -> Result<Option<Instance>, Error> {
    let out = ec2
        .describe_instances()
        .filters(tags::filter(ClusterTag::KEY, cluster))
        .filters(tags::filter(UNIT_KEY, unit))
        .filters(tags::field("instance-state-name", &LIVE_STATES))
        .send()
        .await
        .map_err(|e| api("DescribeInstances", unit, e))?;
    Ok(out
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .next()
        .cloned())
}

/// Every live instance of `cluster`.
pub(crate) async fn list_instances(
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
) -> Result<Vec<Instance>, Error> {
    let mut all = Vec::new();
    let mut pages = ec2
        .describe_instances()
        .filters(tags::filter(ClusterTag::KEY, cluster))
        .filters(tags::field("instance-state-name", &LIVE_STATES))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| api("DescribeInstances", cluster, e))?;
        all.extend(
            page.reservations()
                .iter()
                .flat_map(|r| r.instances())
                .cloned(),
        );
    }
    Ok(all)
}

/// Launches an instance with its tags in the same call.
async fn launch(ec2: &aws_sdk_ec2::Client, l: Launch<'_>) -> Result<Instance, Error> {
    let (user_data, _) = userdata::encode(l.unit, l.payload)?;
    let name = format!("{}-{}", l.cluster, l.unit);
    let extra = [(UNIT_KEY, l.unit)];
    let mut req = ec2
        .run_instances()
        .image_id(l.image)
        .instance_type(InstanceType::from(l.size))
        .min_count(1)
        .max_count(1)
        .set_key_name(l.key_name.map(str::to_owned))
        .user_data(STANDARD.encode(&user_data));
    req = match l.placement {
        // A pre-made ENI carries the fixed IP, the security groups and source/dest check.
        Placement::Eni(id) => req.network_interfaces(
            InstanceNetworkInterfaceSpecification::builder()
                .device_index(0)
                .network_interface_id(id)
                .build(),
        ),
        Placement::Subnet {
            subnet_id,
            private_ip,
            groups,
        } => req
            .set_subnet_id(subnet_id)
            .set_private_ip_address(private_ip.map(|ip| ip.to_string()))
            .set_security_group_ids((!groups.is_empty()).then_some(groups)),
    };
    let out = req
        .tag_specifications(tags::spec(
            ResourceType::Instance,
            l.cluster,
            l.role,
            &name,
            &extra,
        ))
        .tag_specifications(tags::spec(
            ResourceType::Volume,
            l.cluster,
            l.role,
            &name,
            &extra,
        ))
        .send()
        .await
        .map_err(|e| api("RunInstances", l.unit, e))?;
    out.instances().first().cloned().ok_or(Error::Missing {
        op: "RunInstances",
        field: "Instances",
    })
}

/// Waits until every instance in `ids` is terminated (or gone).
pub(crate) async fn wait_terminated(
    ec2: &aws_sdk_ec2::Client,
    ids: &[String],
    timing: Timing,
) -> Result<(), Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    loop {
        let out = ec2
            .describe_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await;
        let pending = match out {
            Ok(out) => out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .filter(|i| {
                    i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated)
                })
                .count(),
            Err(e) => {
                let e = api("DescribeInstances", ids.join(","), e);
                if e.is_not_found() { 0 } else { return Err(e) }
            }
        };
        if pending == 0 {
            return Ok(());
        }
        if start.elapsed() > timing.timeout {
            return Err(Error::Timeout {
                what: format!("instances {} to terminate", ids.join(", ")),
                seconds: timing.timeout.as_secs(),
            });
        }
        tokio::time::sleep(timing.interval).await;
    }
}

/// The compute layer's view of an instance.
pub(crate) fn to_unit(i: &Instance) -> Unit {
    let tags = i.tags();
    let cluster = tags::value(tags, ClusterTag::KEY).unwrap_or_default();
    let name = tags::value(tags, UNIT_KEY)
        .or_else(|| tags::value(tags, "Name"))
        .unwrap_or_default();
    let state = match i.state().and_then(|s| s.name()) {
        Some(InstanceStateName::Running) => UnitState::Running,
        Some(InstanceStateName::Pending) => UnitState::Pending,
        Some(
            InstanceStateName::Stopping
            | InstanceStateName::Stopped
            | InstanceStateName::ShuttingDown,
        ) => UnitState::Stopped,
        _ => UnitState::Failed,
    };
    let mut u = Unit::new(
        UnitId(i.instance_id().unwrap_or_default().to_owned()),
        name,
        ClusterTag::new(cluster),
        state,
    );
    u.addresses = [i.private_ip_address(), i.public_ip_address()]
        .into_iter()
        .flatten()
        .filter_map(|a| a.parse().ok())
        .collect();
    let mut details = BTreeMap::new();
    if let Some(t) = i.instance_type() {
        details.insert("instanceType".to_owned(), t.as_str().to_owned());
    }
    if let Some(az) = i.placement().and_then(|p| p.availability_zone()) {
        details.insert("availabilityZone".to_owned(), az.to_owned());
    }
    if let Some(img) = i.image_id() {
        details.insert("image".to_owned(), img.to_owned());
    }
    u.details = details;
    u
}

impl Ec2Backend {
    /// [`ComputeBackend::create`] with this crate's typed errors: adopts the live instance of
    /// the unit (found by its cluster and unit tags) or launches one, tagged in the same call,
    /// with the unit's [`MachineOptions`] and the [`MachineDefaults`].
    pub async fn create_machine(&self, spec: &UnitSpec) -> Result<Unit, Error> {
        let UnitKind::Machine(m) = &spec.kind else {
            return Err(Error::Unsupported {
                what: format!("{} is a container group; EC2 runs machines", spec.name),
            });
        };
        let cluster = spec.tag.cluster.as_str();
        if let Some(found) = find_instance(&self.ec2, cluster, &spec.name).await? {
            return Ok(to_unit(&found));
        }
        let image = m
            .image
            .as_deref()
            .or(self.defaults.image.as_deref())
            .ok_or_else(|| Error::Spec {
                field: format!("{}: MachineSpec::image", spec.name),
                message: "no AMI: give the machine an image or set MachineDefaults::image".into(),
            })?;
        let options = self.machines.get(&spec.name).cloned().unwrap_or_default();
        let placement = match options.network_interface_id {
            Some(eni) => Placement::Eni(eni),
            None => Placement::Subnet {
                subnet_id: self.defaults.subnet_id.clone(),
                private_ip: m.private_ip,
                groups: self.defaults.security_group_ids.clone(),
            },
        };
        let inst = launch(
            &self.ec2,
            Launch {
                cluster,
                unit: &spec.name,
                role: options.role.as_deref().unwrap_or("machine"),
                size: &m.size,
                image,
                payload: &m.user_data,
                key_name: self.defaults.key_name.as_deref(),
                placement,
            },
        )
        .await?;
        // The launch response may come without tags: name the unit from the spec.
        let mut unit = to_unit(&inst);
        unit.name = spec.name.clone();
        unit.tag = spec.tag.clone();
        Ok(unit)
    }
}

#[async_trait::async_trait]
impl ComputeBackend for Ec2Backend {
    fn name(&self) -> &str {
        "aws"
    }

    async fn create(&self, spec: &UnitSpec) -> Result<Unit, BackendError> {
        Ok(self.create_machine(spec).await?)
    }

    async fn describe(&self, id: &UnitId) -> Result<Unit, BackendError> {
        let out = self
            .ec2
            .describe_instances()
            .instance_ids(&id.0)
            .send()
            .await
            .map_err(|e| api("DescribeInstances", id, e))?;
        out.reservations()
            .iter()
            .flat_map(|r| r.instances())
            .find(|i| i.state().and_then(|s| s.name()) != Some(&InstanceStateName::Terminated))
            .map(to_unit)
            .ok_or_else(|| {
                BackendError::new(
                    BackendErrorKind::NotFound,
                    format!("instance {id} is terminated or unknown"),
                )
            })
    }

    async fn list(&self, tag: &ClusterTag) -> Result<Vec<Unit>, BackendError> {
        Ok(list_instances(&self.ec2, &tag.cluster)
            .await?
            .iter()
            .map(to_unit)
            .collect())
    }

    async fn delete(&self, id: &UnitId) -> Result<(), BackendError> {
        match self
            .ec2
            .terminate_instances()
            .instance_ids(&id.0)
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) => {
                let e = api("TerminateInstances", id, e);
                if e.is_not_found() {
                    return Ok(());
                }
                return Err(e.into());
            }
        }
        wait_terminated(&self.ec2, std::slice::from_ref(&id.0), self.timing).await?;
        Ok(())
    }

    async fn stop(&self, id: &UnitId) -> Result<(), BackendError> {
        self.ec2
            .stop_instances()
            .instance_ids(&id.0)
            .send()
            .await
            .map_err(|e| api("StopInstances", id, e))?;
        Ok(())
    }

    async fn start(&self, id: &UnitId) -> Result<Unit, BackendError> {
        self.ec2
            .start_instances()
            .instance_ids(&id.0)
            .send()
            .await
            .map_err(|e| api("StartInstances", id, e))?;
        self.describe(id).await
    }
}
