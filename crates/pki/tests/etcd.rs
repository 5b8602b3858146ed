//! A real etcd cluster with the generated certificates: three members on 127.0.0.1 (distinct
//! ports) with client and peer certificate authentication; `etcdctl` with the healthcheck
//! client certificate sees all three healthy and can write and read; a client certificate of
//! another cluster's CA is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::{Proc, free_port, require_tool, run, wait_for};
use frankenetes_pki::{PkiPlan, SyncOptions, sync};

struct Member {
    name: String,
    client: u16,
    peer: u16,
}

struct Client<'a> {
    endpoints: String,
    pki: &'a Path,
}

impl Client<'_> {
    fn etcdctl(&self, args: &[&str]) -> std::process::Output {
        let p = |f: &str| self.pki.join(f).display().to_string();
        run(Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoints))
            .arg(format!("--cacert={}", p("etcd/ca.crt")))
            .arg(format!("--cert={}", p("etcd/healthcheck-client.crt")))
            .arg(format!("--key={}", p("etcd/healthcheck-client.key")))
            .arg("--dial-timeout=3s")
            .arg("--command-timeout=5s")
            .args(args))
    }
}

fn node_pki(out: &Path, node: &str) -> PathBuf {
    out.join("nodes").join(node).join("etc/kubernetes/pki")
}

fn start_cluster(out: &Path, data: &Path, members: &[Member]) -> Vec<Proc> {
    let initial: Vec<String> = members
        .iter()
        .map(|m| format!("{}=https://127.0.0.1:{}", m.name, m.peer))
        .collect();
    members
        .iter()
        .map(|m| {
            let pki = node_pki(out, &m.name);
            let p = |f: &str| pki.join(f).display().to_string();
            let mut cmd = Command::new("etcd");
            cmd.arg(format!("--name={}", m.name))
                .arg(format!("--data-dir={}", data.join(&m.name).display()))
                .arg(format!(
                    "--listen-client-urls=https://127.0.0.1:{}",
                    m.client
                ))
                .arg(format!(
                    "--advertise-client-urls=https://127.0.0.1:{}",
                    m.client
                ))
                .arg(format!("--listen-peer-urls=https://127.0.0.1:{}", m.peer))
                .arg(format!(
                    "--initial-advertise-peer-urls=https://127.0.0.1:{}",
                    m.peer
                ))
                .arg(format!("--initial-cluster={}", initial.join(",")))
                .arg("--initial-cluster-state=new")
                .arg("--initial-cluster-token=frankenetes-pki-test")
                .arg("--client-cert-auth=true")
                .arg(format!("--trusted-ca-file={}", p("etcd/ca.crt")))
                .arg(format!("--cert-file={}", p("etcd/server.crt")))
                .arg(format!("--key-file={}", p("etcd/server.key")))
                .arg("--peer-client-cert-auth=true")
                .arg(format!("--peer-trusted-ca-file={}", p("etcd/ca.crt")))
                .arg(format!("--peer-cert-file={}", p("etcd/peer.crt")))
                .arg(format!("--peer-key-file={}", p("etcd/peer.key")))
                .arg("--snapshot-count=10000");
            Proc::spawn(&m.name, &mut cmd, &data.join(format!("{}.log", m.name)))
        })
        .collect()
}

fn logs(procs: &[Proc]) -> String {
    procs
        .iter()
        .map(|p| format!("--- {} (pid {})\n{}", p.name, p.pid(), p.log_text()))
        .collect()
}

fn real_etcd_accepts_the_pki(mode: &str) {
    require_tool("etcd", "etcd-server");
    require_tool("etcdctl", "etcd-client");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let plan = PkiPlan::from(&common::spec(mode, "ecdsa-p256"));
    sync(&plan, &out, SyncOptions::default()).unwrap();

    let members: Vec<Member> = ["control-01", "control-02", "control-03"]
        .iter()
        .map(|n| Member {
            name: (*n).to_owned(),
            client: free_port(),
            peer: free_port(),
        })
        .collect();
    let mut procs = start_cluster(&out, &data, &members);
    let endpoints: Vec<String> = members
        .iter()
        .map(|m| format!("https://127.0.0.1:{}", m.client))
        .collect();
    let client = Client {
        endpoints: endpoints.join(","),
        pki: &node_pki(&out, "control-01"),
    };

    let healthy = wait_for(Duration::from_secs(30), || {
        let o = client.etcdctl(&["endpoint", "health"]);
        let text =
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr);
        (o.status.success() && text.matches("is healthy").count() == 3).then_some(text)
    });
    let dead: Vec<String> = procs
        .iter_mut()
        .filter_map(|p| (!p.alive()).then(|| p.name.clone()))
        .collect();
    assert!(dead.is_empty(), "etcd {dead:?} exited:\n{}", logs(&procs));
    assert!(
        healthy.is_some(),
        "three healthy members expected:\n{}",
        logs(&procs)
    );

    let list = client.etcdctl(&["member", "list"]);
    assert!(list.status.success());
    assert_eq!(
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .filter(|l| l.contains("started"))
            .count(),
        3
    );

    let put = client.etcdctl(&["put", "/frankenetes/test", "hello"]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    // Read back through another member, with that node's own client certificate.
    let other = Client {
        endpoints: endpoints[2].clone(),
        pki: &node_pki(&out, "control-03"),
    };
    let get = other.etcdctl(&["get", "/frankenetes/test", "--print-value-only"]);
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "hello");

    // A client certificate from another cluster's CA is refused.
    let foreign_dir = dir.path().join("foreign");
    sync(
        &PkiPlan::from(&common::spec(mode, "ecdsa-p256")),
        &foreign_dir,
        SyncOptions::default(),
    )
    .unwrap();
    let foreign = node_pki(&foreign_dir, "control-01");
    let p = |f: &str| foreign.join(f).display().to_string();
    let own_ca = node_pki(&out, "control-01").join("etcd/ca.crt");
    let refused = run(Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints[0]))
        .arg(format!("--cacert={}", own_ca.display()))
        .arg(format!("--cert={}", p("etcd/healthcheck-client.crt")))
        .arg(format!("--key={}", p("etcd/healthcheck-client.key")))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=3s")
        .args(["get", "/frankenetes/test"]));
    assert!(
        !refused.status.success(),
        "a foreign client certificate must be refused"
    );
    assert!(!String::from_utf8_lossy(&refused.stdout).contains("hello"));
    // And the server is not trusted by a client holding the other cluster's CA.
    let distrust = run(Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints[0]))
        .arg(format!("--cacert={}", p("etcd/ca.crt")))
        .arg(format!("--cert={}", p("etcd/healthcheck-client.crt")))
        .arg(format!("--key={}", p("etcd/healthcheck-client.key")))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=3s")
        .args(["endpoint", "health"]));
    assert!(
        !distrust.status.success(),
        "the server certificate must not be trusted by another CA"
    );
    drop(procs);
}

#[test]
fn real_etcd_kubeadm_mode() {
    real_etcd_accepts_the_pki("kubeadm");
}

#[test]
fn real_etcd_intermediate_mode() {
    real_etcd_accepts_the_pki("intermediate");
}
