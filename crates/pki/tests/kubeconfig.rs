//! Kubeconfigs follow their certificates: `renew` rewrites every kubeconfig that embeds a
//! renewed certificate (checked with kubectl and openssl), `check` lists kubeconfigs and CAs
//! in their own tables (and as serde data), and the expiry summaries `status` uses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use frankenetes_pki::{
    CheckOptions, PkiPlan, RenewOptions, SyncOptions, check, expiry, renew, sync,
};
use time::macros::datetime;

fn fresh(mode: &str) -> (tempfile::TempDir, PkiPlan, Vec<PathBuf>) {
    let dir = tempfile::tempdir().unwrap();
    let p = PkiPlan::from(&common::spec(mode, "ecdsa-p256")).at(datetime!(2026-01-01 00:00 UTC));
    let (pki, _) = sync(&p, dir.path(), SyncOptions::default()).unwrap();
    let confs = common::write_kubeconfigs(dir.path(), &pki);
    (dir, p, confs)
}

/// `kubectl config view --raw` of one field of the first user, base64-decoded.
fn kubectl_user_field(conf: &Path, field: &str) -> String {
    let out = common::run(
        Command::new(common::require_tool("kubectl", "kubectl")).args([
            "config",
            "view",
            "--raw",
            "--kubeconfig",
            conf.to_str().unwrap(),
            "-o",
            &format!("jsonpath={{.users[0].user.{field}}}"),
        ]),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(String::from_utf8(out.stdout).unwrap().trim())
        .unwrap();
    String::from_utf8(bytes).unwrap()
}

fn openssl(args: &[&str], stdin_file: Option<&Path>) -> String {
    let mut cmd = Command::new(common::require_tool("openssl", "openssl"));
    cmd.args(args);
    if let Some(f) = stdin_file {
        cmd.stdin(std::fs::File::open(f).unwrap());
    }
    let out = common::run(&mut cmd);
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn renew_rewrites_every_kubeconfig_that_embeds_a_renewed_certificate() {
    let (dir, p, confs) = fresh("intermediate");
    let d = dir.path();
    // A comment and an extra field of the user's own: kept as they are.
    let admin = d.join("cluster/admin.conf");
    let text = std::fs::read_to_string(&admin).unwrap();
    let edited = format!(
        "# my admin config\n{}",
        text.replace("preferences: {}", "preferences: {colors: true}")
    );
    std::fs::write(&admin, &edited).unwrap();
    let before = common::snapshot_tree(d);
    let later = p.now + time::Duration::days(200);
    let report = renew(
        d,
        &RenewOptions::default()
            .names(vec!["admin".into(), "control-02/controller-manager".into()])
            .at(later),
    )
    .unwrap();
    assert!(report.is_ok(), "{}", report.check.table());
    assert_eq!(report.renewed, ["admin", "control-02/controller-manager"]);
    assert_eq!(
        report.kubeconfigs,
        [
            "cluster/admin.conf",
            "nodes/control-01/etc/kubernetes/admin.conf",
            "nodes/control-02/etc/kubernetes/admin.conf",
            "nodes/control-02/etc/kubernetes/controller-manager.conf",
            "nodes/control-03/etc/kubernetes/admin.conf",
        ]
        .map(PathBuf::from)
    );
    // Every other kubeconfig is untouched, byte for byte.
    let after = common::snapshot_tree(d);
    for conf in &confs {
        let old = before.iter().find(|(q, _, _)| q == conf).unwrap();
        let new = after.iter().find(|(q, _, _)| q == conf).unwrap();
        assert_eq!(
            old.1 != new.1,
            report.kubeconfigs.contains(conf),
            "{}",
            conf.display()
        );
    }
    // The operator's file kept its comment and its own field; only the two data lines changed.
    let new_text = std::fs::read_to_string(&admin).unwrap();
    assert!(new_text.starts_with("# my admin config\n") && new_text.contains("{colors: true}"));
    let changed: Vec<_> = edited
        .lines()
        .zip(new_text.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, _)| a.trim().split(':').next().unwrap().to_owned())
        .collect();
    assert_eq!(changed, ["client-certificate-data", "client-key-data"]);
    assert_eq!(edited.lines().count(), new_text.lines().count());
    assert_eq!(
        std::fs::metadata(&admin).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // Independent tools: kubectl reads the file, openssl verifies what it embeds.
    let pems = d.join("pems");
    std::fs::create_dir(&pems).unwrap();
    for (conf, leaf) in [
        ("cluster/admin.conf", "cluster/pki/admin"),
        (
            "nodes/control-03/etc/kubernetes/admin.conf",
            "cluster/pki/admin",
        ),
        (
            "nodes/control-02/etc/kubernetes/controller-manager.conf",
            "nodes/control-02/etc/kubernetes/pki/controller-manager",
        ),
    ] {
        let cert = kubectl_user_field(&d.join(conf), "client-certificate-data");
        let key = kubectl_user_field(&d.join(conf), "client-key-data");
        assert_eq!(
            cert,
            std::fs::read_to_string(d.join(format!("{leaf}.crt"))).unwrap(),
            "{conf} embeds the renewed certificate file (leaf and intermediate)"
        );
        let (cf, kf) = (pems.join("c.pem"), pems.join("k.pem"));
        std::fs::write(&cf, &cert).unwrap();
        std::fs::write(&kf, &key).unwrap();
        // Chains to the root, with the intermediate the kubeconfig carries.
        let root = d.join("cluster/pki/root-ca.crt");
        let v = openssl(
            &[
                "verify",
                "-CAfile",
                root.to_str().unwrap(),
                "-untrusted",
                cf.to_str().unwrap(),
                "-attime",
                &(later + time::Duration::days(1))
                    .unix_timestamp()
                    .to_string(),
                cf.to_str().unwrap(),
            ],
            None,
        );
        assert!(v.contains(": OK"), "{v}");
        let end = openssl(
            &["x509", "-noout", "-enddate", "-in", cf.to_str().unwrap()],
            None,
        );
        assert!(
            end.contains("Jul 20"),
            "{conf}: renewed on Jul 20, 2026 for a year: {end}"
        );
        assert!(end.contains("2027"), "{end}");
        // The key is the certificate's.
        let cert_pub = openssl(
            &["x509", "-noout", "-pubkey", "-in", cf.to_str().unwrap()],
            None,
        );
        let key_pub = openssl(&["pkey", "-pubout", "-in", kf.to_str().unwrap()], None);
        assert_eq!(cert_pub, key_pub, "{conf}");
    }
    // check agrees: each refreshed kubeconfig embeds the certificate file of its leaf.
    let report = check(d, &CheckOptions::default().at(later)).unwrap();
    let row = report
        .kubeconfigs
        .iter()
        .find(|k| k.path == Path::new("nodes/control-02/etc/kubernetes/controller-manager.conf"))
        .unwrap();
    assert_eq!(
        row.certificate.as_deref(),
        Some("control-02/controller-manager")
    );
    assert!(
        row.key_matches && row.signed_by_ca && row.issuer == "ca",
        "{row:?}"
    );
}

#[test]
fn a_kubeconfig_left_behind_by_an_earlier_renewal_is_caught_up() {
    let (dir, p, _) = fresh("kubeadm");
    let d = dir.path();
    let conf = d.join("nodes/worker-01/etc/kubernetes/kubelet.conf");
    let old = std::fs::read(&conf).unwrap();
    let later = p.now + time::Duration::days(100);
    let opts = RenewOptions::default()
        .names(vec!["worker-01/kubelet-client".into()])
        .at(later);
    renew(d, &opts).unwrap();
    // What an earlier `renew` left: the certificate renewed, the kubeconfig not.
    std::fs::write(&conf, &old).unwrap();
    let report = check(d, &CheckOptions::default().at(later)).unwrap();
    let row = report
        .kubeconfigs
        .iter()
        .find(|k| k.path.ends_with("worker-01/etc/kubernetes/kubelet.conf"))
        .unwrap();
    assert_eq!(
        row.certificate, None,
        "it embeds no certificate file of the directory"
    );
    // Renewing again refreshes it: matched by subject, issuer and node, client certificates
    // only (the serving `kubelet` certificate has the same subject).
    let report = renew(d, &opts).unwrap();
    assert_eq!(
        report.kubeconfigs,
        [PathBuf::from("nodes/worker-01/etc/kubernetes/kubelet.conf")]
    );
    let row = report
        .check
        .kubeconfigs
        .iter()
        .find(|k| k.path.ends_with("worker-01/etc/kubernetes/kubelet.conf"))
        .unwrap();
    assert_eq!(row.certificate.as_deref(), Some("worker-01/kubelet-client"));
    assert!(report.is_ok(), "{}", report.check.table());
}

#[test]
fn check_lists_kubeconfigs_and_cas_in_their_own_tables() {
    let (dir, p, confs) = fresh("kubeadm");
    let d = dir.path();
    let opts = CheckOptions::default().at(p.now);
    let report = check(d, &opts).unwrap();
    assert!(report.is_ok(), "{}", report.table());
    assert_eq!(report.kubeconfigs.len(), confs.len());
    for k in &report.kubeconfigs {
        assert!(k.signed_by_ca && k.key_matches && k.issuer == "ca", "{k:?}");
        assert!(k.certificate.is_some(), "{k:?}");
        assert_eq!(k.expires, Some(datetime!(2027-01-01 00:00 UTC)));
    }
    let table = report.table();
    let headers: Vec<&str> = table
        .lines()
        .filter(|l| l.contains("EXPIRES") || l.starts_with("FILE"))
        .map(|l| l.split("   ").next().unwrap().trim())
        .collect();
    assert_eq!(
        headers,
        ["CERTIFICATE", "CERTIFICATE AUTHORITY", "KUBECONFIG"]
    );
    assert_eq!(
        report.authorities().count(),
        3 + 3 * 3 + 1,
        "masters, CP copies, worker's ca"
    );
    assert!(report.certificates().all(|r| !r.is_ca));

    // Problems in kubeconfigs: a key that is not the certificate's, a loose mode, a client
    // certificate from another cluster.
    let (other, _, _) = fresh("kubeadm");
    let sched = d.join("nodes/control-01/etc/kubernetes/scheduler.conf");
    let own = std::fs::read_to_string(&sched).unwrap();
    let foreign = std::fs::read_to_string(
        other
            .path()
            .join("nodes/control-01/etc/kubernetes/scheduler.conf"),
    )
    .unwrap();
    let key_line = |t: &str| {
        t.lines()
            .find(|l| l.contains("client-key-data"))
            .unwrap()
            .to_owned()
    };
    std::fs::write(&sched, own.replace(&key_line(&own), &key_line(&foreign))).unwrap();
    let admin = d.join("cluster/admin.conf");
    std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o644)).unwrap();
    let stranger = d.join("nodes/worker-01/var/lib/kube-proxy/kubeconfig.conf");
    std::fs::copy(
        other
            .path()
            .join("nodes/worker-01/var/lib/kube-proxy/kubeconfig.conf"),
        &stranger,
    )
    .unwrap();
    let report = check(d, &opts).unwrap();
    assert!(!report.is_ok());
    let problems = |path: &str| -> Vec<String> {
        report
            .kubeconfigs
            .iter()
            .find(|k| k.path == Path::new(path))
            .unwrap()
            .problems
            .clone()
    };
    assert_eq!(
        problems("nodes/control-01/etc/kubernetes/scheduler.conf"),
        ["client-key-data does not match the certificate"]
    );
    assert_eq!(
        problems("cluster/admin.conf"),
        ["file mode is 0644, should be 0600"]
    );
    let p3 = problems("nodes/worker-01/var/lib/kube-proxy/kubeconfig.conf");
    assert!(
        p3.iter()
            .any(|m| m.starts_with("no CA in this directory signed it"))
            && p3
                .iter()
                .any(|m| m.contains("certificate-authority-data is not a CA of this directory")),
        "{p3:?}"
    );
    assert_eq!(report.problem_count(), 3, "{}", report.table());

    // The same as serde data, for `-o json|yaml`.
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["checkedAt"], "2026-01-01T00:00:00Z");
    assert_eq!(json["certificateAuthorities"].as_array().unwrap().len(), 13);
    let ca = &json["certificateAuthorities"][0];
    assert_eq!(ca["name"], "ca");
    assert_eq!(ca["expires"], "2035-12-30T00:00:00Z");
    let certs = json["certificates"].as_array().unwrap();
    let api = certs
        .iter()
        .find(|c| c["name"] == "control-02/apiserver")
        .unwrap();
    assert_eq!(api["leaf"], "control-02/apiserver");
    assert_eq!(api["residualSeconds"], 365 * 24 * 3600);
    assert_eq!(
        api["path"],
        "nodes/control-02/etc/kubernetes/pki/apiserver.crt"
    );
    let kc = json["kubeconfigs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["path"] == "nodes/control-01/etc/kubernetes/scheduler.conf")
        .unwrap();
    assert_eq!(kc["user"], "system:kube-scheduler");
    assert_eq!(kc["certificate"], "control-01/scheduler");
    assert_eq!(kc["keyMatches"], false);
    assert_eq!(kc["signedByCa"], true);
    let yaml = serde_norway::to_string(&report).unwrap();
    assert!(yaml.contains("certificateAuthorities:") && yaml.contains("keyMatches: false"));
}

