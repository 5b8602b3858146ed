//! Static pods as kubeadm writes them, built on `k8s-openapi` types.

use std::collections::BTreeMap;
use std::net::IpAddr;

use frankenetes_spec::{ClusterSpec, HostPathMount, NodeSpec, host_port, ports};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, HTTPGetAction, HostPathVolumeSource, Pod, PodSecurityContext,
    PodSpec, Probe, ResourceRequirements, SeccompProfile, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use crate::flags::{Flags, local_address};
use crate::versions::etcd_has_livez;

/// The control-plane health-check timeout kubeadm divides into startup-probe attempts (4m).
const HEALTH_CHECK_TIMEOUT_SECS: i32 = 240;

/// One hostPath volume and where it is mounted.
#[derive(Debug, Clone)]
struct Mount {
    name: String,
    host_path: String,
    mount_path: String,
    read_only: bool,
    path_type: &'static str,
}

fn mount(name: &str, path: &str, read_only: bool, path_type: &'static str) -> Mount {
    Mount {
        name: name.into(),
        host_path: path.into(),
        mount_path: path.into(),
        read_only,
        path_type,
    }
}

fn extra_mounts(extra: &[HostPathMount]) -> Vec<(Mount, String)> {
    extra
        .iter()
        .map(|m| {
            let host = m.host_path.display().to_string();
            let mp = m
                .mount_path
                .as_ref()
                .map_or_else(|| host.clone(), |p| p.display().to_string());
            (
                Mount {
                    name: m.name.to_string(),
                    host_path: host,
                    mount_path: mp,
                    read_only: m.read_only,
                    path_type: "",
                },
                m.path_type.clone(),
            )
        })
        .collect()
}

fn probe(path: &str, host: Option<IpAddr>, https: bool, kind: ProbeKind) -> Probe {
    let (initial, period, failures) = match kind {
        ProbeKind::Liveness => (Some(10), 10, 8),
        ProbeKind::Readiness => (None, 1, 3),
        ProbeKind::Startup => (Some(10), 10, (HEALTH_CHECK_TIMEOUT_SECS + 9) / 10),
    };
    Probe {
        http_get: Some(HTTPGetAction {
            host: host.map(|h| h.to_string()),
            path: Some(path.into()),
            port: IntOrString::String("probe-port".into()),
            scheme: Some(if https { "HTTPS" } else { "HTTP" }.into()),
            ..Default::default()
        }),
        initial_delay_seconds: initial,
        timeout_seconds: Some(15),
        period_seconds: Some(period),
        failure_threshold: Some(failures),
        ..Default::default()
    }
}

#[derive(Clone, Copy)]
enum ProbeKind {
    Liveness,
    Readiness,
    Startup,
}

struct PodParts<'a> {
    name: &'a str,
    image: String,
    flags: &'a Flags,
    annotations: BTreeMap<String, String>,
    cpu: &'a str,
    memory: Option<&'a str>,
    probe_port: u16,
    liveness: Probe,
    readiness: Option<Probe>,
    startup: Probe,
    mounts: Vec<Mount>,
    extra: Vec<(Mount, String)>,
    /// kubeadm lists etcd's mounts in a fixed order rather than sorted.
    sort_mounts: bool,
}

