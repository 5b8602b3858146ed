//! `openssl` (not this crate) verifies every certificate written to disk, in both CA modes,
//! for the purpose each is meant for, and agrees that every key matches its certificate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::path::Path;
use std::process::Command;

use common::{require_tool, run};
use frankenetes_pki::{PkiPlan, SyncOptions, sync};

fn openssl(args: &[&str]) -> std::process::Output {
    run(Command::new("openssl").args(args))
}

fn pubkey_of(args: &[&str]) -> Vec<u8> {
    let out = openssl(args);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn check_mode(mode: &str, alg: &str) {
    require_tool("openssl", "openssl");
    let dir = tempfile::tempdir().unwrap();
    let spec = common::spec(mode, alg);
    let plan = PkiPlan::from(&spec);
    let (pki, _) = sync(&plan, dir.path(), SyncOptions::default()).unwrap();
    let root = dir.path().join("cluster/pki");
    let mut checked = 0;
    for leaf in pki.leaves() {
        let crt = dir
            .path()
            .join(format!("{}.crt", leaf.spec().path.display()));
        let key = dir
            .path()
            .join(format!("{}.key", leaf.spec().path.display()));
        let issuer_base = leaf.spec().issuer.base();
        let purpose = if leaf.spec().usage.server() {
            "sslserver"
        } else {
            "sslclient"
        };
        let mut args: Vec<String> = vec![
            "verify".into(),
            "-x509_strict".into(),
            "-purpose".into(),
            purpose.into(),
        ];
        if mode == "intermediate" {
            // Trust only the root; the intermediate comes as untrusted, as over the wire.
            args.extend([
                "-CAfile".into(),
                root.join("root-ca.crt").display().to_string(),
            ]);
            args.extend([
                "-untrusted".into(),
                root.join(format!("{issuer_base}.crt"))
                    .display()
                    .to_string(),
            ]);
        } else {
            args.extend([
                "-CAfile".into(),
                root.join(format!("{issuer_base}.crt"))
                    .display()
                    .to_string(),
            ]);
        }
        args.push(crt.display().to_string());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = openssl(&argv);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(": OK"),
            "openssl {}\n{stdout}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        // Key matches certificate, according to openssl.
        let from_cert = pubkey_of(&[
            "x509",
            "-noout",
            "-pubkey",
            "-in",
            &crt.display().to_string(),
        ]);
        let from_key = pubkey_of(&["pkey", "-pubout", "-in", &key.display().to_string()]);
        assert_eq!(from_cert, from_key, "{}: key does not match", leaf.name());
        checked += 1;
    }
    assert_eq!(checked, plan.leaves.len());

    // CAs: self-signed roots verify against themselves; intermediates against the root.
    for ca in pki.cas() {
        let crt = root.join(format!("{}.crt", ca.id().base()));
        let trust = if mode == "intermediate" {
            root.join("root-ca.crt")
        } else {
            crt.clone()
        };
        let out = openssl(&[
            "verify",
            "-x509_strict",
            "-CAfile",
            &trust.display().to_string(),
            &crt.display().to_string(),
        ]);
        assert!(
            out.status.success(),
            "{:?}: {}",
            ca.id(),
            String::from_utf8_lossy(&out.stdout)
        );
    }

    // The service-account public key is the PKIX form of sa.key, as kubeadm writes it.
    let sa_pub = std::fs::read(root.join("sa.pub")).unwrap();
    assert!(sa_pub.starts_with(b"-----BEGIN PUBLIC KEY-----"));
    assert_eq!(
        pubkey_of(&[
            "pkey",
            "-pubout",
            "-in",
            &root.join("sa.key").display().to_string()
        ]),
        sa_pub
    );

    // A leaf signed by another CA of the same cluster must not verify (no cross-CA trust):
    // the etcd server certificate against the Kubernetes CA alone.
    let node = Path::new("nodes/control-01/etc/kubernetes/pki");
    let etcd_server = dir.path().join(node).join("etcd/server.crt");
    let out = openssl(&[
        "verify",
        "-partial_chain",
        "-CAfile",
        &dir.path().join(node).join("ca.crt").display().to_string(),
        &etcd_server.display().to_string(),
    ]);
    assert!(
        !out.status.success(),
        "an etcd certificate must not verify against the Kubernetes CA"
    );
}

#[test]
fn openssl_verifies_kubeadm_mode_ecdsa() {
    check_mode("kubeadm", "ecdsa-p256");
}

#[test]
fn openssl_verifies_intermediate_mode_ecdsa() {
    check_mode("intermediate", "ecdsa-p384");
}

#[test]
fn openssl_verifies_intermediate_mode_rsa() {
    check_mode("intermediate", "rsa-2048");
}
