//! The `frankenetes` binary: exit codes, messages, and the README's PKI workflow.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

use std::path::Path;
use std::process::{Command, Output};

fn bin(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_frankenetes"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn pki_then_check_then_tamper() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = bin(&["init", "--workers", "1"], d);
    assert!(init.status.success());
    std::fs::write(d.join("cluster.yaml"), &init.stdout).unwrap();
    for mode in ["kubeadm", "intermediate"] {
        let spec = String::from_utf8_lossy(&init.stdout)
            .replace("caMode: kubeadm", &format!("caMode: {mode}"));
        std::fs::write(d.join(format!("{mode}.yaml")), spec).unwrap();
        let out = format!("out-{mode}");
        let made = bin(&["pki", "-f", &format!("{mode}.yaml"), "-o", &out], d);
        assert!(made.status.success(), "{}", text(&made));
        assert!(text(&made).contains("files created"), "{}", text(&made));
        let ok = bin(&["pki", "check", &out, "-f", &format!("{mode}.yaml")], d);
        assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
        assert!(text(&ok).contains("control-02/etcd-server"));
        // Re-running changes nothing.
        let again = bin(&["pki", "-f", &format!("{mode}.yaml"), "-o", &out], d);
        assert!(
            text(&again).contains(" 0 files created, 0 replaced"),
            "{}",
            text(&again)
        );
        // Tamper with one certificate: check fails with exit 1 and names it.
        let f = d
            .join(&out)
            .join("nodes/control-01/etc/kubernetes/pki/apiserver.crt");
        let other = std::fs::read(
            d.join(&out)
                .join("nodes/control-02/etc/kubernetes/pki/apiserver.crt"),
        )
        .unwrap();
        std::fs::write(&f, other).unwrap();
        let bad = bin(&["pki", "check", &out], d);
        assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
        assert!(
            text(&bad).contains("apiserver.key does not match"),
            "{}",
            text(&bad)
        );
        // Generating into it now fails with exit 1, naming the file, and writes nothing.
        let refused = bin(&["pki", "-f", &format!("{mode}.yaml"), "-o", &out], d);
        assert_eq!(refused.status.code(), Some(1));
        assert!(
            text(&refused).contains("apiserver.key does not match"),
            "{}",
            text(&refused)
        );
    }
}

#[test]
fn bad_config_exits_2_naming_the_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = bin(&["init"], d);
    let bad = String::from_utf8_lossy(&init.stdout).replace("ip: 127.0.0.12", "ip: 127.0.0.300");
    std::fs::write(d.join("cluster.yaml"), bad).unwrap();
    let o = bin(&["pki", "-f", "cluster.yaml", "-o", "out"], d);
    assert_eq!(o.status.code(), Some(2));
    let msg = text(&o);
    assert!(
        msg.contains("cluster.yaml: spec.controlPlane[1].ip"),
        "{msg}"
    );
    assert!(!d.join("out").exists(), "nothing is written on bad input");
    let missing = bin(&["pki", "-f", "absent.yaml", "-o", "out"], d);
    assert_eq!(missing.status.code(), Some(2));
    assert!(
        text(&missing).contains("cannot read absent.yaml"),
        "{}",
        text(&missing)
    );
    // A flag that does not exist in the version: refused before any key is made or file written.
    let extra = String::from_utf8_lossy(&init.stdout).replace(
        "  backend:",
        "  apiServer: { extraArgs: { insecure-port: \"0\" } }\n  backend:",
    );
    std::fs::write(d.join("extra.yaml"), extra).unwrap();
    let o = bin(&["render", "-f", "extra.yaml", "-o", "out"], d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("spec.apiServer.extraArgs.insecure-port"),
        "{}",
        text(&o)
    );
    assert!(!d.join("out").exists(), "nothing is written on bad input");
    let usage = bin(&["pki", "-o", "out"], d);
    assert_eq!(usage.status.code(), Some(2), "{}", text(&usage));
}

#[test]
fn stale_certificates_exit_1_until_renewed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = String::from_utf8_lossy(&bin(&["init"], d).stdout).into_owned();
    std::fs::write(d.join("cluster.yaml"), &init).unwrap();
    assert!(
        bin(&["pki", "-f", "cluster.yaml", "-o", "out"], d)
            .status
            .success()
    );
    let changed = init.replace(
        "# controlPlaneEndpoint: api.kubelius:6443",
        "controlPlaneEndpoint: api.kubelius:6443",
    );
    std::fs::write(d.join("cluster.yaml"), changed).unwrap();
    let stale = bin(&["pki", "-f", "cluster.yaml", "-o", "out"], d);
    assert_eq!(stale.status.code(), Some(1));
    assert!(text(&stale).contains("--renew"), "{}", text(&stale));
    let renewed = bin(&["pki", "-f", "cluster.yaml", "-o", "out", "--renew"], d);
    assert!(renewed.status.success(), "{}", text(&renewed));
    assert!(text(&renewed).contains("replaced"), "{}", text(&renewed));
    let check = bin(&["pki", "check", "out", "-f", "cluster.yaml"], d);
    assert!(check.status.success(), "{}", text(&check));
    let renew = bin(&["pki", "renew", "out", "scheduler"], d);
    assert!(renew.status.success(), "{}", text(&renew));
    assert!(text(&renew).contains("renewed control-03/scheduler"));
    let unknown = bin(&["pki", "renew", "out", "nope"], d);
    assert_eq!(unknown.status.code(), Some(2));
}

