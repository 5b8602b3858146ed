//! Node bundles for a kubeadm-style control plane: static pods, kubeconfigs, kubelet
//! configuration, systemd units and Ignition, from one cluster spec and its PKI. No network,
//! no async runtime.
//!
//! ```
//! use frankenetes_manifests::render;
//! use frankenetes_pki::{Pki, PkiPlan};
//! use frankenetes_spec::ClusterSpec;
//!
//! let spec = ClusterSpec::example();
//! let pki = Pki::generate(&PkiPlan::from(&spec))?;
//! let rendered = render(&spec, &pki)?;
//! let node = rendered.node("control-01").expect("a control-plane node");
//! let etcd = node.file("/etc/kubernetes/manifests/etcd.yaml").expect("a static pod");
//! assert!(std::str::from_utf8(&etcd.contents)?.contains("--client-cert-auth=true"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! What each node gets (`nodes/<name>/` is a root-filesystem overlay; `nodes/<name>.ign` is the
//! same content as one Ignition v3 config for Fedora CoreOS):
//!
//! - control-plane nodes: `/etc/kubernetes/manifests/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler}.yaml`
//!   (kubeadm's flags, probes, volumes, priority and security context, version-aware),
//!   `/etc/kubernetes/{admin,controller-manager,scheduler}.conf`, the PKI, and disabled systemd
//!   units `frankenetes-<component>.service` running the same command lines as plain processes
//!   (enable those instead of the kubelet's static pods if you run bare binaries);
//! - every node: `/etc/kubernetes/kubelet.conf`, `/var/lib/kubelet/config.yaml`, the enabled
//!   `kubelet.service`, `/var/lib/kube-proxy/kubeconfig.conf`, `/etc/hostname`, `/etc/hosts`
//!   lines for every node and the endpoint, a sysctl drop-in and the kernel modules the
//!   network needs.
//!
//! The operator gets `cluster/admin.conf` and `cluster/super-admin.conf`, and the day-one
//! objects (RBAC, `cluster-info`, kubeadm's config maps, CoreDNS, kube-proxy; see [`addons`])
//! in `cluster/addons/*.yaml`.
//!
//! Every flag rendered (including `extraArgs`) is checked against the flag inventory of the
//! component's version; etcd's flags are rendered for the etcd release actually used
//! (`spec.etcd.version`, else the image's).

#![deny(missing_docs)]

pub mod addons;
pub mod flags;
pub mod kubeconfig;
pub mod kubelet;
mod nodes;
pub mod provision;
pub mod security;
mod staticpod;
pub mod token;
mod values;
pub mod versions;

use std::path::{Path, PathBuf};

use frankenetes_bundle::fs::SECRET_MODE;
use frankenetes_pki::{CaId, Pki};
use frankenetes_spec::{ClusterSpec, EtcdVersion, Image, NodeSpec};
use k8s_openapi::api::core::v1::Pod;

pub use addons::{AddonOptions, Cni};
pub use flags::{Flags, Layout};
pub use frankenetes_bundle::systemd::Unit;
pub use frankenetes_bundle::{NodeBundle, NodeFile, WriteReport};
pub use kubeconfig::Kubeconfig;
pub use provision::{Binaries, BinarySource, NodeBinary};
pub use versions::{Binary, Inventory};

