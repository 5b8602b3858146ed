//! `up`'s load-balancer half: the control planes' target group, the internal NLB and its
//! listener. ELBv2 has no tag filter: these are looked up by their derived name (moto, unlike
//! AWS, makes a second NLB of the same name), and carry the cluster's tags from their create
//! call.

use std::collections::BTreeSet;

use aws_sdk_elasticloadbalancingv2::types::{
    Action, ActionTypeEnum, LoadBalancerSchemeEnum, LoadBalancerTypeEnum, ProtocolEnum,
    SubnetMapping, Tag, TargetDescription, TargetTypeEnum,
};
use frankenetes_compute::ClusterTag;

use super::Lab;
use super::desired::{API_PORT, lb_name};
use super::model::{Resource, Role};
use super::report::Recorder;
use crate::Error;
use crate::error::api;
use crate::tags::ROLE_KEY;

impl Lab {
    fn elb_tags(&self, role: &Role) -> Vec<Tag> {
        let tag = role.tag();
        vec![
            Tag::builder()
                .key(ClusterTag::KEY)
                .value(self.cluster())
                .build(),
            Tag::builder().key(ROLE_KEY).value(&tag).build(),
            Tag::builder().key("Name").value(self.name(&tag)).build(),
        ]
    }

    fn record_elb(&self, rec: &Recorder<'_>, role: &Role, arn: &str, existed: bool) -> Resource {
        let r = Resource::new(role.kind(), arn, role.tag());
        rec.got(r.clone(), existed);
        r
    }

    /// The target group, with every control plane registered.
    pub(crate) async fn ensure_target_group(
        &self,
        rec: &Recorder<'_>,
        vpc: &str,
    ) -> Result<String, Error> {
        let role = Role::TargetGroup;
        let name = lb_name(self.cluster());
        let existing = match self.elb.describe_target_groups().names(&name).send().await {
            Ok(out) => out.target_groups().first().cloned(),
            Err(e) => {
                let e = api("DescribeTargetGroups", &name, e);
                if !e.is_not_found() {
                    return Err(e);
                }
                None
            }
        };
        let res = if let Some(tg) = existing {
            if tg.vpc_id() != Some(vpc) {
                return Err(Error::Spec {
                    field: "metadata.name".into(),
                    message: format!(
                        "target group {name} exists in another VPC; rename the cluster or delete it"
                    ),
                });
            }
            self.record_elb(rec, &role, tg.target_group_arn().unwrap_or_default(), true)
        } else {
            let out = self
                .elb
                .create_target_group()
                .name(&name)
                .protocol(ProtocolEnum::Tcp)
                .port(i32::from(API_PORT))
                .target_type(TargetTypeEnum::Ip)
                .vpc_id(vpc)
                .health_check_protocol(ProtocolEnum::Tcp)
                .set_tags(Some(self.elb_tags(&role)))
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
                })?;
            self.record_elb(rec, &role, arn, false)
        };
        self.ensure_targets(rec, &res).await?;
        Ok(res.id)
    }

    /// Registers the control planes the group lacks.
    async fn ensure_targets(&self, rec: &Recorder<'_>, tg: &Resource) -> Result<(), Error> {
        let out = self
            .elb
            .describe_target_health()
            .target_group_arn(&tg.id)
            .send()
            .await
            .map_err(|e| api("DescribeTargetHealth", &tg.id, e))?;
        let have: BTreeSet<&str> = out
            .target_health_descriptions()
            .iter()
            .filter_map(|d| d.target().and_then(|t| t.id()))
            .collect();
        let missing: Vec<String> = self
            .spec
            .control_plane
            .iter()
            .map(|n| n.ip.to_string())
            .filter(|ip| !have.contains(ip.as_str()))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        let targets = missing
            .iter()
            .map(|ip| {
                TargetDescription::builder()
                    .id(ip)
                    .port(i32::from(API_PORT))
                    .build()
            })
            .collect();
        self.elb
            .register_targets()
            .target_group_arn(&tg.id)
            .set_targets(Some(targets))
            .send()
            .await
            .map_err(|e| api("RegisterTargets", &tg.id, e))?;
        rec.changed(
            tg.clone(),
            format!("targets {} registered", missing.join(", ")),
        );
        Ok(())
    }

    /// The internal NLB at `loadBalancerIP`; returns its ARN and DNS name.
    pub(crate) async fn ensure_lb(
        &self,
        rec: &Recorder<'_>,
        subnet: &str,
    ) -> Result<(String, Option<String>), Error> {
        let role = Role::LoadBalancer;
        let name = lb_name(self.cluster());
        match self.elb.describe_load_balancers().names(&name).send().await {
            Ok(out) => {
                if let Some(lb) = out.load_balancers().first() {
                    let res = self.record_elb(
                        rec,
                        &role,
                        lb.load_balancer_arn().unwrap_or_default(),
                        true,
                    );
                    return Ok((res.id, lb.dns_name().map(str::to_owned)));
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
            .set_tags(Some(self.elb_tags(&role)))
            .send()
            .await
            .map_err(|e| api("CreateLoadBalancer", &name, e))?;
        let lb = out.load_balancers().first().ok_or(Error::Missing {
            op: "CreateLoadBalancer",
            field: "LoadBalancers",
        })?;
        let res = self.record_elb(
            rec,
            &role,
            lb.load_balancer_arn().unwrap_or_default(),
            false,
        );
        Ok((res.id, lb.dns_name().map(str::to_owned)))
    }

    /// The TCP 6443 listener forwarding to the target group.
    pub(crate) async fn ensure_listener(
        &self,
        rec: &Recorder<'_>,
        lb: &str,
        tg: &str,
    ) -> Result<String, Error> {
        let role = Role::Listener;
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
            return Ok(self
                .record_elb(rec, &role, l.listener_arn().unwrap_or_default(), true)
                .id);
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
            .set_tags(Some(self.elb_tags(&role)))
            .send()
            .await
            .map_err(|e| api("CreateListener", lb, e))?;
        let arn = out
            .listeners()
            .first()
            .and_then(|l| l.listener_arn())
            .unwrap_or_default();
        Ok(self.record_elb(rec, &role, arn, false).id)
    }
}
