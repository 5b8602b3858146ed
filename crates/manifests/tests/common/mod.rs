//! Shared by the manifests tests: specs, rendering into a temp dir, tools.

#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)] // shared test helpers panic on failure

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use frankenetes_manifests::Rendered;
use frankenetes_pki::{PkiPlan, SyncOptions, sync};
use frankenetes_spec::ClusterSpec;

/// A three-control-plane spec on the given addresses with one worker.
pub fn spec(ips: [&str; 4], extra: &str) -> ClusterSpec {
    let yaml = format!(
        "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: kubelius}}\nspec:\n  kubernetesVersion: v1.35.0\n  \
         controlPlaneEndpoint: api.kubelius:6443\n  network: {{serviceCIDR: 10.96.0.0/16, podCIDR: 10.244.0.0/16}}\n  \
         pki: {{caMode: intermediate}}\n  controlPlane:\n    - {{name: control-01, ip: {}}}\n    \
         - {{name: control-02, ip: {}}}\n    - {{name: control-03, ip: {}}}\n  workers:\n    \
         - {{name: worker-01, ip: {}}}\n{extra}",
        ips[0], ips[1], ips[2], ips[3]
    );
    ClusterSpec::from_yaml(&yaml).expect("test spec").spec
}

/// The AWS-lab-like spec used for snapshots.
pub fn lab() -> ClusterSpec {
    spec(
        ["10.10.16.11", "10.10.16.12", "10.10.16.13", "10.10.16.21"],
        "",
    )
}

/// Writes the PKI and the bundles for `spec` under a new temp dir.
pub fn render_to_dir(spec: &ClusterSpec) -> (tempfile::TempDir, Rendered) {
    let dir = tempfile::tempdir().unwrap();
    let plan = PkiPlan::from(spec).at(time::macros::datetime!(2026-01-01 00:00 UTC));
    let (pki, _) = sync(&plan, dir.path(), SyncOptions::default()).unwrap();
    // Versions whose official hashes this release does not carry render for machines that
    // have the binaries (the hashes would be the caller's input).
    let known = frankenetes_manifests::BinarySource::official(
        &spec.kubernetes_version,
        frankenetes_spec::Arch::Amd64,
        frankenetes_manifests::NodeBinary::Kubelet,
    )
    .is_some();
    let opts = frankenetes_manifests::RenderOptions::default().binaries(if known {
        frankenetes_manifests::Binaries::default()
    } else {
        frankenetes_manifests::Binaries::Preinstalled
    });
    let rendered = frankenetes_manifests::render_opts(spec, &pki, &opts).unwrap();
    rendered.write(dir.path()).unwrap();
    (dir, rendered)
}

/// Fails (not skips) with an install hint when a tool is missing.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    for dir in std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed: run ./scripts/install-deps.sh (or apt-get install {package})"
    );
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Every file under `dir` matching `pred`, sorted.
pub fn files(dir: &Path, pred: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(dir, &mut all);
    all.retain(|p| pred(p));
    all.sort();
    all
}

/// A child process killed (by PID) and reaped when dropped, also when the test fails.
pub struct Proc {
    pub name: String,
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let f = std::fs::File::create(log).unwrap();
        let child = cmd
            .stdout(f.try_clone().unwrap())
            .stderr(f)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.into(),
            child,
            log: log.into(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub mod systemd;
