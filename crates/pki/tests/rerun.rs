//! Re-running on a directory: nothing changes when nothing is missing, only what is missing is
//! made, CAs are never replaced, stale leaves are reported and replaced only with `renew`, and
//! broken files are errors naming the file. Plus `check` and `renew` on a directory.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use frankenetes_pki::{
    CheckOptions, Error, PkiPlan, RenewOptions, SyncOptions, check, renew, sync,
};
use time::macros::datetime;

fn plan(mode: &str) -> PkiPlan {
    PkiPlan::from(&common::spec(mode, "ecdsa-p256")).at(datetime!(2026-01-01 00:00 UTC))
}

fn fresh(mode: &str) -> (tempfile::TempDir, PkiPlan) {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(mode);
    let (_, report) = sync(&p, dir.path(), SyncOptions::default()).unwrap();
    assert!(report.replaced.is_empty() && report.stale.is_empty() && report.unchanged == 0);
    assert!(!report.created.is_empty());
    (dir, p)
}

#[test]
fn second_run_changes_no_byte() {
    for mode in ["kubeadm", "intermediate"] {
        let (dir, p) = fresh(mode);
        let before = common::snapshot_tree(dir.path());
        let (_, report) = sync(&p, dir.path(), SyncOptions::default()).unwrap();
        assert!(
            report.created.is_empty() && report.replaced.is_empty() && report.stale.is_empty(),
            "{mode}: {report:?}"
        );
        assert_eq!(report.unchanged, before.len());
        assert_eq!(
            common::snapshot_tree(dir.path()),
            before,
            "{mode}: bytes or mtimes changed"
        );
    }
}

#[test]
fn keys_are_0600_and_certs_0644() {
    let (dir, _) = fresh("intermediate");
    for (path, _, _) in common::snapshot_tree(dir.path()) {
        let mode = std::fs::metadata(dir.path().join(&path))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        // Keys, and the encryption configuration (it holds the Secrets key inline).
        let secret = path.extension().is_some_and(|e| e == "key")
            || path.ends_with("encryption-config.yaml");
        assert_eq!(
            mode,
            if secret { 0o600 } else { 0o644 },
            "{}",
            path.display()
        );
    }
    // The root key stays with the operator: no node holds it.
    let tree = common::snapshot_tree(dir.path());
    assert!(
        tree.iter()
            .any(|(p, _, _)| p == Path::new("cluster/pki/root-ca.key"))
    );
    assert!(
        !tree
            .iter()
            .any(|(p, _, _)| p.starts_with("nodes") && p.ends_with("root-ca.key"))
    );
    let root = std::fs::read(dir.path().join("cluster/pki/root-ca.crt")).unwrap();
    assert!(
        !tree
            .iter()
            .any(|(p, b, _)| p.starts_with("nodes") && *b == root),
        "no node file holds the root"
    );
}

#[test]
fn deleting_one_leaf_recreates_only_that_leaf() {
    let (dir, p) = fresh("kubeadm");
    let leaf = Path::new("nodes/control-02/etc/kubernetes/pki/apiserver");
    std::fs::remove_file(dir.path().join(leaf).with_extension("crt")).unwrap();
    std::fs::remove_file(dir.path().join(leaf).with_extension("key")).unwrap();
    let before = common::snapshot_tree(dir.path());
    let (_, report) = sync(&p, dir.path(), SyncOptions::default()).unwrap();
    let mut created = report.created.clone();
    created.sort();
    assert_eq!(
        created,
        [leaf.with_extension("crt"), leaf.with_extension("key")]
    );
    let after = common::snapshot_tree(dir.path());
    for (path, bytes, mtime) in &before {
        let now = after.iter().find(|(p2, _, _)| p2 == path).unwrap();
        assert_eq!(
            (&now.1, now.2),
            (bytes, *mtime),
            "{} changed",
            path.display()
        );
    }
    assert!(
        check(dir.path(), &CheckOptions::default().at(p.now))
            .unwrap()
            .is_ok()
    );
}

