//! `aci_control_plane`: the "Frankenetes" write-ups (seeds 000–002: etcd, the apiserver, the
//! controller manager and the scheduler as Azure Container Instances glued by DNS name labels,
//! no TLS, etcd's WAL failing on an Azure Files mount, "pause it and pay nothing" left as an
//! idea) as a short program. The spec is built in code; the FQDNs come from the DNS labels
//! before anything exists, so they are in every certificate's SANs; the PKI is made once under
//! the output directory; each component runs in its own container group with its certificates
//! as secret volumes; etcd keeps its data on the group's disk and snapshots to the file share;
//! `pause` takes a verified snapshot and stops every group, `resume` restores it and starts them.
//!
//! Run: `cargo run -p frankenetes-examples --bin aci_control_plane -- [ACTION] [--replay] [--out DIR]`
//! * ACTION is `plan` (default: groups, FQDNs, SANs and cost; no Azure call), `up`, `status`,
//!   `pause`, `resume` or `down`. On real Azure, `AZURE_SUBSCRIPTION_ID` names the subscription
//!   and `az login` provides the credential; the resource group is `frankenetes-demo` in
//!   `westeurope` and must exist.
//! * `--replay` runs the whole life (plan, up, status, pause, status, resume, status, down)
//!   against a fake Azure Resource Manager on 127.0.0.1 that answers with the official ARM
//!   example payloads (`frankenetes_cloud_azure::testing`): what CI runs. No Azure account.

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints what it does

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use frankenetes_bootstrap::{Cluster, DownOptions, Options, ResumeOptions};
use frankenetes_cloud_azure::{AciBackend, AciOptions, AciPlatform, azure_section};
use frankenetes_spec::ClusterSpec;

/// Three control-plane nodes (an etcd group and an apiserver group each, plus one group for
/// the controller manager and the scheduler); their IPs only name etcd members and certificate
/// SANs: on ACI every component is reached by its FQDN.
fn spec_yaml(subscription: &str, resource_group: &str) -> String {
    // DNS labels and storage account names are global: derive them from the subscription.
    let id: String = subscription
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(8)
        .collect::<String>()
        .to_ascii_lowercase();
    format!(
        r#"
apiVersion: frankenetes.dev/v1alpha1
kind: Cluster
metadata: {{ name: frankenetes }}
spec:
  kubernetesVersion: v1.35.0
  controlPlane:
    - {{ name: control-01, ip: 10.0.0.11 }}
    - {{ name: control-02, ip: 10.0.0.12 }}
    - {{ name: control-03, ip: 10.0.0.13 }}
  backend:
    azure:
      subscriptionId: "{subscription}"
      resourceGroup: {resource_group}
      location: westeurope
      dnsLabelPrefix: fk-{id}
      credential: {{ azureCli: {{}} }}
      storageAccount: fk{id}snap
"#
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Action {
    Plan,
    Up,
    Status,
    Pause,
    Resume,
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
    let (mut action, mut replay, mut out) = (Action::Plan, false, PathBuf::from("aci"));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "plan" => action = Action::Plan,
            "up" => action = Action::Up,
            "status" => action = Action::Status,
            "pause" => action = Action::Pause,
            "resume" => action = Action::Resume,
            "down" => action = Action::Down,
            "--replay" => replay = true,
            "--out" => out = PathBuf::from(args.next().ok_or("--out needs a directory")?),
            other => {
                return Err(format!(
                    "unknown argument {other:?}; see the header of examples/aci_control_plane.rs"
                )
                .into());
            }
        }
    }
    if replay {
        return replay_lifecycle(&out).await;
    }

    let subscription = match (action, std::env::var("AZURE_SUBSCRIPTION_ID")) {
        (_, Ok(s)) => s,
        (Action::Plan, Err(_)) => "00000000-0000-0000-0000-000000000000".to_owned(),
        (_, Err(_)) => {
            return Err("set AZURE_SUBSCRIPTION_ID (and `az login`), or run with --replay".into());
        }
    };
    let spec = load(&spec_yaml(&subscription, "frankenetes-demo"))?;
    // The credential the spec names (`az login` here), the ARM endpoint of the public cloud.
    // Nothing calls Azure before `up`: `plan` is offline.
    let backend = AciBackend::from_spec(&spec)?;
    let cluster = Cluster::new(
        spec.clone(),
        AciPlatform::new(&spec, backend, AciOptions::default())?,
        Options::new(std::path::absolute(&out)?).on_event(|e| eprintln!("{e}")),
    );
    let code = step(&cluster, action).await?;
    if action == Action::Plan {
        println!("(plan only: `up` creates it; `--replay` runs it all against a fake ARM)");
    }
    Ok(code)
}

