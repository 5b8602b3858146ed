//! kubeadm's RBAC: the admin group's binding and the bootstrap bindings for joining nodes.

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};

use super::{Credential, Object, meta};
use crate::Error;
use crate::token::DEFAULT_NODE_TOKEN_GROUP;

const FILE: &str = "rbac.yaml";
const RBAC: &str = "rbac.authorization.k8s.io";

pub(super) fn group(name: &str) -> Subject {
    Subject {
        api_group: Some(RBAC.into()),
        kind: "Group".into(),
        name: name.into(),
        namespace: None,
    }
}

pub(super) fn user(name: &str) -> Subject {
    Subject {
        api_group: Some(RBAC.into()),
        kind: "User".into(),
        name: name.into(),
        namespace: None,
    }
}

pub(super) fn role_ref(kind: &str, name: &str) -> RoleRef {
    let (api_group, kind, name) = (RBAC.to_owned(), kind.to_owned(), name.to_owned());
    // `apiGroup` became optional in the 1.36 types; the JSON is the same.
    #[allow(clippy::needless_return)] // one of the two expands to nothing
    {
        k8s_openapi::k8s_if_le_1_35! {
            return RoleRef { api_group, kind, name };
        }
        k8s_openapi::k8s_if_ge_1_36! {
            return RoleRef { api_group: Some(api_group), kind, name };
        }
    }
}

pub(super) fn cluster_binding(
    name: &str,
    role: &str,
    subjects: Vec<Subject>,
) -> ClusterRoleBinding {
    ClusterRoleBinding {
        metadata: meta(name, None, &[]),
        role_ref: role_ref("ClusterRole", role),
        subjects: Some(subjects),
    }
}

/// A Role in `ns` allowing `get` of the named ConfigMap, and its binding to `subjects`.
pub(super) fn configmap_reader(
    file: &'static str,
    name: &str,
    ns: &str,
    configmap: &str,
    subjects: Vec<Subject>,
) -> Result<Vec<Object>, Error> {
    let role = Role {
        metadata: meta(name, Some(ns), &[]),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            resource_names: Some(vec![configmap.into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        }]),
    };
    let binding = RoleBinding {
        metadata: meta(name, Some(ns), &[]),
        role_ref: role_ref("Role", name),
        subjects: Some(subjects),
    };
    Ok(vec![
        Object::typed(file, Credential::Admin, &role)?,
        Object::typed(file, Credential::Admin, &binding)?,
    ])
}

/// The admin group's binding (first: it needs super-admin, and gives `admin.conf` its rights
/// for everything after it), then kubeadm's bootstrap RBAC.
pub(super) fn objects() -> Result<Vec<Object>, Error> {
    let tokens = || group(DEFAULT_NODE_TOKEN_GROUP);
    let mut out = vec![Object::typed(
        FILE,
        Credential::SuperAdmin,
        &cluster_binding(
            "kubeadm:cluster-admins",
            "cluster-admin",
            vec![group("kubeadm:cluster-admins")],
        ),
    )?];
    for b in [
        // Joining nodes may create their client CSR…
        cluster_binding(
            "kubeadm:kubelet-bootstrap",
            "system:node-bootstrapper",
            vec![tokens()],
        ),
        // …which is approved automatically…
        cluster_binding(
            "kubeadm:node-autoapprove-bootstrap",
            "system:certificates.k8s.io:certificatesigningrequests:nodeclient",
            vec![tokens()],
        ),
        // …as are the kubelets' client-certificate renewals.
        cluster_binding(
            "kubeadm:node-autoapprove-certificate-rotation",
            "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient",
            vec![group("system:nodes")],
        ),
    ] {
        out.push(Object::typed(FILE, Credential::Admin, &b)?);
    }
    // `kubeadm join` checks that no node of its name exists yet.
    let get_nodes = ClusterRole {
        metadata: meta("kubeadm:get-nodes", None, &[]),
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["nodes".into()]),
            verbs: vec!["get".into()],
            ..Default::default()
        }]),
        ..Default::default()
    };
    out.push(Object::typed(FILE, Credential::Admin, &get_nodes)?);
    out.push(Object::typed(
        FILE,
        Credential::Admin,
        &cluster_binding("kubeadm:get-nodes", "kubeadm:get-nodes", vec![tokens()]),
    )?);
    // Joining nodes read the cluster's kubeadm and kubelet configuration.
    out.extend(configmap_reader(
        FILE,
        "kubeadm:nodes-kubeadm-config",
        "kube-system",
        "kubeadm-config",
        vec![tokens(), group("system:nodes")],
    )?);
    out.extend(configmap_reader(
        FILE,
        "kubeadm:kubelet-config",
        "kube-system",
        "kubelet-config",
        vec![group("system:nodes"), tokens()],
    )?);
    Ok(out)
}
