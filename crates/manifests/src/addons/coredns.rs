//! CoreDNS as kubeadm deploys it: the `kube-dns` Service at the cluster DNS address (the
//! kubelets' `clusterDNS`), its Corefile, Deployment, ServiceAccount and RBAC.

use std::collections::BTreeMap;

use frankenetes_spec::ClusterSpec;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{
    Affinity, Capabilities, ConfigMap, ConfigMapVolumeSource, Container, ContainerPort,
    HTTPGetAction, KeyToPath, PodAffinityTerm, PodAntiAffinity, PodSpec, PodTemplateSpec, Probe,
    ResourceRequirements, SecurityContext, Service, ServiceAccount, ServicePort, ServiceSpec,
    Toleration, Volume, VolumeMount, WeightedPodAffinityTerm,
};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Subject};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{Credential, Object, meta, rbac};
use crate::Error;

const FILE: &str = "coredns.yaml";
const NS: &str = "kube-system";

/// kubeadm's Corefile for a cluster domain.
pub(super) fn corefile(domain: &str) -> String {
    format!(
        ".:53 {{\n    errors\n    health {{\n       lameduck 5s\n    }}\n    ready\n    kubernetes {domain} in-addr.arpa ip6.arpa {{\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }}\n    prometheus :9153\n    forward . /etc/resolv.conf {{\n       max_concurrent 1000\n    }}\n    cache 30 {{\n       disable success {domain}\n       disable denial {domain}\n    }}\n    loop\n    reload\n    loadbalance\n}}\n"
    )
}

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("k8s-app".to_owned(), "kube-dns".to_owned())])
}

fn http_probe(path: &str, port: i32) -> HTTPGetAction {
    HTTPGetAction {
        path: Some(path.into()),
        port: IntOrString::Int(port),
        scheme: Some("HTTP".into()),
        ..Default::default()
    }
}

pub(super) fn objects(spec: &ClusterSpec) -> Result<Vec<Object>, Error> {
    let image = spec.image(frankenetes_spec::Image::CoreDns)?.to_string();
    Ok(vec![
        Object::typed(FILE, Credential::Admin, &service_account())?,
        Object::typed(FILE, Credential::Admin, &cluster_role())?,
        Object::typed(FILE, Credential::Admin, &cluster_role_binding())?,
        Object::typed(FILE, Credential::Admin, &config_map(spec))?,
        Object::typed(FILE, Credential::Admin, &deployment(image))?,
        Object::typed(FILE, Credential::Admin, &service(spec))?,
    ])
}

fn service_account() -> ServiceAccount {
    ServiceAccount {
        metadata: meta("coredns", Some(NS), &[]),
        ..Default::default()
    }
}

/// Read access to what the `kubernetes` plugin watches, and `get` on nodes.
fn cluster_role() -> ClusterRole {
    ClusterRole {
        metadata: meta("system:coredns", None, &[]),
        rules: Some(vec![
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec![
                    "endpoints".into(),
                    "services".into(),
                    "pods".into(),
                    "namespaces".into(),
                ]),
                verbs: vec!["list".into(), "watch".into()],
                ..Default::default()
            },
            PolicyRule {
                api_groups: Some(vec![String::new()]),
                resources: Some(vec!["nodes".into()]),
                verbs: vec!["get".into()],
                ..Default::default()
            },
            PolicyRule {
                api_groups: Some(vec!["discovery.k8s.io".into()]),
                resources: Some(vec!["endpointslices".into()]),
                verbs: vec!["list".into(), "watch".into()],
                ..Default::default()
            },
        ]),
        ..Default::default()
    }
}

fn cluster_role_binding() -> ClusterRoleBinding {
    rbac::cluster_binding(
        "system:coredns",
        "system:coredns",
        vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: "coredns".into(),
            namespace: Some(NS.into()),
        }],
    )
}

fn config_map(spec: &ClusterSpec) -> ConfigMap {
    ConfigMap {
        metadata: meta("coredns", Some(NS), &[]),
        data: Some(BTreeMap::from([(
            "Corefile".to_owned(),
            corefile(spec.network.dns_domain.as_str()),
        )])),
        ..Default::default()
    }
}

