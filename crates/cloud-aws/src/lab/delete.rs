//! `down`: every resource carrying the cluster's tag deleted, kind by kind in the order
//! [`Kind::delete_waves`] derives from the table's dependencies, then the audit.

use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::future::try_join_all;

use super::Lab;
use super::find::{ByKind, Found, Link};
use super::model::Kind;
use super::report::{Audit, Event, OnEvent};
use crate::Error;
use crate::ec2;
use crate::error::api;

impl Lab {
    /// Deletes every resource tagged with the cluster in the region, in dependency order,
    /// retrying `DependencyViolation`, "in use" and throttling with backoff, and returns the
    /// audit that follows (clean when nothing is left). Needs no state: it works after a
    /// crashed `up` and after an earlier `down`. A resource that appears while it runs (a
    /// launch still in flight when `up` died) is caught by a further pass, up to three.
    /// [`Lab::inventory`] lists beforehand what this deletes.
    pub async fn down(&self, on: OnEvent<'_>) -> Result<Audit, Error> {
        let mut pass = 0;
        loop {
            pass += 1;
            let deleted = self.down_pass(on).await?;
            let audit = self.audit().await?;
            if audit.is_clean() || deleted == 0 || pass == 3 {
                return Ok(audit);
            }
        }
    }

    /// What is left: every resource still carrying the cluster's tag. Read-only.
    pub async fn audit(&self) -> Result<Audit, Error> {
        Ok(self.inventory().await?.into())
    }

    /// One pass of [`Lab::down`]; returns how many resources it deleted.
    async fn down_pass(&self, on: OnEvent<'_>) -> Result<usize, Error> {
        let found: ByKind = self.find_all().await?;
        let count = AtomicUsize::new(0);
        for wave in Kind::delete_waves() {
            try_join_all(wave.iter().map(|kind| {
                let items = found.get(kind).map(Vec::as_slice).unwrap_or_default();
                let count = &count;
                async move {
                    let n = self.delete_kind(*kind, items, on).await?;
                    count.fetch_add(n, Ordering::Relaxed);
                    Ok::<_, Error>(())
                }
            }))
            .await?;
        }
        Ok(count.into_inner())
    }

    /// Deletes the resources of one kind (concurrently, or in one call for instances);
    /// returns how many.
    async fn delete_kind(
        &self,
        kind: Kind,
        items: &[Found],
        on: OnEvent<'_>,
    ) -> Result<usize, Error> {
        if items.is_empty() {
            return Ok(0);
        }
        match kind {
            Kind::Instance => self.terminate(items, on).await?,
            _ => {
                try_join_all(items.iter().map(|f| self.delete_one(f, on))).await?;
            }
        }
        if kind == Kind::LoadBalancer {
            self.wait_lbs_gone(items, on).await?;
        }
        for f in items {
            on(&Event::Deleted(f.res.clone()));
        }
        Ok(items.len())
    }

    /// Terminates instances in one call and waits until they are terminated.
    async fn terminate(&self, items: &[Found], on: OnEvent<'_>) -> Result<(), Error> {
        let ids: Vec<String> = items.iter().map(|f| f.res.id.clone()).collect();
        self.retry_gone(on, "terminate instances", || async {
            self.ec2
                .terminate_instances()
                .set_instance_ids(Some(ids.clone()))
                .send()
                .await
                .map_err(|e| api("TerminateInstances", ids.join(","), e))
        })
        .await?;
        on(&Event::Waiting(format!(
            "{} instance(s) to terminate",
            ids.len()
        )));
        ec2::wait_terminated(&self.ec2, &ids, self.timing).await
    }

