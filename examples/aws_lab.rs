//! `aws_lab`: the cheap AWS lab write-up (seed 004: Terraform for the VPC, a NAT instance with
//! WireGuard, three control planes behind an internal NLB, a `butane` wrapper for Ignition and
//! rsync/`kubeadm` by hand afterwards) as a short program. The spec is built in code; the PKI,
//! the node bundles and the gateway's WireGuard keys are made (once: re-runs keep them) under
//! the output directory; the lab is planned with its cost, and created or removed on request.
//! Everything AWS holds carries the cluster tag, so `--down` needs no state and ends with an
//! audit of what is left (exit 1 if anything is).
//!
//! Credentials and region come from the standard AWS chain; `AWS_ENDPOINT_URL` points every
//! call at an emulator (CI runs this against `moto_server`).
//!
//! Run: `cargo run -p frankenetes-examples --bin aws_lab -- [--apply | --down] [--ami ami-...] [--out DIR]`
//! Without `--apply` or `--down` it only prints the plan and makes no AWS call.

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints what it does

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use frankenetes_cloud_aws::{Event, Lab, LabPayloads, load_sdk_config};
use frankenetes_netgw::GatewayOptions;
use frankenetes_pki::{PkiPlan, SyncOptions};
use frankenetes_spec::{ClusterSpec, NodeName};

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

    if let Action::Down = action {
        // Everything tagged with the cluster, found by listing: no payloads, no state.
        let sdk = load_sdk_config(&spec, None).await;
        let lab = Lab::new(&sdk, &spec)?;
        print!("{}", lab.inventory().await?); // what down deletes
        let audit = lab.down(&|e: &Event| eprintln!("    {e}")).await?;
        print!("{audit}");
        return Ok(if audit.is_clean() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        });
    }

    // The PKI (CAs made once, never replaced), the node bundles and the gateway (WireGuard
    // keys, one peer config per `peers` entry), written under `out`.
    let (pki, _) = frankenetes_pki::sync(&PkiPlan::from(&spec), &out, SyncOptions::default())?;
    let rendered = frankenetes_manifests::render(&spec, &pki)?;
    rendered.write(&out)?;
    let gateway = spec.gateway.as_ref().ok_or("the lab needs spec.gateway")?;
    let gw = frankenetes_netgw::render(&out, gateway, &GatewayOptions::default())?;
    let mut nodes = BTreeMap::new();
    for n in &rendered.nodes {
        let ign = n.to_ignition();
        nodes.insert(NodeName::try_from(n.name.as_str())?, ign.into_bytes());
    }
    let payloads = LabPayloads::new(gw.bundle.to_ignition().into_bytes(), nodes);

    // The plan: every resource, its cost per hour and per month; no AWS call.
    print!("{}", Lab::offline(&spec)?.plan(&payloads)?);
    if let Action::Plan = action {
        println!("(plan only: run with --apply to create it, --down to remove it)");
        return Ok(ExitCode::SUCCESS);
    }

    let sdk = load_sdk_config(&spec, None).await;
    let lab = Lab::new(&sdk, &spec)?;
    let report = lab.up(&payloads, &|e: &Event| eprintln!("    {e}")).await?;
    println!(
        "{} created, {} found; WireGuard endpoint {}; API load balancer {}",
        report.created.len(),
        report.found.len(),
        report.wireguard_endpoint,
        report.load_balancer_dns.as_deref().unwrap_or("-"),
    );
    println!(
        "next: wg-quick up {}; KUBECONFIG={} kubectl get nodes",
        out.join("cluster/vpn/laptop.conf").display(),
        out.join("cluster/admin.conf").display()
    );
    println!("when done: cargo run -p frankenetes-examples --bin aws_lab -- --down");
    Ok(ExitCode::SUCCESS)
}
