//! `one_api`: one deployment API for every platform. The same calls — `plan`, `up`, `status`,
//! `down` on a `Cluster<Box<dyn Platform>>` — deploy the same three-node control plane
//!
//! * on **local processes**: three etcd members with mutual TLS on 127.0.0.41-43 (and the
//!   apiserver tier when `FRANKENETES_BIN_DIR` holds the Kubernetes binaries);
//! * on **AWS**: the cheap lab (VPC, NAT/WireGuard gateway, internal NLB, three EC2 machines
//!   booting from their Ignition), against a real `moto_server` on 127.0.0.1;
//! * on **Azure Container Instances**: a container group per component, against the replay of
//!   the official ARM example payloads on 127.0.0.1.
//!
//! The specs differ only in their `backend:` section; `life` below is the one function that
//! drives all three. What is platform-specific is building the platform value, and only
//! because the two clouds are emulated here: against real clouds,
//! `frankenetes::platform_for(&spec, dir, &PlatformOptions::default())` builds it from the
//! spec's `backend:` with the standard credentials, as it does for the local one below.
//!
//! Needs `etcd` on PATH (Debian: `etcd-server`) and `moto_server`
//! (`scripts/install-deps.sh --test` installs both).
//!
//! Run: `cargo run -p frankenetes-examples --bin one_api -- [--only local|aws|azure] [--out DIR]`

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints what it does

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use frankenetes::PlatformOptions;
use frankenetes_bootstrap::{Cluster, DownOptions, Event, Options};
use frankenetes_compute::Platform;
use frankenetes_spec::ClusterSpec;

/// The cluster every platform gets: three control planes, nothing else but the backend.
fn spec(backend: &str, ips: [&str; 3], extra: &str) -> Result<ClusterSpec, Error> {
    let yaml = format!(
        r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: one-api }}
spec:
  kubernetesVersion: v1.35.0
  controlPlane:
    - {{ name: control-01, ip: {} }}
    - {{ name: control-02, ip: {} }}
    - {{ name: control-03, ip: {} }}
{extra}  backend:
    {backend}
"#,
        ips[0], ips[1], ips[2]
    );
    let spec = ClusterSpec::from_yaml(&yaml)?.spec;
    for warning in spec.validate()? {
        eprintln!("warning: {warning}");
    }
    Ok(spec)
}

type Error = Box<dyn std::error::Error>;

/// What one platform's life showed.
struct Life {
    platform: &'static str,
    planned: usize,
    usd_per_hour: f64,
    phases: usize,
    units: usize,
    removed: usize,
}

/// The one function: plan, up, status, down, whatever the platform.
async fn life(platform: &'static str, cluster: &Cluster<Box<dyn Platform>>) -> Result<Life, Error> {
    println!("\n=== {platform}");
    // Offline: what `up` would create (the PKI in memory, nothing written, no API call).
    let (_, plan) = cluster.plan()?;
    for r in &plan.resources {
        println!("plan: {:<18} {}", r.kind, r.name);
    }
    let result = async {
        let up = cluster.up().await?;
        let status = cluster.status().await?;
        print!("{}", status.table());
        let units = status.rows.iter().filter(|r| r.state.is_some()).count();
        if !status.exists || units == 0 {
            return Err(format!("{platform}: status after up shows nothing").into());
        }
        Ok::<_, Error>((up.phases.len(), units))
    }
    .await;
    // Always down, also when `up` failed half-way: everything carries the cluster's tag.
    let down = cluster.down(DownOptions::default()).await?;
    let (phases, units) = result?;
    if !down.left.is_empty() {
        return Err(format!("{platform}: down left {}", down.left.join(", ")).into());
    }
    Ok(Life {
        platform,
        planned: plan.resources.len(),
        usd_per_hour: plan.usd_per_hour(),
        phases,
        units,
        removed: down.found.len(),
    })
}

/// The deployment options: the cluster directory, progress on stderr.
fn options(dir: &Path) -> Options {
    Options::new(dir).on_event(|e| match e {
        // The health gates poll every 50 ms: their waiting lines would drown the rest.
        Event::Waiting(..) => {}
        other => eprintln!("{other}"),
    })
}

