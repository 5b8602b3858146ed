//! What the moto tests share: the write-up's lab spec, Ignition payloads, tag filters.

#![allow(dead_code, clippy::unwrap_used)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use frankenetes_cloud_aws::testing::FEDORA_COREOS_X86_64;
use frankenetes_cloud_aws::{LabPayloads, Timing};
use frankenetes_compute::ClusterTag;
use frankenetes_spec::{ClusterSpec, NodeName};

pub(crate) const REGION: &str = "eu-west-3";
/// The AMI tests give as `ami:` (stock moto does not list it; `fedora_coreos_images` does).
pub(crate) const AMI: &str = FEDORA_COREOS_X86_64;

pub(crate) fn fast() -> Timing {
    Timing::new(Duration::from_millis(50), Duration::from_secs(30))
}

/// The write-up's lab: VPC 10.10.16.0/20, nodes .11–.13, gateway 10.10.31.10, NLB .10;
/// control planes on t3a.small (2 GiB: the smallest a control plane fits in), the gateway on
/// t3a.nano. `aws` is inserted into `spec.backend.aws` (`, keyName: k`).
pub(crate) fn lab_spec_with(name: &str, aws: &str) -> ClusterSpec {
    let yaml = format!(
        r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: {name} }}
spec:
  kubernetesVersion: v1.35.0
  controlPlaneEndpoint: 10.10.16.10:6443
  controlPlane:
    - {{ name: control-01, ip: 10.10.16.11 }}
    - {{ name: control-02, ip: 10.10.16.12 }}
    - {{ name: control-03, ip: 10.10.16.13 }}
  gateway: {{ ip: 10.10.31.10, privateCIDR: 10.10.16.0/20, tunnel: {{ cidr: 10.200.0.0/24 }} }}
  backend:
    aws: {{ region: {REGION}, availabilityZone: {REGION}a, instanceType: t3a.small, gatewayInstanceType: t3a.nano{aws} }}
"#
    );
    ClusterSpec::from_yaml(&yaml).unwrap().spec
}

/// [`lab_spec_with`] with `ami: AMI`.
pub(crate) fn lab_spec(name: &str) -> ClusterSpec {
    lab_spec_with(name, &format!(", ami: {AMI}"))
}

pub(crate) fn ignition(tag: &str, files: usize) -> Vec<u8> {
    let mut s = format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"files":[{{"path":"/etc/{tag}","mode":420}}"#
    );
    for i in 0..files {
        s.push_str(&format!(r#",{{"path":"/etc/kubernetes/manifests/file-{i}.yaml","mode":420,"contents":{{"source":"data:,{tag}"}}}}"#));
    }
    s.push_str("]}}");
    s.into_bytes()
}

/// Payloads: control-02's is over EC2's 16 KiB limit (it must go in as the gzip stub).
pub(crate) fn payloads() -> LabPayloads {
    let mut nodes = BTreeMap::new();
    for (n, files) in [("control-01", 3), ("control-02", 300), ("control-03", 3)] {
        nodes.insert(NodeName::try_from(n).unwrap(), ignition(n, files));
    }
    LabPayloads::new(ignition("gateway", 2), nodes)
}

/// A config that does not compress (key material does not): over 16 KiB even as the gzip stub.
pub(crate) fn incompressible(tag: &str, bytes: usize) -> Vec<u8> {
    let mut out = format!(
        r#"{{"ignition":{{"version":"3.4.0"}},"storage":{{"files":[{{"path":"/etc/{tag}","contents":{{"source":"data:;base64,"#
    );
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut raw = Vec::with_capacity(bytes);
    while raw.len() < bytes {
        // xorshift: no pattern gzip can use.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        raw.extend_from_slice(&x.to_le_bytes());
    }
    out.push_str(&STANDARD.encode(&raw));
    out.push_str(r#""}}]}}}"#);
    out.into_bytes()
}

/// Payloads where control-03's config needs the payload bucket.
pub(crate) fn payloads_needing_the_bucket() -> LabPayloads {
    let mut p = payloads();
    p.nodes.insert(
        NodeName::try_from("control-03").unwrap(),
        incompressible("control-03", 30_000),
    );
    p
}

pub(crate) fn tag(cluster: &str) -> Filter {
    Filter::builder()
        .name(format!("tag:{}", ClusterTag::KEY))
        .values(cluster)
        .build()
}

pub(crate) fn by_role(tags: &[aws_sdk_ec2::types::Tag]) -> String {
    value(tags, "frankenetes.dev/role")
}

pub(crate) fn value(tags: &[aws_sdk_ec2::types::Tag], key: &str) -> String {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
        .unwrap_or_default()
        .to_owned()
}

/// Every live instance of a cluster.
pub(crate) async fn instances(
    ec2: &aws_sdk_ec2::Client,
    cluster: &str,
) -> Vec<aws_sdk_ec2::types::Instance> {
    let out = ec2
        .describe_instances()
        .filters(tag(cluster))
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
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .cloned()
        .collect()
}
