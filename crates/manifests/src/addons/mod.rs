//! Day one: the cluster objects kubeadm creates after `init`, typed with `k8s-openapi`, so
//! admins get access and workers join with a stock `kubeadm join`.
//!
//! ```
//! use frankenetes_manifests::addons::{self, AddonOptions, Credential};
//! use frankenetes_pki::{Pki, PkiPlan};
//! use frankenetes_spec::ClusterSpec;
//!
//! let spec = ClusterSpec::example();
//! let pki = Pki::generate(&PkiPlan::from(&spec))?;
//! let objects = addons::objects(&spec, &pki, &AddonOptions::default())?;
//! // Only the binding that gives the admin kubeconfig's group its rights needs super-admin.
//! let super_admin: Vec<String> = objects.iter()
//!     .filter(|o| o.credential == Credential::SuperAdmin)
//!     .map(|o| o.to_string())
//!     .collect();
//! assert_eq!(super_admin, ["ClusterRoleBinding kubeadm:cluster-admins"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What there is, one file each under `cluster/addons/` (see [`files`]):
//!
//! - `rbac.yaml`: `kubeadm:cluster-admins` → `cluster-admin`; the bootstrap bindings kubeadm
//!   makes (node bootstrapper and CSR auto-approval for the default node-token group,
//!   certificate rotation for `system:nodes`, `kubeadm:get-nodes`, the roles that let joining
//!   nodes read `kubeadm-config` and `kubelet-config`);
//! - `cluster-info.yaml`: the `cluster-info` ConfigMap in `kube-public` (a kubeconfig with the
//!   CA and the control-plane endpoint; the bootstrap signer adds its signatures) and the role
//!   that lets anonymous users read it;
//! - `kubeadm-config.yaml`: `kubeadm-config` (a `ClusterConfiguration` matching the rendered
//!   control plane) and `kubelet-config`, where `kubeadm join` and `kubeadm upgrade` look;
//! - `coredns.yaml`: CoreDNS (the `kube-dns` Service at the tenth address of the service CIDR,
//!   the kubelets' `clusterDNS`);
//! - `kube-proxy.yaml`: kube-proxy's DaemonSet (unless [`AddonOptions::kube_proxy_daemonset`]
//!   is off), ConfigMap, ServiceAccount and RBAC;
//! - `cni.yaml`: only when a network plugin manifest is given ([`Cni::Manifest`]), copied as-is.
//!   The default is no network plugin ([`Cni::None`]): nodes stay `NotReady` until you apply
//!   one (Calico, Cilium, Flannel, …) with `kubectl apply -f`.
//!
//! Bootstrap-token Secrets ([`crate::token`]) are not in these files: tokens are made on the
//! running cluster (`frankenetes token create`), so no secret sits in a rendered tree.

mod config;
mod coredns;
mod kube_proxy;
mod rbac;

use std::fmt;
use std::path::{Path, PathBuf};

use frankenetes_bundle::fs::PUBLIC_MODE;
use frankenetes_pki::{CaId, Pki};
use frankenetes_spec::ClusterSpec;
use serde::Serialize;

use crate::{Error, NodeFile};

pub use config::{
    ClusterConfiguration, ClusterInfoKubeconfig, KubeProxyConfiguration, cluster_configuration,
    kube_proxy_configuration,
};

/// Where the day-one files go in a render tree.
pub const ADDONS_DIR: &str = "cluster/addons";
/// The one field manager of every server-side apply.
pub const FIELD_MANAGER: &str = "frankenetes";
/// The path anonymous users may `GET` (kubeadm's token discovery), besides the health probes.
pub const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

/// Which network plugin day one installs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Cni {
    /// None (the default): nodes stay `NotReady` until you apply a plugin yourself.
    #[default]
    None,
    /// The objects of this manifest file (multi-document YAML), applied as they are.
    Manifest(PathBuf),
}

