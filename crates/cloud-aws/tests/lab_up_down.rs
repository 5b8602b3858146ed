//! The lab's whole life against a real `moto_server` on 127.0.0.1 (one per test, stopped by
//! PID when the test ends, also on failure): `up` builds everything, a second `up` writes
//! nothing, the inventory lists what `down` deletes, `down` leaves nothing — also after an `up`
//! killed half-way. And `Ec2Backend` (which makes the lab's machines) passes the compute
//! conformance suite.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_ec2::types::Filter;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use frankenetes_cloud_aws::testing::Moto;
use frankenetes_cloud_aws::{
    Ec2Backend, Event, Kind, Lab, LabPayloads, MachineDefaults, ResourceState, userdata,
};
use frankenetes_compute::{ClusterTag, MachineSpec, UnitSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ec2_backend_passes_the_compute_conformance_suite() {
    let moto = Moto::start();
    let backend = Ec2Backend::new(&moto.sdk(REGION))
        .with_defaults({
            let mut d = MachineDefaults::default();
            d.image = Some(AMI.into());
            d
        })
        .with_timing(fast());
    let mut m = MachineSpec::new("t3a.nano");
    m.user_data = ignition("conformance", 1);
    frankenetes_compute::testing::lifecycle(
        &backend,
        UnitSpec::machine("worker-01", ClusterTag::new("conformance"), m),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lab_up_builds_everything_up_again_creates_nothing_down_leaves_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk(REGION);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let elb = aws_sdk_elasticloadbalancingv2::Client::new(&sdk);
    let spec = lab_spec("kubelius");
    let payloads = payloads();
    let lab = Lab::new(&sdk, &spec).unwrap().with_timing(fast());
    let events = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let ev = events.clone();
    let on = move |e: &Event| ev.lock().unwrap().push(e.to_string());

    let t = Instant::now();
    let report = lab.up(&payloads, &on).await.unwrap();
    eprintln!(
        "first up: {:?}, {} created",
        t.elapsed(),
        report.created.len()
    );
    assert!(
        report.found.is_empty(),
        "a fresh region has nothing to adopt: {:?}",
        report.found
    );
    // vpc, 2 subnets, igw, 2 route tables, 2 SGs (+2 rule sets), 4 ENIs, EIP, 4 instances, TG, NLB, listener
    assert_eq!(
        report
            .created
            .iter()
            .filter(|r| r.kind == Kind::Instance)
            .count(),
        4,
        "{:#?}",
        report.created
    );
    assert_eq!(report.instances.len(), 4);
    assert!(
        events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.starts_with("created vpc"))
    );

    // The VPC and its subnets.
    let vpcs = ec2
        .describe_vpcs()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    assert_eq!(vpcs.vpcs().len(), 1);
    let vpc = vpcs.vpcs()[0].vpc_id().unwrap().to_owned();
    assert_eq!(vpcs.vpcs()[0].cidr_block(), Some("10.10.16.0/20"));
    let subnets = ec2
        .describe_subnets()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let sn: BTreeMap<String, (String, String, String)> = subnets
        .subnets()
        .iter()
        .map(|s| {
            (
                by_role(s.tags()),
                (
                    s.subnet_id().unwrap().to_owned(),
                    s.cidr_block().unwrap().to_owned(),
                    s.availability_zone().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(sn["subnet-nodes"].1, "10.10.16.0/24");
    assert_eq!(sn["subnet-gateway"].1, "10.10.31.0/24");
    assert!(sn.values().all(|s| s.2 == "eu-west-3a"), "{sn:?}");
    assert!(
        subnets
            .subnets()
            .iter()
            .all(|s| s.vpc_id() == Some(vpc.as_str()))
    );

    // The internet gateway, attached.
    let igws = ec2
        .describe_internet_gateways()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    assert_eq!(igws.internet_gateways().len(), 1);
    let igw = igws.internet_gateways()[0]
        .internet_gateway_id()
        .unwrap()
        .to_owned();
    assert_eq!(
        igws.internet_gateways()[0].attachments()[0].vpc_id(),
        Some(vpc.as_str())
    );

    // Network interfaces with the spec's IPs; the gateway's forwards (source/dest check off).
    let enis = ec2
        .describe_network_interfaces()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let eni: BTreeMap<String, (String, String, bool, String)> = enis
        .network_interfaces()
        .iter()
        .map(|n| {
            (
                by_role(n.tag_set()),
                (
                    n.network_interface_id().unwrap().to_owned(),
                    n.private_ip_address().unwrap().to_owned(),
                    n.source_dest_check().unwrap(),
                    n.groups()[0].group_id().unwrap().to_owned(),
                ),
            )
        })
        .collect();
    assert_eq!(eni.len(), 4, "{eni:?}");
    assert_eq!(eni["eni-gateway"].1, "10.10.31.10");
    assert!(
        !eni["eni-gateway"].2,
        "gateway ENI must not check source/dest"
    );
    for (n, ip) in [
        ("control-01", "10.10.16.11"),
        ("control-02", "10.10.16.12"),
        ("control-03", "10.10.16.13"),
    ] {
        let e = &eni[&format!("eni-{n}")];
        assert_eq!(e.1, ip);
        assert!(e.2, "{n}'s ENI keeps source/dest check");
    }
    let gw_eni = eni["eni-gateway"].0.clone();

    // Security groups with exactly the ports each role needs.
    let sgs = ec2
        .describe_security_groups()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let sg: BTreeMap<String, String> = sgs
        .security_groups()
        .iter()
        .map(|g| (by_role(g.tags()), g.group_id().unwrap().to_owned()))
        .collect();
    assert_eq!(eni["eni-gateway"].3, sg["sg-gateway"]);
    assert_eq!(eni["eni-control-01"].3, sg["sg-nodes"]);
    let rules = |id: String| {
        let ec2 = ec2.clone();
        async move {
            let out = ec2
                .describe_security_group_rules()
                .filters(Filter::builder().name("group-id").values(&id).build())
                .send()
                .await
                .unwrap();
            out.security_group_rules()
                .iter()
                .filter(|r| r.is_egress() == Some(false))
                .map(|r| {
                    let src = r.cidr_ipv4().map(str::to_owned).unwrap_or_else(|| {
                        let g = r
                            .referenced_group_info()
                            .and_then(|g| g.group_id())
                            .unwrap_or_default();
                        if g == id { "self".into() } else { g.to_owned() }
                    });
                    let proto = r.ip_protocol().unwrap().to_owned();
                    let ports = if proto == "-1" {
                        "all".to_owned()
                    } else {
                        format!("{}-{}", r.from_port().unwrap(), r.to_port().unwrap())
                    };
                    format!("{proto} {ports} {src}")
                })
                .collect::<BTreeSet<_>>()
        }
    };
    let want_nodes: BTreeSet<String> = [
        "tcp 6443-6443 10.10.16.0/20",
        "tcp 6443-6443 10.200.0.0/24",
        "tcp 2379-2380 self",
        "tcp 10250-10250 self",
        "tcp 22-22 10.200.0.0/24",
    ]
    .map(String::from)
    .into();
    assert_eq!(rules(sg["sg-nodes"].clone()).await, want_nodes);
    let want_gw: BTreeSet<String> = ["udp 51820-51820 0.0.0.0/0", "-1 all 10.10.16.0/20"]
        .map(String::from)
        .into();
    assert_eq!(rules(sg["sg-gateway"].clone()).await, want_gw);

    // Routes: nodes → gateway ENI (default and tunnel), gateway subnet → internet gateway.
    let rts = ec2
        .describe_route_tables()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let rt: BTreeMap<String, &aws_sdk_ec2::types::RouteTable> = rts
        .route_tables()
        .iter()
        .map(|t| (by_role(t.tags()), t))
        .collect();
    let route = |t: &aws_sdk_ec2::types::RouteTable, dest: &str| {
        t.routes()
            .iter()
            .find(|r| r.destination_cidr_block() == Some(dest))
            .map(|r| {
                r.gateway_id()
                    .or(r.network_interface_id())
                    .unwrap_or_default()
                    .to_owned()
            })
    };
    assert_eq!(
        route(rt["rt-nodes"], "0.0.0.0/0").as_deref(),
        Some(gw_eni.as_str())
    );
    assert_eq!(
        route(rt["rt-nodes"], "10.200.0.0/24").as_deref(),
        Some(gw_eni.as_str())
    );
    assert_eq!(
        route(rt["rt-gateway"], "0.0.0.0/0").as_deref(),
        Some(igw.as_str())
    );
    assert!(
        rt["rt-nodes"]
            .associations()
            .iter()
            .any(|a| a.subnet_id() == Some(sn["subnet-nodes"].0.as_str()))
    );
    assert!(
        rt["rt-gateway"]
            .associations()
            .iter()
            .any(|a| a.subnet_id() == Some(sn["subnet-gateway"].0.as_str()))
    );

    // The Elastic IP on the gateway ENI.
    let eips = ec2
        .describe_addresses()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    assert_eq!(eips.addresses().len(), 1);
    assert_eq!(
        eips.addresses()[0].network_interface_id(),
        Some(gw_eni.as_str())
    );
    // The report carries it: the WireGuard endpoint of the client configs.
    let eip: std::net::IpAddr = eips.addresses()[0].public_ip().unwrap().parse().unwrap();
    assert_eq!(report.gateway_public_ip, eip);
    assert_eq!(
        report.wireguard_endpoint,
        std::net::SocketAddr::new(eip, 51820)
    );

    // Instances: running, on their ENIs, tagged, with their user data.
    let inst = ec2
        .describe_instances()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    let instances: Vec<_> = inst
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .collect();
    assert_eq!(instances.len(), 4);
    let mut payload_of: BTreeMap<String, Vec<u8>> = payloads
        .nodes
        .iter()
        .map(|(n, p)| (n.as_str().to_owned(), p.clone()))
        .collect();
    payload_of.insert("gateway".into(), payloads.gateway.clone());
    for i in &instances {
        let unit = i
            .tags()
            .iter()
            .find(|t| t.key() == Some("frankenetes.dev/unit"))
            .and_then(|t| t.value())
            .unwrap()
            .to_owned();
        assert_eq!(i.state().unwrap().name().unwrap().as_str(), "running");
        let (size, role) = if unit == "gateway" {
            ("t3a.nano", "gateway")
        } else {
            ("t3a.small", "node")
        };
        assert_eq!(i.instance_type().unwrap().as_str(), size, "{unit}");
        assert_eq!(value(i.tags(), "frankenetes.dev/role"), role, "{unit}");
        assert_eq!(i.image_id(), Some(AMI));
        assert_eq!(report.images[&unit], AMI);
        assert_eq!(i.key_name(), None, "no keyName, no key pair");
        let eni_id = i.network_interfaces()[0].network_interface_id().unwrap();
        let want_eni = if unit == "gateway" {
            "eni-gateway".to_owned()
        } else {
            format!("eni-{unit}")
        };
        assert_eq!(eni_id, eni[&want_eni].0, "{unit} on its ENI");
        let attr = ec2
            .describe_instance_attribute()
            .instance_id(i.instance_id().unwrap())
            .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
            .send()
            .await
            .unwrap();
        let raw = STANDARD
            .decode(attr.user_data().unwrap().value().unwrap())
            .unwrap();
        assert!(
            raw.len() <= userdata::USER_DATA_LIMIT,
            "{unit}: {} bytes of user data",
            raw.len()
        );
        assert_eq!(
            userdata::decode(&raw).unwrap(),
            payload_of[&unit],
            "{unit}'s Ignition round-trips"
        );
        if unit == "control-02" {
            assert!(payload_of[&unit].len() > userdata::USER_DATA_LIMIT);
            assert!(
                raw.starts_with(br#"{"ignition":{"version":"3.4.0","config":{"replace""#),
                "control-02 boots a stub"
            );
        } else {
            assert_eq!(
                raw, payload_of[&unit],
                "{unit}'s small config goes in as it is"
            );
        }
    }
    let vols = ec2
        .describe_volumes()
        .filters(tag("kubelius"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        vols.volumes().len(),
        4,
        "root volumes carry the tag from RunInstances"
    );

    // The internal NLB: TCP 6443 to the three control planes, tagged.
    let lbs = elb
        .describe_load_balancers()
        .names("kubelius-api")
        .send()
        .await
        .unwrap();
    let lb = &lbs.load_balancers()[0];
    assert_eq!(lb.scheme().unwrap().as_str(), "internal");
    assert_eq!(lb.r#type().unwrap().as_str(), "network");
    let lb_arn = lb.load_balancer_arn().unwrap().to_owned();
    let listeners = elb
        .describe_listeners()
        .load_balancer_arn(&lb_arn)
        .send()
        .await
        .unwrap();
    assert_eq!(listeners.listeners().len(), 1);
    let l = &listeners.listeners()[0];
    assert_eq!(
        (l.port(), l.protocol().unwrap().as_str()),
        (Some(6443), "TCP")
    );
    let tg_arn = l.default_actions()[0]
        .target_group_arn()
        .unwrap()
        .to_owned();
    let health = elb
        .describe_target_health()
        .target_group_arn(&tg_arn)
        .send()
        .await
        .unwrap();
    let targets: BTreeSet<(String, i32)> = health
        .target_health_descriptions()
        .iter()
        .map(|d| {
            (
                d.target().unwrap().id().unwrap().to_owned(),
                d.target().unwrap().port().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        targets,
        [
            ("10.10.16.11".to_owned(), 6443),
            ("10.10.16.12".to_owned(), 6443),
            ("10.10.16.13".to_owned(), 6443)
        ]
        .into()
    );
    let tags = elb
        .describe_tags()
        .resource_arns(&lb_arn)
        .resource_arns(&tg_arn)
        .resource_arns(l.listener_arn().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tag_descriptions().len(), 3);
    for d in tags.tag_descriptions() {
        assert!(
            d.tags()
                .iter()
                .any(|t| t.key() == Some(ClusterTag::KEY) && t.value() == Some("kubelius")),
            "{:?} lacks the cluster tag",
            d.resource_arn()
        );
    }

    // status now: everything exists, every machine runs; read calls only.
    moto.record();
    let status = lab.status().await.unwrap();
    assert_eq!(status.to_create(), 0, "{status}");
    assert!(status.is_up(), "{status}");
    assert_eq!(
        status
            .resources
            .iter()
            .filter(|r| r.state == ResourceState::Machine(frankenetes_compute::UnitState::Running))
            .count(),
        4,
        "{status}"
    );
    assert_eq!(
        status.resources.len(),
        plan_len(&lab, &payloads),
        "{status}"
    );
    assert_eq!(moto.recorded_writes(), Vec::<String>::new(), "status wrote");

    // up again: finds everything, creates nothing, writes nothing.
    moto.record();
    let again = lab.up(&payloads, &|_| {}).await.unwrap();
    let writes = moto.recorded_writes();
    assert!(
        again.created.is_empty(),
        "second up created {:?}",
        again.created
    );
    assert!(writes.is_empty(), "second up made write calls: {writes:?}");
    assert!(again.changed.is_empty(), "{:?}", again.changed);
    assert_eq!(again.instances, report.instances);
    assert_eq!(again.gateway_public_ip, report.gateway_public_ip);

    // The preview of down: read calls only, in delete order, exactly what down then deletes.
    moto.record();
    let inventory = lab.inventory().await.unwrap();
    assert_eq!(
        moto.recorded_writes(),
        Vec::<String>::new(),
        "inventory wrote"
    );
    let kinds: Vec<Kind> = inventory.resources().map(|r| r.kind).collect();
    let first = |k: Kind| kinds.iter().position(|x| *x == k).unwrap();
    assert!(
        first(Kind::Listener) < first(Kind::LoadBalancer),
        "{inventory}"
    );
    assert!(
        first(Kind::Instance) < first(Kind::NetworkInterface),
        "{inventory}"
    );
    assert!(
        first(Kind::NetworkInterface) < first(Kind::Subnet),
        "{inventory}"
    );
    assert_eq!(kinds.last(), Some(&Kind::Vpc), "{inventory}");
    // Everything up made or found is in it, and the root volumes too.
    for r in report.created.iter() {
        assert!(
            inventory.resources().any(|i| i == r),
            "{r} missing from\n{inventory}"
        );
    }
    assert_eq!(inventory.of(Kind::Volume).count(), 4, "{inventory}");

    events.lock().unwrap().clear();
    let t = Instant::now();
    let audit = lab.down(&on).await.unwrap();
    eprintln!("down: {:?}", t.elapsed());
    assert!(audit.is_clean(), "{audit}");
    let deleted: BTreeSet<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| e.strip_prefix("deleted ").map(str::to_owned))
        .collect();
    let previewed: BTreeSet<String> = inventory.resources().map(|r| r.to_string()).collect();
    assert_eq!(deleted, previewed, "down deleted what the inventory listed");
    let live = ec2
        .describe_instances()
        .filters(tag("kubelius"))
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .values("running")
                .values("pending")
                .build(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(live.reservations().len(), 0);
    assert!(
        ec2.describe_vpcs()
            .filters(tag("kubelius"))
            .send()
            .await
            .unwrap()
            .vpcs()
            .is_empty()
    );
    assert!(
        elb.describe_target_groups()
            .send()
            .await
            .unwrap()
            .target_groups()
            .is_empty()
    );
    assert!(
        elb.describe_load_balancers()
            .send()
            .await
            .unwrap()
            .load_balancers()
            .is_empty()
    );
    // down again: nothing to do, still clean.
    assert!(lab.down(&|_| {}).await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn down_after_an_up_killed_half_way_leaves_nothing() {
    let moto = Moto::start();
    let sdk = moto.sdk(REGION);
    let spec = lab_spec("crashy");
    let lab = Lab::new(&sdk, &spec).unwrap().with_timing(fast());
    let payloads = payloads();
    let instance_started = Arc::new(tokio::sync::Notify::new());
    let n = instance_started.clone();
    let on = move |e: &Event| {
        if let Event::Created(r) = e
            && r.kind == Kind::Instance
        {
            n.notify_one();
        }
    };
    // Kill `up` (drop its future) as soon as the first instance exists.
    tokio::select! {
        r = lab.up(&payloads, &on) => panic!("up finished before it could be killed: {r:?}"),
        () = instance_started.notified() => {}
    }
    let half = lab.audit().await.unwrap();
    assert!(
        half.leftovers.iter().any(|r| r.kind == Kind::Instance),
        "{half}"
    );
    assert!(half.leftovers.iter().any(|r| r.kind == Kind::Vpc), "{half}");
    // A fresh Lab value: down needs no state from the crashed run.
    let audit = Lab::new(&sdk, &spec)
        .unwrap()
        .with_timing(fast())
        .down(&|_| {})
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit}");
}

/// How many resources the plan of `lab` lists.
fn plan_len(lab: &Lab, payloads: &LabPayloads) -> usize {
    lab.plan(payloads).unwrap().items.len()
}
