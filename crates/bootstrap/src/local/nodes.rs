//! The local platform's workers: what they run (containerd always, when it is installed and
//! this process is root; the kubelet and kube-proxy when found), the files they read, their
//! gates (containerd's CRI answers, the kubelet's `/healthz`, the node `Ready`) and their
//! clean-up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use frankenetes_compute::{
    BackendError, BackendErrorKind, ClusterTag, ContainerSpec, NodeRole, OnProgress, Progress,
    UnitSpec, Workload,
};

use super::platform::find_binary;
use super::preflight::{port_free, port_holder};
use super::runtime;
use super::worker::{self, CNI_CONFIG, Worker};
use crate::fetch::Binary;

/// The node's containerd configuration, as rendered for a machine.
const CONTAINERD_CONFIG: &str = "/etc/containerd/config.toml";
/// The node's kubelet configuration, as rendered for a machine.
const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";

/// The kubelet's ports on its node's address: its API and `/healthz`.
const KUBELET_PORTS: [u16; 2] = [10250, 10248];
/// kube-proxy's ports on its node's address: `/healthz` and metrics.
const KUBE_PROXY_PORTS: [u16; 2] = [10256, 10249];

fn invalid(m: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Invalid, m)
}

fn other(m: impl Into<String>) -> BackendError {
    BackendError::new(BackendErrorKind::Other, m)
}

/// What the workers of a workload run here.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    /// Every worker of the spec.
    pub workers: Vec<Worker>,
    /// containerd, when the workers can run it (installed, with `ctr`; this process is root).
    pub containerd: Option<PathBuf>,
    /// The kubelet of the spec's release, when found.
    pub kubelet: Option<PathBuf>,
    /// kube-proxy of the spec's release, when found.
    pub kube_proxy: Option<PathBuf>,
    /// The spec's Kubernetes minor (its flag inventories).
    pub minor: u32,
    /// What the user should know (each said once, by `plan` and `up`).
    pub warnings: Vec<String>,
}

/// Whether this process runs as root (containerd and the kubelet need it).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|e| e == "0"))
        })
        .unwrap_or(false)
}

impl Workers {
    /// The workers of `w` under `run_dir`; `node_binaries` finds the kubelet and kube-proxy
    /// (`None`: not found).
    pub(crate) fn of(
        w: &Workload,
        run_dir: &Path,
        bin_dir: Option<&Path>,
        node_binaries: &[(Binary, Option<PathBuf>)],
    ) -> Result<Workers, BackendError> {
        let workers = worker::workers(w, run_dir).map_err(invalid)?;
        let version: frankenetes_spec::KubernetesVersion =
            w.kubernetes_version.parse().map_err(|e| {
                invalid(format!(
                    "spec.kubernetesVersion {:?}: {e}",
                    w.kubernetes_version
                ))
            })?;
        let mut out = Workers {
            workers,
            minor: version.minor,
            ..Workers::default()
        };
        if out.workers.is_empty() {
            return Ok(out);
        }
        let containerd = find_binary("containerd", bin_dir);
        let ctr = find_binary("ctr", bin_dir);
        if containerd.is_none() || ctr.is_none() {
            out.warnings.push(
                "`containerd` (and its `ctr`) not found in PATH: the workers run nothing; install \
                 them (Debian: apt-get install containerd containernetworking-plugins)"
                    .into(),
            );
            return Ok(out);
        }
        if !is_root() {
            out.warnings.push(
                "the workers run nothing: their containerd (and kubelet) need root; run `up` as \
                 root for them"
                    .into(),
            );
            return Ok(out);
        }
        out.containerd = containerd;
        if worker::cni_bin_dir().is_none() {
            out.warnings.push(
                "the CNI plugins `bridge` and `host-local` were not found in /usr/lib/cni or \
                 /opt/cni/bin: pods will get no network; install them (Debian: apt-get install \
                 containernetworking-plugins)"
                    .into(),
            );
        }
        let find = |b: Binary| {
            node_binaries
                .iter()
                .find(|(x, _)| *x == b)
                .and_then(|(_, p)| p.clone())
        };
        out.kubelet = find(Binary::Kubelet);
        out.kube_proxy = find(Binary::KubeProxy);
        let missing: Vec<&str> = [Binary::Kubelet, Binary::KubeProxy]
            .into_iter()
            .filter(|b| find(*b).is_none())
            .map(Binary::name)
            .collect();
        let what = match (&out.kubelet, &out.kube_proxy) {
            (None, _) => "the workers run containerd alone (no node registers)",
            // The day-one objects leave kubeadm's DaemonSet out on this platform: nothing
            // else would proxy Services.
            (Some(_), None) => "the workers' kubelets run, but nothing proxies Services",
            _ => "",
        };
        if !missing.is_empty() {
            out.warnings.push(format!(
                "{} not found: {what}; `frankenetes fetch` downloads them, or pass --bin-dir DIR",
                missing.join(", ")
            ));
        }
        Ok(out)
    }

