//! Ignition configs too large for EC2 user data even compressed: fetched from a private,
//! tagged S3 bucket by presigned URL, against a real `moto_server`; and the real-AWS run
//! (`#[ignore]`d: it creates billed resources).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // tests

mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use aws_sdk_ec2::types::Filter;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use frankenetes_cloud_aws::testing::Moto;
use frankenetes_cloud_aws::{Kind, Lab, userdata};
use frankenetes_spec::NodeName;

fn sha512sum(data: &[u8]) -> String {
    let mut child = Command::new("sha512sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha512sum (coreutils)");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configs_too_large_even_compressed_are_fetched_from_a_private_bucket_that_down_removes() {
    let moto = Moto::start();
    let sdk = moto.sdk(REGION);
    let ec2 = aws_sdk_ec2::Client::new(&sdk);
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    let spec = lab_spec("bigcfg");
    let p = payloads_needing_the_bucket();
    let big = p.nodes[&NodeName::try_from("control-03").unwrap()].clone();
    let lab = Lab::new(&sdk, &spec).unwrap().with_timing(fast());

    let plan = lab.plan(&p).unwrap().to_string();
    assert!(
        plan.contains("s3-bucket") && plan.contains("control-03"),
        "plan names the bucket and who needs it:\n{plan}"
    );
    let report = lab.up(&p, &|_| {}).await.unwrap();
    let bucket = report
        .created
        .iter()
        .find(|r| r.kind == Kind::PayloadBucket)
        .map(|r| r.id.clone())
        .expect("up created the payload bucket");
    assert!(bucket.starts_with("frankenetes-bigcfg-"), "{bucket}");

    // The bucket: one, private, tagged; the object is the config.
    let listed = s3.list_buckets().send().await.unwrap();
    let ours: Vec<_> = listed
        .buckets()
        .iter()
        .filter_map(|b| b.name())
        .filter(|n| n.starts_with("frankenetes-bigcfg-"))
        .collect();
    assert_eq!(ours, vec![bucket.as_str()]);
    let pab = s3
        .get_public_access_block()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    let c = pab.public_access_block_configuration().unwrap();
    assert_eq!(
        (
            c.block_public_acls(),
            c.ignore_public_acls(),
            c.block_public_policy(),
            c.restrict_public_buckets()
        ),
        (Some(true), Some(true), Some(true), Some(true))
    );
    let tags = s3
        .get_bucket_tagging()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    assert!(
        tags.tag_set()
            .iter()
            .any(|t| t.key() == "frankenetes.dev/cluster" && t.value() == "bigcfg"),
        "{tags:?}"
    );
    let keys: Vec<String> = s3
        .list_objects_v2()
        .bucket(&bucket)
        .send()
        .await
        .unwrap()
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect();
    assert_eq!(
        keys,
        vec!["control-03.ign".to_owned()],
        "only the oversized config"
    );

    // control-03 boots a small stub that fetches its config by URL and checks its hash.
    let out = ec2
        .describe_instances()
        .filters(tag("bigcfg"))
        .filters(
            Filter::builder()
                .name("tag:frankenetes.dev/unit")
                .values("control-03")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let id = out.reservations()[0].instances()[0]
        .instance_id()
        .unwrap()
        .to_owned();
    let attr = ec2
        .describe_instance_attribute()
        .instance_id(&id)
        .attribute(aws_sdk_ec2::types::InstanceAttributeName::UserData)
        .send()
        .await
        .unwrap();
    let raw = STANDARD
        .decode(attr.user_data().unwrap().value().unwrap())
        .unwrap();
    assert!(
        raw.len() <= userdata::USER_DATA_LIMIT,
        "{} bytes",
        raw.len()
    );
    let stub: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(stub["ignition"]["version"], "3.4.0");
    let replace = &stub["ignition"]["config"]["replace"];
    assert_eq!(
        replace["verification"]["hash"],
        format!("sha512-{}", sha512sum(&big)),
        "the stub pins the config's SHA-512"
    );
    let url = replace["source"].as_str().unwrap();
    assert!(
        url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=86400"),
        "presigned for a day: {url}"
    );
    let path = url
        .strip_prefix(&moto.url())
        .expect("a URL on the endpoint");
    let (status, body) = moto.http("GET", path).unwrap();
    assert_eq!(status, 200);
    assert_eq!(body, big, "the URL serves the config, byte for byte");

    // A second up finds the bucket; down removes it with its objects.
    moto.record();
    let again = lab.up(&p, &|_| {}).await.unwrap();
    assert!(again.created.is_empty(), "{:?}", again.created);
    assert_eq!(
        moto.recorded_writes(),
        Vec::<String>::new(),
        "no upload for a running machine"
    );
    assert!(again.found.iter().any(|r| r.kind == Kind::PayloadBucket));
    assert!(
        lab.audit()
            .await
            .unwrap()
            .leftovers
            .iter()
            .any(|r| r.kind == Kind::PayloadBucket && r.id == bucket)
    );
    let audit = Lab::new(&sdk, &spec)
        .unwrap()
        .with_timing(fast())
        .down(&|_| {})
        .await
        .unwrap();
    assert!(audit.is_clean(), "{audit}");
    let listed = s3.list_buckets().send().await.unwrap();
    assert!(
        !listed
            .buckets()
            .iter()
            .any(|b| b.name() == Some(bucket.as_str())),
        "down deleted the bucket"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "creates billed AWS resources"]
async fn real_aws_lab_up_and_down() {
    let mut spec = lab_spec("frankenetes-e2e");
    if let frankenetes_spec::BackendSpec::Aws(a) = &mut spec.backend {
        a.region = std::env::var("AWS_REGION").ok();
        a.availability_zone = None;
        a.ami = None; // look up Fedora CoreOS
    }
    let sdk = frankenetes_cloud_aws::load_sdk_config(&spec, None).await;
    let lab = Lab::new(&sdk, &spec).unwrap();
    eprintln!("{}", lab.plan(&payloads()).unwrap());
    let up = lab.up(&payloads(), &|e| eprintln!("{e}")).await;
    let audit = lab.down(&|e| eprintln!("{e}")).await.unwrap();
    assert!(audit.is_clean(), "LEFT RESOURCES BEHIND: {audit}");
    let up = up.unwrap();
    assert_eq!(up.instances.len(), 4);
    assert!(!up.gateway_public_ip.is_loopback());
}
