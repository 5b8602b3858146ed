//! Values derived from the spec. One method per value, used by every crate that needs it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::azure::AciComponent;
use crate::names::DnsName;
use crate::net::{San, kubeadm_san_order};
use crate::scalar::{Endpoint, Host, host_port};
use crate::{AzureBackend, BackendSpec, ClusterSpec, NodeSpec, Role};

/// Well-known ports of the control plane, as kubeadm uses them.
#[allow(unreachable_pub)]
pub mod ports {
    /// kube-apiserver's secure port (kubeadm's `bindPort`).
    pub const APISERVER: u16 = 6443;
    /// etcd client port.
    pub const ETCD_CLIENT: u16 = 2379;
    /// etcd peer port.
    pub const ETCD_PEER: u16 = 2380;
    /// etcd plain-HTTP metrics and health port (`--listen-metrics-urls`).
    pub const ETCD_METRICS: u16 = 2381;
    /// kube-controller-manager's secure port.
    pub const CONTROLLER_MANAGER: u16 = 10257;
    /// kube-scheduler's secure port.
    pub const SCHEDULER: u16 = 10259;
    /// The kubelet's API port.
    pub const KUBELET: u16 = 10250;
}

fn dns(s: &str) -> San {
    San::Dns(DnsName::try_from(s).unwrap_or_else(|_| unreachable!("constant DNS name {s}")))
}

impl ClusterSpec {
    /// The first address of the service CIDR: the `kubernetes` Service's cluster IP, which is
    /// also in the apiserver certificate.
    pub fn kubernetes_service_ip(&self) -> IpAddr {
        self.network
            .service_cidr
            .nth(1)
            .unwrap_or_else(|| self.network.service_cidr.net().network())
    }

    /// The tenth address of the service CIDR: the cluster DNS Service's IP, the kubelet's
    /// `clusterDNS`. Validation guarantees the CIDR is large enough.
    pub fn cluster_dns_ip(&self) -> IpAddr {
        self.network
            .service_cidr
            .nth(10)
            .unwrap_or_else(|| self.network.service_cidr.net().network())
    }

    /// The FQDN of a node's component when the backend is Azure (labels chosen up front:
    /// `{prefix}-{etcd|apiserver}-{index}.{location}.azurecontainer.io`); `None` otherwise.
    pub fn azure_fqdn(&self, component: AciComponent, node: &NodeSpec) -> Option<String> {
        match &self.backend {
            BackendSpec::Azure(az) => {
                Some(az.component_fqdn(component, AzureBackend::index_of(self, node)))
            }
            _ => None,
        }
    }

    /// `spec.controlPlaneEndpoint`, or the first control-plane node's address on 6443 (on
    /// Azure: the first apiserver group's FQDN on 6443).
    pub fn control_plane_endpoint(&self) -> Endpoint {
        if let Some(e) = &self.control_plane_endpoint {
            return e.clone();
        }
        if let Some(first) = self.control_plane.first()
            && let Some(Ok(host)) = self
                .azure_fqdn(AciComponent::ApiServer, first)
                .map(DnsName::try_from)
        {
            return Endpoint {
                host: Host::Dns(host),
                port: ports::APISERVER,
            };
        }
        let ip = self
            .control_plane
            .first()
            .map(|n| n.ip)
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
        Endpoint::ip(ip, ports::APISERVER)
    }

    /// The URL admins and kubelets reach the API at: `https://<controlPlaneEndpoint>`.
    pub fn control_plane_url(&self) -> String {
        self.control_plane_endpoint().https_url()
    }

    /// The URL of one node's own apiserver (`https://<ip>:6443`), which kubeadm puts in the
    /// controller-manager's and scheduler's kubeconfigs.
    /// On Azure, where each component runs in its own group, the node's apiserver FQDN.
    pub fn local_api_url(&self, node: &NodeSpec) -> String {
        if let Some(fqdn) = self.azure_fqdn(AciComponent::ApiServer, node) {
            return format!("https://{fqdn}:{}", ports::APISERVER);
        }
        format!("https://{}", host_port(node.ip, ports::APISERVER))
    }

    /// The service-account issuer: `https://kubernetes.default.svc.<dnsDomain>`.
    pub fn service_account_issuer(&self) -> String {
        format!("https://kubernetes.default.svc.{}", self.network.dns_domain)
    }

