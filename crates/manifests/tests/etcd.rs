//! The rendered etcd command line, run for real: three members from the three rendered
//! `etcd.yaml` files (paths mapped into the bundle), healthy through the rendered healthcheck
//! client certificate, and answering the probe the pod declares.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Proc, require_tool, run};
use k8s_openapi::api::core::v1::Pod;

#[test]
fn rendered_etcd_pods_form_a_healthy_cluster() {
    require_tool("etcd", "etcd-server");
    require_tool("etcdctl", "etcd-client");
    let version = String::from_utf8(run(Command::new("etcd").arg("--version")).stdout).unwrap();
    let version = version
        .lines()
        .next()
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_owned();
    // Render for the etcd actually installed (Debian's is 3.4; flags differ from 3.6).
    let spec = common::spec(
        ["127.0.0.31", "127.0.0.32", "127.0.0.33", "127.0.0.41"],
        &format!("  etcd: {{ version: \"{version}\" }}\n"),
    );
    let (dir, rendered) = common::render_to_dir(&spec);
    let data = tempfile::tempdir().unwrap();
    let mut procs = Vec::new();
    for node in ["control-01", "control-02", "control-03"] {
        let bundle = dir.path().join("nodes").join(node);
        let pod: Pod = serde_norway::from_slice(
            &rendered
                .node(node)
                .unwrap()
                .file("/etc/kubernetes/manifests/etcd.yaml")
                .unwrap()
                .contents,
        )
        .unwrap();
        let c = &pod.spec.as_ref().unwrap().containers[0];
        let cmd = c.command.clone().unwrap();
        let args: Vec<String> = cmd[1..]
            .iter()
            .map(|a| {
                a.replace(
                    "=/etc/kubernetes/",
                    &format!("={}/etc/kubernetes/", bundle.display()),
                )
                .replace(
                    "=/var/lib/etcd",
                    &format!("={}/{node}", data.path().display()),
                )
            })
            .collect();
        assert!(
            args.iter()
                .any(|a| a.starts_with("--experimental-initial-corrupt-check")
                    || a.starts_with("--feature-gates=InitialCorruptCheck"))
        );
        procs.push(Proc::spawn(
            node,
            Command::new(&cmd[0]).args(&args),
            &data.path().join(format!("{node}.log")),
        ));
    }
    let pki = dir.path().join("nodes/control-02/etc/kubernetes/pki");
    let etcdctl = |args: &[&str]| {
        run(Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints=https://127.0.0.31:2379,https://127.0.0.32:2379,https://127.0.0.33:2379")
            .arg(format!("--cacert={}", pki.join("etcd/ca.crt").display()))
            .arg(format!("--cert={}", pki.join("etcd/healthcheck-client.crt").display()))
            .arg(format!("--key={}", pki.join("etcd/healthcheck-client.key").display()))
            .args(["--dial-timeout=3s", "--command-timeout=5s"])
            .args(args))
    };
    let start = Instant::now();
    let mut healthy = false;
    while start.elapsed() < Duration::from_secs(30) {
        let o = etcdctl(&["endpoint", "health"]);
        if o.status.success()
            && String::from_utf8_lossy(&o.stderr)
                .matches("is healthy")
                .count()
                + String::from_utf8_lossy(&o.stdout)
                    .matches("is healthy")
                    .count()
                == 3
        {
            healthy = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let logs: String = procs
        .iter()
        .map(|p| {
            format!(
                "--- {}\n{}",
                p.name,
                std::fs::read_to_string(&p.log).unwrap_or_default()
            )
        })
        .collect();
    assert!(healthy, "three healthy members expected\n{logs}");
    assert!(etcdctl(&["put", "k", "v"]).status.success());
    // The probe the pod declares (host, port, path) answers 200.
    let pod: Pod = serde_norway::from_slice(
        &rendered
            .node("control-03")
            .unwrap()
            .file("/etc/kubernetes/manifests/etcd.yaml")
            .unwrap()
            .contents,
    )
    .unwrap();
    let probe = pod.spec.unwrap().containers[0]
        .liveness_probe
        .clone()
        .unwrap()
        .http_get
        .unwrap();
    let host = probe.host.unwrap();
    let mut s = std::net::TcpStream::connect((host.as_str(), 2381)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "GET {} HTTP/1.0\r\nHost: {host}\r\n\r\n",
        probe.path.unwrap()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.starts_with("HTTP/1.0 200") || resp.starts_with("HTTP/1.1 200"),
        "{resp}"
    );
    drop(procs);
}