/// Errors of rendering. Each names the field or file it is about.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The Kubernetes minor is not in the supported table.
    #[error("spec.kubernetesVersion: {version} is not supported; supported minors: {supported}")]
    UnsupportedVersion {
        /// The version asked for.
        version: String,
        /// The supported minors.
        supported: String,
    },
    /// No flag inventory for a component version (etcd minors other than 3.4–3.7).
    #[error("no flag inventory for {key}; frankenetes renders etcd 3.4 to 3.7")]
    NoInventory {
        /// `etcd-3.8`, …
        key: String,
    },
    /// A flag does not exist in the component's version.
    #[error("{field}: --{flag} does not exist in {inventory}; remove it or pick another version")]
    UnknownFlag {
        /// The flag.
        flag: String,
        /// The inventory checked (`kube-apiserver-1.35`).
        inventory: String,
        /// Where it came from (`spec.apiServer.extraArgs.foo`, or `rendered flags`).
        field: String,
    },
    /// A spec value cannot be rendered.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No SHA-256 is known for a binary the nodes download.
    #[error(
        "spec.kubernetesVersion: frankenetes knows no official SHA-256 of {binary} {version} for linux/{arch} (it knows {known}): use a version it knows, or give the hashes (published at {url}.sha256) as `RenderOptions::binaries`; for machines that have the binaries already, render without downloads (`frankenetes render --preinstalled-binaries`)"
    )]
    NoBinaryHash {
        /// `kubelet`, `kubeadm`, `kubectl`.
        binary: String,
        /// The Kubernetes version.
        version: String,
        /// `amd64`, `arm64`.
        arch: String,
        /// The official URL of the binary.
        url: String,
        /// The versions whose hashes are known.
        known: String,
    },
    /// The PKI lacks something a bundle needs.
    #[error("the PKI has no {0}; run `frankenetes pki` with the same spec first")]
    MissingPki(String),
    /// A file could not be written, or a unit line cannot be.
    #[error(transparent)]
    Bundle(#[from] frankenetes_bundle::Error),
    /// The PKI lacks or refuses something.
    #[error(transparent)]
    Pki(#[from] frankenetes_pki::Error),
    /// YAML serialization failed.
    #[error("cannot serialize {what}: {message}")]
    Serialize {
        /// What.
        what: String,
        /// Why.
        message: String,
    },
}

impl From<frankenetes_spec::Error> for Error {
    /// The spec's answer about a version or an image (the one release table and image rule
    /// live there), as this crate's error naming the same field.
    fn from(e: frankenetes_spec::Error) -> Self {
        match e {
            frankenetes_spec::Error::UnsupportedVersion { version, supported } => {
                Error::UnsupportedVersion {
                    version: version.to_string(),
                    supported,
                }
            }
            other => {
                let problems = other.problems();
                Error::Invalid {
                    field: problems
                        .first()
                        .map_or_else(|| "spec".to_owned(), |p| p.path.clone()),
                    message: if problems.is_empty() {
                        other.to_string()
                    } else {
                        problems
                            .iter()
                            .map(|p| p.message.clone())
                            .collect::<Vec<_>>()
                            .join("; ")
                    },
                }
            }
        }
    }
}

impl Error {
    /// Whether the user must change what they gave (the spec): the CLI exits 2 for these.
    pub fn is_bad_input(&self) -> bool {
        match self {
            Error::UnsupportedVersion { .. }
            | Error::NoInventory { .. }
            | Error::UnknownFlag { .. }
            | Error::NoBinaryHash { .. }
            | Error::Invalid { .. } => true,
            Error::Bundle(frankenetes_bundle::Error::Invalid { .. }) => true,
            Error::Pki(e) => e.is_bad_input(),
            _ => false,
        }
    }
}

/// Everything `render` makes: a bundle per node and the operator's files.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rendered {
    /// Node bundles, control plane first.
    pub nodes: Vec<NodeBundle>,
    /// Operator files relative to the output root: `cluster/admin.conf` and
    /// `cluster/super-admin.conf` (0600), the day-one objects `cluster/addons/*.yaml` (0644).
    pub cluster_files: Vec<(PathBuf, NodeFile)>,
    /// The etcd release flags were rendered for.
    pub etcd_version: EtcdVersion,
    /// Each control-plane node's command lines and static pods, by node name, as rendered
    /// into its bundle.
    pub control_planes: Vec<(String, ControlPlane)>,
}