fn pod(p: PodParts<'_>) -> Pod {
    let mut volumes: Vec<Volume> = Vec::new();
    let mut mounts: Vec<VolumeMount> = Vec::new();
    let all: Vec<(Mount, String)> = p
        .mounts
        .into_iter()
        .map(|m| {
            let t = m.path_type.to_owned();
            (m, t)
        })
        .chain(p.extra)
        .collect();
    for (m, path_type) in &all {
        // A user's volume with the name of a default one replaces it (kubeadm's rule).
        volumes.retain(|v| v.name != m.name);
        mounts.retain(|v| v.name != m.name);
        volumes.push(Volume {
            name: m.name.clone(),
            host_path: Some(HostPathVolumeSource {
                path: m.host_path.clone(),
                type_: Some(path_type.clone()),
            }),
            ..Default::default()
        });
        mounts.push(VolumeMount {
            name: m.name.clone(),
            mount_path: m.mount_path.clone(),
            read_only: m.read_only.then_some(true),
            ..Default::default()
        });
    }
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    if p.sort_mounts {
        mounts.sort_by(|a, b| a.name.cmp(&b.name));
    }
    let mut command = vec![p.name.to_owned()];
    command.extend(p.flags.args());
    let mut requests = BTreeMap::from([("cpu".to_owned(), Quantity(p.cpu.into()))]);
    if let Some(m) = p.memory {
        requests.insert("memory".into(), Quantity(m.into()));
    }
    Pod {
        metadata: ObjectMeta {
            name: Some(p.name.into()),
            namespace: Some("kube-system".into()),
            labels: Some(BTreeMap::from([
                ("component".into(), p.name.into()),
                ("tier".into(), "control-plane".into()),
            ])),
            annotations: (!p.annotations.is_empty()).then_some(p.annotations),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers: vec![Container {
                name: p.name.into(),
                image: Some(p.image),
                image_pull_policy: Some("IfNotPresent".into()),
                command: Some(command),
                ports: Some(vec![ContainerPort {
                    name: Some("probe-port".into()),
                    container_port: i32::from(p.probe_port),
                    protocol: Some("TCP".into()),
                    ..Default::default()
                }]),
                liveness_probe: Some(p.liveness),
                readiness_probe: p.readiness,
                startup_probe: Some(p.startup),
                resources: Some(ResourceRequirements {
                    requests: Some(requests),
                    ..Default::default()
                }),
                volume_mounts: Some(mounts),
                ..Default::default()
            }],
            host_network: Some(true),
            priority: Some(2_000_001_000),
            priority_class_name: Some("system-node-critical".into()),
            security_context: Some(PodSecurityContext {
                seccomp_profile: Some(SeccompProfile {
                    type_: "RuntimeDefault".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            volumes: Some(volumes),
            ..Default::default()
        }),
        status: None,
    }
}

/// The CA directories kubeadm mounts into the apiserver and controller-manager. kubeadm adds
/// the optional ones only when they exist on the host running it; a renderer for other
/// machines cannot look, so it mounts what Fedora CoreOS (the target of the Ignition configs)
/// has: `/etc/ssl/certs` and the two `/etc/pki` trust directories, with kubeadm's names.
fn ca_mounts() -> Vec<Mount> {
    vec![
        mount("ca-certs", "/etc/ssl/certs", true, "DirectoryOrCreate"),
        mount(
            "etc-pki-ca-trust",
            "/etc/pki/ca-trust",
            true,
            "DirectoryOrCreate",
        ),
        mount(
            "etc-pki-tls-certs",
            "/etc/pki/tls/certs",
            true,
            "DirectoryOrCreate",
        ),
    ]
}

/// `etcd.yaml`.
pub(crate) fn etcd(
    spec: &ClusterSpec,
    node: &NodeSpec,
    flags: &Flags,
    image_ref: String,
    livez: bool,
) -> Pod {
    let local = local_address(node);
    let (live, ready) = if livez {
        ("/livez", "/readyz")
    } else {
        ("/health", "/health")
    };
    pod(PodParts {
        name: "etcd",
        image: image_ref,
        flags,
        annotations: BTreeMap::from([(
            "kubeadm.kubernetes.io/etcd.advertise-client-urls".into(),
            spec.etcd_client_url(node),
        )]),
        cpu: "100m",
        memory: Some("100Mi"),
        probe_port: ports::ETCD_METRICS,
        liveness: probe(live, Some(local), false, ProbeKind::Liveness),
        readiness: livez.then(|| probe(ready, Some(local), false, ProbeKind::Readiness)),
        startup: probe(ready, Some(local), false, ProbeKind::Startup),
        mounts: vec![
            mount(
                "etcd-data",
                &spec.etcd.data_dir.display().to_string(),
                false,
                "DirectoryOrCreate",
            ),
            mount(
                "etcd-certs",
                "/etc/kubernetes/pki/etcd",
                false,
                "DirectoryOrCreate",
            ),
        ],
        extra: Vec::new(),
        sort_mounts: false,
    })
}

/// `kube-apiserver.yaml`.
pub(crate) fn kube_apiserver(
    spec: &ClusterSpec,
    node: &NodeSpec,
    flags: &Flags,
    image: String,
) -> Pod {
    let mut mounts = ca_mounts();
    mounts.push(mount(
        "k8s-certs",
        "/etc/kubernetes/pki",
        true,
        "DirectoryOrCreate",
    ));
    // The audit policy, admission and authentication configuration files.
    mounts.push(mount(
        "apiserver-config",
        crate::security::CONFIG_DIR,
        true,
        "DirectoryOrCreate",
    ));
    if spec.security.audit_log {
        mounts.push(mount(
            "audit-log",
            crate::security::AUDIT_LOG_DIR,
            false,
            "DirectoryOrCreate",
        ));
    }
    let host = Some(node.ip);
    pod(PodParts {
        name: "kube-apiserver",
        image,
        flags,
        annotations: BTreeMap::from([(
            "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint".into(),
            host_port(node.ip, ports::APISERVER),
        )]),
        cpu: "250m",
        memory: None,
        probe_port: ports::APISERVER,
        liveness: probe("/livez", host, true, ProbeKind::Liveness),
        readiness: Some(probe("/readyz", host, true, ProbeKind::Readiness)),
        startup: probe("/livez", host, true, ProbeKind::Startup),
        mounts,
        extra: extra_mounts(&spec.api_server.extra_volumes),
        sort_mounts: true,
    })
}

/// `kube-controller-manager.yaml`.
pub(crate) fn kube_controller_manager(
    spec: &ClusterSpec,
    node: &NodeSpec,
    flags: &Flags,
    image: String,
) -> Pod {
    let mut mounts = ca_mounts();
    mounts.push(mount(
        "k8s-certs",
        "/etc/kubernetes/pki",
        true,
        "DirectoryOrCreate",
    ));
    mounts.push(mount(
        "kubeconfig",
        "/etc/kubernetes/controller-manager.conf",
        true,
        "FileOrCreate",
    ));
    mounts.push(mount(
        "flexvolume-dir",
        "/usr/libexec/kubernetes/kubelet-plugins/volume/exec",
        false,
        "DirectoryOrCreate",
    ));
    let host = Some(local_address(node));
    pod(PodParts {
        name: "kube-controller-manager",
        image,
        flags,
        annotations: BTreeMap::new(),
        cpu: "200m",
        memory: None,
        probe_port: ports::CONTROLLER_MANAGER,
        liveness: probe("/healthz", host, true, ProbeKind::Liveness),
        readiness: None,
        startup: probe("/healthz", host, true, ProbeKind::Startup),
        mounts,
        extra: extra_mounts(&spec.controller_manager.extra_volumes),
        sort_mounts: true,
    })
}

/// `kube-scheduler.yaml`.
pub(crate) fn kube_scheduler(
    spec: &ClusterSpec,
    node: &NodeSpec,
    flags: &Flags,
    image: String,
) -> Pod {
    let host = Some(local_address(node));
    pod(PodParts {
        name: "kube-scheduler",
        image,
        flags,
        annotations: BTreeMap::new(),
        cpu: "100m",
        memory: None,
        probe_port: ports::SCHEDULER,
        liveness: probe("/livez", host, true, ProbeKind::Liveness),
        readiness: Some(probe("/readyz", host, true, ProbeKind::Readiness)),
        startup: probe("/livez", host, true, ProbeKind::Startup),
        mounts: vec![mount(
            "kubeconfig",
            "/etc/kubernetes/scheduler.conf",
            true,
            "FileOrCreate",
        )],
        extra: extra_mounts(&spec.scheduler.extra_volumes),
        sort_mounts: true,
    })
}

/// Whether etcd's probes use `/livez`+`/readyz` or the older `/health`.
pub(crate) fn livez(v: frankenetes_spec::EtcdVersion) -> bool {
    etcd_has_livez(v)
}