/// `up` → `status` → interrupted `up` → `down`: no process left, no port bound.
#[test]
fn up_status_sigint_down_leaves_nothing_running() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {name: clitest}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane:\n    - {name: control-01, ip: 127.0.0.81}\n    - {name: control-02, ip: 127.0.0.82}\n    - {name: control-03, ip: 127.0.0.83}\n";
    std::fs::write(d.join("cluster.yaml"), spec).unwrap();
    let env_bin = ["--bin-dir", "no-such-dir"];
    // Whatever happens, stop what the test started.
    struct Down<'a>(&'a Path);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = bin(&["down", "-f", "cluster.yaml"], self.0);
        }
    }
    let _down = Down(d);
    // Interrupt a first `up` while it waits for etcd.
    let child = Command::new(env!("CARGO_BIN_EXE_frankenetes"))
        .args(["up", "-f", "cluster.yaml"])
        .args(env_bin)
        .current_dir(d)
        .env("PATH", std::env::var("PATH").unwrap())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let units = d.join(".frankenetes/clitest/run/units");
    let start = std::time::Instant::now();
    while !units.join("etcd-control-01").exists()
        && start.elapsed() < std::time::Duration::from_secs(20)
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let interrupted = child.wait_with_output().unwrap();
    // Either it was interrupted mid-way (exit 130, as shells expect of SIGINT) or it had just
    // finished (exit 0).
    assert!(
        matches!(interrupted.status.code(), Some(0 | 130)),
        "{}",
        text(&interrupted)
    );
    // `up` again resumes and converges.
    let up = bin(&["up", "-f", "cluster.yaml", "--bin-dir", "no-such-dir"], d);
    let out = text(&up);
    assert_eq!(up.status.code(), Some(0), "{out}");
    assert!(
        out.contains("kube-apiserver, kube-controller-manager, kube-scheduler not found"),
        "{out}"
    );
    let status = bin(&["status", "-f", "cluster.yaml"], d);
    assert!(status.status.success(), "{}", text(&status));
    assert_eq!(
        text(&status).matches("healthy (cluster)").count(),
        3,
        "{}",
        text(&status)
    );
    let pids: Vec<i32> = text(&status)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(2)?.parse().ok())
        .collect();
    assert_eq!(pids.len(), 3);
    let down = bin(&["down", "-f", "cluster.yaml"], d);
    assert!(down.status.success(), "{}", text(&down));
    assert_eq!(
        text(&down)
            .matches("stopped and removed process etcd-control-0")
            .count(),
        3,
        "{}",
        text(&down)
    );
    for p in pids {
        assert!(
            !Path::new(&format!("/proc/{p}")).exists(),
            "pid {p} still running after down"
        );
    }
    for port in ["127.0.0.81:2379", "127.0.0.82:2380", "127.0.0.83:2379"] {
        assert!(
            std::net::TcpListener::bind(port).is_ok(),
            "{port} still bound"
        );
    }
    let again = bin(&["down", "-f", "cluster.yaml"], d);
    assert!(again.status.success() && text(&again).contains("nothing was running"));
}