impl Rendered {
    /// A control-plane node's command lines and static pods.
    pub fn control_plane(&self, name: &str) -> Option<&ControlPlane> {
        self.control_planes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, cp)| cp)
    }

    /// A node's bundle.
    pub fn node(&self, name: &str) -> Option<&NodeBundle> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// Writes every bundle and operator file under `out`, leaving identical files untouched.
    pub fn write(&self, out: &Path) -> Result<WriteReport, Error> {
        Ok(frankenetes_bundle::write_bundles(
            out,
            self.cluster_files.iter().map(|(rel, f)| (rel.as_path(), f)),
            &self.nodes,
        )?)
    }
}

/// The static pods of one control-plane node, and the command lines they run.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ControlPlane {
    /// etcd's flags.
    pub etcd: Flags,
    /// kube-apiserver's flags.
    pub apiserver: Flags,
    /// kube-controller-manager's flags.
    pub controller_manager: Flags,
    /// kube-scheduler's flags.
    pub scheduler: Flags,
    /// The four pods: etcd, kube-apiserver, kube-controller-manager, kube-scheduler.
    pub pods: Vec<Pod>,
}

/// The etcd release and image a spec renders for ([`ClusterSpec::etcd_release`]).
pub fn etcd_release(spec: &ClusterSpec) -> Result<(EtcdVersion, String), Error> {
    etcd_release_in(spec, &Layout::for_spec(spec))
}

/// [`etcd_release`] for a layout that may name the etcd release that will run
/// ([`Layout::with_etcd_version`]): that release's flags, with the spec's image.
pub fn etcd_release_in(
    spec: &ClusterSpec,
    layout: &Layout,
) -> Result<(EtcdVersion, String), Error> {
    let etcd = spec.etcd_release()?;
    Ok((
        layout.etcd_version().unwrap_or(etcd.version),
        etcd.image.to_string(),
    ))
}

/// The flags and static pods of one control-plane node in `layout`, every flag checked against
/// its version's inventory.
pub fn control_plane(
    spec: &ClusterSpec,
    node: &NodeSpec,
    layout: &Layout,
) -> Result<ControlPlane, Error> {
    let rel = spec.release()?;
    let (etcd_version, etcd_image) = etcd_release_in(spec, layout)?;
    let etcd = flags::etcd(spec, node, etcd_version, layout);
    let apiserver = flags::kube_apiserver(spec, node, layout);
    let controller_manager = flags::kube_controller_manager(spec, node, layout);
    let scheduler = flags::kube_scheduler(spec, node, layout);
    etcd.check(
        &Inventory::etcd(etcd_version)?,
        flags::extra_field(Binary::Etcd),
        &spec.etcd.extra_args,
    )?;
    for (b, f, extra) in [
        (Binary::ApiServer, &apiserver, &spec.api_server.extra_args),
        (
            Binary::ControllerManager,
            &controller_manager,
            &spec.controller_manager.extra_args,
        ),
        (Binary::Scheduler, &scheduler, &spec.scheduler.extra_args),
    ] {
        f.check(
            &Inventory::kubernetes(b, rel.minor)?,
            flags::extra_field(b),
            extra,
        )?;
    }
    let pods = vec![
        staticpod::etcd(
            spec,
            node,
            &etcd,
            etcd_image,
            staticpod::livez(etcd_version),
        ),
        staticpod::kube_apiserver(spec, node, &apiserver, spec.image(Image::ApiServer)?.into()),
        staticpod::kube_controller_manager(
            spec,
            node,
            &controller_manager,
            spec.image(Image::ControllerManager)?.into(),
        ),
        staticpod::kube_scheduler(spec, node, &scheduler, spec.image(Image::Scheduler)?.into()),
    ];
    Ok(ControlPlane {
        etcd,
        apiserver,
        controller_manager,
        scheduler,
        pods,
    })
}

