//! Day two with a real etcd on loopback (issue #21): certificates that end soon reported and
//! renewed while etcd serves; a changed etcd flag rolled one member at a time under a
//! continuous writer; a member whose data is gone re-joined as a new member; a snapshot
//! restored onto other node names and addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Guard, cluster_with_window, require};
use frankenetes_bootstrap::{ComputeBackend, DownOptions, Health, LocalBackend, etcd};
use frankenetes_compute::UnitId;
use frankenetes_pki::{PkiPlan, SyncOptions};
use frankenetes_spec::ClusterSpec;

/// A spec of three control planes: `(name, last octet)` each, with `etcd_args` as
/// `spec.etcd.extraArgs`.
fn spec_of(cluster: &str, nodes: &[(&str, u8)], etcd_args: &str) -> ClusterSpec {
    let mut yaml = format!(
        "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {cluster}}}\nspec:\n  kubernetesVersion: v1.35.0\n  etcd: {{ extraArgs: {{ {etcd_args} }} }}\n  controlPlane:\n"
    );
    for (n, ip) in nodes {
        yaml.push_str(&format!("    - {{name: {n}, ip: 127.0.0.{ip}}}\n"));
    }
    ClusterSpec::from_yaml(&yaml).unwrap().spec
}

/// A writer putting `/<prefix>/<n>` keys until told to stop; the keys etcd acknowledged and
/// how many puts failed.
struct Writer {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<u32>,
}

impl Writer {
    fn start(eps: Vec<String>, auth: etcd::EtcdAuth, prefix: &'static str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(Mutex::new(Vec::new()));
        let task = {
            let (stop, acked) = (stop.clone(), acked.clone());
            tokio::spawn(async move {
                let mut kv = etcd::connect(&eps, &auth, Duration::from_secs(5))
                    .await
                    .unwrap();
                let (mut failures, mut i) = (0u32, 0u32);
                while !stop.load(Ordering::SeqCst) {
                    let key = format!("/{prefix}/{i:06}");
                    let put = tokio::time::timeout(
                        Duration::from_secs(5),
                        kv.put(key.clone(), "x", None),
                    )
                    .await;
                    match put {
                        Ok(Ok(_)) => acked.lock().unwrap().push(key),
                        _ => {
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                    i += 1;
                }
                failures
            })
        };
        Self { stop, acked, task }
    }

    /// Stops it: the acknowledged keys and the failed puts.
    async fn finish(self) -> (Vec<String>, u32) {
        self.stop.store(true, Ordering::SeqCst);
        let failures = self.task.await.unwrap();
        let acked = self.acked.lock().unwrap().clone();
        (acked, failures)
    }
}

/// Every key of `keys` is in etcd (read through `eps`; `serializable`: from that member's
/// own data, not the leader's).
async fn assert_all_present(
    eps: &[String],
    auth: &etcd::EtcdAuth,
    prefix: &str,
    keys: &[String],
    serializable: bool,
) {
    let mut kv = etcd::connect(eps, auth, Duration::from_secs(5))
        .await
        .unwrap();
    let mut opts = etcd_client::GetOptions::new()
        .with_prefix()
        .with_keys_only();
    if serializable {
        opts = opts.with_serializable();
    }
    let got = kv.get(format!("/{prefix}/"), Some(opts)).await.unwrap();
    let have: std::collections::BTreeSet<String> = got
        .kvs()
        .iter()
        .map(|kv| String::from_utf8_lossy(kv.key()).into_owned())
        .collect();
    let lost: Vec<&String> = keys.iter().filter(|k| !have.contains(*k)).collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged keys lost (through {}): first {:?}",
        lost.len(),
        keys.len(),
        eps.join(","),
        lost.first()
    );
}

/// How many of `eps` answer a status call right now, each asked on its own.
async fn answering(eps: &[String], auth: &etcd::EtcdAuth) -> usize {
    let each = eps.iter().map(|ep| async move {
        let Ok(Ok(mut c)) = tokio::time::timeout(
            Duration::from_secs(1),
            etcd::connect(std::slice::from_ref(ep), auth, Duration::from_secs(1)),
        )
        .await
        else {
            return false;
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(1), c.status()).await,
            Ok(Ok(_))
        )
    });
    futures_util::future::join_all(each)
        .await
        .into_iter()
        .filter(|ok| *ok)
        .count()
}

