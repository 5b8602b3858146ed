//! The day-one objects: every rendered object (and a bootstrap-token Secret) validates with
//! an independent validator, `kubernetes-validate --strict`, against the OpenAPI schema of each
//! supported Kubernetes version; `render` writes them to `cluster/addons/`; the discovery hash
//! equals the one `openssl` computes; the documents are reviewed as snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use frankenetes_manifests::addons::{self, AddonOptions, Object};
use frankenetes_manifests::token::{self, BootstrapToken};
use frankenetes_pki::CaId;
use frankenetes_spec::ClusterSpec;
use frankenetes_spec::RELEASES;

fn kubernetes_validate() -> PathBuf {
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("kubernetes-validate"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`kubernetes-validate` is not on PATH: run ./scripts/install-deps.sh, then put \
                 ~/.cache/frankenetes/py/bin on PATH (scripts/test.sh does)"
            )
        })
}

/// Runs the validator on `files` for `minor`; its output, after checking that every one of
/// `expected` resources passed.
fn validate(minor: u32, files: &[PathBuf], expected: usize) -> String {
    let mut cmd = Command::new(kubernetes_validate());
    cmd.args(["--strict", "-k", &format!("1.{minor}.0")])
        .args(files);
    let out = common::run(&mut cmd);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "1.{minor}: {text}");
    assert_eq!(
        text.matches("passed for resource").count(),
        expected,
        "1.{minor}: {text}"
    );
    text
}

#[test]
fn every_day_one_object_validates_against_its_versions_schema() {
    for rel in RELEASES {
        let mut spec = common::lab();
        spec.kubernetes_version.minor = rel.minor;
        let (dir, rendered) = common::render_to_dir(&spec);
        let files: Vec<PathBuf> = rendered
            .cluster_files
            .iter()
            .filter(|(p, _)| p.starts_with(addons::ADDONS_DIR))
            .map(|(p, _)| dir.path().join(p))
            .collect();
        assert_eq!(
            files
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
            [
                "rbac.yaml",
                "cluster-info.yaml",
                "kubeadm-config.yaml",
                "coredns.yaml",
                "kube-proxy.yaml"
            ]
        );
        for f in &files {
            let mode = std::os::unix::fs::PermissionsExt::mode(
                &std::fs::metadata(f).unwrap().permissions(),
            ) & 0o777;
            assert_eq!(mode, 0o644, "{}", f.display());
        }
        let pki = pki_of(&spec, dir.path());
        let objects = addons::objects(&spec, &pki, &AddonOptions::default()).unwrap();
        // A bootstrap-token Secret too (written here, never by `render`).
        let t = BootstrapToken::generate().unwrap();
        let secret = dir.path().join("token.yaml");
        let exp = time::OffsetDateTime::now_utc() + time::Duration::hours(24);
        std::fs::write(
            &secret,
            serde_norway::to_string(&t.to_secret(Some(exp), "test")).unwrap(),
        )
        .unwrap();
        let mut all = files.clone();
        all.push(secret);
        let text = validate(rel.minor, &all, objects.len() + 1);
        assert!(!text.contains(t.secret()), "the validator echoed a secret");
    }
}

/// The validator is not a rubber stamp: an unknown field and a wrong type fail.
#[test]
fn the_validator_rejects_a_broken_object() {
    let spec = common::lab();
    let (dir, _) = common::render_to_dir(&spec);
    let pki = pki_of(&spec, dir.path());
    let objects = addons::objects(&spec, &pki, &AddonOptions::default()).unwrap();
    let mut d = objects
        .iter()
        .find(|o| o.kind == "Deployment")
        .unwrap()
        .body
        .clone();
    d["spec"]["replicas"] = serde_json::json!("two");
    let mut b = objects[0].body.clone();
    b["roleRef"]["color"] = serde_json::json!("blue");
    for (name, v) in [("deployment", d), ("binding", b)] {
        let p = dir.path().join(format!("broken-{name}.yaml"));
        std::fs::write(&p, serde_norway::to_string(&v).unwrap()).unwrap();
        let out = common::run(
            Command::new(kubernetes_validate())
                .args(["--strict", "-k", "1.35.0"])
                .arg(&p),
        );
        assert!(!out.status.success(), "{name} passed");
    }
}

fn pki_of(spec: &ClusterSpec, dir: &Path) -> frankenetes_pki::Pki {
    let plan = frankenetes_pki::PkiPlan::from(spec);
    frankenetes_pki::sync(&plan, dir, Default::default())
        .unwrap()
        .0
}