async fn local(out: &Path) -> Result<Life, Error> {
    let spec = spec("local: {}", ["127.0.0.41", "127.0.0.42", "127.0.0.43"], "")?;
    let dir = out.join("local");
    // The same value `frankenetes::platform_for` gives for any backend the build has.
    let platform = frankenetes::platform_for(
        &spec,
        &dir,
        &PlatformOptions::default()
            .bin_dir(std::env::var_os("FRANKENETES_BIN_DIR").map(PathBuf::from)),
    )
    .await?;
    life("local", &Cluster::new(spec, platform, options(&dir))).await
}

async fn aws(out: &Path) -> Result<Life, Error> {
    use frankenetes_cloud_aws::testing::{Moto, fedora_coreos_images};
    // The lab needs its gateway (the only way in) and an endpoint address for the NLB.
    let spec = spec(
        "aws: { region: eu-west-3, availabilityZone: eu-west-3a, instanceType: t3a.small, gatewayInstanceType: t3a.nano }",
        ["10.10.16.11", "10.10.16.12", "10.10.16.13"],
        "  controlPlaneEndpoint: 10.10.16.10:6443\n  gateway: { ip: 10.10.31.10, privateCIDR: 10.10.16.0/20, peers: [{ name: laptop }] }\n",
    )?;
    // moto lists Fedora CoreOS images, so the AMI is looked up as on AWS. Stopped on drop.
    let moto = Moto::start_with_images(&fedora_coreos_images());
    println!("moto_server on {}", moto.url());
    let platform: Box<dyn Platform> = Box::new(frankenetes_cloud_aws::AwsPlatform::new(
        &moto.sdk("eu-west-3"),
        &spec,
    )?);
    let dir = out.join("aws");
    life("aws", &Cluster::new(spec, platform, options(&dir))).await
}

async fn azure(out: &Path) -> Result<Life, Error> {
    use frankenetes_cloud_azure::testing::{FakeArm, RG, SUB};
    let spec = spec(
        &format!(
            "azure: {{ subscriptionId: \"{SUB}\", resourceGroup: {RG}, location: westeurope, \
             dnsLabelPrefix: fk-oneapi, credential: {{ azureCli: {{}} }}, storageAccount: fkoneapisnap }}"
        ),
        ["10.0.0.11", "10.0.0.12", "10.0.0.13"],
        "",
    )?;
    let arm = FakeArm::start().await?;
    println!("ARM replay on {}", arm.base);
    // Nothing really starts on the replay: poll fast instead of at ACI's pace.
    let opts = frankenetes_cloud_azure::AciOptions::default()
        .with_waits(Duration::from_secs(30), Duration::from_millis(20));
    let platform: Box<dyn Platform> = Box::new(frankenetes_cloud_azure::AciPlatform::new(
        &spec,
        arm.backend(),
        opts,
    )?);
    let dir = out.join("azure");
    life("azure", &Cluster::new(spec, platform, options(&dir))).await
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), Error> {
    let (mut only, mut out) = (None, None);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--only" => only = Some(args.next().ok_or("--only needs local, aws or azure")?),
            "--out" => out = Some(PathBuf::from(args.next().ok_or("--out needs a directory")?)),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; see the header of examples/one_api.rs"
                )
                .into());
            }
        }
    }
    let tmp;
    let out = match out {
        Some(o) => std::path::absolute(o)?,
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    let wanted = |p: &str| only.as_deref().is_none_or(|o| o == p);
    if let Some(o) = only.as_deref()
        && !["local", "aws", "azure"].contains(&o)
    {
        return Err(format!("--only {o}: expected local, aws or azure").into());
    }
    let mut lives = Vec::new();
    if wanted("local") {
        lives.push(local(&out).await?);
    }
    if wanted("aws") {
        lives.push(aws(&out).await?);
    }
    if wanted("azure") {
        lives.push(azure(&out).await?);
    }
    println!("\nthe same calls on each platform: plan → up → status → down");
    println!(
        "{:<8} {:>9} {:>10} {:>10} {:>8} {:>8}",
        "PLATFORM", "PLANNED", "USD/HOUR", "UP PHASES", "UNITS", "REMOVED"
    );
    for l in &lives {
        println!(
            "{:<8} {:>9} {:>10.4} {:>10} {:>8} {:>8}",
            l.platform, l.planned, l.usd_per_hour, l.phases, l.units, l.removed
        );
    }
    Ok(())
}
