//! The configuration kubeadm keeps in the cluster: `cluster-info`, `kubeadm-config`,
//! `kubelet-config`, and kube-proxy's configuration, each a typed document in a ConfigMap.

use std::collections::BTreeMap;

use base64::Engine as _;
use frankenetes_spec::ClusterSpec;
use k8s_openapi::api::core::v1::ConfigMap;
use serde::{Deserialize, Serialize};

use super::{Credential, Object, meta, rbac};
use crate::Error;
use crate::flags::{self, Flags, Layout};
use crate::kubeconfig::{Cluster, NamedCluster};

/// The kubeconfig in `cluster-info`: the CA and the endpoint, no user (kubeadm's shape: one
/// cluster named `""`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub struct ClusterInfoKubeconfig {
    /// `v1`.
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    /// `Config`.
    pub kind: String,
    /// The one cluster.
    pub clusters: Vec<NamedCluster>,
    /// None.
    pub contexts: Option<Vec<serde_json::Value>>,
    /// Empty.
    pub current_context: String,
    /// Empty.
    pub preferences: serde_json::Map<String, serde_json::Value>,
    /// None.
    pub users: Option<Vec<serde_json::Value>>,
}

impl ClusterInfoKubeconfig {
    /// The CA (PEM) and the API server URL.
    pub fn new(server: &str, ca_pem: &str) -> Self {
        Self {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![NamedCluster {
                name: String::new(),
                cluster: Cluster {
                    server: server.into(),
                    certificate_authority_data: base64::engine::general_purpose::STANDARD
                        .encode(ca_pem),
                },
            }],
            contexts: None,
            current_context: String::new(),
            preferences: serde_json::Map::new(),
            users: None,
        }
    }
}

/// `cluster-info` in `kube-public`, and the Role that lets anonymous users read it (kubeadm's
/// `kubeadm:bootstrap-signer-clusterinfo`).
pub(super) fn cluster_info(spec: &ClusterSpec, ca_pem: &str) -> Result<Vec<Object>, Error> {
    const FILE: &str = "cluster-info.yaml";
    let kubeconfig = crate::yaml(
        "cluster-info kubeconfig",
        &ClusterInfoKubeconfig::new(&spec.control_plane_url(), ca_pem),
    )?;
    let cm = ConfigMap {
        metadata: meta("cluster-info", Some("kube-public"), &[]),
        data: Some(BTreeMap::from([("kubeconfig".to_owned(), kubeconfig)])),
        ..Default::default()
    };
    let mut out = vec![Object::typed(FILE, Credential::Admin, &cm)?];
    out.extend(rbac::configmap_reader(
        FILE,
        "kubeadm:bootstrap-signer-clusterinfo",
        "kube-public",
        "cluster-info",
        vec![rbac::user("system:anonymous")],
    )?);
    Ok(out)
}

/// `kubeadm.k8s.io/v1beta4` `ClusterConfiguration`, the fields frankenetes sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ClusterConfiguration {
    /// `kubeadm.k8s.io/v1beta4`.
    pub api_version: String,
    /// `ClusterConfiguration`.
    pub kind: String,
    /// `v1.35.0`.
    pub kubernetes_version: String,
    /// The cluster's name.
    pub cluster_name: String,
    /// `host:port` of the API.
    pub control_plane_endpoint: String,
    /// `/etc/kubernetes/pki`.
    pub certificates_dir: String,
    /// Where images come from.
    pub image_repository: String,
    /// `ECDSA-P256`, `RSA-2048`, …
    pub encryption_algorithm: String,
    /// CA lifetime.
    pub ca_certificate_validity_period: String,
    /// Leaf certificate lifetime.
    pub certificate_validity_period: String,
    /// Service and pod networks.
    pub networking: Networking,
    /// Stacked etcd.
    pub etcd: EtcdConfig,
    /// The apiserver's SANs, flags and volumes beyond kubeadm's own.
    pub api_server: ApiServerConfig,
    /// The controller-manager's flags beyond kubeadm's own.
    pub controller_manager: ComponentConfig,
    /// The scheduler's flags beyond kubeadm's own.
    pub scheduler: ComponentConfig,
}

/// `networking`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct Networking {
    /// `cluster.local`.
    pub dns_domain: String,
    /// The service CIDR.
    pub service_subnet: String,
    /// The pod CIDR.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_subnet: Option<String>,
}

