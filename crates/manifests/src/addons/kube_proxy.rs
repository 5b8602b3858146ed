//! kube-proxy as kubeadm deploys it: a DaemonSet on every node, its configuration (a
//! `KubeProxyConfiguration` and a service-account kubeconfig) in a ConfigMap, RBAC. Without
//! the DaemonSet (kube-proxy runs some other way) the rest stays: `kubeadm join` and
//! `kubeadm upgrade` read the ConfigMap.

use std::collections::BTreeMap;

use frankenetes_spec::ClusterSpec;
use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec, DaemonSetUpdateStrategy};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, EnvVar, EnvVarSource, HostPathVolumeSource,
    ObjectFieldSelector, PodSpec, PodTemplateSpec, SecurityContext, ServiceAccount, Toleration,
    Volume, VolumeMount,
};
use k8s_openapi::api::rbac::v1::Subject;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::config::{ServiceAccountKubeconfig, kube_proxy_configuration};
use super::{Credential, Object, meta, rbac};
use crate::Error;
use crate::token::DEFAULT_NODE_TOKEN_GROUP;

const FILE: &str = "kube-proxy.yaml";
const NS: &str = "kube-system";

fn labels() -> BTreeMap<String, String> {
    BTreeMap::from([("k8s-app".to_owned(), "kube-proxy".to_owned())])
}

