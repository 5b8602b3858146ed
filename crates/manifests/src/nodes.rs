//! One node's bundle: its PKI, kubeconfigs, static pods and bare-binary units (control
//! planes), kubelet configuration, host files, and its provisioning ([`crate::provision`]).

use std::collections::HashMap;

use frankenetes_bundle::fs::{PUBLIC_MODE, SECRET_MODE};
use frankenetes_pki::{OutputFile, Pki};
use frankenetes_spec::{ClusterSpec, NodeSpec, Role};

use crate::provision::{self, Binaries, dayone::AddonFile};
use crate::{
    ControlPlane, Error, Inventory, Kubeconfig, Layout, NodeBundle, NodeFile, Unit, control_plane,
    flags, kubelet, yaml,
};

/// What every node's bundle is made from, computed once per rendering.
pub(crate) struct Shared<'a> {
    pub spec: &'a ClusterSpec,
    pub pki: &'a Pki,
    pub layout: Layout,
    /// The Kubernetes CA certificate (PEM).
    pub ca: String,
    pub kubelet_config: String,
    pub kubelet_inventory: Inventory,
    /// The apiserver's hardening files (path, contents).
    pub apiserver_files: Vec<(&'static str, String)>,
    /// Each node's PKI files (`nodes/<name>/...`), with their paths on the node.
    pub pki_files: HashMap<String, Vec<NodeFile>>,
    pub binaries: &'a Binaries,
    pub addons: Vec<AddonFile>,
    pub super_admin_conf: NodeFile,
}

impl Shared<'_> {
    /// A kubeconfig at `path` for a PKI leaf, talking to `server`.
    pub(crate) fn kubeconfig(
        &self,
        path: &str,
        leaf: &str,
        user: &str,
        server: &str,
    ) -> Result<NodeFile, Error> {
        let l = self
            .pki
            .leaf(leaf)
            .ok_or_else(|| Error::MissingPki(format!("certificate {leaf}")))?;
        let k = Kubeconfig::new(
            self.spec.name.as_str(),
            server,
            &self.ca,
            user,
            l.cert_pem(),
            l.key_pem(),
        );
        Ok(NodeFile::new(path, k.to_yaml().as_bytes(), SECRET_MODE))
    }
}

/// The PKI's files grouped by node, each at its path on the node (`nodes/<name>/etc/...` →
/// `/etc/...`): one pass over the files, so a node's lookup does not scan every node's.
pub(crate) fn pki_files_by_node(files: Vec<OutputFile>) -> HashMap<String, Vec<NodeFile>> {
    let mut out: HashMap<String, Vec<NodeFile>> = HashMap::new();
    for f in files {
        let mut parts = f.path.components();
        let (Some(first), Some(name)) = (parts.next(), parts.next()) else {
            continue;
        };
        if first.as_os_str() != "nodes" {
            continue;
        }
        let mode = if f.secret { SECRET_MODE } else { PUBLIC_MODE };
        let on_node = format!("/{}", parts.as_path().display());
        out.entry(name.as_os_str().to_string_lossy().into_owned())
            .or_default()
            .push(NodeFile::new(on_node, f.contents.to_vec(), mode));
    }
    out
}

/// The bundle of one node, and (control planes) its command lines and static pods.
pub(crate) fn bundle(
    sh: &Shared<'_>,
    node: &NodeSpec,
    role: Role,
) -> Result<(NodeBundle, Option<ControlPlane>), Error> {
    let spec = sh.spec;
    let n = node.name.as_str();
    let endpoint = spec.control_plane_url();
    let mut b = NodeBundle::new(n);
    if let Some(files) = sh.pki_files.get(n) {
        b.files.extend(files.iter().cloned());
    }
    let cp = if role == Role::ControlPlane {
        let cp = control_plane(spec, node, &sh.layout)?;
        control_plane_files(sh, node, &cp, &mut b)?;
        Some(cp)
    } else {
        None
    };
    // The kubelet: on control-plane nodes it talks to the local apiserver (kubeadm's
    // ControlPlaneKubeletLocalMode, on by default since 1.33), elsewhere to the endpoint.
    let kubelet_server = if role == Role::ControlPlane {
        spec.local_api_url(node)
    } else {
        endpoint.clone()
    };
    b.files.push(sh.kubeconfig(
        "/etc/kubernetes/kubelet.conf",
        &format!("{n}/kubelet-client"),
        &format!("system:node:{n}"),
        &kubelet_server,
    )?);
    b.files.push(sh.kubeconfig(
        "/var/lib/kube-proxy/kubeconfig.conf",
        "kube-proxy",
        "system:kube-proxy",
        &endpoint,
    )?);
    b.files.push(NodeFile::new(
        "/var/lib/kubelet/config.yaml",
        sh.kubelet_config.clone(),
        PUBLIC_MODE,
    ));
    let kf = flags::kubelet(node, &sh.layout);
    kf.check(&sh.kubelet_inventory, "kubelet flags", &Default::default())?;
    let p = provision::node(
        &provision::Inputs {
            spec,
            binaries: sh.binaries,
            kubelet_args: kf.args(),
            addons: &sh.addons,
            super_admin_conf: &sh.super_admin_conf,
        },
        node,
        role,
    )?;
    b.files.extend(p.files);
    b.remote_files = p.remote_files;
    b.units.extend(p.units);
    b.ssh_authorized_keys = spec
        .ssh
        .authorized_keys
        .iter()
        .map(ToString::to_string)
        .collect();
    host_files(spec, node, role, &mut b);
    b.files.sort_by(|x, y| x.path.cmp(&y.path));
    for u in &b.units {
        u.check()?;
    }
    Ok((b, cp))
}

