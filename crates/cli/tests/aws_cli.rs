//! `frankenetes plan/up/status/down` with `backend: aws`, against a real `moto_server` on
//! 127.0.0.1 (`frankenetes_cloud_aws::testing::Moto`: stopped by PID when the test ends, also on
//! failure), reached through `AWS_ENDPOINT_URL` as a user would point the CLI at an emulator.
//! Built with `--features aws` (scripts/test.sh runs it).

#![cfg(feature = "aws")]
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::path::Path;
use std::process::{Command, Output};

use frankenetes_cloud_aws::testing::Moto;

const SPEC: &str = r#"apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: cli-lab }
spec:
  kubernetesVersion: v1.35.0
  controlPlaneEndpoint: 10.10.16.10:6443
  controlPlane:
    - { name: control-01, ip: 10.10.16.11 }
    - { name: control-02, ip: 10.10.16.12 }
    - { name: control-03, ip: 10.10.16.13 }
  gateway: { ip: 10.10.31.10, privateCIDR: 10.10.16.0/20, tunnel: { cidr: 10.200.0.0/24 }, peers: [{ name: laptop }] }
  backend:
    aws: { region: eu-west-3, availabilityZone: eu-west-3a, instanceType: t3a.small, gatewayInstanceType: t3a.nano, ami: ami-0fc0ffee0fc0ffee0 }
"#;

/// The binary with a hermetic AWS environment: moto's endpoint (when given), static test
/// keys, no profile files, no instance metadata.
fn bin(args: &[&str], cwd: &Path, endpoint: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_frankenetes"));
    c.args(args)
        .current_dir(cwd)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .env("AWS_CONFIG_FILE", cwd.join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            cwd.join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing");
    match endpoint {
        Some(url) => c.env("AWS_ENDPOINT_URL", url),
        None => c.env_remove("AWS_ENDPOINT_URL"),
    };
    c.output().expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn plan_up_status_down_against_moto_through_aws_endpoint_url() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("lab.yaml"), SPEC).unwrap();

    // plan: offline (no endpoint, no call), every resource with its cost; the control
    // planes' real Ignition configs are over 16 KiB even compressed, so the bucket is listed.
    let plan = bin(&["plan", "-f", "lab.yaml"], d, None);
    assert_eq!(plan.status.code(), Some(0), "{}", text(&plan));
    let p = text(&plan);
    for want in [
        "aws: what `up` creates (no call is made now)",
        "internal NLB at 10.10.16.10",
        "s3-bucket",
        "control-01, control-02, control-03",
        "total 0.0886 USD/hour",
    ] {
        assert!(p.contains(want), "plan lacks {want:?}:\n{p}");
    }
    assert!(!d.join(".frankenetes").exists(), "plan wrote nothing");

    let moto = Moto::start();
    let url = moto.url();
    let url = Some(url.as_str());

    let up = bin(&["up", "-f", "lab.yaml"], d, url);
    assert_eq!(up.status.code(), Some(0), "{}", text(&up));
    let u = text(&up);
    assert!(u.contains("VPN endpoint: "), "{u}");
    assert!(
        u.contains("created s3-bucket payloads frankenetes-cli-lab-"),
        "{u}"
    );
    let bundle = d.join(".frankenetes/cli-lab/bundle");
    for f in [
        "cluster/admin.conf",
        "cluster/vpn/laptop.conf",
        "cluster/pki/ca.key",
        "nodes/control-01.ign",
    ] {
        assert!(bundle.join(f).is_file(), "{f} written by up");
    }

    // The spec leaves the VPN endpoint open: the Elastic IP `up` got is in the peer's config.
    let ep = u
        .lines()
        .find_map(|l| l.strip_prefix("VPN endpoint: "))
        .unwrap()
        .trim()
        .to_owned();
    let laptop = std::fs::read_to_string(bundle.join("cluster/vpn/laptop.conf")).unwrap();
    assert!(laptop.contains(&format!("Endpoint = {ep}")), "{laptop}");

    let status = bin(&["status", "-f", "lab.yaml"], d, url);
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let st = text(&status);
    for row in ["vpc ", "load-balancer", "control-03"] {
        assert!(
            st.lines().any(|l| l.starts_with(row)),
            "status lacks {row}:\n{st}"
        );
    }

    // A second `up` creates nothing: everything is found by its tags.
    let again = bin(&["up", "-f", "lab.yaml"], d, url);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(!text(&again).contains("created "), "{}", text(&again));

    let pause = bin(&["pause", "-f", "lab.yaml"], d, url);
    assert_eq!(pause.status.code(), Some(2), "{}", text(&pause));

    // Without --yes (and no terminal to ask on), `down` lists and deletes nothing.
    let preview = bin(&["down", "-f", "lab.yaml"], d, url);
    assert_eq!(preview.status.code(), Some(0), "{}", text(&preview));
    assert!(
        text(&preview).contains("`down` deletes:") && text(&preview).contains("nothing deleted"),
        "{}",
        text(&preview)
    );
    let still = bin(&["status", "-f", "lab.yaml"], d, url);
    assert_eq!(still.status.code(), Some(0), "{}", text(&still));

    let down = bin(&["down", "-f", "lab.yaml", "--yes"], d, url);
    assert_eq!(down.status.code(), Some(0), "{}", text(&down));
    assert!(
        text(&down).contains("no tagged resource left"),
        "{}",
        text(&down)
    );
    let after = bin(&["status", "-f", "lab.yaml"], d, url);
    assert_eq!(after.status.code(), Some(1), "{}", text(&after));
}

#[test]
fn a_lab_without_a_gateway_is_refused_before_any_call() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let spec: String = SPEC
        .lines()
        .filter(|l| !l.trim_start().starts_with("gateway:"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.join("lab.yaml"), spec).unwrap();
    // No endpoint is reachable: the error must come before any AWS call.
    let up = bin(&["up", "-f", "lab.yaml"], d, Some("http://127.0.0.1:9"));
    assert_ne!(up.status.code(), Some(0), "{}", text(&up));
    assert!(text(&up).contains("gateway"), "{}", text(&up));
}

#[test]
fn control_planes_too_small_are_bad_input_at_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(
        d.join("lab.yaml"),
        SPEC.replace("instanceType: t3a.small", "instanceType: t3a.nano"),
    )
    .unwrap();
    let plan = bin(&["plan", "-f", "lab.yaml"], d, None);
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let p = text(&plan);
    assert!(
        p.contains("spec.backend.aws.instanceType: t3a.nano has 512 MiB")
            && p.contains("t3a.small (2048 MiB, 2 vCPUs, $0.0188/hour"),
        "{p}"
    );
}
