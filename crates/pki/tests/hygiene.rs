//! What an SRE would not forgive: renewing everything without being asked, validities that
//! make expired certificates, `renew` saying "ok" while a problem remains, a missing CA key
//! not reported, loose modes accepted silently, key-holding temporary files a killed run left.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use frankenetes_pki::{
    CheckOptions, Error, PkiPlan, RenewOptions, RenewSelection, SyncOptions, check, renew, sync,
};
use time::macros::datetime;

fn plan(mode: &str) -> PkiPlan {
    PkiPlan::from(&common::spec(mode, "ecdsa-p256")).at(datetime!(2026-01-01 00:00 UTC))
}

fn fresh(mode: &str) -> (tempfile::TempDir, PkiPlan) {
    let dir = tempfile::tempdir().unwrap();
    let p = plan(mode);
    let (pki, _) = sync(&p, dir.path(), SyncOptions::default()).unwrap();
    common::write_kubeconfigs(dir.path(), &pki);
    (dir, p)
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn renewing_everything_needs_an_explicit_all() {
    let (dir, p) = fresh("kubeadm");
    let d = dir.path();
    let before = common::snapshot_tree(d);
    let later = p.now + time::Duration::days(10);
    for opts in [
        RenewOptions::default(),
        RenewOptions::default().names(Vec::new()),
        RenewOptions::default().selection(RenewSelection::from_args(Vec::new())),
    ] {
        let err = renew(d, &opts.at(later)).unwrap_err();
        assert!(matches!(err, Error::NothingSelected { .. }), "{err:?}");
        assert!(err.is_bad_input());
        let msg = err.to_string();
        assert!(
            msg.contains("`all`") && msg.contains("control-01/apiserver"),
            "{msg}"
        );
    }
    assert_eq!(common::snapshot_tree(d), before, "nothing written");
    let all = RenewOptions::default()
        .selection(RenewSelection::from_args(vec!["all".into()]))
        .at(later);
    let report = renew(d, &all).unwrap();
    assert_eq!(report.renewed.len(), p.leaves.len());
    assert_eq!(
        report.kubeconfigs.len(),
        2 + 3 * 4 + 4 * 2,
        "every kubeconfig"
    );
    assert!(report.is_ok(), "{}", report.check.table());
}

#[test]
fn validities_that_make_useless_certificates_are_refused() {
    let (dir, p) = fresh("kubeadm");
    let d = dir.path();
    let before = common::snapshot_tree(d);
    let opts = RenewOptions::default()
        .names(vec!["admin".into()])
        .at(p.now);
    let err = renew(d, &opts.clone().validity(Some(Duration::ZERO))).unwrap_err();
    assert!(
        matches!(err, Error::InvalidValidity { .. }) && err.is_bad_input(),
        "{err:?}"
    );
    // Beyond the CA's end (10 years): refused, naming the CA and what can be asked for.
    let eleven_years = Duration::from_secs(11 * 365 * 24 * 3600);
    let err = renew(d, &opts.clone().validity(Some(eleven_years))).unwrap_err();
    assert!(matches!(err, Error::InvalidValidity { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("CA ca") && msg.contains("at most 87600h"),
        "{msg}"
    );
    assert_eq!(common::snapshot_tree(d), before, "nothing written");
    // A CA that has expired: nothing can be renewed with it.
    let err = renew(d, &opts.at(datetime!(2036-01-01 00:00 UTC))).unwrap_err();
    assert!(
        matches!(&err, Error::CannotRenew { reason, .. } if reason.contains("expired")),
        "{err:?}"
    );
}

#[test]
fn renew_is_not_ok_while_a_corrupt_certificate_remains() {
    let (dir, p) = fresh("kubeadm");
    let d = dir.path();
    let bad = d.join("nodes/control-02/etc/kubernetes/pki/etcd/peer.crt");
    std::fs::write(
        &bad,
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let later = p.now + time::Duration::days(10);
    let report = renew(d, &RenewOptions::default().all().at(later)).unwrap();
    assert_eq!(
        report.renewed.len(),
        p.leaves.len() - 1,
        "all but the broken one"
    );
    assert!(!report.is_ok());
    let problems = report.check.problems();
    assert!(
        problems
            .iter()
            .any(|m| m.starts_with("control-02/etcd-peer: cannot parse")),
        "{problems:#?}"
    );
    // Named, it is an error that says what to do.
    let err = renew(
        d,
        &RenewOptions::default()
            .names(vec!["etcd-peer".into()])
            .at(later),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::CannotRenew { name, reason } if name == "control-02/etcd-peer" && reason.contains("restore it")),
        "{err:?}"
    );
}

#[test]
fn renew_is_not_ok_while_a_replaced_ca_certificate_remains() {
    let (dir, p) = fresh("kubeadm");
    let (other, _) = fresh("kubeadm");
    let d = dir.path();
    for f in ["cluster/pki/ca.crt", "cluster/pki/ca.key"] {
        std::fs::copy(other.path().join(f), d.join(f)).unwrap();
    }
    let later = p.now + time::Duration::days(10);
    // The nodes still hold the old CA (and its key): `admin` is re-signed with it, but the
    // directory is inconsistent and renew says so.
    let report = renew(
        d,
        &RenewOptions::default()
            .names(vec!["admin".into()])
            .at(later),
    )
    .unwrap();
    assert!(!report.is_ok());
    let problems = report.check.problems();
    assert!(
        problems
            .iter()
            .any(|m| m.starts_with("control-01/ca: differs from cluster/pki/ca.crt")),
        "{problems:#?}"
    );
    // Without any copy of the old CA, a leaf it signed cannot be renewed at all.
    std::fs::remove_dir_all(d.join("nodes")).unwrap();
    let err = renew(
        d,
        &RenewOptions::default()
            .names(vec!["kube-proxy".into()])
            .at(later),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::CannotRenew { reason, .. } if reason.contains("no CA in the directory signed it")),
        "{err:?}"
    );
}

#[test]
fn check_reports_a_missing_ca_key_where_signing_needs_it() {
    for ca_mode in ["kubeadm", "intermediate"] {
        let (dir, p) = fresh(ca_mode);
        let d = dir.path();
        let opts = CheckOptions::default().at(p.now);
        std::fs::remove_file(d.join("cluster/pki/ca.key")).unwrap();
        std::fs::remove_file(d.join("nodes/control-03/etc/kubernetes/pki/etcd/ca.key")).unwrap();
        if ca_mode == "intermediate" {
            // An offline root is allowed: its key may be kept elsewhere.
            std::fs::remove_file(d.join("cluster/pki/root-ca.key")).unwrap();
        }
        for with_plan in [None, Some(p.clone())] {
            let report = check(d, &opts.clone().plan(with_plan)).unwrap();
            let bad: Vec<(&str, &Vec<String>)> = report
                .rows
                .iter()
                .filter(|r| !r.problems.is_empty())
                .map(|r| (r.name.as_str(), &r.problems))
                .collect();
            assert_eq!(bad.len(), 2, "{ca_mode}: {bad:#?}");
            assert_eq!(bad[0].0, "ca");
            assert_eq!(
                bad[0].1,
                &[
                    "cluster/pki/ca.key is missing: this CA's key is needed to sign (restore it from a backup or a control-plane node's copy)"
                ]
            );
            assert_eq!(bad[1].0, "control-03/etcd-ca");
            assert!(
                bad[1].1[0]
                    .starts_with("nodes/control-03/etc/kubernetes/pki/etcd/ca.key is missing")
            );
        }
    }
    // A worker holds ca.crt without its key, and a bare kubeadm directory may use an external
    // CA: neither is a problem.
    let (dir, p) = fresh("kubeadm");
    let node = dir.path().join("nodes/control-01/etc/kubernetes/pki");
    std::fs::remove_file(node.join("ca.key")).unwrap();
    assert!(
        check(&node, &CheckOptions::default().at(p.now))
            .unwrap()
            .is_ok()
    );
}

#[test]
fn ca_directories_are_private_and_loose_modes_are_reported_then_fixed_on_request() {
    let (dir, p) = fresh("kubeadm");
    let d = dir.path();
    assert_eq!(mode(&d.join("cluster/pki")), 0o700);
    assert_eq!(mode(&d.join("cluster/pki/etcd")), 0o700);
    let key = d.join("cluster/pki/admin.key");
    let enc = d.join("nodes/control-02/etc/kubernetes/pki/encryption-config.yaml");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&enc, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::fs::set_permissions(
        d.join("cluster/pki"),
        std::fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    let conf = d.join("cluster/super-admin.conf");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o604)).unwrap();

    // sync warns, and leaves them.
    let (_, report) = sync(&p, d, SyncOptions::default()).unwrap();
    let loose: Vec<String> = report.loose_modes.iter().map(ToString::to_string).collect();
    assert_eq!(
        loose,
        [
            "cluster/pki is 0755, should be 0700",
            "cluster/pki/admin.key is 0644, should be 0600",
            "nodes/control-02/etc/kubernetes/pki/encryption-config.yaml is 0640, should be 0600",
        ]
    );
    assert_eq!(report.warnings().len(), 3);
    assert_eq!(mode(&key), 0o644, "reported, not changed");

    // check reports them all, the kubeconfig too.
    let opts = CheckOptions::default().at(p.now);
    let report = check(d, &opts).unwrap();
    let problems = report.problems();
    for want in [
        "admin: key file mode is 644, should be 600",
        "cluster/pki: directory mode is 0755, should be 0700 (it holds CA keys)",
        "nodes/control-02/etc/kubernetes/pki/encryption-config.yaml: mode is 0640, should be 0600",
        "cluster/super-admin.conf (kubernetes-super-admin): file mode is 0604, should be 0600",
    ] {
        assert!(problems.iter().any(|m| m == want), "{want}: {problems:#?}");
    }
    assert_eq!(problems.len(), 4, "{problems:#?}");

    // Fixed on request: by check, or by sync.
    let report = check(d, &opts.clone().fix_modes(true)).unwrap();
    assert!(report.is_ok(), "{}", report.table());
    assert_eq!(report.files.iter().filter(|f| f.fixed).count(), 4);
    assert_eq!((mode(&key), mode(&enc), mode(&conf)), (0o600, 0o600, 0o600));
    assert_eq!(mode(&d.join("cluster/pki")), 0o700);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o604)).unwrap();
    let (_, report) = sync(&p, d, SyncOptions::default().fix_modes(true)).unwrap();
    assert_eq!(report.loose_modes.len(), 1);
    assert!(report.loose_modes[0].fixed && report.warnings().is_empty());
    assert_eq!(mode(&key), 0o600);
}