/// `etcd`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EtcdConfig {
    /// `local`.
    pub local: LocalEtcd,
}

/// `etcd.local`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct LocalEtcd {
    /// Data directory.
    pub data_dir: String,
    /// Image repository, when not the cluster's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_repository: Option<String>,
    /// Image tag, when not kubeadm's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_tag: Option<String>,
    /// Flags added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
}

/// One `extraArgs` entry (v1beta4 lists them).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Arg {
    /// Flag name, without `--`.
    pub name: String,
    /// Value.
    pub value: String,
}

/// `apiServer`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ApiServerConfig {
    /// Extra SANs of the serving certificate.
    #[serde(default, rename = "certSANs", skip_serializing_if = "Vec::is_empty")]
    pub cert_sans: Vec<String>,
    /// Flags beyond kubeadm's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
    /// Host paths beyond kubeadm's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_volumes: Vec<ExtraVolume>,
}

/// `controllerManager` or `scheduler`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ComponentConfig {
    /// Flags beyond kubeadm's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_args: Vec<Arg>,
}

/// One `extraVolumes` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct ExtraVolume {
    /// Volume name.
    pub name: String,
    /// Host path.
    pub host_path: String,
    /// Path in the container.
    pub mount_path: String,
    /// Read-only.
    pub read_only: bool,
    /// `hostPath.type`.
    pub path_type: String,
}

/// Flags kubeadm renders itself (so they are not `extraArgs`), per component.
const KUBEADM_APISERVER: &[&str] = &[
    "allow-privileged",
    "authorization-mode",
    "client-ca-file",
    "enable-bootstrap-token-auth",
    "etcd-cafile",
    "etcd-certfile",
    "etcd-keyfile",
    "kubelet-client-certificate",
    "kubelet-client-key",
    "kubelet-preferred-address-types",
    "proxy-client-cert-file",
    "proxy-client-key-file",
    "requestheader-allowed-names",
    "requestheader-client-ca-file",
    "requestheader-extra-headers-prefix",
    "requestheader-group-headers",
    "requestheader-username-headers",
    "secure-port",
    "service-account-issuer",
    "service-account-key-file",
    "service-account-signing-key-file",
    "service-cluster-ip-range",
    "tls-cert-file",
    "tls-private-key-file",
];
const KUBEADM_CONTROLLER_MANAGER: &[&str] = &[
    "allocate-node-cidrs",
    "authentication-kubeconfig",
    "authorization-kubeconfig",
    "client-ca-file",
    "cluster-cidr",
    "cluster-name",
    "cluster-signing-cert-file",
    "cluster-signing-key-file",
    "controllers",
    "kubeconfig",
    "leader-elect",
    "requestheader-client-ca-file",
    "root-ca-file",
    "service-account-private-key-file",
    "service-cluster-ip-range",
    "use-service-account-credentials",
];
const KUBEADM_SCHEDULER: &[&str] = &[
    "authentication-kubeconfig",
    "authorization-kubeconfig",
    "kubeconfig",
    "leader-elect",
];
/// Per-node flags kubeadm derives on each node (`advertise-address`, …): never `extraArgs`.
const PER_NODE: &[&str] = &["advertise-address", "bind-address", "etcd-servers"];

fn extra_args(f: &Flags, kubeadm: &[&str]) -> Vec<Arg> {
    f.names()
        .filter(|n| !kubeadm.contains(n) && !PER_NODE.contains(n))
        .map(|n| Arg {
            name: n.to_owned(),
            value: f.get(n).unwrap_or_default().to_owned(),
        })
        .collect()
}

/// The etcd image tag for `kubeadm-config`: the user's, or the one rendered when it is not the
/// tag kubeadm pins for the minor (`spec.etcd.version` set to another release), so that
/// `kubeadm upgrade` sees the etcd that runs.
fn etcd_image_tag(spec: &ClusterSpec) -> Result<Option<String>, Error> {
    if spec.etcd.image_tag.is_some() {
        return Ok(spec.etcd.image_tag.clone());
    }
    let tag = spec.etcd_release()?.image.tag;
    Ok((tag != spec.release()?.etcd_tag).then_some(tag))
}

