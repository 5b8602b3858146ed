//! Helpers shared by the integration tests: external tools, free ports, processes stopped by
//! PID when the test ends (also when it fails).

#![allow(dead_code, unreachable_pub, clippy::expect_used, clippy::unwrap_used)] // shared by several test binaries; tests fail by panicking

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use frankenetes_spec::ClusterSpec;

/// Fails (not skips) with an install hint when a tool the tests rely on is missing.
pub fn require_tool(name: &str, package: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        let p = dir.join(name);
        if p.is_file() {
            return p;
        }
    }
    panic!(
        "`{name}` is not installed: run ./scripts/install-deps.sh (or apt-get install {package})"
    );
}

/// Runs a command, returning its output; panics if it cannot be started.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A child process killed (by PID) and reaped when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: &Path) -> Proc {
        let f = std::fs::File::create(log).expect("log file");
        let f2 = f.try_clone().expect("log file");
        let child = cmd
            .stdout(f)
            .stderr(f2)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub fn wait_for<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if start.elapsed() > timeout {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The README-style spec with the given CA mode and algorithm.
pub fn spec(ca_mode: &str, alg: &str) -> ClusterSpec {
    let yaml = format!(
        "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: kubelius}}\nspec:\n  kubernetesVersion: v1.35.0\n  \
         controlPlaneEndpoint: api.kubelius:6443\n  network: {{serviceCIDR: 10.96.0.0/16, podCIDR: 10.244.0.0/16}}\n  \
         pki: {{caMode: {ca_mode}, keyAlgorithm: {alg}}}\n  controlPlane:\n    - {{name: control-01, ip: 127.0.0.11}}\n    \
         - {{name: control-02, ip: 127.0.0.12}}\n    - {{name: control-03, ip: 127.0.0.13}}\n  workers:\n    \
         - {{name: worker-01, ip: 127.0.0.21}}\n"
    );
    ClusterSpec::from_yaml(&yaml).expect("test spec").spec
}

/// Every file under `dir` with its bytes, sorted by path.
pub fn snapshot_tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>, std::time::SystemTime)> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).expect("readable dir") {
            let p = e.expect("entry").path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).expect("readable");
            let mtime = std::fs::metadata(&p)
                .and_then(|m| m.modified())
                .expect("mtime");
            (
                p.strip_prefix(dir).expect("under dir").to_owned(),
                bytes,
                mtime,
            )
        })
        .collect()
}

/// A kubeadm-shaped kubeconfig (what `frankenetes render` writes) for `user` with the leaf's
/// certificate file and key embedded.
pub fn kubeconfig_text(pki: &frankenetes_pki::Pki, leaf: &str, user: &str) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let l = pki.leaf(leaf).unwrap_or_else(|| panic!("no leaf {leaf}"));
    let ca = pki
        .ca(frankenetes_pki::CaId::Kubernetes)
        .expect("a Kubernetes CA")
        .cert_pem();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: kubelius\n  cluster:\n    server: https://api.kubelius:6443\n    certificate-authority-data: {}\nusers:\n- name: {user}\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: {user}@kubelius\n  context:\n    cluster: kubelius\n    user: {user}\ncurrent-context: {user}@kubelius\npreferences: {{}}\n",
        b64(ca),
        b64(l.cert_pem()),
        b64(l.key_pem())
    )
}

/// Writes the kubeconfigs `render` makes, 0600: the operator's `cluster/{admin,super-admin}.conf`;
/// on control planes `/etc/kubernetes/{admin,super-admin,controller-manager,scheduler}.conf`;
/// on every node `/etc/kubernetes/kubelet.conf` and `/var/lib/kube-proxy/kubeconfig.conf`.
/// Returns their paths relative to `dir`, sorted.
pub fn write_kubeconfigs(dir: &Path, pki: &frankenetes_pki::Pki) -> Vec<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let plan = pki.plan();
    let mut files: Vec<(PathBuf, String)> = vec![
        (
            "cluster/admin.conf".into(),
            kubeconfig_text(pki, "admin", "kubernetes-admin"),
        ),
        (
            "cluster/super-admin.conf".into(),
            kubeconfig_text(pki, "super-admin", "kubernetes-super-admin"),
        ),
    ];
    for n in &plan.control_plane {
        let etc = Path::new("nodes").join(n).join("etc/kubernetes");
        files.push((
            etc.join("admin.conf"),
            kubeconfig_text(pki, "admin", "kubernetes-admin"),
        ));
        files.push((
            etc.join("super-admin.conf"),
            kubeconfig_text(pki, "super-admin", "kubernetes-super-admin"),
        ));
        files.push((
            etc.join("controller-manager.conf"),
            kubeconfig_text(
                pki,
                &format!("{n}/controller-manager"),
                "system:kube-controller-manager",
            ),
        ));
        files.push((
            etc.join("scheduler.conf"),
            kubeconfig_text(pki, &format!("{n}/scheduler"), "system:kube-scheduler"),
        ));
    }
    for n in plan.control_plane.iter().chain(&plan.workers) {
        let node = Path::new("nodes").join(n);
        files.push((
            node.join("etc/kubernetes/kubelet.conf"),
            kubeconfig_text(
                pki,
                &format!("{n}/kubelet-client"),
                &format!("system:node:{n}"),
            ),
        ));
        files.push((
            node.join("var/lib/kube-proxy/kubeconfig.conf"),
            kubeconfig_text(pki, "kube-proxy", "system:kube-proxy"),
        ));
    }
    for (rel, text) in &files {
        let p = dir.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let mut out: Vec<PathBuf> = files.into_iter().map(|(p, _)| p).collect();
    out.sort();
    out
}

/// Every temporary file of an atomic write (`.<name>.tmp.<pid>.<n>`) under `dir`.
pub fn temp_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&p, out);
            } else if e.file_name().to_string_lossy().contains(".tmp.") {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, &mut out);
    out
}