/// Not a test: the writer the tests below start as a child process (`PKI_TEST_CHILD=<how>:<dir>`):
/// `once` syncs the example plan into the directory; `loop` syncs it into fresh
/// subdirectories until it is killed.
#[test]
#[ignore = "child process of other tests"]
fn child_writer() {
    let Ok(arg) = std::env::var("PKI_TEST_CHILD") else {
        return;
    };
    let (how, dir) = arg.split_once(':').unwrap();
    let p = plan("intermediate");
    if how == "once" {
        sync(&p, Path::new(dir), SyncOptions::default()).unwrap();
        return;
    }
    for i in 0.. {
        sync(
            &p,
            &Path::new(dir).join(format!("run-{i}")),
            SyncOptions::default(),
        )
        .unwrap();
    }
}

/// Starts [`child_writer`], through `sh` to set the umask first.
fn spawn_child(how: &str, dir: &Path, umask: &str) -> common::Proc {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        &format!("umask {umask} && exec \"$0\" --exact child_writer --ignored --test-threads 1"),
        exe.to_str().unwrap(),
    ])
    .env("PKI_TEST_CHILD", format!("{how}:{}", dir.display()));
    common::Proc::spawn("child_writer", &mut cmd, &dir.with_extension("log"))
}

#[test]
fn modes_do_not_depend_on_the_umask() {
    let base = tempfile::tempdir().unwrap();
    let d = base.path().join("out");
    let mut child = spawn_child("once", &d, "000");
    let done = common::wait_for(Duration::from_secs(120), || child.child.try_wait().unwrap())
        .expect("the child ends");
    assert!(done.success(), "{}", child.log_text());
    assert!(
        child.log_text().contains("1 passed"),
        "{}",
        child.log_text()
    );
    for (rel, _, _) in common::snapshot_tree(&d) {
        let secret =
            rel.extension().is_some_and(|e| e == "key") || rel.ends_with("encryption-config.yaml");
        assert_eq!(
            mode(&d.join(&rel)),
            if secret { 0o600 } else { 0o644 },
            "{}",
            rel.display()
        );
    }
    assert_eq!(mode(&d.join("cluster/pki")), 0o700);
    assert_eq!(mode(&d.join("cluster/pki/etcd")), 0o700);
    assert_eq!(mode(&d.join("nodes/control-01/etc/kubernetes/pki")), 0o755);
}

