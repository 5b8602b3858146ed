//! What the real-etcd tests of the local platform share: the tool check, the guard that
//! stops every process a test started, a three-member spec on loopback, a cluster over it.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // not every test uses all

use std::path::Path;
use std::time::Duration;

use frankenetes_bootstrap::{Cluster, LocalBackend, LocalPlatform, Options, etcd};
use frankenetes_spec::ClusterSpec;

pub(crate) fn require(tool: &str, package: &str) {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join(tool).is_file());
    assert!(
        found,
        "`{tool}` is not installed: run ./scripts/install-deps.sh (or apt-get install {package})"
    );
}

/// Stops every process the test started, also when it fails.
pub(crate) struct Guard(pub(crate) LocalBackend);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.stop_all();
    }
}

pub(crate) fn spec(name: &str, base: u8) -> ClusterSpec {
    let yaml = format!(
        "apiVersion: frankenetes.dev/v1alpha1\nkind: Cluster\nmetadata: {{name: {name}}}\nspec:\n  kubernetesVersion: v1.35.0\n  controlPlane:\n    \
         - {{name: control-01, ip: 127.0.0.{}}}\n    - {{name: control-02, ip: 127.0.0.{}}}\n    - {{name: control-03, ip: 127.0.0.{}}}\n",
        base,
        base + 1,
        base + 2
    );
    ClusterSpec::from_yaml(&yaml).unwrap().spec
}

pub(crate) fn cluster(name: &str, base: u8, dir: &Path) -> (Cluster<LocalPlatform>, Guard) {
    require("etcd", "etcd-server");
    require("etcdctl", "etcd-client");
    let opts = Options::new(dir).gate_timeout(Duration::from_secs(60));
    // Kubernetes binaries are looked up in PATH too; keep this test about the etcd tier.
    let platform = LocalPlatform::new(dir)
        .bin_dir(Some(dir.join("no-kube-binaries")))
        .cache(None);
    let c = Cluster::new(spec(name, base), platform, opts);
    (c, Guard(LocalBackend::new(dir.join("run"))))
}

pub(crate) async fn client(c: &Cluster<LocalPlatform>) -> etcd_client::Client {
    let (eps, auth) = c.etcd_access().unwrap();
    etcd::connect(&eps, &auth, Duration::from_secs(5))
        .await
        .unwrap()
}

pub(crate) fn cluster_with_window(
    spec: &ClusterSpec,
    dir: &Path,
    window: Duration,
) -> Cluster<LocalPlatform> {
    let opts = Options::new(dir)
        .gate_timeout(Duration::from_secs(60))
        .renew_window(window);
    let platform = LocalPlatform::new(dir)
        .bin_dir(Some(dir.join("no-kube-binaries")))
        .cache(None);
    Cluster::new(spec.clone(), platform, opts)
}