/// The `ClusterConfiguration` of what frankenetes renders: kubeadm's own flags are left to
/// kubeadm; every other rendered flag (the hardening, `extraArgs`) is an `extraArgs` entry and
/// every extra host path an `extraVolumes` entry, so `kubeadm upgrade` re-renders the same
/// control plane.
pub fn cluster_configuration(spec: &ClusterSpec) -> Result<ClusterConfiguration, Error> {
    let node = spec.control_plane.first().ok_or_else(|| Error::Invalid {
        field: "spec.controlPlane".into(),
        message: "no control-plane node".into(),
    })?;
    let layout = Layout::machine(spec);
    let api = flags::kube_apiserver(spec, node, &layout);
    let cm = flags::kube_controller_manager(spec, node, &layout);
    let sched = flags::kube_scheduler(spec, node, &layout);
    let mut volumes = vec![ExtraVolume {
        name: "apiserver-config".into(),
        host_path: crate::security::CONFIG_DIR.into(),
        mount_path: crate::security::CONFIG_DIR.into(),
        read_only: true,
        path_type: "DirectoryOrCreate".into(),
    }];
    if spec.security.audit_log {
        volumes.push(ExtraVolume {
            name: "audit-log".into(),
            host_path: crate::security::AUDIT_LOG_DIR.into(),
            mount_path: crate::security::AUDIT_LOG_DIR.into(),
            read_only: false,
            path_type: "DirectoryOrCreate".into(),
        });
    }
    for v in &spec.api_server.extra_volumes {
        let host = v.host_path.display().to_string();
        volumes.push(ExtraVolume {
            name: v.name.to_string(),
            mount_path: v
                .mount_path
                .as_ref()
                .map_or_else(|| host.clone(), |p| p.display().to_string()),
            host_path: host,
            read_only: v.read_only,
            path_type: v.path_type.clone(),
        });
    }
    Ok(ClusterConfiguration {
        api_version: "kubeadm.k8s.io/v1beta4".into(),
        kind: "ClusterConfiguration".into(),
        kubernetes_version: spec.kubernetes_version.to_string(),
        cluster_name: spec.name.to_string(),
        control_plane_endpoint: spec.control_plane_endpoint().to_string(),
        certificates_dir: "/etc/kubernetes/pki".into(),
        image_repository: spec.image_repository.clone(),
        encryption_algorithm: spec.pki.key_algorithm.as_str().to_ascii_uppercase(),
        ca_certificate_validity_period: spec.pki.ca_validity.to_string(),
        certificate_validity_period: spec.pki.cert_validity.to_string(),
        networking: Networking {
            dns_domain: spec.network.dns_domain.to_string(),
            service_subnet: spec.network.service_cidr.to_string(),
            pod_subnet: spec.network.pod_cidr.as_ref().map(ToString::to_string),
        },
        etcd: EtcdConfig {
            local: LocalEtcd {
                data_dir: spec.etcd.data_dir.display().to_string(),
                image_repository: spec.etcd.image_repository.clone(),
                image_tag: etcd_image_tag(spec)?,
                extra_args: spec
                    .etcd
                    .extra_args
                    .iter()
                    .map(|(k, v)| Arg {
                        name: k.clone(),
                        value: v.clone(),
                    })
                    .collect(),
            },
        },
        api_server: ApiServerConfig {
            cert_sans: spec
                .api_server
                .cert_sans
                .iter()
                .map(ToString::to_string)
                .collect(),
            extra_args: extra_args(&api, KUBEADM_APISERVER),
            extra_volumes: volumes,
        },
        controller_manager: ComponentConfig {
            extra_args: extra_args(&cm, KUBEADM_CONTROLLER_MANAGER),
        },
        scheduler: ComponentConfig {
            extra_args: extra_args(&sched, KUBEADM_SCHEDULER),
        },
    })
}

/// `kubeadm-config` (key `ClusterConfiguration`) and `kubelet-config` (key `kubelet`) in
/// `kube-system`.
pub(super) fn config_maps(spec: &ClusterSpec) -> Result<Vec<Object>, Error> {
    const FILE: &str = "kubeadm-config.yaml";
    let cc = crate::yaml("ClusterConfiguration", &cluster_configuration(spec)?)?;
    // Without our resolver link: the ConfigMap is for nodes that `kubeadm join` by hand.
    let kc = crate::yaml(
        "KubeletConfiguration",
        &crate::kubelet::KubeletConfiguration {
            resolv_conf: None,
            ..crate::kubelet::KubeletConfiguration::for_spec(spec)
        },
    )?;
    let cm = |name: &str, key: &str, text: String| ConfigMap {
        metadata: meta(name, Some("kube-system"), &[]),
        data: Some(BTreeMap::from([(key.to_owned(), text)])),
        ..Default::default()
    };
    Ok(vec![
        Object::typed(
            FILE,
            Credential::Admin,
            &cm("kubeadm-config", "ClusterConfiguration", cc),
        )?,
        Object::typed(
            FILE,
            Credential::Admin,
            &cm("kubelet-config", "kubelet", kc),
        )?,
    ])
}