#[test]
fn temporary_key_files_of_a_dead_writer_are_removed_by_the_next_sync() {
    // Files as a writer killed mid-write leaves them, with the PID of a process that is gone.
    let (dir, p) = fresh("kubeadm");
    let d = dir.path();
    let mut gone = Command::new("true").spawn().unwrap();
    let pid = gone.id();
    gone.wait().unwrap();
    let temps: Vec<PathBuf> = [
        format!("cluster/pki/.admin.key.tmp.{pid}.0"),
        format!("nodes/control-01/etc/kubernetes/pki/etcd/.server.key.tmp.{pid}.7"),
        format!("cluster/.admin.conf.tmp.{pid}.3"),
    ]
    .map(PathBuf::from)
    .into();
    // One of a writer still running (this test) is left alone.
    let ours = PathBuf::from(format!("cluster/pki/.sa.key.tmp.{}.0", std::process::id()));
    for t in temps.iter().chain([&ours]) {
        std::fs::write(d.join(t), "-----BEGIN PRIVATE KEY-----\n").unwrap();
    }
    let report = check(d, &CheckOptions::default().at(p.now)).unwrap();
    let listed: Vec<&Path> = report.files.iter().map(|f| f.path.as_path()).collect();
    let mut want: Vec<&Path> = temps.iter().map(PathBuf::as_path).collect();
    want.sort();
    assert_eq!(listed, want, "check reports them");
    let (_, report) = sync(&p, d, SyncOptions::default()).unwrap();
    let mut removed = report.temps_removed.clone();
    removed.sort();
    assert_eq!(removed, want);
    assert_eq!(common::temp_files(d), [d.join(&ours)]);
}

