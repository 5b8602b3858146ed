//! Independent checkers on the written bundles: `ignition-validate` on every `.ign`,
//! `kubectl config view` and `get-contexts` on every kubeconfig, every static pod parsed back
//! into a `k8s-openapi` `Pod`, and every flag of every rendered command line found in its
//! version's flag inventory (read from the inventory files, not the renderer's table).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail by panicking

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::{files, require_tool, run};
use frankenetes_spec::RELEASES;
use k8s_openapi::api::core::v1::Pod;

#[test]
fn ignition_validate_accepts_every_node() {
    require_tool("ignition-validate", "ignition");
    let (dir, rendered) = common::render_to_dir(&common::lab());
    let igns = files(dir.path(), &|p| p.extension().is_some_and(|e| e == "ign"));
    assert_eq!(igns.len(), rendered.nodes.len());
    for ign in igns {
        let out = run(Command::new("ignition-validate").arg(&ign));
        assert!(
            out.status.success(),
            "{}: {}{}",
            ign.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // Same content as the overlay: every overlay file of the node is in the config.
        let cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&ign).unwrap()).unwrap();
        let paths: BTreeSet<&str> = cfg["storage"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["path"].as_str().unwrap())
            .collect();
        let node = ign.file_stem().unwrap().to_str().unwrap();
        let overlay = dir.path().join("nodes").join(node);
        for f in files(&overlay, &|p| {
            !p.components().any(|c| c.as_os_str() == "systemd")
        }) {
            let abs = format!("/{}", f.strip_prefix(&overlay).unwrap().display());
            assert!(
                paths.contains(abs.as_str()),
                "{node}: {abs} is in the overlay but not in the .ign"
            );
        }
        // The .ign holds keys: owner-only.
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&ign).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[test]
fn kubectl_reads_every_kubeconfig() {
    require_tool("kubectl", "kubernetes-client");
    let (dir, _) = common::render_to_dir(&common::lab());
    let confs = files(dir.path(), &|p| {
        p.extension().is_some_and(|e| e == "conf") && !p.starts_with("/etc/sysctl.d")
    });
    let confs: Vec<_> = confs
        .into_iter()
        .filter(|p| {
            !p.to_string_lossy().contains("sysctl") && !p.to_string_lossy().contains("modules-load")
        })
        .collect();
    // cluster/{admin,super-admin}.conf; five per control plane; super-admin.conf on the
    // first control plane (its day-one unit applies the RBAC that needs it, as kubeadm init's
    // node keeps it); two per worker.
    assert_eq!(confs.len(), 2 + 3 * 5 + 1 + 2, "{confs:?}");
    for c in confs {
        let view = run(Command::new("kubectl")
            .args([
                "config",
                "view",
                "--raw",
                "-o",
                "jsonpath={.clusters[0].cluster.server} {.current-context}",
                "--kubeconfig",
            ])
            .arg(&c));
        assert!(
            view.status.success(),
            "{}: {}",
            c.display(),
            String::from_utf8_lossy(&view.stderr)
        );
        let text = String::from_utf8_lossy(&view.stdout).into_owned();
        let (server, context) = text.split_once(' ').unwrap();
        let name = c.file_name().unwrap().to_string_lossy();
        // kubeadm's server rules: the local apiserver for the control-plane components (and
        // the control-plane kubelets), the endpoint for everyone else.
        let local = matches!(&*name, "controller-manager.conf" | "scheduler.conf")
            || (name == "kubelet.conf" && c.to_string_lossy().contains("/control-"));
        if local {
            assert!(
                server.starts_with("https://10.10.16.1") && server.ends_with(":6443"),
                "{}: {server}",
                c.display()
            );
        } else {
            assert_eq!(server, "https://api.kubelius:6443", "{}", c.display());
        }
        assert!(context.ends_with("@kubelius"), "{context}");
        let ctx = run(Command::new("kubectl")
            .args(["config", "get-contexts", "--kubeconfig"])
            .arg(&c));
        assert!(ctx.status.success() && String::from_utf8_lossy(&ctx.stdout).contains(context));
    }
}

