//! The local backend and the sequencer with a real etcd: conformance, up/down/up with data
//! kept, a member killed while writing, snapshot → wipe → restore, pause and resume. Day two
//! (renewal, rolling changes, member replacement, restore elsewhere) is in `daytwo.rs`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Guard, client, cluster, require, spec};
use frankenetes_bootstrap::local::process_alive;
use frankenetes_bootstrap::{
    Cluster, DownOptions, LocalBackend, LocalPlatform, Options, ResumeOptions, etcd,
};
use frankenetes_compute::{ClusterTag, ContainerSpec, UnitSpec};

async fn etcd_healthy(c: &Cluster<LocalPlatform>) -> bool {
    let s = c.status().await.unwrap();
    s.rows
        .iter()
        .filter(|r| r.name.starts_with("etcd-"))
        .all(|r| matches!(r.health, frankenetes_bootstrap::Health::Healthy(_)))
        && s.rows.iter().any(|r| r.name.starts_with("etcd-"))
}

fn pids(dir: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for unit in std::fs::read_dir(dir.join("run/units"))
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
    {
        for f in std::fs::read_dir(unit.path())
            .unwrap()
            .filter_map(Result::ok)
        {
            if f.path().extension().is_some_and(|e| e == "pid") {
                out.push(
                    std::fs::read_to_string(f.path())
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap(),
                );
            }
        }
        let rec: serde_json::Value =
            serde_json::from_slice(&std::fs::read(unit.path().join("unit.json")).unwrap()).unwrap();
        out.extend(
            rec["supervisors"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| i32::try_from(p.as_i64().unwrap()).unwrap()),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn local_backend_conforms() {
    let dir = tempfile::tempdir().unwrap();
    let backend = LocalBackend::new(dir.path());
    let _guard = Guard(LocalBackend::new(dir.path()));
    let unit = UnitSpec::container_group(
        "sleeper",
        ClusterTag::new("conformance"),
        vec![ContainerSpec::new("sleep", "", ["sleep", "300"])],
    );
    frankenetes_compute::testing::lifecycle(&backend, unit).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn up_write_down_up_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _guard) = cluster("updown", 51, dir.path());
    let report = c.up().await.unwrap();
    assert!(
        report.warnings.iter().any(
            |w| w.contains("kube-apiserver, kube-controller-manager, kube-scheduler not found")
        ),
        "{report:?}"
    );
    assert!(etcd_healthy(&c).await);
    let mut kv = client(&c).await;
    for i in 0..1000 {
        kv.put(format!("/test/{i:04}"), format!("value-{i}"), None)
            .await
            .unwrap();
    }
    // A second `up` while running converges: same processes.
    let before = pids(dir.path());
    c.up().await.unwrap();
    assert_eq!(
        pids(dir.path()),
        before,
        "a second up must not restart anything"
    );

    let running = pids(dir.path());
    let preview = c.down(DownOptions::default().dry_run(true)).await.unwrap();
    assert_eq!(preview.found.len(), 3, "{preview:?}");
    assert!(
        running.iter().all(|p| process_alive(*p)),
        "a dry run stops nothing"
    );
    let removed = c.down(DownOptions::default()).await.unwrap();
    assert_eq!(removed.found.len(), 3, "{removed:?}");
    assert!(removed.left.is_empty(), "{removed:?}");
    assert!(
        running.iter().all(|p| !process_alive(*p)),
        "processes left after down"
    );
    assert!(
        c.down(DownOptions::default())
            .await
            .unwrap()
            .found
            .is_empty(),
        "down twice is fine"
    );
    for port in ["127.0.0.51:2379", "127.0.0.52:2380", "127.0.0.53:2381"] {
        assert!(
            std::net::TcpListener::bind(port).is_ok(),
            "{port} still bound after down"
        );
    }

    c.up().await.unwrap();
    let mut kv = client(&c).await;
    let got = kv
        .get("/test/", Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 1000);
    assert_eq!(got.kvs()[999].value_str().unwrap(), "value-999");
    c.down(DownOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_killed_member_loses_no_acknowledged_write_and_rejoins() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _guard) = cluster("faults", 61, dir.path());
    c.up().await.unwrap();
    let backend = LocalBackend::new(dir.path().join("run"));
    let victim = backend.container_pid("etcd-control-02", "etcd").unwrap();

    let mut kv = client(&c).await;
    let mut acked = Vec::new();
    let mut retried = 0;
    for i in 0..300 {
        if i == 100 {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(victim),
                nix::sys::signal::Signal::SIGKILL,
            )
            .unwrap();
        }
        let key = format!("/fault/{i:04}");
        // A client retries a failed write, as the apiserver does: the cluster must accept
        // every write within a short time while one of three members is down.
        let mut tries = 0;
        loop {
            tries += 1;
            match kv.put(key.clone(), "x", None).await {
                Ok(_) => {
                    acked.push(key);
                    break;
                }
                Err(_) if tries < 50 => {
                    retried += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("write {key} refused 50 times with two of three members up: {e}"),
            }
        }
    }
    assert_eq!(acked.len(), 300);
    eprintln!("{retried} write attempts were retried while a member was down");
    // The supervisor restarts the member; it rejoins and the cluster is healthy again.
    let mut healthy = false;
    for _ in 0..150 {
        if etcd_healthy(&c).await {
            healthy = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        healthy,
        "member did not rejoin:\n{}",
        std::fs::read_to_string(backend.log_path("etcd-control-02", "etcd")).unwrap_or_default()
    );
    assert_ne!(
        backend.container_pid("etcd-control-02", "etcd").unwrap(),
        victim,
        "restarted"
    );
    // Every acknowledged write is there, read through the restarted member itself.
    let (eps, auth) = c.etcd_access().unwrap();
    let mut only = etcd::connect(&eps[1..2], &auth, Duration::from_secs(5))
        .await
        .unwrap();
    let got = only
        .get(
            "/fault/",
            Some(
                etcd_client::GetOptions::new()
                    .with_prefix()
                    .with_serializable(),
            ),
        )
        .await
        .unwrap();
    let keys: Vec<String> = got
        .kvs()
        .iter()
        .map(|k| k.key_str().unwrap().to_owned())
        .collect();
    for k in &acked {
        assert!(keys.contains(k), "acknowledged {k} lost");
    }
    c.down(DownOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_wipe_restore_and_pause_resume() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _guard) = cluster("snaps", 71, dir.path());
    c.up().await.unwrap();
    let mut kv = client(&c).await;
    for i in 0..200 {
        kv.put(format!("/snap/{i:03}"), "v", None).await.unwrap();
    }
    let file = dir.path().join("backup/etcd.db");
    let sum = c.snapshot(&file).await.unwrap();
    assert_eq!(sum.len(), 64);
    assert!(
        std::fs::read_to_string(dir.path().join("backup/etcd.db.sha256"))
            .unwrap()
            .starts_with(&sum)
    );

    // Writes after the snapshot are gone after a restore; the snapshot's are back.
    kv.put("/after", "x", None).await.unwrap();
    c.down(DownOptions::default()).await.unwrap();
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    c.restore(&file).await.unwrap();
    c.up().await.unwrap();
    let mut kv = client(&c).await;
    let got = kv
        .get("/snap/", Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.kvs().len(), 200);
    assert!(kv.get("/after", None).await.unwrap().kvs().is_empty());

    // A tampered snapshot is refused before anything is touched.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();
    assert!(c.restore(&file).await.is_err());
    assert!(
        etcd_healthy(&c).await,
        "a refused restore leaves the cluster running"
    );

    // Pause: snapshot, then every process stopped; resume after losing every data dir.
    kv.put("/paused", "yes", None).await.unwrap();
    let running = pids(dir.path());
    let paused = c.pause().await.unwrap();
    let snap = paused.snapshot.clone().unwrap();
    assert!(snap.exists());
    assert!(
        running.iter().all(|p| !process_alive(*p)),
        "pause leaves no process"
    );
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    c.resume(ResumeOptions::default()).await.unwrap();
    let mut kv = client(&c).await;
    assert_eq!(
        kv.get("/paused", None).await.unwrap().kvs()[0]
            .value_str()
            .unwrap(),
        "yes"
    );
    c.down(DownOptions::default()).await.unwrap();
}

/// Opt-in: with `FRANKENETES_BIN_DIR` pointing at kube-apiserver, kube-controller-manager and
/// kube-scheduler (no registry reachable from CI ships them), the whole control plane comes up:
/// every `/readyz` answers and both leader leases are held.
#[tokio::test(flavor = "multi_thread")]
async fn real_binaries_bring_up_the_apiserver_tier() {
    let Some(bin) = std::env::var_os("FRANKENETES_BIN_DIR") else {
        eprintln!(
            "skipped: set FRANKENETES_BIN_DIR to a directory with kube-apiserver, kube-controller-manager and kube-scheduler to run it"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    require("etcd", "etcd-server");
    let opts = Options::new(dir.path()).gate_timeout(Duration::from_secs(180));
    let c = Cluster::new(
        spec("apitier", 101),
        LocalPlatform::new(dir.path()).bin_dir(Some(bin.into())),
        opts,
    );
    let _guard = Guard(LocalBackend::new(dir.path().join("run")));
    let report = c.up().await.unwrap();
    assert!(report.warnings.is_empty(), "{report:?}");
    assert!(
        report
            .phases
            .contains(&frankenetes_bootstrap::Phase::Leases),
        "{report:?}"
    );
    let status = c.status().await.unwrap();
    assert_eq!(status.rows.len(), 12, "{}", status.table());
    assert!(status.is_healthy(), "{}", status.table());
    c.down(DownOptions::default()).await.unwrap();
}