    /// Waits until the load balancers are gone: on AWS their network interfaces hold the
    /// subnet until then.
    async fn wait_lbs_gone(&self, items: &[Found], on: OnEvent<'_>) -> Result<(), Error> {
        on(&Event::Waiting("load balancers to go".into()));
        let arns: Vec<String> = items.iter().map(|f| f.res.id.clone()).collect();
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
                    let e = api("DescribeLoadBalancers", arns.join(","), e);
                    if e.is_not_found() { Ok(true) } else { Err(e) }
                }
            }
        })
        .await
    }

    /// Undoes the resource's links (detach, disassociate), then deletes it; gone counts as
    /// deleted.
    async fn delete_one(&self, f: &Found, on: OnEvent<'_>) -> Result<(), Error> {
        let id = f.res.id.as_str();
        for link in &f.links {
            self.unlink(id, link, on).await?;
        }
        let what = format!("delete {} {id}", f.res.kind);
        let (ec2, elb) = (&self.ec2, &self.elb);
        match f.res.kind {
            Kind::Vpc => {
                self.retry_gone(on, &what, || async {
                    ec2.delete_vpc()
                        .vpc_id(id)
                        .send()
                        .await
                        .map_err(|e| api("DeleteVpc", id, e))
                })
                .await
            }
            Kind::Subnet => {
                self.retry_gone(on, &what, || async {
                    ec2.delete_subnet()
                        .subnet_id(id)
                        .send()
                        .await
                        .map_err(|e| api("DeleteSubnet", id, e))
                })
                .await
            }
            Kind::InternetGateway => {
                self.retry_gone(on, &what, || async {
                    let r = ec2
                        .delete_internet_gateway()
                        .internet_gateway_id(id)
                        .send()
                        .await;
                    r.map_err(|e| api("DeleteInternetGateway", id, e))
                })
                .await
            }
            Kind::RouteTable => {
                self.retry_gone(on, &what, || async {
                    let r = ec2.delete_route_table().route_table_id(id).send().await;
                    r.map_err(|e| api("DeleteRouteTable", id, e))
                })
                .await
            }
            Kind::SecurityGroup => {
                self.retry_gone(on, &what, || async {
                    let r = ec2.delete_security_group().group_id(id).send().await;
                    r.map_err(|e| api("DeleteSecurityGroup", id, e))
                })
                .await
            }
            Kind::NetworkInterface => {
                // On AWS an interface detaches a moment after its instance terminates.
                self.retry_gone(on, &what, || async {
                    let r = ec2
                        .delete_network_interface()
                        .network_interface_id(id)
                        .send()
                        .await;
                    r.map_err(|e| api("DeleteNetworkInterface", id, e))
                })
                .await
            }
            Kind::ElasticIp => {
                self.retry_gone(on, &what, || async {
                    let r = ec2.release_address().allocation_id(id).send().await;
                    r.map_err(|e| api("ReleaseAddress", id, e))
                })
                .await
            }
            Kind::Volume => {
                self.retry_gone(on, &what, || async {
                    ec2.delete_volume()
                        .volume_id(id)
                        .send()
                        .await
                        .map_err(|e| api("DeleteVolume", id, e))
                })
                .await
            }
            Kind::Instance => {
                self.retry_gone(on, &what, || async {
                    let r = ec2.terminate_instances().instance_ids(id).send().await;
                    r.map_err(|e| api("TerminateInstances", id, e))
                })
                .await
            }
            Kind::TargetGroup => {
                self.retry_gone(on, &what, || async {
                    let r = elb.delete_target_group().target_group_arn(id).send().await;
                    r.map_err(|e| api("DeleteTargetGroup", id, e))
                })
                .await
            }
            Kind::LoadBalancer => {
                self.retry_gone(on, &what, || async {
                    let r = elb
                        .delete_load_balancer()
                        .load_balancer_arn(id)
                        .send()
                        .await;
                    r.map_err(|e| api("DeleteLoadBalancer", id, e))
                })
                .await
            }
            Kind::Listener => {
                self.retry_gone(on, &what, || async {
                    let r = elb.delete_listener().listener_arn(id).send().await;
                    r.map_err(|e| api("DeleteListener", id, e))
                })
                .await
            }
            // Its objects first; found by its derived name, so also when an `up` died
            // before tagging it.
            Kind::PayloadBucket => self.store.delete().await.map(|_| ()),
        }
    }

    /// Undoes one link of resource `id`.
    async fn unlink(&self, id: &str, link: &Link, on: OnEvent<'_>) -> Result<(), Error> {
        let ec2 = &self.ec2;
        match link {
            Link::Attached { vpc } => {
                self.retry_gone(on, &format!("detach {id} from {vpc}"), || async {
                    let r = ec2
                        .detach_internet_gateway()
                        .internet_gateway_id(id)
                        .vpc_id(vpc)
                        .send()
                        .await;
                    r.map_err(|e| api("DetachInternetGateway", id, e))
                })
                .await
            }
            Link::Association(assoc) => {
                self.retry_gone(on, &format!("disassociate {assoc}"), || async {
                    let r = ec2
                        .disassociate_route_table()
                        .association_id(assoc)
                        .send()
                        .await;
                    r.map_err(|e| api("DisassociateRouteTable", assoc, e))
                })
                .await
            }
            Link::Address(assoc) => {
                self.retry_gone(on, &format!("disassociate {assoc}"), || async {
                    let r = ec2
                        .disassociate_address()
                        .association_id(assoc)
                        .send()
                        .await;
                    r.map_err(|e| api("DisassociateAddress", assoc, e))
                })
                .await
            }
        }
    }
}
