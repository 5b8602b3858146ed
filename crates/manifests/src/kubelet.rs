//! The kubelet's `KubeletConfiguration` (kubelet.config.k8s.io/v1beta1), typed.

use serde::{Deserialize, Serialize};

/// The fields of `KubeletConfiguration` frankenetes sets. Field names follow the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KubeletConfiguration {
    /// `kubelet.config.k8s.io/v1beta1`.
    pub api_version: String,
    /// `KubeletConfiguration`.
    pub kind: String,
    /// Who may call the kubelet's API.
    pub authentication: KubeletAuthentication,
    /// What callers may do.
    pub authorization: KubeletAuthorization,
    /// `systemd`, as the container runtime on Fedora CoreOS.
    pub cgroup_driver: String,
    /// The cluster DNS Service's address (the tenth of the service CIDR).
    #[serde(rename = "clusterDNS")]
    pub cluster_dns: Vec<String>,
    /// The cluster's DNS domain.
    pub cluster_domain: String,
    /// The CRI socket.
    pub container_runtime_endpoint: String,
    /// Where static pods are read from.
    pub static_pod_path: String,
    /// Rotate the client certificate through the CSR API before it expires.
    pub rotate_certificates: bool,
    /// Local health endpoint address.
    pub healthz_bind_address: String,
    /// Local health endpoint port.
    pub healthz_port: u16,
}

/// `authentication`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KubeletAuthentication {
    /// Anonymous requests.
    pub anonymous: Enabled,
    /// Bearer tokens checked with the apiserver.
    pub webhook: WebhookAuthn,
    /// Client certificates signed by this CA.
    pub x509: X509Authn,
}

/// `{ enabled: bool }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Enabled {
    /// Whether on.
    pub enabled: bool,
}

/// `authentication.webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookAuthn {
    /// Whether on.
    pub enabled: bool,
    /// Cache lifetime.
    #[serde(rename = "cacheTTL")]
    pub cache_ttl: String,
}

/// `authentication.x509`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct X509Authn {
    /// The CA that signs clients (the apiserver's kubelet client certificate).
    pub client_c_a_file: String,
}

/// `authorization`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct KubeletAuthorization {
    /// `Webhook`: SubjectAccessReviews against the apiserver.
    pub mode: String,
    /// Cache lifetimes.
    pub webhook: WebhookAuthz,
}

/// `authorization.webhook`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WebhookAuthz {
    /// Cache lifetime of allowed answers.
    #[serde(rename = "cacheAuthorizedTTL")]
    pub cache_authorized_ttl: String,
    /// Cache lifetime of denied answers.
    #[serde(rename = "cacheUnauthorizedTTL")]
    pub cache_unauthorized_ttl: String,
}

impl KubeletConfiguration {
    /// kubeadm's kubelet settings for a spec.
    pub fn for_spec(spec: &frankenetes_spec::ClusterSpec) -> Self {
        Self {
            api_version: "kubelet.config.k8s.io/v1beta1".into(),
            kind: "KubeletConfiguration".into(),
            authentication: KubeletAuthentication {
                anonymous: Enabled { enabled: false },
                webhook: WebhookAuthn {
                    enabled: true,
                    cache_ttl: "0s".into(),
                },
                x509: X509Authn {
                    client_c_a_file: "/etc/kubernetes/pki/ca.crt".into(),
                },
            },
            authorization: KubeletAuthorization {
                mode: "Webhook".into(),
                webhook: WebhookAuthz {
                    cache_authorized_ttl: "0s".into(),
                    cache_unauthorized_ttl: "0s".into(),
                },
            },
            cgroup_driver: "systemd".into(),
            cluster_dns: vec![spec.cluster_dns_ip().to_string()],
            cluster_domain: spec.network.dns_domain.to_string(),
            container_runtime_endpoint: "unix:///run/containerd/containerd.sock".into(),
            static_pod_path: "/etc/kubernetes/manifests".into(),
            rotate_certificates: true,
            healthz_bind_address: "127.0.0.1".into(),
            healthz_port: 10248,
        }
    }
}