/// `kubeproxy.config.k8s.io/v1alpha1` `KubeProxyConfiguration`, the fields frankenetes sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct KubeProxyConfiguration {
    /// `kubeproxy.config.k8s.io/v1alpha1`.
    pub api_version: String,
    /// `KubeProxyConfiguration`.
    pub kind: String,
    /// `0.0.0.0`.
    pub bind_address: String,
    /// The kubeconfig the proxy reads.
    pub client_connection: ClientConnection,
    /// The pod CIDR (traffic from outside it is masqueraded).
    #[serde(
        default,
        rename = "clusterCIDR",
        skip_serializing_if = "Option::is_none"
    )]
    pub cluster_cidr: Option<String>,
}

/// `clientConnection`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ClientConnection {
    /// The kubeconfig's path in the container.
    pub kubeconfig: String,
}

/// kube-proxy's configuration for a spec (kubeadm's).
pub fn kube_proxy_configuration(spec: &ClusterSpec) -> KubeProxyConfiguration {
    KubeProxyConfiguration {
        api_version: "kubeproxy.config.k8s.io/v1alpha1".into(),
        kind: "KubeProxyConfiguration".into(),
        bind_address: "0.0.0.0".into(),
        client_connection: ClientConnection {
            kubeconfig: "/var/lib/kube-proxy/kubeconfig.conf".into(),
        },
        cluster_cidr: spec.network.pod_cidr.as_ref().map(ToString::to_string),
    }
}

/// A kubeconfig that authenticates with the pod's service-account token (kube-proxy's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ServiceAccountKubeconfig {
    #[serde(rename = "apiVersion")]
    api_version: String,
    kind: String,
    clusters: Vec<SaNamedCluster>,
    contexts: Vec<SaNamedContext>,
    current_context: String,
    users: Vec<SaNamedUser>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaNamedCluster {
    name: String,
    cluster: SaCluster,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SaCluster {
    certificate_authority: String,
    server: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaNamedContext {
    name: String,
    context: SaContext,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaContext {
    cluster: String,
    namespace: String,
    user: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SaNamedUser {
    name: String,
    user: SaUser,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SaUser {
    token_file: String,
}

impl ServiceAccountKubeconfig {
    pub(super) fn new(server: &str) -> Self {
        const SA: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
        Self {
            api_version: "v1".into(),
            kind: "Config".into(),
            clusters: vec![SaNamedCluster {
                name: "default".into(),
                cluster: SaCluster {
                    certificate_authority: format!("{SA}/ca.crt"),
                    server: server.into(),
                },
            }],
            contexts: vec![SaNamedContext {
                name: "default".into(),
                context: SaContext {
                    cluster: "default".into(),
                    namespace: "default".into(),
                    user: "default".into(),
                },
            }],
            current_context: "default".into(),
            users: vec![SaNamedUser {
                name: "default".into(),
                user: SaUser {
                    token_file: format!("{SA}/token"),
                },
            }],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_configuration_carries_the_hardening_but_not_kubeadms_own_flags() {
        let spec = ClusterSpec::example();
        let c = cluster_configuration(&spec).unwrap();
        let names: Vec<&str> = c
            .api_server
            .extra_args
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        for want in [
            "authentication-config",
            "tls-cipher-suites",
            "profiling",
            "enable-admission-plugins",
        ] {
            assert!(names.contains(&want), "{want} missing from {names:?}");
        }
        for not in ["etcd-servers", "advertise-address", "tls-cert-file"] {
            assert!(!names.contains(&not), "{not} in {names:?}");
        }
        assert_eq!(c.encryption_algorithm, "ECDSA-P256");
        let y = serde_norway::to_string(&c).unwrap();
        assert_eq!(
            serde_norway::from_str::<ClusterConfiguration>(&y).unwrap(),
            c
        );
        assert!(y.contains("certSANs") || spec.api_server.cert_sans.is_empty());
    }
}
