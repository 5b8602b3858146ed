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
            .join(format!("{}.crt", leaf.spec().path().display()));
        let key = dir
            .path()
            .join(format!("{}.key", leaf.spec().path().display()));
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

/// Every node's kubelet serving certificate verifies, for a TLS server, against the cluster CA
/// file that node (and the apiserver's `--kubelet-certificate-authority`) holds, for the
/// node's name and for its IP; and it carries exactly those two names, nothing else.
#[test]
fn kubelet_serving_certificates_verify_for_exactly_the_nodes_names() {
    require_tool("openssl", "openssl");
    for mode in ["kubeadm", "intermediate"] {
        let dir = tempfile::tempdir().unwrap();
        let spec = common::spec(mode, "ecdsa-p256");
        sync(&PkiPlan::from(&spec), dir.path(), SyncOptions::default()).unwrap();
        let mut seen = 0;
        for (node, _) in spec.nodes() {
            let n = node.name.as_str();
            let base = dir.path().join(format!("nodes/{n}/var/lib/kubelet/pki"));
            let crt = base.join("kubelet.crt").display().to_string();
            // The apiserver trusts the cluster CA copy of a control-plane node; in
            // intermediate mode that is the intermediate itself (partial chain).
            let ca = dir
                .path()
                .join("nodes/control-01/etc/kubernetes/pki/ca.crt")
                .display()
                .to_string();
            let ip = node.ip.to_string();
            for check in [["-verify_hostname", n], ["-verify_ip", ip.as_str()]] {
                let mut args = vec!["verify", "-x509_strict", "-purpose", "sslserver"];
                if mode == "intermediate" {
                    args.push("-partial_chain");
                }
                args.extend(["-CAfile", &ca, check[0], check[1], &crt]);
                let out = openssl(&args);
                assert!(
                    out.status.success(),
                    "{mode} {n}: openssl {}: {}{}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            // A name the node does not have must fail.
            let mut args = vec!["verify", "-partial_chain", "-CAfile", &ca];
            args.extend(["-verify_hostname", "control-99", &crt]);
            assert!(!openssl(&args).status.success(), "{n}: wrong name accepted");
            // Exactly the node's name and IP.
            let out = openssl(&["x509", "-noout", "-ext", "subjectAltName", "-in", &crt]);
            let text = String::from_utf8_lossy(&out.stdout);
            let sans: Vec<&str> = text
                .lines()
                .skip(1)
                .flat_map(|l| l.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            assert_eq!(
                sans,
                [format!("DNS:{n}"), format!("IP Address:{ip}")],
                "{n}"
            );
            let out = openssl(&["x509", "-noout", "-subject", "-in", &crt]);
            let subject = String::from_utf8_lossy(&out.stdout);
            assert!(
                subject.contains(&format!("CN = system:node:{n}"))
                    && subject.contains("O = system:nodes"),
                "{subject}"
            );
            let mode_bits = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(base.join("kubelet.key"))
                    .unwrap()
                    .permissions(),
            ) & 0o777;
            assert_eq!(mode_bits, 0o600, "{n}: kubelet.key");
            seen += 1;
        }
        assert_eq!(seen, spec.nodes().count());
        assert!(seen >= 2, "the test spec has workers too");
    }
}
