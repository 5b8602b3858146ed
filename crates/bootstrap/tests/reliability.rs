//! What an SRE would not forgive, tried against a real etcd on loopback: a corrupt snapshot
//! used silently, two commands interleaving, a wait without a deadline, a command that acts
//! on a cluster that is not there, an address or a port that cannot work.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail by panicking

use std::path::Path;
use std::time::{Duration, Instant};

use frankenetes_bootstrap::snapshots::SnapshotError;
use frankenetes_bootstrap::{
    Cluster, DownOptions, Error, LocalBackend, LocalPlatform, Options, ResumeOptions, etcd,
};
use frankenetes_spec::ClusterSpec;

struct Guard(LocalBackend);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

fn spec(name: &str, ips: [&str; 3]) -> ClusterSpec {
    let yaml = format!(
        "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane:\n    \
         - {{name: control-01, ip: {}}}\n    - {{name: control-02, ip: {}}}\n    - {{name: control-03, ip: {}}}\n",
        ips[0], ips[1], ips[2]
    );
    ClusterSpec::from_yaml(&yaml).unwrap().spec
}

fn loopback(base: u8) -> [String; 3] {
    [0, 1, 2].map(|i| format!("127.0.0.{}", base + i))
}

fn cluster_with(spec: ClusterSpec, dir: &Path, gate: Duration) -> (Cluster<LocalPlatform>, Guard) {
    let platform = LocalPlatform::new(dir)
        .bin_dir(Some(dir.join("no-kube-binaries")))
        .cache(None);
    let c = Cluster::new(spec, platform, Options::new(dir).gate_timeout(gate));
    (c, Guard(LocalBackend::new(dir.join("run"))))
}

fn cluster(name: &str, base: u8, dir: &Path) -> (Cluster<LocalPlatform>, Guard) {
    let ips = loopback(base);
    cluster_with(
        spec(name, [&ips[0], &ips[1], &ips[2]]),
        dir,
        Duration::from_secs(60),
    )
}

async fn kv(c: &Cluster<LocalPlatform>) -> etcd_client::Client {
    let (eps, auth) = c.etcd_access().unwrap();
    etcd::connect(&eps, &auth, Duration::from_secs(5))
        .await
        .unwrap()
}