#[test]
fn a_key_without_its_certificate_gets_a_certificate() {
    let (dir, p) = fresh("kubeadm");
    let leaf = dir
        .path()
        .join("nodes/control-01/var/lib/kubelet/pki/kubelet-client");
    let key_before = std::fs::read(leaf.with_extension("key")).unwrap();
    std::fs::remove_file(leaf.with_extension("crt")).unwrap();
    sync(&p, dir.path(), SyncOptions::default()).unwrap();
    assert_eq!(
        std::fs::read(leaf.with_extension("key")).unwrap(),
        key_before,
        "the existing key is kept"
    );
    assert!(
        check(dir.path(), &CheckOptions::default().at(p.now))
            .unwrap()
            .is_ok()
    );
}

#[test]
fn corrupted_pem_is_an_error_naming_the_file_and_nothing_is_written() {
    let (dir, p) = fresh("kubeadm");
    let bad = dir
        .path()
        .join("nodes/control-01/etc/kubernetes/pki/etcd/peer.crt");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    // Also remove a file, to prove that nothing is written when the run fails.
    let missing = dir.path().join("cluster/pki/admin.crt");
    std::fs::remove_file(&missing).unwrap();
    let err = sync(&p, dir.path(), SyncOptions::default()).unwrap_err();
    assert!(
        matches!(&err, Error::Corrupt { path, .. } if path == &bad),
        "{err:?}"
    );
    assert!(err.to_string().contains("etcd/peer.crt"), "{err}");
    assert!(!missing.exists(), "nothing is written when loading fails");
}