/// Checks that a spec renders — a supported version, every flag (`extraArgs` included) in its
/// version's inventory, every value one token, a source for every binary the nodes download —
/// without a PKI, so a caller can refuse bad input before it writes anything (or generates
/// keys). [`check_opts`] with the default options.
pub fn check(spec: &ClusterSpec) -> Result<(), Error> {
    check_opts(spec, &RenderOptions::default())
}

/// [`check`] for the options [`render_opts`] will get.
pub fn check_opts(spec: &ClusterSpec, opts: &RenderOptions) -> Result<(), Error> {
    let layout = Layout::for_spec(spec).with_etcd_version(opts.etcd_version);
    for node in &spec.control_plane {
        control_plane(spec, node, &layout)?;
    }
    let rel = spec.release()?;
    let inventory = Inventory::kubernetes(Binary::Kubelet, rel.minor)?;
    for (node, _) in spec.nodes() {
        flags::kubelet(node, &layout).check(&inventory, "kubelet flags", &Default::default())?;
    }
    opts.binaries.check(spec)
}

/// The day-one files as the first control plane applies them: each `cluster/addons/` file,
/// with whether an object in it needs super-admin credentials.
fn day_one_files(
    objects: &[addons::Object],
    cluster_files: &[(PathBuf, NodeFile)],
) -> Vec<provision::dayone::AddonFile> {
    cluster_files
        .iter()
        .filter_map(|(p, f)| {
            let name = p
                .strip_prefix(addons::ADDONS_DIR)
                .ok()?
                .to_str()?
                .to_owned();
            let super_admin = objects
                .iter()
                .any(|o| o.file == name && o.credential == addons::Credential::SuperAdmin);
            Some(provision::dayone::AddonFile {
                name,
                file: f.clone(),
                super_admin,
            })
        })
        .collect()
}

fn yaml<T: serde::Serialize>(what: &str, v: &T) -> Result<String, Error> {
    serde_norway::to_string(v).map_err(|e| Error::Serialize {
        what: what.into(),
        message: e.to_string(),
    })
}

/// Renders every node's bundle, the operator's kubeconfigs and the day-one objects from a spec
/// and its PKI, with the default [`AddonOptions`] (day-one objects on, no network plugin).
pub fn render(spec: &ClusterSpec, pki: &Pki) -> Result<Rendered, Error> {
    render_with(spec, pki, &AddonOptions::default())
}

/// [`render`] with explicit day-one options.
pub fn render_with(
    spec: &ClusterSpec,
    pki: &Pki,
    addon_opts: &AddonOptions,
) -> Result<Rendered, Error> {
    render_opts(
        spec,
        pki,
        &RenderOptions {
            addons: addon_opts.clone(),
            ..RenderOptions::default()
        },
    )
}

/// What a rendering needs besides the spec and its PKI.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct RenderOptions {
    /// The day-one objects (default: on, no network plugin).
    pub addons: AddonOptions,
    /// The etcd release that will run, when it is known (the local backend runs the `etcd`
    /// it finds); default: `spec.etcd.version`, else the image's.
    pub etcd_version: Option<EtcdVersion>,
    /// How nodes get the kubelet, kubeadm and kubectl (default: their Ignition config
    /// downloads the official release binaries, pinned by SHA-256; see [`provision`]).
    pub binaries: Binaries,
}

impl RenderOptions {
    /// With the etcd release that will run.
    #[must_use]
    pub fn etcd_version(mut self, v: Option<EtcdVersion>) -> Self {
        self.etcd_version = v;
        self
    }

    /// With day-one options.
    #[must_use]
    pub fn addons(mut self, addons: AddonOptions) -> Self {
        self.addons = addons;
        self
    }

    /// With how nodes get their binaries.
    #[must_use]
    pub fn binaries(mut self, binaries: Binaries) -> Self {
        self.binaries = binaries;
        self
    }
}

