//! `pki_only`: what `cargo add frankenetes-pki` users do. Replaces the hand-built `openssl` PKI
//! of the cheap-lab write-up (seed 004: root, intermediates, per-node certificates, client
//! identities) and the TLS the ACI write-ups (seeds 000-002) left out: the whole
//! kubeadm-compatible PKI in memory, only the files you choose written, and an expiry check of
//! what was written.
//!
//! No async runtime, no network: `cargo tree -e normal -p frankenetes-pki` shows no tokio and no
//! HTTP client (CI checks it).
//!
//! Run: `cargo run -p frankenetes-examples --bin pki_only [OUT_DIR]`

#![allow(clippy::print_stdout, clippy::print_stderr)] // an example prints what it does

use std::path::PathBuf;
use std::process::ExitCode;

use frankenetes_pki::{CheckOptions, Pki, PkiPlan, check};
use frankenetes_spec::{
    ClusterName, ClusterSpec, KeyAlgorithm, KubernetesVersion, NodeName, NodeSpec,
};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    // 1. A spec built in code: one control-plane node, the names clients will use.
    let node = NodeSpec::new(NodeName::try_from("control-01")?, "10.10.16.11".parse()?);
    let mut spec = ClusterSpec::new(
        ClusterName::try_from("kubelius")?,
        "v1.35.0".parse::<KubernetesVersion>()?,
        vec![node],
    );
    spec.api_server
        .cert_sans
        .push("api.kubelius.example".into());
    for warning in spec.validate()? {
        eprintln!("warning: {warning}");
    }

    // 2. The whole PKI, in memory. ECDSA P-256 is the default; RSA is one call away.
    let plan = PkiPlan::from(&spec).with_algorithm(KeyAlgorithm::EcdsaP256);
    let pki = Pki::generate(&plan)?;
    let apiserver = pki
        .leaf("control-01/apiserver")
        .ok_or("the plan has an apiserver certificate for control-01")?;
    println!(
        "{} CAs and {} leaf certificates in memory; apiserver SANs: {} and {}",
        pki.cas().len(),
        pki.leaves().len(),
        apiserver.info().dns_sans.join(", "),
        apiserver
            .info()
            .ip_sans
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );

    // 3. Write only what you need: here, control-01's etcd material. Keys are 0600, written
    //    through a temporary file and a rename, like everything the crate writes.
    let out = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("frankenetes-pki-only"));
    let wanted = "nodes/control-01/etc/kubernetes/pki/etcd/";
    let mut written = 0;
    for f in pki.files() {
        if f.path.to_string_lossy().starts_with(wanted) {
            let mode = if f.secret { 0o600 } else { 0o644 };
            frankenetes_bundle::fs::write_atomic(&out.join(&f.path), &f.contents, mode)?;
            written += 1;
        }
    }
    println!("wrote {written} files under {}", out.join(wanted).display());

    // 4. Check what is on disk: chain, signatures, key match, and expiry within 30 days.
    let report = check(
        &out.join("nodes/control-01/etc/kubernetes/pki"),
        &CheckOptions::default().within(Some(std::time::Duration::from_secs(30 * 24 * 3600))),
    )?;
    print!("{}", report.table());
    if !report.is_ok() {
        return Err(format!("{} certificate problems", report.problem_count()).into());
    }
    Ok(())
}
