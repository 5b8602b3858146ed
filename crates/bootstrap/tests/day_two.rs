//! Day two with a real etcd on loopback: certificates that end soon are reported by `status`
//! and renewed by `up` while etcd keeps serving, peers and clients on the new certificates.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use frankenetes_bootstrap::{
    Cluster, DownOptions, Health, LocalBackend, LocalPlatform, Options, etcd,
};
use frankenetes_pki::{PkiPlan, SyncOptions};
use frankenetes_spec::ClusterSpec;

/// Stops every process the test started, also when it fails.
struct Guard(LocalBackend);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

fn spec(name: &str, base: u8) -> ClusterSpec {
    let yaml = format!(
        "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane:\n    \
         - {{name: control-01, ip: 127.0.0.{}}}\n    - {{name: control-02, ip: 127.0.0.{}}}\n    - {{name: control-03, ip: 127.0.0.{}}}\n",
        base,
        base + 1,
        base + 2
    );
    ClusterSpec::from_yaml(&yaml).unwrap().spec
}

fn cluster(spec: &ClusterSpec, dir: &Path, window: Duration) -> Cluster<LocalPlatform> {
    let opts = Options::new(dir)
        .gate_timeout(Duration::from_secs(60))
        .renew_window(window);
    let platform = LocalPlatform::new(dir)
        .bin_dir(Some(dir.join("no-kube-binaries")))
        .cache(None);
    Cluster::new(spec.clone(), platform, opts)
}

/// The end of the certificate a TLS server presents (`openssl s_client`, an independent
/// client), as `notAfter=...`.
fn served_not_after(addr: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} </dev/null 2>/dev/null | openssl x509 -noout -enddate"
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn file_not_after(path: &Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-enddate", "-in"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}: {out:?}", path.display());
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_ending_soon_are_reported_and_renewed_while_etcd_serves() {
    for tool in ["etcd", "etcdctl", "openssl"] {
        assert!(
            std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .any(|d| d.join(tool).is_file()),
            "`{tool}` is not installed: run ./scripts/install-deps.sh"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard(LocalBackend::new(dir.path().join("run")));
    let spec = spec("daytwo", 81);
    let day = Duration::from_secs(24 * 3600);
    // A PKI issued 355 days ago: its leaves (one year) end in ten days.
    let quiet = cluster(&spec, dir.path(), day);
    let past = PkiPlan::from(&spec).at(time::OffsetDateTime::now_utc() - time::Duration::days(355));
    frankenetes_pki::sync(&past, quiet.bundle().root(), SyncOptions::default()).unwrap();
    // Up with a one-day window: nothing renewed yet.
    quiet.up().await.unwrap();
    let server = quiet
        .bundle()
        .root()
        .join("nodes/control-01/etc/kubernetes/pki/etcd/server.crt");
    let old_end = file_not_after(&server);
    assert_eq!(served_not_after("127.0.0.81:2379"), old_end);

    // status, with the default 30-day window: a warning per node and for the operator's files,
    // naming the file and what to do; not a problem yet.
    let c = cluster(&spec, dir.path(), frankenetes_pki::expiry::WARNING_WINDOW);
    let s = c.status().await.unwrap();
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    for whose in ["operator", "control-01", "control-02", "control-03"] {
        assert!(
            s.warnings
                .iter()
                .any(|w| w.starts_with(&format!("{whose}: "))
                    && w.contains("`frankenetes up` renews it")),
            "{whose}: {:?}",
            s.warnings
        );
    }
    assert!(s.table().contains("CERTIFICATES"), "{}", s.table());

    // A writer keeps writing while `up` renews.
    let (eps, auth) = c.etcd_access().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicU32::new(0));
    let writer = {
        let (stop, acked, eps, auth) = (stop.clone(), acked.clone(), eps.clone(), auth.clone());
        tokio::spawn(async move {
            let mut kv = etcd::connect(&eps, &auth, Duration::from_secs(5))
                .await
                .unwrap();
            let mut failures = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let i = acked.load(Ordering::SeqCst);
                match kv.put(format!("/renew/{i:05}"), "x", None).await {
                    Ok(_) => {
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                    Err(_) => failures += 1,
                }
            }
            failures
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    c.up().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::SeqCst);
    let failures = writer.await.unwrap();
    assert_eq!(
        failures, 0,
        "writes failed while the certificates were renewed"
    );

    // Renewed on disk (leaves and the kubeconfigs' embedded ones), and served: etcd reloads
    // its certificates on each handshake, so clients and peers use the new ones.
    let new_end = file_not_after(&server);
    assert_ne!(new_end, old_end);
    for (node, addr) in [
        ("control-01", "127.0.0.81:2379"),
        ("control-02", "127.0.0.82:2380"),
        ("control-03", "127.0.0.83:2379"),
    ] {
        let crt = if addr.ends_with("2380") {
            "peer"
        } else {
            "server"
        };
        let file = c
            .bundle()
            .root()
            .join(format!("nodes/{node}/etc/kubernetes/pki/etcd/{crt}.crt"));
        assert_eq!(
            served_not_after(addr),
            file_not_after(&file),
            "{node} {addr}"
        );
    }
    let s = c.status().await.unwrap();
    assert!(s.warnings.is_empty(), "{:?}", s.warnings);
    assert!(s.problems.is_empty(), "{:?}", s.problems);
    assert!(
        s.rows
            .iter()
            .filter(|r| r.name.starts_with("etcd-"))
            .all(|r| matches!(r.health, Health::Healthy(_))),
        "{}",
        s.table()
    );
    let now = time::OffsetDateTime::now_utc();
    assert!(
        s.certificates
            .iter()
            .filter(|e| !e.name.contains("ca"))
            .all(|e| e.not_after > now + time::Duration::days(300)),
        "{:?}",
        s.certificates
    );
    // Every acknowledged write is there, read with the new client certificate.
    let mut kv = etcd::connect(&eps, &auth, Duration::from_secs(5))
        .await
        .unwrap();
    let got = kv
        .get(
            "/renew/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_count_only(),
            ),
        )
        .await
        .unwrap();
    let n = acked.load(Ordering::SeqCst);
    assert!(n > 0);
    assert_eq!(u32::try_from(got.count()).unwrap(), n);
    c.down(DownOptions::default()).await.unwrap();
}
