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