    /// The SANs of one control-plane node's apiserver certificate, in kubeadm's order: the
    /// node name, `kubernetes`, `kubernetes.default`, `kubernetes.default.svc`,
    /// `kubernetes.default.svc.<dnsDomain>`, the endpoint host if it is a name; then the first
    /// service IP, the node's IP and the endpoint host if it is an address; then
    /// `spec.apiServer.certSANs`. On Azure the node's apiserver FQDN takes the place of its IP.
    pub fn apiserver_sans(&self, node: &NodeSpec) -> Vec<San> {
        let mut sans = vec![
            San::Dns(node.name.clone().into()),
            dns("kubernetes"),
            dns("kubernetes.default"),
            dns("kubernetes.default.svc"),
            San::Dns(
                DnsName::try_from(format!(
                    "kubernetes.default.svc.{}",
                    self.network.dns_domain
                ))
                .unwrap_or_else(|_| {
                    DnsName::try_from("kubernetes.default.svc").unwrap_or_else(|_| unreachable!())
                }),
            ),
            San::Ip(self.kubernetes_service_ip()),
        ];
        match self.azure_fqdn(AciComponent::ApiServer, node) {
            // On Azure the node's `ip` is only an identity: the group is reached by its FQDN.
            Some(fqdn) => sans.extend(DnsName::try_from(fqdn).ok().map(San::Dns)),
            None => sans.push(San::Ip(node.ip)),
        }
        match self.control_plane_endpoint().host {
            Host::Dns(d) => sans.push(San::Dns(d)),
            Host::Ip(ip) => sans.push(San::Ip(ip)),
        }
        // `spec.apiServer.certSANs`; validation rejects entries that are neither.
        for extra in &self.api_server.cert_sans {
            if let Ok(ip) = extra.parse::<IpAddr>() {
                sans.push(San::Ip(ip));
            } else if let Ok(d) = DnsName::try_from(extra.as_str()) {
                sans.push(San::Dns(d));
            }
        }
        kubeadm_san_order(sans)
    }

    /// The SANs of one node's etcd server and peer certificates: the node name, `localhost`,
    /// the node's IP, `127.0.0.1` and `::1` (kubeadm's rule). On Azure the node's etcd FQDN
    /// takes the place of its IP.
    pub fn etcd_sans(&self, node: &NodeSpec) -> Vec<San> {
        if let Some(fqdn) = self.azure_fqdn(AciComponent::Etcd, node) {
            let mut sans = vec![San::Dns(node.name.clone().into()), dns("localhost")];
            sans.extend(DnsName::try_from(fqdn).ok().map(San::Dns));
            sans.push(San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
            sans.push(San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)));
            return kubeadm_san_order(sans);
        }
        kubeadm_san_order([
            San::Dns(node.name.clone().into()),
            dns("localhost"),
            San::Ip(node.ip),
            San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            San::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        ])
    }

    /// `https://<ip>:2379`: the node's etcd client URL (on Azure `https://<etcd FQDN>:2379`).
    pub fn etcd_client_url(&self, node: &NodeSpec) -> String {
        if let Some(fqdn) = self.azure_fqdn(AciComponent::Etcd, node) {
            return format!("https://{fqdn}:{}", ports::ETCD_CLIENT);
        }
        format!("https://{}", host_port(node.ip, ports::ETCD_CLIENT))
    }

    /// `https://<ip>:2380`: the node's etcd peer URL (on Azure `https://<etcd FQDN>:2380`).
    pub fn etcd_peer_url(&self, node: &NodeSpec) -> String {
        if let Some(fqdn) = self.azure_fqdn(AciComponent::Etcd, node) {
            return format!("https://{fqdn}:{}", ports::ETCD_PEER);
        }
        format!("https://{}", host_port(node.ip, ports::ETCD_PEER))
    }

    /// etcd's `--initial-cluster`: `name=peerURL` for every control-plane node.
    pub fn etcd_initial_cluster(&self) -> String {
        self.control_plane
            .iter()
            .map(|n| format!("{}={}", n.name, self.etcd_peer_url(n)))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Every etcd client URL, comma-separated, for clients that talk to the whole cluster.
    pub fn etcd_endpoints(&self) -> Vec<String> {
        self.control_plane
            .iter()
            .map(|n| self.etcd_client_url(n))
            .collect()
    }

    /// `/etc/hosts` lines: every node, and the endpoint's name pointing at the first
    /// control-plane node when it is a DNS name (a stand-in until a load balancer answers).
    pub fn etc_hosts(&self) -> Vec<String> {
        self.etc_hosts_lines(|_| true)
    }

    /// `/etc/hosts` lines for one node: on a control plane every node (the apiserver may reach
    /// kubelets by name), on a worker only itself, the control planes and the endpoint — what
    /// a worker talks to — so the bundles of N workers grow linearly in N, not as N².
    /// The node's role is the caller's (from [`ClusterSpec::nodes`]): looking it up here would
    /// make rendering N nodes quadratic again.
    pub fn etc_hosts_for(&self, node: &NodeSpec, role: Role) -> Vec<String> {
        self.etc_hosts_lines(|(n, r)| {
            role == Role::ControlPlane || r == Role::ControlPlane || n.name == node.name
        })
    }

    fn etc_hosts_lines(&self, keep: impl Fn((&NodeSpec, Role)) -> bool) -> Vec<String> {
        let mut lines: Vec<String> = self
            .nodes()
            .filter(|&(n, r)| keep((n, r)))
            .map(|(n, _)| format!("{} {}", n.ip, n.name))
            .collect();
        if let (Host::Dns(d), Some(first)) = (
            self.control_plane_endpoint().host,
            self.control_plane.first(),
        ) {
            lines.push(format!("{} {d}", first.ip));
        }
        lines
    }
}