/// Options of the day-one objects (not in the cluster spec yet).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct AddonOptions {
    /// Render and apply the day-one objects (default true). Off: no `cluster/addons/`, and the
    /// apiserver allows anonymous requests only on the health endpoints.
    pub enabled: bool,
    /// The network plugin.
    pub cni: Cni,
    /// kubeadm's kube-proxy DaemonSet (default true). Off where kube-proxy runs some other way
    /// (the local platform runs it as a host process): its ConfigMap, ServiceAccount and RBAC,
    /// which `kubeadm join` and `kubeadm upgrade` read, stay.
    pub kube_proxy_daemonset: bool,
}

impl Default for AddonOptions {
    fn default() -> Self {
        Self {
            enabled: true,
            cni: Cni::None,
            kube_proxy_daemonset: true,
        }
    }
}

impl AddonOptions {
    /// No day-one objects.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Uses `cni`.
    #[must_use]
    pub fn cni(mut self, cni: Cni) -> Self {
        self.cni = cni;
        self
    }

    /// With or without kubeadm's kube-proxy DaemonSet (see
    /// [`AddonOptions::kube_proxy_daemonset`]).
    #[must_use]
    pub fn kube_proxy_daemonset(mut self, on: bool) -> Self {
        self.kube_proxy_daemonset = on;
        self
    }
}

/// Which kubeconfig applies an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum Credential {
    /// `super-admin.conf` (`system:masters`): only the binding that gives `admin.conf`'s group
    /// its rights.
    SuperAdmin,
    /// `admin.conf` (`kubeadm:cluster-admins`): everything else.
    Admin,
}

/// One object to apply: its identity, the REST path, the credential and the body.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Object {
    /// The file under `cluster/addons/` it is written to (`rbac.yaml`).
    pub file: &'static str,
    /// `rbac.authorization.k8s.io/v1`.
    pub api_version: String,
    /// `ClusterRoleBinding`.
    pub kind: String,
    /// The resource's plural (`clusterrolebindings`).
    pub plural: String,
    /// The namespace of a namespaced object.
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// Who applies it.
    pub credential: Credential,
    /// The whole object, `apiVersion` and `kind` included.
    pub body: serde_json::Value,
}