fn inventory(file: &str) -> BTreeSet<String> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("flags")
        .join(file);
    std::fs::read_to_string(&p)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("--"))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_rendered_flag_exists_in_its_version() {
    for release in RELEASES {
        for etcd in ["3.4.23", "3.5.21", "3.6.6", "3.7.1"] {
            let mut spec = common::lab();
            spec.kubernetes_version = format!("v1.{}.2", release.minor).parse().unwrap();
            spec.etcd.version = Some(etcd.parse().unwrap());
            let (_dir, rendered) = common::render_to_dir(&spec);
            let etcd_minor = &etcd[..3];
            for node in &rendered.nodes {
                for f in node
                    .files
                    .iter()
                    .filter(|f| f.path.starts_with("/etc/kubernetes/manifests/"))
                {
                    let pod: Pod = serde_norway::from_slice(&f.contents)
                        .unwrap_or_else(|e| panic!("{} is not a Pod: {e}", f.path));
                    assert_eq!(pod.metadata.namespace.as_deref(), Some("kube-system"));
                    let c = &pod.spec.as_ref().unwrap().containers[0];
                    let cmd = c.command.as_ref().unwrap();
                    let binary = &cmd[0];
                    let inv = if binary == "etcd" {
                        inventory(&format!("etcd-{etcd_minor}.txt"))
                    } else {
                        inventory(&format!("{binary}-1.{}.txt", release.minor))
                    };
                    for arg in &cmd[1..] {
                        let name = arg.strip_prefix("--").unwrap().split('=').next().unwrap();
                        assert!(
                            inv.contains(name),
                            "v1.{} etcd {etcd}: {binary} --{name} is not in its inventory",
                            release.minor
                        );
                    }
                    if binary != "etcd" {
                        assert!(
                            c.image
                                .as_ref()
                                .unwrap()
                                .ends_with(&format!(":v1.{}.2", release.minor))
                        );
                    }
                }
                for u in &node.units {
                    let text = u.to_string();
                    let exec: Vec<&str> = text
                        .lines()
                        .skip_while(|l| !l.starts_with("ExecStart="))
                        .take_while(|l| {
                            l.ends_with('\\')
                                || l.starts_with("ExecStart=")
                                || l.trim_start().starts_with("--")
                        })
                        .collect();
                    // Units the OS ships (enabled or masked) and our oneshots (waiting for
                    // DNS, the day-one script) run no Kubernetes binary.
                    if exec.is_empty() || !exec[0].starts_with("ExecStart=/usr/local/bin/") {
                        continue;
                    }
                    let binary = exec[0]
                        .trim_start_matches("ExecStart=")
                        .split_whitespace()
                        .next()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap();
                    let inv = if binary == "etcd" {
                        inventory(&format!("etcd-{etcd_minor}.txt"))
                    } else {
                        inventory(&format!("{binary}-1.{}.txt", release.minor))
                    };
                    for l in &exec[1..] {
                        let name = l
                            .trim()
                            .trim_end_matches('\\')
                            .trim()
                            .strip_prefix("--")
                            .unwrap()
                            .split('=')
                            .next()
                            .unwrap();
                        assert!(inv.contains(name), "{}: {binary} --{name}", u.name);
                    }
                }
            }
        }
    }
}

#[test]
fn unknown_extra_args_are_refused_naming_the_field() {
    let mut spec = common::lab();
    spec.api_server
        .extra_args
        .insert("insecure-port".into(), "0".into());
    let pki = frankenetes_pki::Pki::generate(&frankenetes_pki::PkiPlan::from(&spec)).unwrap();
    let err = frankenetes_manifests::render(&spec, &pki)
        .unwrap_err()
        .to_string();
    assert_eq!(
        frankenetes_manifests::check(&spec).unwrap_err().to_string(),
        err,
        "check finds it without a PKI"
    );
    assert_eq!(
        err,
        "spec.apiServer.extraArgs.insecure-port: --insecure-port does not exist in kube-apiserver-1.35; remove it or pick another version"
    );
    let mut spec = common::lab();
    spec.kubernetes_version = "v1.34.1".parse().unwrap();
    let err = frankenetes_manifests::render(&spec, &pki)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.kubernetesVersion: v1.34.1 is not supported"),
        "{err}"
    );
}

#[test]
fn extra_args_and_volumes_reach_the_pod() {
    let mut spec = common::lab();
    spec.api_server
        .extra_args
        .insert("authorization-mode".into(), "Node,RBAC,Webhook".into());
    spec.etcd
        .extra_args
        .insert("quota-backend-bytes".into(), "8589934592".into());
    let (_dir, rendered) = common::render_to_dir(&spec);
    let node = rendered.node("control-02").unwrap();
    let api = std::str::from_utf8(
        &node
            .file("/etc/kubernetes/manifests/kube-apiserver.yaml")
            .unwrap()
            .contents,
    )
    .unwrap()
    .to_owned();
    assert!(
        api.contains("--authorization-mode=Node,RBAC,Webhook")
            && !api.contains("--authorization-mode=Node,RBAC\n")
    );
    let etcd = std::str::from_utf8(
        &node
            .file("/etc/kubernetes/manifests/etcd.yaml")
            .unwrap()
            .contents,
    )
    .unwrap()
    .to_owned();
    assert!(etcd.contains("--quota-backend-bytes=8589934592"));
}

#[test]
fn second_render_changes_no_byte() {
    let spec = common::lab();
    let (dir, _) = common::render_to_dir(&spec);
    let state = |p: std::path::PathBuf| {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let bytes = if meta.file_type().is_symlink() {
            std::fs::read_link(&p)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else {
            std::fs::read(&p).unwrap()
        };
        (bytes, meta.modified().unwrap(), p)
    };
    let before: Vec<_> = files(dir.path(), &|_| true)
        .into_iter()
        .map(state)
        .collect();
    let plan = frankenetes_pki::PkiPlan::from(&spec);
    let (pki, _) = frankenetes_pki::sync(&plan, dir.path(), Default::default()).unwrap();
    let report = frankenetes_manifests::render(&spec, &pki)
        .unwrap()
        .write(dir.path())
        .unwrap();
    assert!(report.written.is_empty(), "{:?}", report.written);
    let after: Vec<_> = files(dir.path(), &|_| true)
        .into_iter()
        .map(state)
        .collect();
    assert_eq!(before, after);
}
