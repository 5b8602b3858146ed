//! The Secrets encryption configuration on disk: 0600, the same file on every control-plane
//! node, made once and never replaced by a re-run, and rotated with the old key kept.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use frankenetes_pki::encryption::{self, EncryptionConfiguration};
use frankenetes_pki::{Error, PkiPlan, SyncOptions, sync};

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn read_cfg(p: &Path) -> EncryptionConfiguration {
    EncryptionConfiguration::from_yaml(&std::fs::read_to_string(p).unwrap(), p).unwrap()
}

#[test]
fn one_key_file_per_cluster_0600_on_every_control_plane_node_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::spec("kubeadm", "ecdsa-p256");
    let plan = PkiPlan::from(&spec);
    let (pki, _) = sync(&plan, dir.path(), SyncOptions::default()).unwrap();
    let master = dir.path().join(encryption::master_path());
    let text = std::fs::read(&master).unwrap();
    assert_eq!(mode(&master), 0o600);
    for n in ["control-01", "control-02", "control-03"] {
        let copy = dir.path().join(encryption::node_path(n));
        assert_eq!(std::fs::read(&copy).unwrap(), text, "{n}");
        assert_eq!(mode(&copy), 0o600, "{n}");
    }
    assert!(
        !dir.path().join(encryption::node_path("worker-01")).exists(),
        "workers never get the key"
    );
    let cfg = read_cfg(&master);
    assert_eq!(Some(&cfg), pki.encryption_config());
    // Never in Debug output.
    let secret = cfg.write_key_secret_base64().unwrap();
    assert!(!format!("{pki:?}").contains(secret));

    // A re-run (even with renew) keeps the key byte for byte.
    sync(&plan, dir.path(), SyncOptions::default().renew(true)).unwrap();
    assert_eq!(std::fs::read(&master).unwrap(), text);

    // Lost on the operator's side: taken back from a node, not made anew.
    std::fs::remove_file(&master).unwrap();
    let (_, report) = sync(&plan, dir.path(), SyncOptions::default()).unwrap();
    assert_eq!(std::fs::read(&master).unwrap(), text);
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("encryption-config.yaml"))
    );

    // A node copy that differs is an error naming it; nothing is replaced.
    let copy = dir.path().join(encryption::node_path("control-02"));
    let other = EncryptionConfiguration::generate()
        .unwrap()
        .to_yaml()
        .unwrap();
    std::fs::write(&copy, other.as_bytes()).unwrap();
    let e = sync(&plan, dir.path(), SyncOptions::default()).unwrap_err();
    assert!(matches!(e, Error::CopyDiffers { .. }), "{e}");
    assert!(e.to_string().contains("control-02"), "{e}");
    assert_eq!(std::fs::read(&master).unwrap(), text);

    // A corrupted file is refused, never regenerated.
    std::fs::write(&copy, &text).unwrap();
    std::fs::write(&master, b"kind: EncryptionConfiguration\n").unwrap();
    let e = sync(&plan, dir.path(), SyncOptions::default()).unwrap_err();
    assert!(matches!(e, Error::Encryption { .. }), "{e}");
    assert!(e.to_string().contains("unreadable"), "{e}");
}

#[test]
fn rotation_adds_a_first_key_and_keeps_the_old_one_readable_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let spec = common::spec("intermediate", "ecdsa-p256");
    let plan = PkiPlan::from(&spec);
    sync(&plan, dir.path(), SyncOptions::default()).unwrap();
    let master = dir.path().join(encryption::master_path());
    let before = read_cfg(&master);
    let old_secret = before.write_key_secret_base64().unwrap().to_owned();

    let report = encryption::rotate(dir.path()).unwrap();
    assert_eq!(report.new_key, "key2");
    assert_eq!(report.read_keys, ["key2", "key1"]);
    assert_eq!(
        report.written.len(),
        4,
        "the master and three control-plane copies"
    );
    assert!(
        report
            .next_steps
            .iter()
            .any(|s| s.contains("kubectl replace"))
    );
    let after = read_cfg(&master);
    assert_ne!(after.write_key_secret_base64().unwrap(), old_secret);
    let yaml = std::fs::read_to_string(&master).unwrap();
    assert!(yaml.contains(&old_secret), "the old key stays readable");
    assert_eq!(mode(&master), 0o600);
    for n in ["control-01", "control-02", "control-03"] {
        let copy = dir.path().join(encryption::node_path(n));
        assert_eq!(std::fs::read_to_string(&copy).unwrap(), yaml, "{n}");
        assert_eq!(mode(&copy), 0o600);
    }
    // The report never carries a secret.
    assert!(!format!("{report:?}").contains(&old_secret));
    // A re-run of sync keeps the rotated file.
    sync(&plan, dir.path(), SyncOptions::default()).unwrap();
    assert_eq!(std::fs::read_to_string(&master).unwrap(), yaml);
    // Rotating twice keeps both old keys.
    let r = encryption::rotate(dir.path()).unwrap();
    assert_eq!(r.read_keys, ["key3", "key2", "key1"]);

    // Nothing to rotate in an empty directory: an error that says what to run.
    let empty = tempfile::tempdir().unwrap();
    let e = encryption::rotate(empty.path()).unwrap_err();
    assert!(e.to_string().contains("frankenetes pki"), "{e}");
}

#[test]
fn encryption_off_makes_no_key() {
    let dir = tempfile::tempdir().unwrap();
    let mut plan = PkiPlan::from(&common::spec("kubeadm", "ecdsa-p256"));
    plan.encryption_at_rest = false;
    let (pki, _) = sync(&plan, dir.path(), SyncOptions::default()).unwrap();
    assert!(pki.encryption_config().is_none());
    assert!(!dir.path().join(encryption::master_path()).exists());
}