/// A control plane's static pods, hardening files, kubeconfigs and bare-binary units.
fn control_plane_files(
    sh: &Shared<'_>,
    node: &NodeSpec,
    cp: &ControlPlane,
    b: &mut NodeBundle,
) -> Result<(), Error> {
    let n = node.name.as_str();
    let names = [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
    ];
    for (pod, name) in cp.pods.iter().zip(names) {
        b.files.push(NodeFile::new(
            format!("/etc/kubernetes/manifests/{name}.yaml"),
            yaml(name, pod)?,
            SECRET_MODE,
        ));
    }
    for (path, contents) in &sh.apiserver_files {
        b.files
            .push(NodeFile::new(*path, contents.as_bytes(), SECRET_MODE));
    }
    let local = sh.spec.local_api_url(node);
    b.files.push(sh.kubeconfig(
        "/etc/kubernetes/controller-manager.conf",
        &format!("{n}/controller-manager"),
        "system:kube-controller-manager",
        &local,
    )?);
    b.files.push(sh.kubeconfig(
        "/etc/kubernetes/scheduler.conf",
        &format!("{n}/scheduler"),
        "system:kube-scheduler",
        &local,
    )?);
    b.files.push(sh.kubeconfig(
        "/etc/kubernetes/admin.conf",
        "admin",
        "kubernetes-admin",
        &sh.spec.control_plane_url(),
    )?);
    for (name, flags, after) in [
        ("etcd", &cp.etcd, vec!["network-online.target"]),
        (
            "kube-apiserver",
            &cp.apiserver,
            vec!["network-online.target", "frankenetes-etcd.service"],
        ),
        (
            "kube-controller-manager",
            &cp.controller_manager,
            vec!["frankenetes-kube-apiserver.service"],
        ),
        (
            "kube-scheduler",
            &cp.scheduler,
            vec!["frankenetes-kube-apiserver.service"],
        ),
    ] {
        let mut argv = vec![format!("{}/{name}", provision::BIN_DIR)];
        argv.extend(flags.args());
        b.units.push(Unit::service(
            &format!("frankenetes-{name}.service"),
            &format!("{name} as a plain process (instead of the kubelet's static pod)"),
            &argv,
            false,
            &after,
        ));
    }
    Ok(())
}

/// `/etc/hostname`, `/etc/hosts` (the node itself, and whom it talks to: see
/// [`ClusterSpec::etc_hosts_for`]), the sysctl drop-in and the kernel modules.
fn host_files(spec: &ClusterSpec, node: &NodeSpec, role: Role, b: &mut NodeBundle) {
    let mut hosts = String::from(
        "127.0.0.1 localhost localhost.localdomain\n::1 localhost localhost.localdomain\n",
    );
    for line in spec.etc_hosts_for(node, role) {
        hosts.push_str(&line);
        hosts.push('\n');
    }
    b.files.push(NodeFile::new(
        "/etc/hostname",
        format!("{}\n", node.name),
        PUBLIC_MODE,
    ));
    b.files
        .push(NodeFile::new("/etc/hosts", hosts, PUBLIC_MODE));
    b.files.push(NodeFile::new(
        "/etc/sysctl.d/90-kubernetes.conf",
        format!("# Written by frankenetes: pods' traffic is routed and bridged through this node.\nnet.ipv4.ip_forward = 1\nnet.ipv6.conf.all.forwarding = 1\nnet.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\n# The kubelet runs with protectKernelDefaults: it checks these and will not change them.\n{}", kubelet::PROTECTED_KERNEL_TUNABLES),
        PUBLIC_MODE,
    ));
    b.files.push(NodeFile::new(
        "/etc/modules-load.d/kubernetes.conf",
        "# Written by frankenetes.\noverlay\nbr_netfilter\n",
        PUBLIC_MODE,
    ));
}