#[test]
fn expiry_per_node_and_per_ca() {
    let (dir, p, _) = fresh("intermediate");
    let d = dir.path();
    // One certificate of control-02, and the operator's admin, made to end in 10 days.
    let later = p.now + time::Duration::days(100);
    let short = std::time::Duration::from_secs(10 * 24 * 3600);
    renew(
        d,
        &RenewOptions::default()
            .names(vec!["control-02/etcd-peer".into(), "admin".into()])
            .validity(Some(short))
            .at(later),
    )
    .unwrap();
    let leaves = expiry::leaf_expiries(d).unwrap();
    let nodes: Vec<Option<&str>> = leaves.iter().map(|e| e.node.as_deref()).collect();
    assert_eq!(
        nodes,
        [
            None,
            Some("control-01"),
            Some("control-02"),
            Some("control-03"),
            Some("worker-01")
        ]
    );
    let ends = later + short;
    // The operator's earliest is admin (or the kubeconfig that embeds it, both end then).
    assert_eq!(leaves[0].not_after, ends);
    assert!(leaves[0].name == "admin" || leaves[0].name.ends_with("admin.conf"));
    assert_eq!(leaves[2].name, "control-02/etcd-peer");
    assert_eq!(leaves[2].not_after, ends);
    // control-01's admin.conf embeds the renewed admin certificate: its earliest too.
    assert_eq!(leaves[1].not_after, ends);
    assert_eq!(
        leaves[1].path,
        Path::new("nodes/control-01/etc/kubernetes/admin.conf")
    );
    assert_eq!(leaves[4].not_after, datetime!(2027-01-01 00:00 UTC));
    let cas = expiry::ca_expiries(d).unwrap();
    let names: Vec<&str> = cas.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["ca", "etcd-ca", "front-proxy-ca", "root-ca"],
        "each CA once"
    );
    let w = expiry::warnings(&leaves, &cas, later, expiry::WARNING_WINDOW);
    assert_eq!(w.len(), 4, "{w:#?}"); // operator, control-01, -02, -03 (admin.conf)
    assert!(
        w.iter()
            .any(|l| l.starts_with("control-02: control-02/etcd-peer") && l.contains("in 10d")),
        "{w:#?}"
    );
    assert!(expiry::warnings(&leaves, &cas, p.now, expiry::WARNING_WINDOW).is_empty());
    let at_ca_end = datetime!(2035-12-01 00:00 UTC);
    let w = expiry::warnings(&[], &cas, at_ca_end, expiry::WARNING_WINDOW);
    assert_eq!(w.len(), 4);
    assert!(
        w[0].contains("manual-rotation-of-ca-certificates"),
        "{}",
        w[0]
    );
    let json = serde_json::to_value(&leaves[2]).unwrap();
    assert_eq!(json["notAfter"], "2026-04-21T00:00:00Z");
    assert_eq!(json["node"], "control-02");
}
