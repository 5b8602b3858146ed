//! Health checks, each bounded by a deadline: etcd (members, every endpoint, a probe key),
//! every apiserver's `/readyz`, the leader leases. A check returns `None` when healthy, else
//! what it saw — a sentence naming the endpoint.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use frankenetes_spec::{ClusterSpec, NodeSpec, ports};

use crate::etcd::{self, EtcdAuth};

/// How long one probe of one endpoint may take before it counts as down.
pub(crate) const PROBE: Duration = Duration::from_secs(3);

/// Runs `f` for at most `limit`; a timeout is reported as what it waited for.
pub(crate) async fn bounded<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "{what}: no answer within {}s (something accepts connections there but does not answer)",
            limit.as_secs()
        )),
    }
}

/// etcd: `None` when `expected` members are started, every endpoint answers and a probe key
/// goes through.
pub(crate) async fn etcd_problem(
    endpoints: &[String],
    auth: &EtcdAuth,
    expected: usize,
) -> Option<String> {
    let h = bounded(
        PROBE * 2,
        &format!("etcd at {}", endpoints.join(",")),
        async {
            etcd::health(endpoints, auth)
                .await
                .map_err(|e| e.to_string())
        },
    )
    .await;
    match h {
        Ok(h) if h.is_healthy(expected) => None,
        Ok(h) => Some(format!(
            "{} of {expected} members started; endpoints: {}{}",
            h.members.len(),
            h.endpoints
                .iter()
                .map(|(e, r)| match r {
                    Ok(_) => format!("{e} ok"),
                    Err(why) => format!("{e} down ({})", first_line(why)),
                })
                .collect::<Vec<_>>()
                .join(", "),
            if h.probe_ok {
                ""
            } else {
                "; the probe key did not go through"
            }
        )),
        Err(e) => Some(e),
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s)
}

/// The client credentials health checks use against the apiservers (the break-glass
/// `system:masters` client, which needs no RBAC to be in place yet).
#[derive(Debug, Clone)]
pub(crate) struct ApiAuth {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl ApiAuth {
    /// From an output layout's cluster PKI and a node's CA.
    pub(crate) fn new(node_pki: &Path, cluster_pki: &Path) -> Self {
        Self {
            ca: node_pki.join("ca.crt"),
            cert: cluster_pki.join("super-admin.crt"),
            key: cluster_pki.join("super-admin.key"),
        }
    }
}

/// `GET https://<node>:6443<path>`, bounded.
pub(crate) async fn api_get(
    node: &NodeSpec,
    path: &str,
    auth: &ApiAuth,
) -> Result<(u16, String), String> {
    let addr = SocketAddr::new(node.ip, ports::APISERVER);
    let url = format!("https://{addr}{path}");
    bounded(PROBE, &url, async {
        crate::https::get(
            addr,
            &node.ip.to_string(),
            path,
            &auth.ca,
            &auth.cert,
            &auth.key,
        )
        .await
        .map_err(|e| format!("{url}: {e}"))
    })
    .await
}

/// Every apiserver's `/readyz`: `None` when all answer 200.
pub(crate) async fn readyz_problem(nodes: &[NodeSpec], auth: &ApiAuth) -> Option<String> {
    let results = futures_util::future::join_all(
        nodes
            .iter()
            .map(|n| async move { (n, api_get(n, "/readyz", auth).await) }),
    )
    .await;
    let problems: Vec<String> = results
        .into_iter()
        .filter_map(|(n, r)| match r {
            Ok((200, _)) => None,
            Ok((code, body)) => Some(format!(
                "{}: /readyz {code} {}",
                n.name,
                body.lines()
                    .filter(|l| l.contains("failed"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
            Err(e) => Some(format!("{}: {e}", n.name)),
        })
        .collect();
    (!problems.is_empty()).then(|| problems.join(", "))
}

/// The controller-manager's and the scheduler's leader leases, read through `node`.
pub(crate) async fn leases_problem(node: &NodeSpec, auth: &ApiAuth) -> Option<String> {
    for lease in ["kube-controller-manager", "kube-scheduler"] {
        let path = format!("/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/{lease}");
        match api_get(node, &path, auth).await {
            Ok((200, body)) if body.contains("holderIdentity") => {}
            Ok((404, _)) => return Some(format!("lease {lease}: not taken yet")),
            Ok((code, _)) => return Some(format!("lease {lease}: HTTP {code}")),
            Err(e) => return Some(e),
        }
    }
    None
}

/// The etcd endpoints and credentials of a spec in a cluster directory's bundle.
pub(crate) fn etcd_access(spec: &ClusterSpec, node_pki: &Path) -> (Vec<String>, EtcdAuth) {
    (spec.etcd_endpoints(), EtcdAuth::healthcheck(node_pki))
}