/// The `coredns` container: its ports, resources, Corefile mount, probes and a locked-down
/// security context.
fn container(image: String) -> Container {
    let port = |name: &str, port: i32, proto: &str| ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some(proto.into()),
        ..Default::default()
    };
    Container {
        name: "coredns".into(),
        image: Some(image),
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some(vec!["-conf".into(), "/etc/coredns/Corefile".into()]),
        ports: Some(vec![
            port("dns", 53, "UDP"),
            port("dns-tcp", 53, "TCP"),
            port("metrics", 9153, "TCP"),
            port("liveness-probe", 8080, "TCP"),
            port("readiness-probe", 8181, "TCP"),
        ]),
        resources: Some(ResourceRequirements {
            limits: Some(BTreeMap::from([(
                "memory".to_owned(),
                Quantity("170Mi".into()),
            )])),
            requests: Some(BTreeMap::from([
                ("cpu".to_owned(), Quantity("100m".into())),
                ("memory".to_owned(), Quantity("70Mi".into())),
            ])),
            ..Default::default()
        }),
        volume_mounts: Some(vec![VolumeMount {
            name: "config-volume".into(),
            mount_path: "/etc/coredns".into(),
            read_only: Some(true),
            ..Default::default()
        }]),
        liveness_probe: Some(Probe {
            http_get: Some(http_probe("/health", 8080)),
            initial_delay_seconds: Some(60),
            timeout_seconds: Some(5),
            success_threshold: Some(1),
            failure_threshold: Some(5),
            ..Default::default()
        }),
        readiness_probe: Some(Probe {
            http_get: Some(http_probe("/ready", 8181)),
            ..Default::default()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                add: Some(vec!["NET_BIND_SERVICE".into()]),
                drop: Some(vec!["ALL".into()]),
            }),
            read_only_root_filesystem: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Two replicas, preferably on different nodes: the pod spreads by hostname.
fn anti_affinity() -> Affinity {
    Affinity {
        pod_anti_affinity: Some(PodAntiAffinity {
            preferred_during_scheduling_ignored_during_execution: Some(vec![
                WeightedPodAffinityTerm {
                    weight: 100,
                    pod_affinity_term: PodAffinityTerm {
                        label_selector: Some(LabelSelector {
                            match_expressions: Some(vec![LabelSelectorRequirement {
                                key: "k8s-app".into(),
                                operator: "In".into(),
                                values: Some(vec!["kube-dns".into()]),
                            }]),
                            ..Default::default()
                        }),
                        topology_key: "kubernetes.io/hostname".into(),
                        ..Default::default()
                    },
                },
            ]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn pod_spec(container: Container) -> PodSpec {
    PodSpec {
        priority_class_name: Some("system-cluster-critical".into()),
        service_account_name: Some("coredns".into()),
        affinity: Some(anti_affinity()),
        tolerations: Some(vec![
            Toleration {
                key: Some("CriticalAddonsOnly".into()),
                operator: Some("Exists".into()),
                ..Default::default()
            },
            Toleration {
                key: Some("node-role.kubernetes.io/control-plane".into()),
                effect: Some("NoSchedule".into()),
                ..Default::default()
            },
        ]),
        node_selector: Some(BTreeMap::from([(
            "kubernetes.io/os".to_owned(),
            "linux".to_owned(),
        )])),
        containers: vec![container],
        dns_policy: Some("Default".into()),
        volumes: Some(vec![Volume {
            name: "config-volume".into(),
            config_map: Some(ConfigMapVolumeSource {
                name: "coredns".into(),
                items: Some(vec![KeyToPath {
                    key: "Corefile".into(),
                    path: "Corefile".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }]),
        ..Default::default()
    }
}

fn deployment(image: String) -> Deployment {
    let deployment_spec = DeploymentSpec {
        replicas: Some(2),
        selector: LabelSelector {
            match_labels: Some(labels()),
            ..Default::default()
        },
        strategy: Some(DeploymentStrategy {
            type_: Some("RollingUpdate".into()),
            rolling_update: Some(RollingUpdateDeployment {
                max_unavailable: Some(IntOrString::Int(1)),
                ..Default::default()
            }),
        }),
        template: PodTemplateSpec {
            metadata: Some(meta_labels()),
            spec: Some(pod_spec(container(image))),
        },
        ..Default::default()
    };
    #[allow(clippy::needless_update)] // `status` is gone from the 1.37 types
    let mut deployment = Deployment {
        metadata: meta("coredns", Some(NS), &[("k8s-app", "kube-dns")]),
        ..Default::default()
    };
    // `spec` became required in the 1.37 types; the JSON is the same.
    k8s_openapi::k8s_if_le_1_36! {
        deployment.spec = Some(deployment_spec);
    }
    k8s_openapi::k8s_if_ge_1_37! {
        deployment.spec = deployment_spec;
    }
    deployment
}

/// The `kube-dns` Service at the cluster DNS address, scraped by Prometheus on 9153.
fn service(spec: &ClusterSpec) -> Service {
    let svc_port = |name: &str, port: i32, proto: &str| ServicePort {
        name: Some(name.into()),
        port,
        protocol: Some(proto.into()),
        target_port: Some(IntOrString::Int(port)),
        ..Default::default()
    };
    let mut svc_meta = meta(
        "kube-dns",
        Some(NS),
        &[
            ("k8s-app", "kube-dns"),
            ("kubernetes.io/cluster-service", "true"),
            ("kubernetes.io/name", "CoreDNS"),
        ],
    );
    svc_meta.annotations = Some(BTreeMap::from([
        ("prometheus.io/port".to_owned(), "9153".to_owned()),
        ("prometheus.io/scrape".to_owned(), "true".to_owned()),
    ]));
    Service {
        metadata: svc_meta,
        spec: Some(ServiceSpec {
            // The same derivation as the kubelets' clusterDNS.
            cluster_ip: Some(spec.cluster_dns_ip().to_string()),
            ports: Some(vec![
                svc_port("dns", 53, "UDP"),
                svc_port("dns-tcp", 53, "TCP"),
                svc_port("metrics", 9153, "TCP"),
            ]),
            selector: Some(labels()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn meta_labels() -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        labels: Some(labels()),
        ..Default::default()
    }
}