#[test]
fn a_writer_killed_while_writing_keys_leaves_no_temporary_file_after_the_next_sync() {
    let base = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let p = plan("intermediate");
    for attempt in 0..20 {
        let d = base.path().join(format!("attempt-{attempt}"));
        std::fs::create_dir(&d).unwrap();
        let mut child = spawn_child("loop", &d, "022");
        let start = Instant::now();
        let mut seen = Vec::new();
        while seen.is_empty() && start.elapsed() < Duration::from_secs(30) && child.alive() {
            seen = common::temp_files(&d);
        }
        // SIGKILL, the moment temporary files exist: nothing of the child runs after this.
        child.child.kill().unwrap();
        child.child.wait().unwrap();
        let left = common::temp_files(&d);
        if left.is_empty() {
            continue; // it renamed them between our look and the kill: try again
        }
        let run = left[0]
            .strip_prefix(&d)
            .unwrap()
            .iter()
            .next()
            .map(|c| d.join(c))
            .unwrap();
        let (_, report) = sync(&p, &run, SyncOptions::default()).unwrap();
        assert!(!report.temps_removed.is_empty());
        assert_eq!(common::temp_files(&run), Vec::<PathBuf>::new());
        assert!(
            check(&run, &CheckOptions::default().at(p.now))
                .unwrap()
                .is_ok()
        );
        return;
    }
    panic!("the child was never caught with a temporary file in 20 attempts");
}