#[test]
fn render_writes_the_day_one_files_and_the_cluster_info_anonymous_path_only_with_them() {
    let spec = ClusterSpec::example();
    let (dir, rendered) = common::render_to_dir(&spec);
    let auth = dir
        .path()
        .join("nodes/control-01/etc/kubernetes/apiserver/authentication-config.yaml");
    let text = std::fs::read_to_string(&auth).unwrap();
    assert!(text.contains(addons::CLUSTER_INFO_PATH), "{text}");
    assert!(
        rendered
            .cluster_files
            .iter()
            .any(|(p, _)| p.ends_with("cluster-info.yaml"))
    );
    // Off: no addons, and anonymous users are back to the health probes only.
    let pki = pki_of(&spec, dir.path());
    let off = frankenetes_manifests::render_with(&spec, &pki, &AddonOptions::disabled()).unwrap();
    assert!(
        !off.cluster_files
            .iter()
            .any(|(p, _)| p.starts_with(addons::ADDONS_DIR))
    );
    let node = off.node("control-01").unwrap();
    let a = node
        .file("/etc/kubernetes/apiserver/authentication-config.yaml")
        .unwrap();
    let a = std::str::from_utf8(&a.contents).unwrap();
    assert!(!a.contains("cluster-info") && a.contains("/readyz"), "{a}");
}

#[test]
fn the_kube_dns_service_and_the_kubelets_cluster_dns_agree() {
    let spec = common::lab();
    let (dir, rendered) = common::render_to_dir(&spec);
    let pki = pki_of(&spec, dir.path());
    let objects = addons::objects(&spec, &pki, &AddonOptions::default()).unwrap();
    let svc = objects.iter().find(|o| o.name == "kube-dns").unwrap();
    let kubelet: serde_json::Value = serde_norway::from_slice(
        &rendered
            .node("worker-01")
            .unwrap()
            .file("/var/lib/kubelet/config.yaml")
            .unwrap()
            .contents,
    )
    .unwrap();
    assert_eq!(svc.body["spec"]["clusterIP"], kubelet["clusterDNS"][0]);
    assert_eq!(svc.body["spec"]["clusterIP"], "10.96.0.10");
    // Images follow the version.
    let rel = spec.release().unwrap();
    let text = serde_json::to_string(&objects.iter().map(|o| &o.body).collect::<Vec<_>>()).unwrap();
    assert!(text.contains(&format!(
        "registry.k8s.io/coredns/coredns:{}",
        rel.coredns_tag
    )));
    assert!(text.contains("registry.k8s.io/kube-proxy:v1.35.0"));
}

/// kubeadm's pin equals `openssl x509 -pubkey | openssl pkey -pubin -outform DER | sha256`.
#[test]
fn the_discovery_hash_matches_openssl() {
    let openssl = common::require_tool("openssl", "openssl");
    for spec in [ClusterSpec::example(), common::lab()] {
        let dir = tempfile::tempdir().unwrap();
        let pki = pki_of(&spec, dir.path());
        let ca = pki.ca(CaId::Kubernetes).unwrap().cert_pem();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca).unwrap();
        let pubkey = common::run(
            Command::new(&openssl)
                .args(["x509", "-pubkey", "-noout", "-in"])
                .arg(&ca_file),
        );
        assert!(pubkey.status.success());
        let pub_file = dir.path().join("pub.pem");
        std::fs::write(&pub_file, &pubkey.stdout).unwrap();
        let der = common::run(
            Command::new(&openssl)
                .args(["pkey", "-pubin", "-outform", "DER", "-in"])
                .arg(&pub_file),
        );
        assert!(der.status.success());
        let der_file = dir.path().join("pub.der");
        std::fs::write(&der_file, &der.stdout).unwrap();
        let dgst = common::run(
            Command::new(&openssl)
                .args(["dgst", "-sha256", "-r"])
                .arg(&der_file),
        );
        let hex = String::from_utf8(dgst.stdout)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .to_owned();
        assert_eq!(hex.len(), 64);
        assert_eq!(token::ca_cert_hash(ca).unwrap(), format!("sha256:{hex}"));
        // A different key gives a different pin.
        let other = pki.ca(CaId::FrontProxy).unwrap().cert_pem();
        assert_ne!(token::ca_cert_hash(other).unwrap(), format!("sha256:{hex}"));
    }
}

/// Golden output of every day-one file (the CA inside `cluster-info` redacted).
#[test]
fn every_day_one_file_is_reviewed() {
    let spec = common::lab();
    let (dir, rendered) = common::render_to_dir(&spec);
    let pki = pki_of(&spec, dir.path());
    let ca_b64 = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD
            .encode(pki.ca(CaId::Kubernetes).unwrap().cert_pem())
    };
    for (p, f) in &rendered.cluster_files {
        if !p.starts_with(addons::ADDONS_DIR) {
            continue;
        }
        let text = std::str::from_utf8(&f.contents)
            .unwrap()
            .replace(&ca_b64, "<CA>");
        insta::assert_snapshot!(
            format!("addons__{}", p.file_name().unwrap().to_string_lossy()),
            text
        );
    }
    let described: Vec<String> = addons::objects(&spec, &pki, &AddonOptions::default())
        .unwrap()
        .iter()
        .map(|o: &Object| format!("{:?} {o}", o.credential))
        .collect();
    insta::assert_yaml_snapshot!("addons__apply_order", described);
}