/// The objects; the DaemonSet only with `daemonset`.
pub(super) fn objects(spec: &ClusterSpec, daemonset: bool) -> Result<Vec<Object>, Error> {
    let image = spec.image(frankenetes_spec::Image::Proxy)?.to_string();
    let sa = ServiceAccount {
        metadata: meta("kube-proxy", Some(NS), &[]),
        ..Default::default()
    };
    let binding = rbac::cluster_binding(
        "kubeadm:node-proxier",
        "system:node-proxier",
        vec![Subject {
            api_group: None,
            kind: "ServiceAccount".into(),
            name: "kube-proxy".into(),
            namespace: Some(NS.into()),
        }],
    );
    let cm = ConfigMap {
        metadata: meta("kube-proxy", Some(NS), &[("app", "kube-proxy")]),
        data: Some(BTreeMap::from([
            (
                "config.conf".to_owned(),
                crate::yaml("KubeProxyConfiguration", &kube_proxy_configuration(spec))?,
            ),
            (
                "kubeconfig.conf".to_owned(),
                crate::yaml(
                    "kube-proxy kubeconfig",
                    &ServiceAccountKubeconfig::new(&spec.control_plane_url()),
                )?,
            ),
        ])),
        ..Default::default()
    };
    let mount = |name: &str, path: &str, ro: bool| VolumeMount {
        name: name.into(),
        mount_path: path.into(),
        read_only: Some(ro),
        ..Default::default()
    };
    let host = |name: &str, path: &str, t: Option<&str>| Volume {
        name: name.into(),
        host_path: Some(HostPathVolumeSource {
            path: path.into(),
            type_: t.map(str::to_owned),
        }),
        ..Default::default()
    };
    let ds_spec = DaemonSetSpec {
        selector: LabelSelector {
            match_labels: Some(labels()),
            ..Default::default()
        },
        update_strategy: Some(DaemonSetUpdateStrategy {
            type_: Some("RollingUpdate".into()),
            ..Default::default()
        }),
        template: PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels()),
                ..Default::default()
            }),
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "kube-proxy".into(),
                    image: Some(image),
                    image_pull_policy: Some("IfNotPresent".into()),
                    command: Some(vec![
                        "/usr/local/bin/kube-proxy".into(),
                        "--config=/var/lib/kube-proxy/config.conf".into(),
                        "--hostname-override=$(NODE_NAME)".into(),
                    ]),
                    env: Some(vec![EnvVar {
                        name: "NODE_NAME".into(),
                        value_from: Some(EnvVarSource {
                            field_ref: Some(ObjectFieldSelector {
                                field_path: "spec.nodeName".into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }]),
                    security_context: Some(SecurityContext {
                        privileged: Some(true),
                        ..Default::default()
                    }),
                    volume_mounts: Some(vec![
                        mount("kube-proxy", "/var/lib/kube-proxy", false),
                        mount("xtables-lock", "/run/xtables.lock", false),
                        mount("lib-modules", "/lib/modules", true),
                    ]),
                    ..Default::default()
                }],
                host_network: Some(true),
                node_selector: Some(BTreeMap::from([(
                    "kubernetes.io/os".to_owned(),
                    "linux".to_owned(),
                )])),
                priority_class_name: Some("system-node-critical".into()),
                service_account_name: Some("kube-proxy".into()),
                tolerations: Some(vec![Toleration {
                    operator: Some("Exists".into()),
                    ..Default::default()
                }]),
                volumes: Some(vec![
                    Volume {
                        name: "kube-proxy".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: "kube-proxy".into(),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                    host("xtables-lock", "/run/xtables.lock", Some("FileOrCreate")),
                    host("lib-modules", "/lib/modules", None),
                ]),
                ..Default::default()
            }),
        },
        ..Default::default()
    };
    #[allow(clippy::needless_update)] // `status` is gone from the 1.37 types
    let mut ds = DaemonSet {
        metadata: meta("kube-proxy", Some(NS), &[("k8s-app", "kube-proxy")]),
        ..Default::default()
    };
    // `spec` became required in the 1.37 types; the JSON is the same.
    k8s_openapi::k8s_if_le_1_36! {
        ds.spec = Some(ds_spec);
    }
    k8s_openapi::k8s_if_ge_1_37! {
        ds.spec = ds_spec;
    }
    let mut out = vec![
        Object::typed(FILE, Credential::Admin, &sa)?,
        Object::typed(FILE, Credential::Admin, &binding)?,
        Object::typed(FILE, Credential::Admin, &cm)?,
    ];
    // Joining nodes read kube-proxy's configuration (kubeadm's `kube-proxy` Role).
    out.extend(rbac::configmap_reader(
        FILE,
        "kube-proxy",
        NS,
        "kube-proxy",
        vec![rbac::group(DEFAULT_NODE_TOKEN_GROUP)],
    )?);
    if daemonset {
        out.push(Object::typed(FILE, Credential::Admin, &ds)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use frankenetes_pki::{Pki, PkiPlan};
    use frankenetes_spec::ClusterSpec;

    use super::super::{AddonOptions, files, objects};

    #[test]
    fn the_daemonset_can_be_left_out_and_the_rest_stays() {
        let spec = ClusterSpec::example();
        let pki = Pki::generate(&PkiPlan::from(&spec)).unwrap();
        let names = |opts: &AddonOptions| -> Vec<String> {
            objects(&spec, &pki, opts)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect()
        };
        let ds = "DaemonSet kube-system/kube-proxy".to_owned();
        let with = names(&AddonOptions::default());
        assert!(with.contains(&ds), "{with:#?}");
        let off = AddonOptions::default().kube_proxy_daemonset(false);
        let without = names(&off);
        assert!(!without.contains(&ds), "{without:#?}");
        // Everything else is the same, in the same order: kubeadm's ConfigMap, ServiceAccount
        // and RBAC for kube-proxy among them.
        let mut expected = with.clone();
        expected.retain(|o| *o != ds);
        assert_eq!(without, expected);
        for kept in [
            "ConfigMap kube-system/kube-proxy",
            "ServiceAccount kube-system/kube-proxy",
            "ClusterRoleBinding kubeadm:node-proxier",
            "Role kube-system/kube-proxy",
        ] {
            assert!(without.iter().any(|o| o == kept), "{kept}: {without:#?}");
        }
        // The rendered file says the same.
        let objs = objects(&spec, &pki, &off).unwrap();
        let file = files(&objs, &off)
            .unwrap()
            .into_iter()
            .find(|(p, _)| p.ends_with("kube-proxy.yaml"))
            .unwrap();
        let text = String::from_utf8(file.1.contents.to_vec()).unwrap();
        assert!(!text.contains("kind: DaemonSet"), "{text}");
        assert!(text.contains("kind: ConfigMap"), "{text}");
    }
}
