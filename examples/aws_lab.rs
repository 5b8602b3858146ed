//! `aws_lab`: the cheap AWS lab write-up (seed 004: Terraform for the VPC, a NAT instance with
//! WireGuard, three control planes behind an internal NLB, a `butane` wrapper for Ignition and
//! rsync/`kubeadm` by hand afterwards) as a short program on the deployment API
//! (`Cluster<AwsPlatform>`, the same calls as on every platform: see `one_api`). The spec is
//! built in code; `up` makes the PKI, the node bundles and the gateway's WireGuard keys (once:
//! re-runs keep them) under the output directory, then the network, the gateway, the NLB and
//! the machines, each booting from its Ignition. Everything AWS holds carries the cluster tag,
//! so `--down` needs no state and ends with an audit of what is left (exit 1 if anything is).
//!
//! Credentials and region come from the standard AWS chain; `AWS_ENDPOINT_URL` points every
//! call at an emulator (CI runs this against `moto_server`).
//!
//! Run: `cargo run -p frankenetes-examples --bin aws_lab -- [--apply | --down] [--ami ami-...] [--out DIR]`
//! Without `--apply` or `--down` it only prints the plan and makes no AWS call.

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints what it does

use std::path::PathBuf;
use std::process::ExitCode;

use frankenetes_bootstrap::{Cluster, DownOptions, Options};
use frankenetes_cloud_aws::{AwsPlatform, load_sdk_config};
use frankenetes_spec::ClusterSpec;

/// The write-up's lab: VPC 10.10.16.0/20, three control planes on fixed IPs (t3a.small: the
/// write-up's t3a.nano has 512 MiB, too little for etcd and kube-apiserver), the NAT/WireGuard
/// gateway (t3a.nano) at 10.10.31.10 and the internal NLB at 10.10.16.10.
const LAB: &str = r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: { name: cheap-lab }
spec:
  kubernetesVersion: v1.35.0
  controlPlaneEndpoint: 10.10.16.10:6443
  controlPlane:
    - { name: control-01, ip: 10.10.16.11 }
    - { name: control-02, ip: 10.10.16.12 }
    - { name: control-03, ip: 10.10.16.13 }
  gateway: { ip: 10.10.31.10, privateCIDR: 10.10.16.0/20, peers: [{ name: laptop }] }
  backend:
    aws: { region: eu-west-3, instanceType: t3a.small, gatewayInstanceType: t3a.nano }
"#;

enum Action {
    Plan,
    Apply,
    Down,
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let (mut action, mut ami, mut out) = (Action::Plan, None, PathBuf::from("aws-lab"));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--apply" => action = Action::Apply,
            "--down" => action = Action::Down,
            "--ami" => ami = Some(args.next().ok_or("--ami needs an AMI id")?),
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a directory")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; see the header of examples/aws_lab.rs"
                )
                .into());
            }
        }
    }

    // The spec, validated as the CLI would (the AMI: given, or the newest Fedora CoreOS).
    let mut spec = ClusterSpec::from_yaml(LAB)?.spec;
    if let (Some(id), frankenetes_spec::BackendSpec::Aws(aws)) = (ami, &mut spec.backend) {
        aws.ami = Some(id);
    }
    for warning in spec.validate()? {
        eprintln!("warning: {warning}");
    }

    // The platform: the standard AWS chain (no call is made until `up` or `down`).
    let sdk = load_sdk_config(&spec, None).await;
    let cluster = Cluster::new(
        spec.clone(),
        AwsPlatform::new(&sdk, &spec)?,
        Options::new(std::path::absolute(&out)?).on_event(|e| eprintln!("{e}")),
    );

    if let Action::Down = action {
        // Everything tagged with the cluster, found by listing: no payloads, no state.
        let report = cluster.down(DownOptions::default()).await?;
        println!("removed: {}", report.found.join(", "));
        if !report.left.is_empty() {
            eprintln!("left: {}", report.left.join(", "));
            return Ok(ExitCode::FAILURE);
        }
        println!("nothing carrying the cluster's tag is left");
        return Ok(ExitCode::SUCCESS);
    }

    // The plan: every resource, its cost per hour; the PKI in memory, nothing written, no
    // AWS call.
    let (_, plan) = cluster.plan()?;
    for r in &plan.resources {
        let price = r
            .usd_per_hour
            .map(|p| format!("{p:.4} USD/h"))
            .unwrap_or_default();
        println!("{:<16} {:<36} {:<14} {}", r.kind, r.name, price, r.detail);
    }
    println!("total {:.4} USD/hour", plan.usd_per_hour());
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    if let Action::Plan = action {
        println!("(plan only: run with --apply to create it, --down to remove it)");
        return Ok(ExitCode::SUCCESS);
    }

    let report = cluster.up().await?;
    for (name, value) in &report.outputs.values {
        println!("{name}: {value}");
    }
    println!(
        "WireGuard endpoint {}",
        report.outputs.vpn_endpoint.as_deref().unwrap_or("-")
    );
    let bundle = cluster.bundle();
    println!(
        "next: wg-quick up {}; KUBECONFIG={} kubectl get nodes",
        bundle.vpn().join("laptop.conf").display(),
        report.admin_kubeconfig.display()
    );
    println!("when done: cargo run -p frankenetes-examples --bin aws_lab -- --down");
    Ok(ExitCode::SUCCESS)
}