/// [`render`] with every option: each node's bundle rendered once, in the layout the spec's
/// backend runs ([`Layout::for_spec`]); the control planes' command lines are kept in
/// [`Rendered::control_planes`] for backends that run them as processes or containers.
pub fn render_opts(spec: &ClusterSpec, pki: &Pki, opts: &RenderOptions) -> Result<Rendered, Error> {
    let addon_opts = &opts.addons;
    let layout = Layout::for_spec(spec).with_etcd_version(opts.etcd_version);
    let (etcd_version, _) = etcd_release_in(spec, &layout)?;
    let rel = spec.release()?;
    let ca = pki
        .ca(CaId::Kubernetes)
        .ok_or_else(|| Error::MissingPki("Kubernetes CA".into()))?
        .cert_pem()
        .to_owned();
    opts.binaries.check(spec)?;
    let endpoint = spec.control_plane_url();
    let mut cluster_files = Vec::new();
    for (leaf, user) in [
        ("admin", "kubernetes-admin"),
        ("super-admin", "kubernetes-super-admin"),
    ] {
        let l = pki
            .leaf(leaf)
            .ok_or_else(|| Error::MissingPki(format!("certificate {leaf}")))?;
        let k = Kubeconfig::new(
            spec.name.as_str(),
            &endpoint,
            &ca,
            user,
            l.cert_pem(),
            l.key_pem(),
        );
        cluster_files.push((
            PathBuf::from(format!("cluster/{leaf}.conf")),
            NodeFile::new(String::new(), k.to_yaml().as_bytes(), SECRET_MODE),
        ));
    }
    let day_one = addons::objects(spec, pki, addon_opts)?;
    cluster_files.extend(addons::files(&day_one, addon_opts)?);
    let kubelet_config = yaml(
        "KubeletConfiguration",
        &kubelet::KubeletConfiguration::for_spec(spec),
    )?;
    let kubelet_inventory = Inventory::kubernetes(Binary::Kubelet, rel.minor)?;
    // The apiserver's hardening files (the encryption configuration comes with the PKI).
    let mut apiserver_files = vec![(
        security::ADMISSION_CONFIG,
        yaml(
            "AdmissionConfiguration",
            &security::admission_configuration(spec),
        )?,
    )];
    if let Some(a) = security::authentication_configuration_for(spec, addon_opts.enabled) {
        apiserver_files.push((
            security::AUTHENTICATION_CONFIG,
            yaml("AuthenticationConfiguration", &a)?,
        ));
    }
    if spec.security.audit_log {
        apiserver_files.push((
            security::AUDIT_POLICY,
            yaml("audit Policy", &security::audit_policy())?,
        ));
    }
    if spec.security.encryption_at_rest && pki.encryption_config().is_none() {
        return Err(Error::MissingPki(
            "Secrets encryption configuration (encryption-config.yaml)".into(),
        ));
    }
    let addons = day_one_files(&day_one, &cluster_files);
    let super_admin_conf = cluster_files
        .iter()
        .find(|(p, _)| p == Path::new("cluster/super-admin.conf"))
        .map(|(_, f)| f.clone())
        .ok_or_else(|| Error::MissingPki("certificate super-admin".into()))?;
    let shared = nodes::Shared {
        spec,
        pki,
        layout,
        ca,
        kubelet_config,
        kubelet_inventory,
        apiserver_files,
        pki_files: nodes::pki_files_by_node(pki.files()),
        binaries: &opts.binaries,
        addons,
        super_admin_conf,
    };
    let mut nodes = Vec::new();
    let mut control_planes = Vec::new();
    for (node, role) in spec.nodes() {
        let (b, cp) = nodes::bundle(&shared, node, role)?;
        if let Some(cp) = cp {
            control_planes.push((b.name.clone(), cp));
        }
        nodes.push(b);
    }
    Ok(Rendered {
        nodes,
        cluster_files,
        etcd_version,
        control_planes,
    })
}