    /// The node's bundle directory (its files at their machine paths below it).
    fn node_root(cluster_dir: &Path, node: &str) -> PathBuf {
        frankenetes_bundle::OutputLayout::new(cluster_dir.join("bundle")).node_root(node)
    }

    /// The units: each worker's containerd, then its kubelet; one kube-proxy (the first
    /// worker's: the host's iptables are shared by every local node). The kubelet's and
    /// kube-proxy's command lines are checked against their inventories for the spec's minor.
    pub(crate) fn units(
        &self,
        tag: &ClusterTag,
        cluster_dir: &Path,
    ) -> Result<Vec<UnitSpec>, BackendError> {
        let Some(containerd) = &self.containerd else {
            return Ok(Vec::new());
        };
        let unit = |name: &str, node: &str, command: Vec<String>| {
            UnitSpec::container_group(
                format!("{name}-{node}"),
                tag.clone(),
                vec![ContainerSpec::new(name, "", command)],
            )
        };
        let mut units = Vec::new();
        for w in &self.workers {
            units.push(unit(
                "containerd",
                &w.node,
                w.containerd_command(containerd),
            ));
            if let Some(k) = &self.kubelet {
                let root = Self::node_root(cluster_dir, &w.node);
                let command = w.kubelet_command(k, &root, self.minor).map_err(invalid)?;
                units.push(unit("kubelet", &w.node, command));
            }
        }
        if let (Some(p), Some(first)) = (&self.kube_proxy, self.workers.first()) {
            let command = first.kube_proxy_command(p, self.minor).map_err(invalid)?;
            units.push(unit("kube-proxy", &first.node, command));
        }
        Ok(units)
    }

    /// Checks what `up` would otherwise fail on later: socket paths, the kubelet's and
    /// kube-proxy's ports (unless this cluster's own units hold them).
    pub(crate) fn preflight(&self, running: &[String]) -> Result<(), BackendError> {
        if self.containerd.is_none() {
            return Ok(());
        }
        for (i, w) in self.workers.iter().enumerate() {
            w.check_socket().map_err(invalid)?;
            let mut ports: Vec<(&str, u16)> = Vec::new();
            if self.kubelet.is_some() {
                ports.extend(KUBELET_PORTS.map(|p| ("kubelet", p)));
            }
            if self.kube_proxy.is_some() && i == 0 {
                ports.extend(KUBE_PROXY_PORTS.map(|p| ("kube-proxy", p)));
            }
            for (c, port) in ports {
                if running.contains(&format!("{c}-{}", w.node)) || port_free(w.ip, port) {
                    continue;
                }
                let holder = port_holder(w.ip, port)
                    .map(|h| format!(" by {h}"))
                    .unwrap_or_default();
                return Err(invalid(format!(
                    "{c} of node {} needs {}:{port}, which is already taken{holder}: stop that \
                     process, or give the node another address",
                    w.node, w.ip
                )));
            }
        }
        Ok(())
    }

