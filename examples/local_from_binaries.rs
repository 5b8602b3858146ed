//! `local_from_binaries`: the "Dessine-moi un cluster" write-up (seed 003: a control plane from bare binaries) as a short
//! program. Where the write-up hand-makes certificates, writes flags for each component, starts
//! etcd members one by one and curls their health endpoints, this builds the spec in code and
//! lets the sequencer do it: PKI → bundles → three etcd members with mutual TLS → (when the
//! Kubernetes binaries are present) apiserver → controller-manager and scheduler, each behind a
//! health gate. Then it prints the status and tears everything down.
//!
//! Needs `etcd` on PATH (Debian: `etcd-server`). For the apiserver tier point
//! `FRANKENETES_BIN_DIR` at a directory with kube-apiserver, kube-controller-manager and
//! kube-scheduler; without them the control plane stops after etcd, with a warning.
//!
//! Run: `cargo run -p frankenetes-examples --bin local_from_binaries [WORK_DIR]`

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints what it does

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::ExitCode;

use frankenetes_bootstrap::{Cluster, DownOptions, Event, LocalPlatform, Options};
use frankenetes_spec::{ClusterName, ClusterSpec, KubernetesVersion, NodeName, NodeSpec};

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

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    // Three control-plane "machines", each on its own loopback address (Linux routes all of
    // 127.0.0.0/8 to lo), so etcd members and apiservers use their real ports side by side.
    let nodes = (1..=3u8)
        .map(|i| -> Result<NodeSpec, Box<dyn std::error::Error>> {
            Ok(NodeSpec::new(
                NodeName::try_from(format!("control-0{i}"))?,
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 50 + i)),
            ))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let spec = ClusterSpec::new(
        ClusterName::try_from("from-binaries")?,
        "v1.35.0".parse::<KubernetesVersion>()?,
        nodes,
    );
    for warning in spec.validate()? {
        eprintln!("warning: {warning}");
    }

    let work = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("frankenetes-from-binaries"));
    let work = std::path::absolute(work)?;
    let opts = Options::new(&work).on_event(|e| match e {
        Event::Started(p) => eprintln!("==> {p}"),
        Event::Done(p, d) => eprintln!("    {p} done in {d:.1?}"),
        Event::Warning(w) => eprintln!("warning: {w}"),
        other => eprintln!("{other}"),
    });
    // The local platform: supervised processes here; the Kubernetes binaries from
    // FRANKENETES_BIN_DIR, PATH or the `frankenetes fetch` cache.
    let platform = LocalPlatform::new(&work)
        .bin_dir(std::env::var_os("FRANKENETES_BIN_DIR").map(PathBuf::from));
    let cluster = Cluster::new(spec, platform, opts);

    let result = async {
        let report = cluster.up().await?;
        print!("{}", cluster.status().await?.table());
        println!("admin kubeconfig: {}", report.admin_kubeconfig.display());
        Ok::<_, frankenetes_bootstrap::Error>(())
    }
    .await;
    // Always tear down, also when `up` failed half-way: every unit carries the cluster's tag.
    let removed = cluster.down(DownOptions::default()).await?;
    println!(
        "removed {} units: {}",
        removed.found.len(),
        removed.found.join(", ")
    );
    result?;
    Ok(())
}