impl fmt::Display for Object {
    /// `Kind namespace/name` (`ConfigMap kube-public/cluster-info`) or `Kind name`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

impl Object {
    fn typed<T>(file: &'static str, credential: Credential, value: &T) -> Result<Self, Error>
    where
        T: k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
            + Serialize,
    {
        let meta = value.metadata();
        let name = meta.name.clone().ok_or_else(|| Error::Invalid {
            field: format!("{} in {file}", T::KIND),
            message: "has no metadata.name".into(),
        })?;
        let body = serde_json::to_value(value).map_err(|e| Error::Serialize {
            what: format!("{} {name}", T::KIND),
            message: e.to_string(),
        })?;
        Ok(Self {
            file,
            api_version: T::API_VERSION.to_owned(),
            kind: T::KIND.to_owned(),
            plural: T::URL_PATH_SEGMENT.to_owned(),
            namespace: meta.namespace.clone(),
            name,
            credential,
            body,
        })
    }

    /// An object of a user's manifest: namespaced when it names a namespace, plural by
    /// English rules (as `kube`'s `ApiResource::from_gvk` guesses it).
    fn untyped(file: &'static str, body: serde_json::Value, source: &Path) -> Result<Self, Error> {
        let field = |what: &str| Error::Invalid {
            field: source.display().to_string(),
            message: format!("an object has no {what}"),
        };
        let s = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        let api_version = s(&body["apiVersion"]).ok_or_else(|| field("apiVersion"))?;
        let kind = s(&body["kind"]).ok_or_else(|| field("kind"))?;
        let name = s(&body["metadata"]["name"]).ok_or_else(|| field("metadata.name"))?;
        let namespace = s(&body["metadata"]["namespace"]);
        Ok(Self {
            file,
            plural: plural(&kind),
            api_version,
            kind,
            namespace,
            name,
            credential: Credential::Admin,
            body,
        })
    }

    /// The object's REST path (`/apis/apps/v1/namespaces/kube-system/deployments/coredns`).
    pub fn path(&self) -> String {
        let base = if self.api_version.contains('/') {
            format!("/apis/{}", self.api_version)
        } else {
            format!("/api/{}", self.api_version)
        };
        match &self.namespace {
            Some(ns) => format!("{base}/namespaces/{ns}/{}/{}", self.plural, self.name),
            None => format!("{base}/{}/{}", self.plural, self.name),
        }
    }
}

/// `kind` → its resource plural, as Kubernetes names them.
fn plural(kind: &str) -> String {
    let k = kind.to_ascii_lowercase();
    if k == "endpoints" {
        k
    } else if k.ends_with('s') || k.ends_with('x') || k.ends_with("ch") || k.ends_with("sh") {
        format!("{k}es")
    } else if k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") && !k.ends_with("oy") {
        format!("{}ies", &k[..k.len() - 1])
    } else {
        format!("{k}s")
    }
}

/// Every day-one object of `spec`, in apply order (the super-admin binding first), or none when
/// `opts.enabled` is false.
pub fn objects(spec: &ClusterSpec, pki: &Pki, opts: &AddonOptions) -> Result<Vec<Object>, Error> {
    if !opts.enabled {
        return Ok(Vec::new());
    }
    spec.release()?;
    let ca = pki
        .ca(CaId::Kubernetes)
        .ok_or_else(|| Error::MissingPki("Kubernetes CA".into()))?
        .cert_pem();
    let mut out = rbac::objects()?;
    out.extend(config::cluster_info(spec, ca)?);
    out.extend(config::config_maps(spec)?);
    out.extend(coredns::objects(spec)?);
    out.extend(kube_proxy::objects(spec, opts.kube_proxy_daemonset)?);
    if let Cni::Manifest(path) = &opts.cni {
        for body in cni_documents(path)? {
            out.push(Object::untyped("cni.yaml", body, path)?);
        }
    }
    Ok(out)
}

/// The documents of a user's CNI manifest (empty documents skipped).
fn cni_documents(path: &Path) -> Result<Vec<serde_json::Value>, Error> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::Invalid {
        field: format!("CNI manifest {}", path.display()),
        message: format!("cannot read it: {e}"),
    })?;
    let mut docs = Vec::new();
    for de in serde_norway::Deserializer::from_str(&text) {
        let v = <serde_json::Value as serde::Deserialize>::deserialize(de).map_err(|e| {
            Error::Invalid {
                field: format!("CNI manifest {}", path.display()),
                message: format!("not YAML: {e}"),
            }
        })?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// The day-one files (`cluster/addons/<file>`, 0644): the objects of each file as a
/// multi-document YAML; a CNI manifest is copied byte for byte.
pub fn files(objects: &[Object], opts: &AddonOptions) -> Result<Vec<(PathBuf, NodeFile)>, Error> {
    let mut out: Vec<(PathBuf, NodeFile)> = Vec::new();
    let mut order: Vec<&'static str> = Vec::new();
    let mut texts: std::collections::BTreeMap<&'static str, String> = Default::default();
    for o in objects.iter().filter(|o| o.file != "cni.yaml") {
        if !order.contains(&o.file) {
            order.push(o.file);
        }
        let t = texts.entry(o.file).or_insert_with(|| {
            format!(
                "# Written by frankenetes: day-one objects (apply with `kubectl apply --server-side --field-manager={FIELD_MANAGER} -f`).\n"
            )
        });
        t.push_str("---\n");
        t.push_str(&crate::yaml(&o.to_string(), &o.body)?);
    }
    for f in order {
        let path = Path::new(ADDONS_DIR).join(f);
        out.push((
            path.clone(),
            NodeFile::new(path.display().to_string(), texts[f].as_bytes(), PUBLIC_MODE),
        ));
    }
    if let (true, Cni::Manifest(src)) = (opts.enabled, &opts.cni) {
        let bytes = std::fs::read(src).map_err(|e| Error::Invalid {
            field: format!("CNI manifest {}", src.display()),
            message: format!("cannot read it: {e}"),
        })?;
        let path = Path::new(ADDONS_DIR).join("cni.yaml");
        out.push((
            path.clone(),
            NodeFile::new(path.display().to_string(), bytes, PUBLIC_MODE),
        ));
    }
    Ok(out)
}

fn meta(
    name: &str,
    namespace: Option<&str>,
    labels: &[(&str, &str)],
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        name: Some(name.into()),
        namespace: namespace.map(str::to_owned),
        labels: (!labels.is_empty()).then(|| {
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plurals_follow_kubernetes() {
        for (k, p) in [
            ("DaemonSet", "daemonsets"),
            ("NetworkPolicy", "networkpolicies"),
            ("IngressClass", "ingressclasses"),
            ("Endpoints", "endpoints"),
            ("Gateway", "gateways"),
            ("ConfigMap", "configmaps"),
        ] {
            assert_eq!(plural(k), p);
        }
    }

    #[test]
    fn paths_name_group_namespace_and_plural() {
        let spec = ClusterSpec::example();
        let pki = Pki::generate(&frankenetes_pki::PkiPlan::from(&spec)).unwrap();
        let objs = objects(&spec, &pki, &AddonOptions::default()).unwrap();
        let paths: Vec<String> = objs.iter().map(Object::path).collect();
        assert!(paths.contains(&CLUSTER_INFO_PATH.to_owned()), "{paths:#?}");
        assert!(
            paths.contains(
                &"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubeadm:cluster-admins"
                    .to_owned()
            )
        );
        assert!(
            paths
                .contains(&"/apis/apps/v1/namespaces/kube-system/daemonsets/kube-proxy".to_owned())
        );
        assert_eq!(objs[0].credential, Credential::SuperAdmin);
        assert!(objs[1..].iter().all(|o| o.credential == Credential::Admin));
        assert!(
            objects(&spec, &pki, &AddonOptions::disabled())
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_cni_manifest_is_applied_as_is_and_copied_byte_for_byte() {
        let spec = ClusterSpec::example();
        let pki = Pki::generate(&frankenetes_pki::PkiPlan::from(&spec)).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cni.yaml");
        let text = "# my plugin\napiVersion: v1\nkind: Namespace\nmetadata: {name: cni}\n---\n---\napiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: cni}\nspec: {}\n";
        std::fs::write(&p, text).unwrap();
        let opts = AddonOptions::default().cni(Cni::Manifest(p.clone()));
        let objs = objects(&spec, &pki, &opts).unwrap();
        let cni: Vec<String> = objs
            .iter()
            .filter(|o| o.file == "cni.yaml")
            .map(Object::path)
            .collect();
        assert_eq!(
            cni,
            [
                "/api/v1/namespaces/cni",
                "/apis/apps/v1/namespaces/cni/daemonsets/agent"
            ]
        );
        let f = files(&objs, &opts).unwrap();
        let copy = f.iter().find(|(p, _)| p.ends_with("cni.yaml")).unwrap();
        assert_eq!(copy.1.contents.as_slice(), text.as_bytes());
        std::fs::write(&p, "kind: [").unwrap();
        let e = objects(&spec, &pki, &opts).unwrap_err().to_string();
        assert!(e.contains("cni.yaml"), "{e}");
        let missing = AddonOptions::default().cni(Cni::Manifest(dir.path().join("nope.yaml")));
        let e = objects(&spec, &pki, &missing).unwrap_err().to_string();
        assert!(e.contains("nope.yaml") && e.contains("cannot read"), "{e}");
    }
}