    /// Writes every worker's files: containerd's configuration, the CNI configuration, the
    /// kubelet's and kube-proxy's, and the marker `down` reads.
    pub(crate) fn provision(
        &self,
        w: &Workload,
        cluster_dir: &Path,
        on: OnProgress<'_>,
    ) -> Result<(), BackendError> {
        if self.containerd.is_none() {
            return Ok(());
        }
        for wk in &self.workers {
            let node = w
                .node(&wk.node)
                .filter(|n| n.role == NodeRole::Worker)
                .ok_or_else(|| other(format!("worker {} is not in the workload", wk.node)))?;
            let file = |path: &str| {
                node.file(path)
                    .map(|f| String::from_utf8_lossy(&f.contents).into_owned())
                    .ok_or_else(|| other(format!("node {}: no {path} was rendered", wk.node)))
            };
            let private = |d: &Path| {
                frankenetes_bundle::fs::ensure_private_dir(d).map_err(|e| other(e.to_string()))
            };
            let write = |p: &Path, text: &str| {
                frankenetes_bundle::fs::write_atomic(p, text.as_bytes(), 0o600)
                    .map_err(|e| other(e.to_string()))
            };
            private(&wk.dir)?;
            private(&wk.containerd_dir())?;
            private(&wk.cni_conf_dir())?;
            let config = wk
                .render_containerd_config(&file(CONTAINERD_CONFIG)?)
                .map_err(|e| other(format!("node {}: {e}", wk.node)))?;
            write(&wk.containerd_config(), &config)?;
            write(
                &wk.cni_conf_dir().join(CNI_CONFIG),
                &serde_json::to_string_pretty(&wk.cni_conflist())
                    .map_err(|e| other(e.to_string()))?,
            )?;
            let root = Self::node_root(cluster_dir, &wk.node);
            if self.kubelet.is_some() {
                let kc = wk
                    .kubelet_config_json(&file(KUBELET_CONFIG)?, &root)
                    .map_err(|e| other(format!("node {}: {e}", wk.node)))?;
                write(&wk.kubelet_config(), &kc.to_string())?;
                private(&wk.dir.join("manifests"))?;
            }
            if self.kube_proxy.is_some() {
                write(
                    &wk.kube_proxy_config(),
                    &wk.kube_proxy_config_json(&root).to_string(),
                )?;
            }
            wk.write_marker().map_err(other)?;
            on(Progress::Info(format!(
                "{}: containerd on {}, pods in {} (bridge {})",
                wk.node,
                wk.socket().display(),
                wk.subnet,
                wk.bridge
            )));
        }
        Ok(())
    }

    /// Waits for every worker's gates: containerd's CRI plugin answers; the kubelet's
    /// `/healthz` is ok; with the apiserver tier, the node is `Ready`.
    pub(crate) async fn await_gates(
        &self,
        admin_conf: Option<&Path>,
        timeout: Duration,
        on: OnProgress<'_>,
    ) -> Result<(), BackendError> {
        if self.containerd.is_none() {
            return Ok(());
        }
        let deadline = Instant::now() + timeout;
        for w in &self.workers {
            let wk = w.clone();
            wait(deadline, timeout, on, || {
                let wk = wk.clone();
                async move {
                    tokio::task::spawn_blocking(move || runtime::cri_problem(&wk))
                        .await
                        .unwrap_or_else(|e| Some(e.to_string()))
                }
            })
            .await?;
            on(Progress::Info(format!(
                "{}: containerd's CRI answers",
                w.node
            )));
            if self.kubelet.is_none() {
                continue;
            }
            wait(deadline, timeout, on, || kubelet_problem(w)).await?;
            on(Progress::Info(format!(
                "{}: the kubelet is healthy",
                w.node
            )));
            if let Some(admin) = admin_conf {
                wait(deadline, timeout, on, || node_problem(admin, &w.node)).await?;
                on(Progress::Info(format!("{}: node Ready", w.node)));
            }
        }
        Ok(())
    }
}

