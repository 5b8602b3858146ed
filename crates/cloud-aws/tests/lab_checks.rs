//! What the lab refuses, and when: `plan` offline (no call at all), the sizing rule, and the
//! checks `up` makes before its first write call (AMI, key pair, instance types, payloads),
//! each proven against a real `moto_server` by its request recorder: a refused `up` made no
//! write call and left nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests

mod common;

use common::*;
use frankenetes_cloud_aws::testing::{
    FEDORA_COREOS_ARM64, FEDORA_COREOS_X86_64, Moto, fedora_coreos_images,
};
use frankenetes_cloud_aws::{Error, Event, Kind, Lab, LabPayloads, static_sdk_config};
use frankenetes_spec::{ClusterSpec, NodeName};

/// `up` fails with an error on `field` whose message holds every `want`, having made no write
/// call and left nothing tagged; returns the message.
async fn refused_before_any_write(
    moto: &Moto,
    lab: &Lab,
    payloads: &LabPayloads,
    field: &str,
    want: &[&str],
) -> String {
    moto.record();
    let err = lab.up(payloads, &|_| {}).await.unwrap_err();
    let writes = moto.recorded_writes();
    assert!(
        writes.is_empty(),
        "up wrote before refusing ({err}): {writes:?}"
    );
    assert!(
        moto.recorded_actions()
            .iter()
            .all(|a| a != "CreateBucket" && !a.starts_with("PUT ")),
        "no bucket"
    );
    assert!(err.is_bad_input(), "{err:?}");
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{field}: ")), "{msg}");
    for w in want {
        assert!(msg.contains(w), "{msg}\nlacks {w:?}");
    }
    assert!(lab.audit().await.unwrap().is_clean());
    msg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fedora_coreos_ami_up_writes_nothing_and_says_what_to_do() {
    // Stock moto lists no Fedora CoreOS AMI; the spec gives none; control-03's config would
    // need the payload bucket (`up` used to create it before looking for the AMI).
    let moto = Moto::start();
    let lab = Lab::new(&moto.sdk(REGION), &lab_spec_with("noami", ""))
        .unwrap()
        .with_timing(fast());
    refused_before_any_write(
        &moto,
        &lab,
        &payloads_needing_the_bucket(),
        "spec.backend.aws.ami",
        &[
            "no Fedora CoreOS x86_64 AMI",
            "125523088429",
            "in eu-west-3",
            "nothing was created",
            "Set `ami:`",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_newest_stable_fedora_coreos_ami_of_each_architecture_is_used() {
    let moto = Moto::start_with_images(&fedora_coreos_images());
    let sdk = moto.sdk(REGION);
    // Nodes on x86_64, the gateway on Graviton: two lookups, one AMI each.
    let spec = lab_spec_with("fcos", "").clone();
    let mut spec = spec;
    if let frankenetes_spec::BackendSpec::Aws(a) = &mut spec.backend {
        a.gateway_instance_type = "t4g.nano".into();
    }
    let lab = Lab::new(&sdk, &spec).unwrap().with_timing(fast());
    let events = std::sync::Mutex::new(Vec::new());
    let report = lab
        .up(&payloads(), &|e: &Event| {
            events.lock().unwrap().push(e.to_string())
        })
        .await
        .unwrap();
    assert_eq!(report.images["gateway"], FEDORA_COREOS_ARM64);
    for n in ["control-01", "control-02", "control-03"] {
        assert_eq!(
            report.images[n], FEDORA_COREOS_X86_64,
            "not the newer dev build"
        );
    }
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    for i in instances(&ec2, "fcos").await {
        assert_eq!(
            i.image_id(),
            report
                .images
                .get(&value(i.tags(), "frankenetes.dev/unit"))
                .map(String::as_str)
        );
    }
    let events = events.into_inner().unwrap();
    assert!(
        events.iter().any(|e| e.contains(
            "checked AMI ami-0fc0ffee0fc0ffee0 (fedora-coreos-43.20261102.3.0-x86_64) for x86_64"
        )),
        "{events:#?}"
    );
    assert!(lab.down(&|_| {}).await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_ami_of_the_wrong_architecture_is_refused_before_any_write() {
    let moto = Moto::start_with_images(&fedora_coreos_images());
    let mut spec = lab_spec("wrongarch");
    if let frankenetes_spec::BackendSpec::Aws(a) = &mut spec.backend {
        a.instance_type = "t4g.small".into();
    }
    let lab = Lab::new(&moto.sdk(REGION), &spec)
        .unwrap()
        .with_timing(fast());
    refused_before_any_write(
        &moto,
        &lab,
        &payloads(),
        "spec.backend.aws.ami",
        &["ami-0fc0ffee0fc0ffee0 is a x86_64 image, but arm64 machines need it"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_carries_the_key_pair_and_a_missing_one_is_refused_first() {
    let moto = Moto::start();
    let sdk = moto.sdk(REGION);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let spec = lab_spec_with("keyed", &format!(", ami: {AMI}, keyName: laptop"));

    // Not imported yet: refused, nothing written.
    let lab = Lab::new(&sdk, &spec).unwrap().with_timing(fast());
    refused_before_any_write(
        &moto,
        &lab,
        &payloads(),
        "spec.backend.aws.keyName",
        &[
            "no EC2 key pair named \"laptop\" in eu-west-3",
            "aws ec2 import-key-pair --region eu-west-3 --key-name laptop",
        ],
    )
    .await;

    ec2.import_key_pair()
        .key_name("laptop")
        .public_key_material(aws_sdk_ec2::primitives::Blob::new(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop",
        ))
        .send()
        .await
        .unwrap();
    lab.up(&payloads(), &|_| {}).await.unwrap();
    let all = instances(&ec2, "keyed").await;
    assert_eq!(all.len(), 4);
    for i in &all {
        assert_eq!(i.key_name(), Some("laptop"), "{:?}", i.instance_id());
    }
    assert!(lab.down(&|_| {}).await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instance_types_are_checked_against_ec2_before_any_write() {
    let moto = Moto::start();
    let sdk = moto.sdk(REGION);
    let with = |node: &str, gw: &str| {
        let mut spec = lab_spec("types");
        if let frankenetes_spec::BackendSpec::Aws(a) = &mut spec.backend {
            a.instance_type = node.into();
            a.gateway_instance_type = gw.into();
        }
        Lab::new(&sdk, &spec).unwrap().with_timing(fast())
    };
    // No such type.
    refused_before_any_write(
        &moto,
        &with("m9z.huge", "t3a.nano"),
        &payloads(),
        "spec.backend.aws.instanceType",
        &[
            "m9z.huge is not an EC2 instance type",
            "nothing was created",
        ],
    )
    .await;
    // A real type EC2 does not offer in the zone.
    refused_before_any_write(
        &moto,
        &with("t3a.small", "a1.medium"),
        &payloads(),
        "spec.backend.aws.gatewayInstanceType",
        &[
            "a1.medium is not offered in eu-west-3a",
            "describe-instance-type-offerings",
        ],
    )
    .await;
    // A type the offline table lacks: `plan` notes it, `up` sizes it from DescribeInstanceTypes
    // (m6g.medium: 4 GiB but one vCPU).
    let lab = with("m6g.medium", "t3a.nano");
    let plan = lab.plan(&payloads()).unwrap();
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("m6g.medium is not in the price table")),
        "{plan}"
    );
    refused_before_any_write(
        &moto,
        &lab,
        &payloads(),
        "spec.backend.aws.instanceType",
        &["m6g.medium has 4096 MiB and 1 vCPU(s)", "t4g.small"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_planes_too_small_are_refused_by_plan_and_up_the_gateway_is_not() {
    let moto = Moto::start();
    let mut spec = lab_spec("nano");
    if let frankenetes_spec::BackendSpec::Aws(a) = &mut spec.backend {
        a.instance_type = "t3a.nano".into();
    }
    let lab = Lab::new(&moto.sdk(REGION), &spec)
        .unwrap()
        .with_timing(fast());
    moto.record();
    let err = lab.plan(&payloads()).unwrap_err();
    assert!(
        matches!(err, Error::Spec { .. }) && err.is_bad_input(),
        "{err:?}"
    );
    let msg = err.to_string();
    for want in [
        "spec.backend.aws.instanceType: t3a.nano has 512 MiB and 2 vCPU(s)",
        "a control plane needs at least 1700 MiB and 2 vCPUs",
        "the smallest x86_64 type that fits is t3a.small (2048 MiB, 2 vCPUs, $0.0188/hour",
    ] {
        assert!(msg.contains(want), "{msg}\nlacks {want:?}");
    }
    refused_before_any_write(
        &moto,
        &lab,
        &payloads(),
        "spec.backend.aws.instanceType",
        &["t3a.small"],
    )
    .await;
    // The write-up's t3a.nano gateway (NAT and WireGuard) with 2 GiB control planes: fine.
    let ok = Lab::new(&moto.sdk(REGION), &lab_spec("nano")).unwrap();
    assert!(ok.plan(&payloads()).is_ok());
    // Down is never refused: a lab made before the rule can still be removed.
    assert!(lab.down(&|_| {}).await.unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_makes_no_call_status_reads_and_lists_everything_missing() {
    let moto = Moto::start();
    let lab = Lab::new(&moto.sdk(REGION), &lab_spec("planned")).unwrap();
    moto.record();
    let plan = lab.plan(&payloads_needing_the_bucket()).unwrap();
    assert_eq!(
        moto.recorded_actions(),
        Vec::<String>::new(),
        "plan called AWS"
    );
    let text = plan.to_string();
    for want in [
        "10.10.16.0/20",
        "10.10.31.10",
        "control-03",
        "internal NLB at 10.10.16.10",
        "udp/51820 from 0.0.0.0/0",
        "s3-bucket",
        "Ignition configs over 16 KiB even compressed: control-03",
        "source:",
        "2026-11",
    ] {
        assert!(text.contains(want), "plan lacks {want:?}:\n{text}");
    }
    let kinds: std::collections::BTreeSet<Kind> = plan.items.iter().map(|i| i.kind).collect();
    assert_eq!(kinds.len(), 12, "every kind but volumes: {kinds:?}");

    let status = lab.status().await.unwrap();
    let actions = moto.recorded_actions();
    assert!(actions.len() >= 13, "status looked nothing up: {actions:?}");
    assert_eq!(moto.recorded_writes(), Vec::<String>::new());
    assert!(status.is_absent() && !status.is_up(), "{status}");
    assert_eq!(
        status.to_create(),
        plan.items.len() - 1,
        "all but the bucket:\n{status}"
    );
    assert!(
        status
            .to_string()
            .contains("0 of 20 resources exist, 20 to create"),
        "{status}"
    );
    assert!(lab.inventory().await.unwrap().is_empty());
}

#[test]
fn the_labs_cost_with_control_planes_that_fit() {
    // No request is made: the endpoint is never contacted.
    let sdk = static_sdk_config("http://127.0.0.1:9", REGION, "x", "y");
    let plan = Lab::new(&sdk, &lab_spec("kubelius"))
        .unwrap()
        .plan(&payloads())
        .unwrap();
    // 3 × t3a.small ($0.0188) + t3a.nano ($0.0047) + 1 public IPv4 ($0.005) + NLB ($0.0225).
    assert!((plan.hourly_usd - 0.0886).abs() < 1e-9, "{plan}");
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    let month = plan.monthly_usd();
    assert!((67.0..=68.0).contains(&month), "{month}");
    assert_eq!(plan.items.len(), 20, "no bucket: {plan}");
}

#[test]
fn the_lab_needs_the_aws_backend_and_a_gateway() {
    let sdk = static_sdk_config("http://127.0.0.1:9", REGION, "x", "y");
    let mut spec = lab_spec("kubelius");
    spec.gateway = None;
    let err = Lab::new(&sdk, &spec).unwrap_err();
    assert!(err.to_string().starts_with("spec.gateway:"), "{err}");
    let local = ClusterSpec::example();
    let err = Lab::new(&sdk, &local).unwrap_err();
    assert!(err.to_string().contains("spec.backend"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_refuses_a_missing_payload_before_any_call() {
    let moto = Moto::start();
    let mut p = payloads();
    p.nodes.remove(&NodeName::try_from("control-03").unwrap());
    let lab = Lab::new(&moto.sdk(REGION), &lab_spec("partial"))
        .unwrap()
        .with_timing(fast());
    moto.record();
    let err = lab.up(&p, &|_| {}).await.unwrap_err();
    assert!(
        err.to_string().starts_with("payloads.nodes[control-03]: "),
        "{err}"
    );
    assert_eq!(
        moto.recorded_actions(),
        Vec::<String>::new(),
        "offline checks come first"
    );
    let err = lab.up(&LabPayloads::default(), &|_| {}).await.unwrap_err();
    assert!(err.to_string().starts_with("payloads.gateway: "), "{err}");
}