/// The etcd process of each member: `name → (pid, command line)`.
fn etcd_processes(backend: &LocalBackend, nodes: &[&str]) -> BTreeMap<String, (i32, String)> {
    nodes
        .iter()
        .map(|n| {
            let pid = backend.container_pid(&format!("etcd-{n}"), "etcd").unwrap();
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            ((*n).to_owned(), (pid, cmdline))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_etcd_flag_is_rolled_one_member_at_a_time_under_a_writer() {
    require("etcd", "etcd-server");
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard(LocalBackend::new(dir.path().join("run")));
    let nodes = [
        ("control-01", 244),
        ("control-02", 245),
        ("control-03", 246),
    ];
    let names = nodes.map(|(n, _)| n);
    let before = spec_of("rolling", &nodes, "");
    let c = cluster_with_window(&before, dir.path(), Duration::from_secs(3600));
    let first = c.up().await.unwrap();
    assert!(first.restarted.is_empty());
    let old = etcd_processes(c.platform().local_backend(), &names);

    // The same spec again: nothing to restart.
    assert_eq!(
        c.restarts(&c.prepare(false).unwrap().workload)
            .await
            .unwrap(),
        vec![]
    );

    let after = spec_of("rolling", &nodes, "snapshot-count: \"5000\"");
    let c2 = cluster_with_window(&after, dir.path(), Duration::from_secs(3600));
    // What `plan` shows: every member, and why.
    let planned = c2
        .restarts(&c2.prepare(false).unwrap().workload)
        .await
        .unwrap();
    assert_eq!(
        planned.iter().map(|r| r.unit.as_str()).collect::<Vec<_>>(),
        ["etcd-control-01", "etcd-control-02", "etcd-control-03"]
    );
    assert!(
        planned
            .iter()
            .all(|r| r.why == "--snapshot-count: 10000 → 5000"),
        "{planned:?}"
    );

    let (eps, auth) = c2.etcd_access().unwrap();
    let writer = Writer::start(eps.clone(), auth.clone(), "rolling");
    // A sampler counts the members answering, every 50 ms, while the change rolls.
    let sampling = Arc::new(AtomicBool::new(true));
    let fewest = Arc::new(AtomicU32::new(u32::MAX));
    let sampler = {
        let (sampling, fewest, eps, auth) =
            (sampling.clone(), fewest.clone(), eps.clone(), auth.clone());
        tokio::spawn(async move {
            let mut samples = 0u32;
            while sampling.load(Ordering::SeqCst) {
                let n = u32::try_from(answering(&eps, &auth).await).unwrap();
                fewest.fetch_min(n, Ordering::SeqCst);
                samples += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            samples
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let report = c2.up().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    sampling.store(false, Ordering::SeqCst);
    let samples = sampler.await.unwrap();
    let (acked, failures) = writer.finish().await;
    assert_eq!(report.restarted, planned);
    let fewest = fewest.load(Ordering::SeqCst);
    eprintln!(
        "rolled 3 members: {} writes acknowledged, {failures} failed, {samples} samples, never fewer than {fewest} of 3 answering",
        acked.len()
    );
    assert!(
        fewest >= 2,
        "only {fewest} of 3 members answered at one point"
    );
    assert!(
        samples > 10 && acked.len() > 100,
        "{samples} samples, {} writes",
        acked.len()
    );
    assert_all_present(&eps, &auth, "rolling", &acked, false).await;

    // Each member runs the new flag, in a new process; a third `up` restarts nothing.
    let new = etcd_processes(c2.platform().local_backend(), &names);
    for n in names {
        assert_ne!(old[n].0, new[n].0, "{n} was not restarted");
        assert!(
            new[n].1.contains("--snapshot-count=5000"),
            "{n}: {}",
            new[n].1
        );
    }
    assert!(c2.up().await.unwrap().restarted.is_empty());
    c2.down(DownOptions::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_member_whose_data_is_gone_rejoins_as_a_new_member() {
    require("etcd", "etcd-server");
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard(LocalBackend::new(dir.path().join("run")));
    let nodes = [
        ("control-01", 247),
        ("control-02", 248),
        ("control-03", 249),
    ];
    let spec = spec_of("rejoin", &nodes, "");
    let c = cluster_with_window(&spec, dir.path(), Duration::from_secs(3600));
    c.up().await.unwrap();
    let (eps, auth) = c.etcd_access().unwrap();
    let mut kv = etcd::connect(&eps, &auth, Duration::from_secs(5))
        .await
        .unwrap();
    let keys: Vec<String> = (0..300).map(|i| format!("/rejoin/{i:06}")).collect();
    for k in &keys {
        kv.put(k.clone(), "x", None).await.unwrap();
    }
    let ids = |ms: &[etcd::Member]| -> BTreeMap<String, u64> {
        ms.iter().map(|m| (m.name.clone(), m.id)).collect()
    };
    let before = ids(&etcd::members(&eps, &auth).await.unwrap());

    // control-02's machine is replaced: its process stopped, its data gone.
    let backend = c.platform().local_backend();
    backend
        .stop(&UnitId("etcd-control-02".into()))
        .await
        .unwrap();
    let data = dir.path().join("data/control-02/etcd");
    assert!(data.join("member").is_dir(), "{}", data.display());
    std::fs::remove_dir_all(&data).unwrap();
    let db = |n: &str| dir.path().join(format!("data/{n}/etcd/member/snap/db"));
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let kept = [inode(&db("control-01")), inode(&db("control-03"))];

    let report = c.up().await.unwrap();
    assert_eq!(report.rejoined, ["control-02"]);
    let after = ids(&etcd::members(&eps, &auth).await.unwrap());
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after["control-01"], before["control-01"]);
    assert_eq!(after["control-03"], before["control-03"]);
    assert_ne!(
        after["control-02"], before["control-02"],
        "control-02 is a new member"
    );
    // The healthy members' data was not touched (the same files), and control-02 has every
    // key in its own data (serializable reads from it alone).
    assert_eq!([inode(&db("control-01")), inode(&db("control-03"))], kept);
    assert_all_present(&eps[1..2], &auth, "rejoin", &keys, true).await;
    assert!(c.status().await.unwrap().is_healthy());
    // The re-joined member's bootstrap flags differ from the spec's: no reason to restart it.
    assert!(c.up().await.unwrap().restarted.is_empty());

    // Two of three gone: no quorum is left to re-join them; a snapshot is the way.
    for n in ["control-02", "control-03"] {
        backend.stop(&UnitId(format!("etcd-{n}"))).await.unwrap();
        std::fs::remove_dir_all(dir.path().join(format!("data/{n}/etcd"))).unwrap();
    }
    let e = c.up().await.unwrap_err().to_string();
    assert!(
        e.contains("not a quorum") && e.contains("frankenetes restore"),
        "{e}"
    );
    c.down(DownOptions::default()).await.unwrap();
}

/// `openssl verify` of a node's etcd certificate against the etcd CA, and whether its SANs
/// hold `ip`.
fn cert_valid_for(pki: &Path, which: &str, ip: &str) {
    let crt = pki.join(format!("etcd/{which}.crt"));
    let v = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(pki.join("etcd/ca.crt"))
        .arg("-untrusted")
        .arg(&crt)
        .arg(&crt)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}: {v:?}", crt.display());
    let sans = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&crt)
        .output()
        .unwrap();
    let sans = String::from_utf8_lossy(&sans.stdout);
    assert!(
        sans.contains(&format!("IP Address:{ip}")),
        "{}: {sans}",
        crt.display()
    );
}

/// What `openssl s_client` says of the certificate served at `ip:port`, checked against
/// the etcd CA and for the address itself.
fn served_verifies(pki: &Path, ip: &str, port: u16) -> bool {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("{ip}:{port}"),
            "-verify_ip",
            ip,
        ])
        .arg("-CAfile")
        .arg(pki.join("etcd/ca.crt"))
        .arg("-cert")
        .arg(pki.join("etcd/healthcheck-client.crt"))
        .arg("-key")
        .arg(pki.join("etcd/healthcheck-client.key"))
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).contains("Verify return code: 0 (ok)")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_restores_onto_other_names_and_addresses() {
    for (tool, pkg) in [
        ("etcd", "etcd-server"),
        ("etcdctl", "etcd-client"),
        ("openssl", "openssl"),
    ] {
        require(tool, pkg);
    }
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard(LocalBackend::new(dir.path().join("run")));
    let old_nodes = [
        ("control-01", 251),
        ("control-02", 252),
        ("control-03", 253),
    ];
    let old = cluster_with_window(
        &spec_of("moved", &old_nodes, ""),
        dir.path(),
        Duration::from_secs(3600),
    );
    old.up().await.unwrap();
    let (eps, auth) = old.etcd_access().unwrap();
    let mut kv = etcd::connect(&eps, &auth, Duration::from_secs(5))
        .await
        .unwrap();
    let keys: Vec<String> = (0..200).map(|i| format!("/moved/{i:06}")).collect();
    for k in &keys {
        kv.put(k.clone(), "x", None).await.unwrap();
    }
    let file = dir.path().join("moved.db");
    old.snapshot(&file).await.unwrap();
    let old_pki = old.bundle().node_pki("control-01");
    let old_cert = std::fs::read(old_pki.join("etcd/server.crt")).unwrap();

    // The same cluster on other machines: control-01 keeps its name on a new address, the
    // others are new names and addresses.
    let new_nodes = [("control-01", 224), ("cp-b", 225), ("cp-c", 226)];
    let new = cluster_with_window(
        &spec_of("moved", &new_nodes, ""),
        dir.path(),
        Duration::from_secs(3600),
    );
    new.restore(&file).await.unwrap();

    let (eps, auth) = new.etcd_access().unwrap();
    assert_eq!(eps[0], "https://127.0.0.224:2379");
    let members = etcd::members(&eps, &auth).await.unwrap();
    let mut names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["control-01", "cp-b", "cp-c"]);
    assert!(
        members
            .iter()
            .all(|m| m.peer_urls.len() == 1 && m.peer_urls[0].contains("127.0.0.22")),
        "{members:?}"
    );
    assert_all_present(&eps, &auth, "moved", &keys, false).await;
    let s = new.status().await.unwrap();
    assert!(s.is_healthy(), "{}", s.table());
    assert!(
        s.rows
            .iter()
            .filter(|r| r.name.starts_with("etcd-"))
            .count()
            == 3
            && s.rows.iter().all(|r| !r.name.contains("control-02")),
        "the old members' units are gone: {}",
        s.table()
    );
    // Certificates for the new addresses, by the same CA: control-01's was issued again
    // (its SANs held the old address), and every member serves one that an independent
    // client accepts for its address.
    let pki = new.bundle().node_pki("control-01");
    assert_eq!(pki, old_pki);
    assert_ne!(
        std::fs::read(pki.join("etcd/server.crt")).unwrap(),
        old_cert
    );
    for (n, ip) in new_nodes {
        let pki = new.bundle().node_pki(n);
        let ip = format!("127.0.0.{ip}");
        cert_valid_for(&pki, "server", &ip);
        cert_valid_for(&pki, "peer", &ip);
        assert!(served_verifies(&pki, &ip, 2379), "{n} {ip}:2379");
        assert!(served_verifies(&pki, &ip, 2380), "{n} {ip}:2380");
    }
    // The old addresses serve nothing any more.
    assert!(!served_verifies(&old_pki, "127.0.0.252", 2379));
    new.down(DownOptions::default()).await.unwrap();
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
    let spec = common::spec("daytwo", 81);
    let day = Duration::from_secs(24 * 3600);
    // A PKI issued 355 days ago: its leaves (one year) end in ten days.
    let quiet = cluster_with_window(&spec, dir.path(), day);
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
    let c = cluster_with_window(&spec, dir.path(), frankenetes_pki::expiry::WARNING_WINDOW);
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