#[test]
fn vpn_peers_keep_their_addresses_and_render_writes_the_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let spec = "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {name: lab}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane:\n    - {name: control-01, ip: 10.10.16.11}\n  gateway:\n    ip: 10.10.16.5\n    privateCIDR: 10.10.16.0/20\n    tunnel: {cidr: 10.200.0.0/24, endpoint: \"vpn.lab.example:51820\"}\n";
    std::fs::write(d.join("cluster.yaml"), spec).unwrap();
    let addr = |o: &Output| {
        text(o)
            .lines()
            .find(|l| l.starts_with("Address"))
            .map(str::to_owned)
            .unwrap()
    };
    let first = bin(&["vpn", "peer", "add", "laptop"], d);
    assert!(first.status.success(), "{}", text(&first));
    assert!(
        text(&first).contains("PrivateKey")
            && text(&first).contains("Endpoint = vpn.lab.example:51820"),
        "{}",
        text(&first)
    );
    let tablet = bin(&["vpn", "peer", "add", "tablet"], d);
    let again = bin(&["vpn", "peer", "add", "laptop"], d);
    assert_eq!(
        addr(&first),
        addr(&again),
        "adding a peer never renumbers the others"
    );
    assert_ne!(addr(&first), addr(&tablet));
    // `render` writes to the same cluster directory `vpn` keeps its peers in.
    let render = bin(&["render", "-f", "cluster.yaml"], d);
    assert!(render.status.success(), "{}", text(&render));
    let server = std::fs::read_to_string(
        d.join(".frankenetes/lab/bundle/nodes/gateway/etc/wireguard/wg0.conf"),
    )
    .unwrap();
    assert_eq!(server.matches("[Peer]").count(), 2, "{server}");
    let bad = bin(&["vpn", "peer", "add", "Not_A_Name"], d);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn rotate_encryption_adds_a_first_key_and_keeps_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = bin(&["init"], d);
    std::fs::write(d.join("cluster.yaml"), &init.stdout).unwrap();
    let made = bin(&["pki", "-f", "cluster.yaml", "-o", "out"], d);
    assert!(made.status.success(), "{}", text(&made));
    let master = d.join("out/cluster/pki/encryption-config.yaml");
    let before = std::fs::read_to_string(&master).unwrap();
    let r = bin(&["pki", "rotate-encryption", "out"], d);
    assert_eq!(r.status.code(), Some(0), "{}", text(&r));
    let after = std::fs::read_to_string(&master).unwrap();
    assert_ne!(before, after);
    // Every old secret is still there, after the new one.
    let secrets = |s: &str| -> Vec<String> {
        s.lines()
            .filter_map(|l| l.trim().strip_prefix("secret: "))
            .map(str::to_owned)
            .collect()
    };
    let (old, new) = (secrets(&before), secrets(&after));
    assert_eq!(new.len(), old.len() + 1, "{after}");
    assert_eq!(&new[1..], &old[..]);
    // The node copies match, and the output says what to do next without printing a key.
    let node = d.join("out/nodes/control-01/etc/kubernetes/pki/encryption-config.yaml");
    assert_eq!(std::fs::read_to_string(node).unwrap(), after);
    assert!(text(&r).contains("next:"), "{}", text(&r));
    for k in &new {
        assert!(!text(&r).contains(k.as_str()), "a key was printed");
    }
    // A directory without the file is bad input.
    std::fs::create_dir(d.join("empty")).unwrap();
    let bad = bin(&["pki", "rotate-encryption", "empty"], d);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
}

#[test]
fn plan_warns_about_each_relaxation() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = bin(&["init"], d);
    std::fs::write(d.join("cluster.yaml"), &init.stdout).unwrap();
    let plain = bin(&["plan", "-f", "cluster.yaml"], d);
    assert_eq!(plain.status.code(), Some(0), "{}", text(&plain));
    assert!(!text(&plain).contains("relaxed"), "{}", text(&plain));
    assert!(text(&plain).contains("security: anonymous access"));
    let relaxed = String::from_utf8_lossy(&init.stdout)
        .replace("  backend:", "  security:\n    profiling: true\n  backend:");
    std::fs::write(d.join("relaxed.yaml"), relaxed).unwrap();
    let out = bin(&["plan", "-f", "relaxed.yaml"], d);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning:") && err.contains("spec.security.profiling"),
        "{err}"
    );
}

/// `render` for Fedora CoreOS machines: each `.ign` downloads the official binaries of the
/// spec's version for `--arch`, pinned by SHA-256; a version whose hashes this release does not
/// carry is refused before anything is written, unless the machines have the binaries.
#[test]
fn render_pins_the_node_binaries_or_refuses_without_writing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let init = bin(&["init", "--workers", "1"], d);
    assert!(init.status.success());
    let spec = String::from_utf8_lossy(&init.stdout).into_owned();
    let version = spec
        .lines()
        .find_map(|l| l.trim().strip_prefix("kubernetesVersion: "))
        .unwrap()
        .to_owned();
    std::fs::write(d.join("cluster.yaml"), &spec).unwrap();
    let o = bin(
        &[
            "render",
            "-f",
            "cluster.yaml",
            "-o",
            "arm",
            "--arch",
            "arm64",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let ign: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("arm/nodes/worker-01.ign")).unwrap()).unwrap();
    let downloads: Vec<(String, String)> = ign["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["contents"]["verification"]["hash"].is_string())
        .map(|f| {
            (
                f["contents"]["source"].as_str().unwrap().to_owned(),
                f["contents"]["verification"]["hash"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = downloads.iter().map(|(u, _)| u.as_str()).collect();
    assert_eq!(
        names,
        [
            format!("https://dl.k8s.io/release/{version}/bin/linux/arm64/kubelet"),
            format!("https://dl.k8s.io/release/{version}/bin/linux/arm64/kubeadm"),
        ],
        "{downloads:?}"
    );
    assert!(
        downloads
            .iter()
            .all(|(_, h)| h.len() == 7 + 64 && h.starts_with("sha256-"))
    );

    let unknown = spec.replace(&version, "v1.37.0");
    std::fs::write(d.join("unknown.yaml"), unknown).unwrap();
    let o = bin(&["render", "-f", "unknown.yaml", "-o", "out"], d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("spec.kubernetesVersion") && text(&o).contains("kubelet v1.37.0"),
        "{}",
        text(&o)
    );
    assert!(!d.join("out").exists(), "nothing is written on bad input");
    let o = bin(
        &[
            "render",
            "-f",
            "unknown.yaml",
            "-o",
            "out",
            "--preinstalled-binaries",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let ign = std::fs::read_to_string(d.join("out/nodes/worker-01.ign")).unwrap();
    assert!(!ign.contains("dl.k8s.io"), "{ign}");
}
