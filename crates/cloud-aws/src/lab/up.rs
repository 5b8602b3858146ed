//! `up`: the checks, then every role the spec wants, each started as soon as what it needs
//! exists (so independent resources are made concurrently), found by its tags or created with
//! them; the machines through [`Ec2Backend`](crate::Ec2Backend).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use aws_sdk_ec2::types::InstanceStateName;
use frankenetes_compute::{ClusterTag, MachineSpec, UnitSpec};
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;

use super::create::Target;
use super::desired::Desired;
use super::model::{Kind, Machine, Resource, Role, Tier};
use super::preflight::Ready;
use super::report::{Event, OnEvent, Recorder, UpReport};
use super::{Lab, LabPayloads};
use crate::Error;
use crate::ec2::{self, MachineOptions};
use crate::error::api;

/// What making a role produced: its id, and for the Elastic IP its address, for the load
/// balancer its DNS name.
#[derive(Debug, Clone)]
struct Got {
    id: String,
    extra: Option<String>,
}

impl Got {
    fn id(id: String) -> Self {
        Got { id, extra: None }
    }
}

/// What has been made, by role.
type Made = BTreeMap<(Kind, String), Got>;

/// The id of a role made earlier (one of the role's needs).
fn id<'a>(made: &'a Made, role: &Role) -> Result<&'a str, Error> {
    made.get(&role.key())
        .map(|g| g.id.as_str())
        .ok_or(Error::Missing {
            op: "up",
            field: "a resource the role needs (Role::needs is incomplete)",
        })
}

impl Lab {
    /// Checks everything that can fail without a write (payloads, instance types and sizes,
    /// the key pair, the AMI), then creates whatever of the lab is missing and adopts what
    /// exists (found by its tags); a second run creates nothing and makes no write call. Every
    /// resource carries the cluster tag from its create call on. `on` sees every step.
    pub async fn up(&self, payloads: &LabPayloads, on: OnEvent<'_>) -> Result<UpReport, Error> {
        let ready = self.preflight(payloads, on).await?;
        let rec = Recorder::new(on);
        let desired = self.desired(&ready.in_bucket);
        let made = self.make_all(&desired, &ready, payloads, &rec).await?;

        let mut instances = BTreeMap::new();
        for m in self.machines() {
            instances.insert(
                m.unit().to_owned(),
                id(&made, &Role::Instance(m))?.to_owned(),
            );
        }
        self.wait_running(on, &instances.values().cloned().collect::<Vec<_>>())
            .await?;
        let ip: IpAddr = made
            .get(&Role::ElasticIp.key())
            .and_then(|g| g.extra.as_deref())
            .and_then(|ip| ip.parse().ok())
            .ok_or(Error::Missing {
                op: "AllocateAddress",
                field: "PublicIp",
            })?;
        let (created, found, changed) = rec.finish();
        Ok(UpReport {
            created,
            found,
            changed,
            gateway_public_ip: ip,
            wireguard_endpoint: SocketAddr::new(ip, self.gateway.tunnel.listen_port),
            load_balancer_dns: made
                .get(&Role::LoadBalancer.key())
                .and_then(|g| g.extra.clone()),
            instances,
            images: ready.images,
        })
    }

    /// Makes every desired role once all it needs is made; independent roles run
    /// concurrently. The first error stops the rest (what exists is tagged: `up` again
    /// finishes, `down` removes).
    async fn make_all(
        &self,
        desired: &[Desired],
        ready: &Ready,
        payloads: &LabPayloads,
        rec: &Recorder<'_>,
    ) -> Result<Made, Error> {
        let mut made = Made::new();
        let mut started = BTreeSet::new();
        let mut running = FuturesUnordered::new();
        loop {
            for d in desired {
                let key = d.role.key();
                if started.contains(&key) || !d.needs.iter().all(|n| made.contains_key(&n.key())) {
                    continue;
                }
                started.insert(key.clone());
                let deps: Made = d
                    .needs
                    .iter()
                    .filter_map(|n| made.get(&n.key()).map(|g| (n.key(), g.clone())))
                    .collect();
                running.push(async move {
                    let got = self.make(&d.role, &deps, ready, payloads, rec).await?;
                    Ok::<_, Error>((key, got))
                });
            }
            match running.next().await {
                Some(r) => {
                    let (key, got) = r?;
                    made.insert(key, got);
                }
                None => break,
            }
        }
        if desired.iter().any(|d| !made.contains_key(&d.role.key())) {
            return Err(Error::Missing {
                op: "up",
                field: "a resource some role needs (Role::needs and Lab::desired disagree)",
            });
        }
        Ok(made)
    }

