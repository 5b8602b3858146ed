//! Modes do not depend on the umask, and a killed run's temporary files are cleaned up. One
//! test per file would share the process's umask: this file has one test that sets it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use frankenetes_bundle::fs::{
    DIR_MODE, PRIVATE_DIR_MODE, PUBLIC_MODE, SECRET_MODE, ensure_private_dir, remove_stale_temps,
    write_atomic, write_batch,
};
use frankenetes_bundle::{NodeBundle, NodeFile, WriteReport};

fn mode(p: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

#[test]
fn modes_are_exact_under_any_umask_and_stale_temporaries_go() {
    for umask in [0o000, 0o077, 0o022] {
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("a/b/key");
        write_atomic(&key, b"secret", SECRET_MODE).unwrap();
        let files: Vec<(PathBuf, &[u8], u32)> = vec![
            (dir.path().join("c/d/public"), b"p", PUBLIC_MODE),
            (dir.path().join("c/e/secret"), b"s", SECRET_MODE),
        ];
        write_batch(&files).unwrap();
        let mut node = NodeBundle::new("n");
        node.files
            .push(NodeFile::new("/etc/kubernetes/pki/x.key", "k", SECRET_MODE));
        node.write(dir.path(), &mut WriteReport::default()).unwrap();
        let private = dir.path().join("snapshots");
        ensure_private_dir(&private).unwrap();
        nix::sys::stat::umask(old);

        assert_eq!(mode(&key), SECRET_MODE, "umask {umask:o}");
        assert_eq!(mode(&dir.path().join("a")), DIR_MODE, "umask {umask:o}");
        assert_eq!(mode(&dir.path().join("a/b")), DIR_MODE, "umask {umask:o}");
        assert_eq!(mode(&dir.path().join("c/d/public")), PUBLIC_MODE);
        assert_eq!(mode(&dir.path().join("c/e/secret")), SECRET_MODE);
        assert_eq!(mode(&dir.path().join("c/e")), DIR_MODE, "umask {umask:o}");
        let overlay = dir.path().join("nodes/n/etc/kubernetes/pki");
        assert_eq!(mode(&overlay), DIR_MODE, "umask {umask:o}");
        assert_eq!(mode(&overlay.join("x.key")), SECRET_MODE);
        assert_eq!(mode(&dir.path().join("nodes/n.ign")), SECRET_MODE);
        assert_eq!(mode(&private), PRIVATE_DIR_MODE, "umask {umask:o}");
    }
    // A looser private directory is narrowed.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("pki");
    std::fs::create_dir(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(ensure_private_dir(&p).unwrap());
    assert_eq!(mode(&p), PRIVATE_DIR_MODE);
    assert!(!ensure_private_dir(&p).unwrap());

    // Temporary files of a writer that is gone are removed; a live writer's are not; other
    // dot files are not ours.
    let dead = {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        pid
    };
    let live = std::process::id();
    std::fs::create_dir_all(dir.path().join("x/y")).unwrap();
    let stale = dir.path().join(format!("x/y/.ca.key.tmp.{dead}.7"));
    let live_writer = dir.path().join(format!("x/.sa.key.tmp.{live}.0"));
    let unrelated = dir.path().join("x/.hidden.tmp.notapid.1");
    for f in [&stale, &live_writer, &unrelated] {
        std::fs::write(f, b"-----BEGIN PRIVATE KEY-----").unwrap();
    }
    let removed = remove_stale_temps(dir.path()).unwrap();
    assert_eq!(removed, vec![stale.clone()]);
    assert!(!stale.exists() && live_writer.exists());
    assert!(unrelated.exists());
    assert!(
        remove_stale_temps(&dir.path().join("missing"))
            .unwrap()
            .is_empty()
    );
}