/// Polls `problem` until it is `None` or the deadline passes.
async fn wait<F, Fut>(
    deadline: Instant,
    timeout: Duration,
    on: OnProgress<'_>,
    problem: F,
) -> Result<(), BackendError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<String>>,
{
    let mut last = String::new();
    loop {
        match problem().await {
            None => return Ok(()),
            Some(p) => {
                if p != last {
                    on(Progress::Waiting(p.clone()));
                }
                last = p;
            }
        }
        if Instant::now() >= deadline {
            return Err(BackendError::new(
                BackendErrorKind::Other,
                format!("workers not healthy after {}s: {last}", timeout.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// What keeps the kubelet's `/healthz` (plain HTTP on its node's address) from answering ok.
async fn kubelet_problem(w: &Worker) -> Option<String> {
    healthz_problem(&format!("kubelet of {}", w.node), w.ip, KUBELET_PORTS[1]).await
}

/// What keeps a `/healthz` on plain HTTP at `ip:port` from answering 200 (`what` names the
/// component for the message).
async fn healthz_problem(what: &str, ip: std::net::IpAddr, port: u16) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = std::net::SocketAddr::new(ip, port);
    let talk = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&buf).into_owned())
    };
    match tokio::time::timeout(Duration::from_secs(3), talk).await {
        Ok(Ok(r))
            if r.lines()
                .next()
                .is_some_and(|l| l.starts_with("HTTP/1.") && l.contains(" 200 ")) =>
        {
            None
        }
        Ok(Ok(r)) => Some(format!(
            "{what}: /healthz on {addr} answered {}",
            r.lines().next().unwrap_or_default()
        )),
        Ok(Err(e)) => Some(format!("{what}: /healthz on {addr}: {e}")),
        Err(_) => Some(format!("{what}: /healthz on {addr} timed out")),
    }
}

/// What keeps node `name` from being `Ready`, asked of the apiserver with `admin`.
async fn node_problem(admin: &Path, name: &str) -> Option<String> {
    use k8s_openapi::api::core::v1::Node;
    let client = match crate::dayone::client(admin, None).await {
        Ok(c) => c,
        Err(e) => return Some(e.to_string()),
    };
    let nodes: kube::Api<Node> = kube::Api::all(client);
    match nodes.get_opt(name).await {
        Ok(None) => Some(format!("node {name} has not registered")),
        Ok(Some(n)) => {
            let ready = n
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .into_iter()
                .find(|c| c.type_ == "Ready");
            match ready {
                Some(c) if c.status == "True" => None,
                Some(c) => Some(format!(
                    "node {name} is not Ready: {}",
                    c.message.unwrap_or(c.status)
                )),
                None => Some(format!("node {name} has no Ready condition yet")),
            }
        }
        Err(e) => Some(format!("node {name}: {e}")),
    }
}

/// The health of the running units of the workers of `cluster` (recorded under `run_dir`),
/// for `status`: `containerd-<node>`, its CRI plugin answers; `kubelet-<node>`, its
/// `/healthz` is ok and, with `admin` (the apiserver tier runs), its node is `Ready`;
/// `kube-proxy-<node>`, its `/healthz` is ok (kube-proxy says 503 until its rules are synced).
pub(crate) async fn unit_health(
    run_dir: &Path,
    cluster: &str,
    running: &[String],
    admin: Option<&Path>,
) -> Vec<(String, Result<String, String>)> {
    let mut out = Vec::new();
    let is_running = |unit: &str| running.iter().any(|r| r == unit);
    for w in Worker::recorded(run_dir, cluster) {
        let unit = format!("containerd-{}", w.node);
        if is_running(&unit) {
            let wk = w.clone();
            let problem = tokio::task::spawn_blocking(move || runtime::cri_problem(&wk))
                .await
                .unwrap_or_else(|e| Some(e.to_string()));
            out.push((unit, problem.map_or(Ok("CRI ok".into()), Err)));
        }
        let unit = format!("kubelet-{}", w.node);
        if is_running(&unit) {
            let health = match (kubelet_problem(&w).await, admin) {
                (Some(p), _) => Err(p),
                (None, None) => Ok("/healthz ok".into()),
                (None, Some(admin)) => {
                    let ready =
                        tokio::time::timeout(Duration::from_secs(10), node_problem(admin, &w.node))
                            .await
                            .unwrap_or_else(|_| {
                                Some(format!("node {}: the apiserver did not answer", w.node))
                            });
                    ready.map_or(Ok("/healthz ok, node Ready".into()), Err)
                }
            };
            out.push((unit, health));
        }
        let unit = format!("kube-proxy-{}", w.node);
        if is_running(&unit) {
            let what = format!("kube-proxy of {}", w.node);
            let problem = healthz_problem(&what, w.ip, KUBE_PROXY_PORTS[0]).await;
            out.push((unit, problem.map_or(Ok("/healthz ok".into()), Err)));
        }
    }
    out
}

/// `down`'s part for the workers of `cluster`: before the units stop, their containers are
/// drained through containerd; after, whatever is left is removed ([`runtime::sweep`]).
pub(crate) fn drain_all(run_dir: &Path, cluster: &str) {
    for w in Worker::recorded(run_dir, cluster) {
        runtime::drain(&w);
    }
}

/// See [`drain_all`].
pub(crate) fn sweep_all(run_dir: &Path, cluster: &str, on: OnProgress<'_>) {
    for w in Worker::recorded(run_dir, cluster) {
        for done in runtime::sweep(&w) {
            on(Progress::Info(done));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers every connection on `ip:port` with `status` (one HTTP/1.0 response each).
    async fn serve(ip: &str, port: u16, status: &'static str) -> tokio::task::JoinHandle<()> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 512];
                let _ = s.read(&mut buf).await;
                let _ = s
                    .write_all(format!("HTTP/1.0 {status}\r\n\r\nok").as_bytes())
                    .await;
            }
        })
    }

    #[tokio::test]
    async fn status_asks_each_running_worker_unit() {
        let tmp = tempfile::tempdir().unwrap();
        let run = tmp.path().join("run");
        let ip = "127.0.0.231";
        let w = Worker {
            node: "worker-09".into(),
            cluster: "health".into(),
            ip: ip.parse().unwrap(),
            dir: run.join("worker-09"),
            subnet: "10.244.0.0/24".into(),
            pod_cidr: worker::DEFAULT_POD_CIDR.into(),
            bridge: "fk00000000".into(),
            cni_bin_dir: PathBuf::from("/usr/lib/cni"),
        };
        frankenetes_bundle::fs::ensure_private_dir(&w.dir).unwrap();
        w.write_marker().unwrap();
        let units = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let kubelet = serve(ip, KUBELET_PORTS[1], "200 OK").await;
        let proxy = serve(ip, KUBE_PROXY_PORTS[0], "503 Service Unavailable").await;
        let running = units(&["kubelet-worker-09", "kube-proxy-worker-09"]);
        let h = unit_health(&run, "health", &running, None).await;
        assert_eq!(h[0], ("kubelet-worker-09".into(), Ok("/healthz ok".into())));
        let (unit, proxy_health) = &h[1];
        assert_eq!(unit, "kube-proxy-worker-09");
        let e = proxy_health.clone().unwrap_err();
        assert!(
            e.contains("503") && e.contains("kube-proxy of worker-09"),
            "{e}"
        );
        assert_eq!(h.len(), 2, "{h:?}");
        // Units that do not run are not asked; another cluster's workers are not ours.
        assert!(unit_health(&run, "health", &[], None).await.is_empty());
        assert!(unit_health(&run, "other", &running, None).await.is_empty());
        // A containerd that does not answer (no socket): unhealthy, naming it.
        let h = unit_health(&run, "health", &units(&["containerd-worker-09"]), None).await;
        let e = h[0].1.clone().unwrap_err();
        assert!(e.contains("containerd of worker-09"), "{e}");
        // Nothing listening: the kubelet is unhealthy.
        kubelet.abort();
        proxy.abort();
        let _ = kubelet.await;
        let h = unit_health(&run, "health", &units(&["kubelet-worker-09"]), None).await;
        let e = h[0].1.clone().unwrap_err();
        assert!(
            e.contains("kubelet of worker-09: /healthz on 127.0.0.231:10248"),
            "{e}"
        );
    }
}