async fn count(c: &Cluster<LocalPlatform>, prefix: &str) -> usize {
    kv(c)
        .await
        .get(prefix, Some(etcd_client::GetOptions::new().with_prefix()))
        .await
        .unwrap()
        .kvs()
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn pause_twice_then_resume_and_nothing_to_resume_after_down() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _g) = cluster("twice", 111, dir.path());
    c.up().await.unwrap();
    let first = c.pause().await.unwrap();
    assert!(!first.already_paused);
    assert!(first.snapshot.as_ref().unwrap().exists());
    let second = c.pause().await.unwrap();
    assert!(second.already_paused, "{second:?}");
    assert!(
        second.snapshot.is_none(),
        "no second snapshot of a stopped etcd"
    );
    c.resume(ResumeOptions::default()).await.unwrap();
    assert!(c.status().await.unwrap().is_healthy());
    c.resume(ResumeOptions::default())
        .await
        .expect("resuming a running cluster converges");
    c.down(DownOptions::default()).await.unwrap();

    let t = Instant::now();
    let e = c.resume(ResumeOptions::default()).await.unwrap_err();
    assert!(matches!(e, Error::NotUp { .. }), "{e}");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let e = c.pause().await.unwrap_err();
    assert!(matches!(e, Error::NotUp { .. }), "{e}");
    let s = c.status().await.unwrap();
    assert!(!s.exists && !s.is_healthy(), "{}", s.table());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_corrupt_newest_snapshot_is_refused_and_an_older_one_used_only_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _g) = cluster("corrupt", 164, dir.path());
    c.up().await.unwrap();
    let mut client = kv(&c).await;
    for i in 0..1000 {
        client.put(format!("/k/{i:04}"), "v", None).await.unwrap();
    }
    let older = c.pause().await.unwrap().snapshot.unwrap();
    c.resume(ResumeOptions::default()).await.unwrap();
    let mut client = kv(&c).await;
    for i in 0..15 {
        client.put(format!("/late/{i}"), "v", None).await.unwrap();
    }
    // Snapshot names carry seconds: make the second one's name differ.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let newest = c.pause().await.unwrap().snapshot.unwrap();
    assert_ne!(newest, older);
    let mut bytes = std::fs::read(&newest).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&newest, bytes).unwrap();
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();

    let e = c.resume(ResumeOptions::default()).await.unwrap_err();
    match &e {
        Error::Snapshot(SnapshotError::NewestUnusable {
            newest: n,
            older: Some((o, _)),
            ..
        }) => {
            assert_eq!(n, &newest);
            assert_eq!(o, &older);
        }
        other => panic!("expected a refusal naming both snapshots, got: {other}"),
    }
    let msg = e.to_string();
    assert!(msg.contains("--allow-older-snapshot"), "{msg}");
    assert!(
        !dir.path().join("data").exists(),
        "nothing was restored or started"
    );

    c.resume(ResumeOptions::default().allow_older_snapshot(true))
        .await
        .unwrap();
    assert_eq!(
        count(&c, "/k/").await,
        1000,
        "every key of the older snapshot"
    );
    assert_eq!(count(&c, "/late/").await, 0);
    c.down(DownOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_ups_never_interleave() {
    let dir = tempfile::tempdir().unwrap();
    let ips = loopback(131);
    let s = spec("busy", [&ips[0], &ips[1], &ips[2]]);
    let _g = Guard(LocalBackend::new(dir.path().join("run")));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, d) = (s.clone(), dir.path().to_owned());
        tasks.push(tokio::spawn(async move {
            let platform = LocalPlatform::new(&d)
                .bin_dir(Some(d.join("none")))
                .cache(None);
            Cluster::new(
                s,
                platform,
                Options::new(&d).gate_timeout(Duration::from_secs(60)),
            )
            .up()
            .await
        }));
    }
    let mut ok = 0;
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(Error::Busy(e)) => {
                assert!(e.to_string().contains("frankenetes up"), "{e}");
                busy += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!((ok, busy), (1, 9));
    let (c, _guard) = cluster("busy", 131, dir.path());
    assert!(c.status().await.unwrap().is_healthy());
    let report = frankenetes_pki::check(&dir.path().join("bundle"), &Default::default()).unwrap();
    assert!(report.is_ok(), "{}", report.table());
    c.down(DownOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_that_accepts_but_never_answers_cannot_stall_status_or_up() {
    let dir = tempfile::tempdir().unwrap();
    let (c, _g) = cluster("silent", 141, dir.path());
    c.up().await.unwrap();
    let pid = LocalBackend::new(dir.path().join("run"))
        .container_pid("etcd-control-02", "etcd")
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(pid);
    // A stopped process: the kernel completes TCP handshakes, nobody answers.
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    struct Cont(nix::unistd::Pid);
    impl Drop for Cont {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
        }
    }
    let _cont = Cont(pid);

    let t = Instant::now();
    let s = c.status().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "status took {:?}",
        t.elapsed()
    );
    assert!(!s.is_healthy(), "{}", s.table());
    assert!(
        s.problems.iter().any(|p| p.contains("127.0.0.142")),
        "{}",
        s.table()
    );

    let ips = loopback(141);
    let (slow, _slow_guard) = cluster_with(
        spec("silent", [&ips[0], &ips[1], &ips[2]]),
        dir.path(),
        Duration::from_secs(10),
    );
    let t = Instant::now();
    let e = slow.up().await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "up took {:?}",
        t.elapsed()
    );
    let msg = e.to_string();
    assert!(matches!(e, Error::Timeout { .. }), "{msg}");
    assert!(msg.contains("127.0.0.142"), "{msg}");
    assert!(msg.contains("etcd.log"), "the error names the logs: {msg}");
    drop(_cont);
    c.down(DownOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn foreign_addresses_and_taken_ports_are_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    // TEST-NET-3 is on no interface of this machine.
    let (c, _g) = cluster_with(
        spec("far", ["203.0.113.11", "203.0.113.12", "203.0.113.13"]),
        dir.path(),
        Duration::from_secs(30),
    );
    let t = Instant::now();
    let e = c.up().await.unwrap_err();
    assert!(e.is_bad_input(), "{e}");
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    assert!(e.to_string().contains("203.0.113.11"), "{e}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "nothing written for bad input"
    );

    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.152:2379").unwrap();
    let (c, _g) = cluster("taken", 151, dir.path());
    let e = c.up().await.unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("127.0.0.152:2379"), "{msg}");
    assert!(
        msg.contains(&format!("PID {}", std::process::id())),
        "names the holder: {msg}"
    );
    assert!(
        LocalBackend::new(dir.path().join("run"))
            .stop_all()
            .is_empty(),
        "nothing started"
    );
    drop(taken);
}