    /// Finds or creates one role; `made` holds what it needs.
    async fn make(
        &self,
        role: &Role,
        made: &Made,
        ready: &Ready,
        payloads: &LabPayloads,
        rec: &Recorder<'_>,
    ) -> Result<Got, Error> {
        let vpc = || id(made, &Role::Vpc);
        let gw_eni =
            || id(made, &Role::NetworkInterface(self.gateway_machine())).map(str::to_owned);
        Ok(match role {
            Role::Vpc => Got::id(self.ensure_vpc(rec).await?),
            Role::Subnet(t) => Got::id(self.ensure_subnet(rec, vpc()?, *t).await?),
            Role::InternetGateway => Got::id(self.ensure_igw(rec, vpc()?).await?),
            Role::SecurityGroup(t) => Got::id(self.ensure_sg(rec, vpc()?, *t).await?),
            Role::TargetGroup => Got::id(self.ensure_target_group(rec, vpc()?).await?),
            Role::NetworkInterface(m) => {
                let (subnet, sg) = (
                    id(made, &Role::Subnet(m.tier()))?,
                    id(made, &Role::SecurityGroup(m.tier()))?,
                );
                Got::id(self.ensure_eni(rec, m, subnet, sg).await?)
            }
            Role::RouteTable(t) => {
                let routes = match t {
                    Tier::Gateway => {
                        vec![(
                            "0.0.0.0/0".to_owned(),
                            Target::Igw(id(made, &Role::InternetGateway)?.to_owned()),
                        )]
                    }
                    Tier::Nodes => vec![
                        ("0.0.0.0/0".to_owned(), Target::Eni(gw_eni()?)),
                        (self.gateway.tunnel.cidr.to_string(), Target::Eni(gw_eni()?)),
                    ],
                };
                let subnet = id(made, &Role::Subnet(*t))?;
                Got::id(
                    self.ensure_route_table(rec, *t, vpc()?, subnet, routes)
                        .await?,
                )
            }
            Role::ElasticIp => {
                let (alloc, ip) = self.ensure_eip(rec, &gw_eni()?).await?;
                Got {
                    id: alloc,
                    extra: Some(ip),
                }
            }
            Role::Instance(m) => {
                let bucket = made.get(&Role::PayloadBucket.key()).map(|g| g.id.as_str());
                let eni = id(made, &Role::NetworkInterface(m.clone()))?;
                Got::id(
                    self.ensure_instance(rec, m, eni, bucket, ready, payloads)
                        .await?,
                )
            }
            Role::LoadBalancer => {
                let (arn, dns) = self
                    .ensure_lb(rec, id(made, &Role::Subnet(Tier::Nodes))?)
                    .await?;
                Got {
                    id: arn,
                    extra: dns,
                }
            }
            Role::Listener => {
                let (lb, tg) = (
                    id(made, &Role::LoadBalancer)?,
                    id(made, &Role::TargetGroup)?,
                );
                Got::id(self.ensure_listener(rec, lb, tg).await?)
            }
            Role::PayloadBucket => {
                let (bucket, created) = self.store.ensure().await?;
                rec.got(
                    Resource::new(Kind::PayloadBucket, &bucket, role.tag()),
                    !created,
                );
                Got::id(bucket)
            }
        })
    }

    /// A machine through [`Ec2Backend`](crate::Ec2Backend), on its network interface, with the
    /// key pair; its config uploaded to the bucket first when it needs to be (only when the
    /// machine does not run yet: a converged lab writes nothing).
    async fn ensure_instance(
        &self,
        rec: &Recorder<'_>,
        m: &Machine,
        eni: &str,
        bucket: Option<&str>,
        ready: &Ready,
        payloads: &LabPayloads,
    ) -> Result<String, Error> {
        let unit = m.unit();
        if let Some(i) = ec2::find_instance(&self.ec2, self.cluster(), unit).await? {
            let id = i.instance_id().unwrap_or_default().to_owned();
            rec.found(Resource::new(Kind::Instance, &id, unit));
            return Ok(id);
        }
        let payload = match m {
            Machine::Gateway(_) => Some(&payloads.gateway),
            Machine::Node(n) => payloads.nodes.get(n),
        }
        .ok_or_else(|| Error::Spec {
            field: format!("payloads.nodes[{unit}]"),
            message: "no Ignition config given for this node; render the node bundles first".into(),
        })?;
        let mut machine = MachineSpec::new(self.size(m));
        machine.image = ready.images.get(unit).cloned();
        machine.private_ip = self.ip(m);
        machine.user_data = match bucket {
            Some(b) if ready.in_bucket.contains(unit) => self.store.put(b, unit, payload).await?,
            _ => payload.clone(),
        };
        let options = MachineOptions::default()
            .network_interface(eni)
            .role(m.role_tag());
        let unit_spec = UnitSpec::machine(unit, ClusterTag::new(self.cluster()), machine);
        let made = self
            .machines
            .clone()
            .with_machine(unit, options)
            .create_machine(&unit_spec)
            .await?;
        rec.created(Resource::new(Kind::Instance, &made.id.0, unit));
        Ok(made.id.0)
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
}