/// The spec, validated as the CLI would.
fn load(yaml: &str) -> Result<ClusterSpec, Box<dyn std::error::Error>> {
    let spec = ClusterSpec::from_yaml(yaml)?.spec;
    for warning in spec.validate()? {
        eprintln!("warning: {warning}");
    }
    Ok(spec)
}

/// Groups with their FQDNs and cost, and the apiserver's SANs: known before anything exists.
fn show_plan(cluster: &Cluster<AciPlatform>) -> Result<(), Box<dyn std::error::Error>> {
    let spec = cluster.spec();
    let az = azure_section(spec)?;
    // Offline: the PKI is made in memory with throwaway keys, nothing is written.
    let (prepared, _) = cluster.plan()?;
    let topology = cluster.platform().topology(&prepared.workload)?;
    print!(
        "{}",
        topology.table(
            &AciOptions::default().prices,
            &format!("{}/{}", az.storage_account, az.share_name)
        )
    );
    let first = spec
        .control_plane
        .first()
        .ok_or("no control-plane node in the spec")?;
    let sans: Vec<String> = spec
        .apiserver_sans(first)
        .iter()
        .map(ToString::to_string)
        .collect();
    println!("apiserver SANs ({}): {}", first.name, sans.join(", "));
    Ok(())
}

/// One action through the deployment API (the same calls as on any other platform).
async fn step(
    cluster: &Cluster<AciPlatform>,
    action: Action,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match action {
        Action::Plan => show_plan(cluster)?,
        Action::Up => {
            // The share, then etcd, the apiservers, the controllers; the PKI is made under
            // the output directory once (a re-run loads it; a CA is never replaced).
            cluster.up().await?;
            return status(cluster, "running").await;
        }
        Action::Status => return status(cluster, "running").await,
        Action::Pause => {
            // The writers stop, a snapshot job saves and verifies a snapshot on the share,
            // then etcd stops: compute billing stops.
            cluster.pause().await?;
            println!("==> paused: snapshot on the share; compute billing stops");
            return status(cluster, "stopped").await;
        }
        Action::Resume => {
            // etcd's groups restore the newest snapshot in an init container, then start.
            cluster.resume(ResumeOptions::default()).await?;
            println!("==> resumed from the newest snapshot");
            return status(cluster, "running").await;
        }
        Action::Down => {
            // Everything carrying the cluster's tag, found by listing: no state needed.
            let r = cluster.down(DownOptions::default()).await?;
            println!(
                "==> down: {} container group(s) left; the share keeps the snapshots",
                r.left.len()
            );
            return Ok(if r.left.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Every group of the cluster with its state and FQDN; failure unless all are in `want`.
async fn status(
    cluster: &Cluster<AciPlatform>,
    want: &str,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let s = cluster.status().await?;
    let mut all = s.exists;
    for r in &s.rows {
        println!(
            "    {:<32} {:<9} {}",
            r.name,
            r.state.as_deref().unwrap_or("-"),
            r.detail
        );
        all &= r.state.as_deref() == Some(want);
    }
    Ok(if all {
        ExitCode::SUCCESS
    } else {
        eprintln!("not every group is {want}");
        ExitCode::FAILURE
    })
}

/// The whole life against the replay of the official ARM examples on 127.0.0.1.
async fn replay_lifecycle(out: &Path) -> Result<ExitCode, Box<dyn std::error::Error>> {
    use frankenetes_cloud_azure::testing::{FakeArm, RG, SUB};
    let arm = FakeArm::start().await?;
    println!("replaying the official ARM examples on {}", arm.base);
    let spec = load(&spec_yaml(SUB, RG))?;
    // Nothing really starts on the replay: poll fast instead of ACI's pace.
    let opts = AciOptions::default().with_waits(Duration::from_secs(30), Duration::from_millis(20));
    let cluster = Cluster::new(
        spec.clone(),
        AciPlatform::new(&spec, arm.backend(), opts)?,
        Options::new(std::path::absolute(out)?).on_event(|e| eprintln!("{e}")),
    );
    for action in [
        Action::Plan,
        Action::Up,
        Action::Status,
        Action::Pause,
        Action::Resume,
        Action::Down,
    ] {
        if step(&cluster, action).await? != ExitCode::SUCCESS {
            return Ok(ExitCode::FAILURE);
        }
    }
    let requests = arm.recorded();
    let writes = requests.iter().filter(|r| r.method != "GET").count();
    println!(
        "{} ARM requests ({writes} writes), answered by the replay of the official examples",
        requests.len()
    );
    Ok(ExitCode::SUCCESS)
}