#[test]
fn a_key_that_does_not_match_is_an_error_naming_both_files() {
    let (dir, p) = fresh("kubeadm");
    let d = dir.path().join("nodes/control-01/etc/kubernetes/pki");
    std::fs::copy(
        d.join("apiserver-kubelet-client.key"),
        d.join("apiserver.key"),
    )
    .unwrap();
    let err = sync(&p, dir.path(), SyncOptions::default()).unwrap_err();
    assert!(matches!(err, Error::KeyMismatch { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("apiserver.key") && msg.contains("apiserver.crt"),
        "{msg}"
    );
}

#[test]
fn a_ca_is_never_replaced() {
    let (dir, p) = fresh("kubeadm");
    let ca = dir.path().join("cluster/pki/ca");
    // Certificate gone, key still there: refuse, do not mint a new CA.
    let crt = std::fs::read(ca.with_extension("crt")).unwrap();
    std::fs::remove_file(ca.with_extension("crt")).unwrap();
    std::fs::remove_dir_all(dir.path().join("nodes")).unwrap();
    let err = sync(&p, dir.path(), SyncOptions::default().renew(true)).unwrap_err();
    assert!(matches!(err, Error::CaCertMissing { .. }), "{err:?}");
    std::fs::write(ca.with_extension("crt"), &crt).unwrap();
    // Key gone: refuse too.
    std::fs::remove_file(ca.with_extension("key")).unwrap();
    let err = sync(&p, dir.path(), SyncOptions::default()).unwrap_err();
    assert!(matches!(err, Error::CaKeyMissing { .. }), "{err:?}");
}

#[test]
fn a_nodes_ca_copy_must_be_the_clusters() {
    let (dir, p) = fresh("kubeadm");
    let (other, _) = fresh("kubeadm");
    let copy = Path::new("nodes/control-02/etc/kubernetes/pki/ca.crt");
    std::fs::copy(other.path().join(copy), dir.path().join(copy)).unwrap();
    // A certificate without its own key is caught first, naming both files.
    assert!(matches!(
        sync(&p, dir.path(), SyncOptions::default()),
        Err(Error::KeyMismatch { .. })
    ));
    let key = copy.with_extension("key");
    std::fs::copy(other.path().join(&key), dir.path().join(&key)).unwrap();
    let err = sync(&p, dir.path(), SyncOptions::default()).unwrap_err();
    assert!(matches!(err, Error::CopyDiffers { .. }), "{err:?}");
    let report = check(dir.path(), &CheckOptions::default().at(p.now)).unwrap();
    let row = report.rows.iter().find(|r| r.path == copy).unwrap();
    assert!(
        row.problems
            .iter()
            .any(|m| m.contains("differs from cluster/pki/ca.crt")),
        "{row:?}"
    );
}

#[test]
fn the_ca_mode_of_existing_cas_is_kept() {
    let (dir, _) = fresh("kubeadm");
    let err = sync(&plan("intermediate"), dir.path(), SyncOptions::default()).unwrap_err();
    assert!(matches!(err, Error::CaModeMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("refusing to replace"), "{err}");
}

#[test]
fn san_changes_are_reported_and_replaced_only_with_renew() {
    let (dir, p) = fresh("kubeadm");
    // The spec now has an endpoint name the existing apiserver certificates lack.
    let mut spec = common::spec("kubeadm", "ecdsa-p256");
    spec.control_plane_endpoint = Some("api.example.org:6443".parse().unwrap());
    let p2 = PkiPlan::from(&spec).at(p.now);
    let before = common::snapshot_tree(dir.path());
    let (_, report) = sync(&p2, dir.path(), SyncOptions::default()).unwrap();
    let mut stale: Vec<&str> = report.stale.iter().map(|s| s.name.as_str()).collect();
    stale.sort_unstable();
    assert_eq!(
        stale,
        [
            "control-01/apiserver",
            "control-02/apiserver",
            "control-03/apiserver"
        ]
    );
    assert!(
        report.stale[0]
            .reasons
            .iter()
            .any(|r| r.contains("missing api.example.org")),
        "{:?}",
        report.stale
    );
    assert_eq!(
        common::snapshot_tree(dir.path()),
        before,
        "nothing replaced without renew"
    );

    let (_, report) = sync(&p2, dir.path(), SyncOptions::default().renew(true)).unwrap();
    assert!(report.stale.is_empty());
    assert_eq!(
        report.replaced.len(),
        6,
        "three certificates and their keys: {:?}",
        report.replaced
    );
    let after = common::snapshot_tree(dir.path());
    let changed: Vec<_> = before
        .iter()
        .filter(|(path, bytes, _)| {
            after
                .iter()
                .find(|(p, _, _)| p == path)
                .is_some_and(|(_, b, _)| b != bytes)
        })
        .map(|(p, _, _)| p.clone())
        .collect();
    assert_eq!(changed.len(), 6, "{changed:?}");
    assert!(
        changed
            .iter()
            .all(|p| p.file_stem().is_some_and(|s| s == "apiserver"))
    );
    let (_, report) = sync(&p2, dir.path(), SyncOptions::default()).unwrap();
    assert!(report.stale.is_empty() && report.created.is_empty() && report.replaced.is_empty());
}

#[test]
fn check_passes_then_finds_tampering() {
    let (dir, p) = fresh("intermediate");
    let opts = CheckOptions::default().at(p.now);
    let report = check(dir.path(), &opts).unwrap();
    assert!(report.is_ok(), "{}", report.table());
    insta::assert_snapshot!("check_intermediate", report.table());

    // Tamper: flip a byte inside a certificate's signature.
    let f = dir
        .path()
        .join("nodes/control-03/etc/kubernetes/pki/front-proxy-client.crt");
    let pem_text = std::fs::read_to_string(&f).unwrap();
    let mut blocks = pem::parse_many(&pem_text).unwrap();
    let mut der = blocks[0].contents().to_vec();
    let last = der.len() - 3;
    der[last] ^= 0x55;
    blocks[0] = pem::Pem::new("CERTIFICATE", der);
    std::fs::write(&f, pem::encode_many(&blocks)).unwrap();
    // Loosen a key's mode; swap a key; let one expire.
    let k = dir.path().join("cluster/pki/admin.key");
    std::fs::set_permissions(&k, std::fs::Permissions::from_mode(0o644)).unwrap();
    let d = dir.path().join("nodes/control-01/etc/kubernetes/pki");
    std::fs::copy(d.join("scheduler.key"), d.join("controller-manager.key")).unwrap();
    let report = check(dir.path(), &opts).unwrap();
    assert!(!report.is_ok());
    insta::assert_snapshot!("check_tampered", report.table());

    let later = check(
        dir.path(),
        &CheckOptions::default().at(p.now + time::Duration::days(400)),
    )
    .unwrap();
    assert!(
        later
            .rows
            .iter()
            .filter(|r| !r.is_ca && r.expires.is_some())
            .all(|r| r.problems.iter().any(|m| m == "expired"))
    );
}

#[test]
fn check_against_the_spec_finds_missing_and_stale_certificates() {
    let (dir, p) = fresh("kubeadm");
    std::fs::remove_file(
        dir.path()
            .join("nodes/worker-01/var/lib/kubelet/pki/kubelet-client.crt"),
    )
    .unwrap();
    let mut spec = common::spec("kubeadm", "ecdsa-p256");
    spec.network.dns_domain = "corp.internal".try_into().unwrap();
    let p2 = PkiPlan::from(&spec).at(p.now);
    let report = check(
        dir.path(),
        &CheckOptions::default().at(p.now).plan(Some(p2)),
    )
    .unwrap();
    let bad: Vec<(&str, &Vec<String>)> = report
        .rows
        .iter()
        .filter(|r| !r.problems.is_empty())
        .map(|r| (r.name.as_str(), &r.problems))
        .collect();
    insta::assert_debug_snapshot!("check_against_spec", bad);
}

#[test]
fn renew_resigns_leaves_with_the_existing_cas() {
    let (dir, p) = fresh("intermediate");
    let before = common::snapshot_tree(dir.path());
    let later = p.now + time::Duration::days(200);
    let renewed = renew(
        dir.path(),
        &RenewOptions::default()
            .names(vec!["apiserver".into(), "admin".into()])
            .at(later),
    )
    .unwrap()
    .renewed;
    assert_eq!(
        renewed,
        [
            "admin",
            "control-01/apiserver",
            "control-02/apiserver",
            "control-03/apiserver"
        ]
    );
    let after = common::snapshot_tree(dir.path());
    let changed: Vec<String> = before
        .iter()
        .filter(|(path, bytes, _)| {
            after
                .iter()
                .find(|(q, _, _)| q == path)
                .is_some_and(|(_, b, _)| b != bytes)
        })
        .map(|(q, _, _)| q.display().to_string())
        .collect();
    assert_eq!(changed.len(), 8, "{changed:?}");
    assert!(!changed.iter().any(|c| c.contains("ca.")), "CAs untouched");
    let report = check(
        dir.path(),
        &CheckOptions::default()
            .at(later)
            .plan(Some(plan("intermediate"))),
    )
    .unwrap();
    assert!(report.is_ok(), "{}", report.table());
    let row = report
        .rows
        .iter()
        .find(|r| r.name == "control-02/apiserver")
        .unwrap();
    assert_eq!(row.expires.unwrap(), later + time::Duration::days(365));
    assert!(matches!(
        renew(
            dir.path(),
            &RenewOptions::default().names(vec!["nope".into()])
        ),
        Err(Error::UnknownName { .. })
    ));
}

#[test]
fn a_bare_kubeadm_pki_directory_can_be_checked() {
    let (dir, p) = fresh("kubeadm");
    let node = dir.path().join("nodes/control-01/etc/kubernetes/pki");
    let report = check(&node, &CheckOptions::default().at(p.now)).unwrap();
    assert!(report.is_ok(), "{}", report.table());
    let names: Vec<&str> = report.rows.iter().map(|r| r.name.as_str()).collect();
    assert!(
        names.contains(&"etcd-server") && names.contains(&"apiserver") && names.contains(&"sa"),
        "{names:?}"
    );
}

#[test]
fn debug_output_never_contains_key_material() {
    let (dir, p) = fresh("kubeadm");
    let (pki, report) = sync(&p, dir.path(), SyncOptions::default()).unwrap();
    let dbg = format!("{pki:?} {report:?} {:?}", pki.files());
    assert!(!dbg.contains("PRIVATE KEY"), "Debug leaks a key");
    let key = std::fs::read_to_string(dir.path().join("cluster/pki/ca.key")).unwrap();
    let body: String = key.lines().nth(1).unwrap().chars().take(40).collect();
    assert!(!dbg.contains(&body));
}

/// `renew_within` (what `up` uses): leaves ending inside the window are re-issued without
/// `renew`, with the reason; CAs and the leaves outside it stay byte for byte; the window is
/// capped at half the validity, so a run right after renews nothing; and `openssl verify`
/// accepts the new leaves against the unchanged CA.
#[test]
fn leaves_inside_the_renewal_window_are_renewed_and_cas_kept() {
    let window = std::time::Duration::from_secs(30 * 24 * 3600);
    let (dir, p) = fresh("kubeadm");
    let before = common::snapshot_tree(dir.path());
    // 20 days before the leaves end (validity: one year).
    let later = p.clone().at(p.now + time::Duration::days(345));
    let (_, report) = sync(
        &later,
        dir.path(),
        SyncOptions::default().renew_within(Some(window)),
    )
    .unwrap();
    assert!(report.stale.is_empty(), "{:?}", report.stale);
    let crts: Vec<_> = report
        .replaced
        .iter()
        .filter(|(f, _)| f.extension().is_some_and(|e| e == "crt"))
        .collect();
    assert_eq!(crts.len(), later.leaves.len(), "{:?}", report.replaced);
    assert!(
        crts.iter()
            .all(|(_, why)| why.contains("within the renewal window")),
        "{crts:?}"
    );
    let after = common::snapshot_tree(dir.path());
    let is_ca = |p: &Path| {
        p.file_name().is_some_and(|n| {
            n.to_string_lossy().ends_with("ca.crt") || n.to_string_lossy().ends_with("ca.key")
        })
    };
    let cas: Vec<_> = before.iter().filter(|(p, _, _)| is_ca(p)).collect();
    assert!(cas.len() >= 6, "{}", cas.len());
    for (path, bytes, _) in cas {
        let now = after.iter().find(|(q, _, _)| q == path).unwrap();
        assert_eq!(&now.1, bytes, "{} changed", path.display());
    }
    let (leaf, _, _) = after
        .iter()
        .find(|(p, _, _)| p.ends_with("etc/kubernetes/pki/apiserver.crt"))
        .unwrap();
    let out = std::process::Command::new("openssl")
        .args(["verify", "-attime"])
        .arg((later.now.unix_timestamp() + 300 * 24 * 3600).to_string())
        .arg("-CAfile")
        .arg(dir.path().join("cluster/pki/ca.crt"))
        .arg(dir.path().join(leaf))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // Renewed: a second run at the same time renews nothing.
    let (_, again) = sync(
        &later,
        dir.path(),
        SyncOptions::default().renew_within(Some(window)),
    )
    .unwrap();
    assert!(again.replaced.is_empty(), "{:?}", again.replaced);

    // A validity shorter than the window is renewed at half its life, not on every run.
    let mut short = plan("kubeadm");
    short.cert_validity = std::time::Duration::from_secs(10 * 24 * 3600);
    let d2 = tempfile::tempdir().unwrap();
    sync(&short, d2.path(), SyncOptions::default()).unwrap();
    let (_, r) = sync(
        &short.clone().at(short.now + time::Duration::days(2)),
        d2.path(),
        SyncOptions::default().renew_within(Some(window)),
    )
    .unwrap();
    assert!(r.replaced.is_empty(), "{:?}", r.replaced);
    let (_, r) = sync(
        &short.clone().at(short.now + time::Duration::days(6)),
        d2.path(),
        SyncOptions::default().renew_within(Some(window)),
    )
    .unwrap();
    assert!(!r.replaced.is_empty());
}
