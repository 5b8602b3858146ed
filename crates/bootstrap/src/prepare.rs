//! The one prepare step every platform shares: spec → PKI → node bundles (rendered once) →
//! the gateway's bundle → a backend-neutral [`Workload`].

use std::path::{Path, PathBuf};

use frankenetes_bundle::{NodeBundle, OutputLayout};
use frankenetes_compute::{
    ClusterTag, ComponentSpec, FileSpec, NodeRole, NodeWork, Placement, Platform, Workload,
};
use frankenetes_manifests::{Binaries, ControlPlane, Layout, RenderOptions, Rendered};
use frankenetes_pki::{Pki, PkiPlan, SyncOptions};
use frankenetes_spec::{Arch, ClusterSpec, EtcdVersion, Role, ports};

use crate::{Error, Event, Phase};

/// What the prepare step made: the PKI, every node's bundle, the gateway's, and the workload
/// handed to the platform.
#[derive(Debug)]
#[non_exhaustive]
pub struct Prepared {
    /// The cluster's PKI (loaded and completed, or, for `plan`, made in memory).
    pub pki: Pki,
    /// Every node's bundle, rendered once.
    pub rendered: Rendered,
    /// The gateway's bundle, when the spec has a gateway.
    pub gateway: Option<NodeBundle>,
    /// The cluster as the platform runs it.
    pub workload: Workload,
    /// The etcd release the flags were rendered for.
    pub etcd_version: EtcdVersion,
    /// Files of the PKI written again in this run (renewed, or re-issued for a changed
    /// spec): components that read them only at start are restarted by `up`.
    pub renewed: Vec<PathBuf>,
}

/// Inputs of [`prepare`].
pub(crate) struct Inputs<'a> {
    pub spec: &'a ClusterSpec,
    pub out: &'a OutputLayout,
    /// Where a [`Placement::Host`] platform keeps each node's data (`<dir>/data`).
    pub data_root: &'a Path,
    pub addons: &'a frankenetes_manifests::AddonOptions,
    /// Write the PKI and bundles (`up`), or make everything in memory with throwaway keys
    /// (`plan`: nothing is written).
    pub write: bool,
    /// Leaves ending within this window are renewed.
    pub renew_window: std::time::Duration,
    pub events: &'a (dyn Fn(&Event) + Send + Sync),
}

/// A node's etcd data directory when every node shares this host.
pub(crate) fn host_etcd_data(data_root: &Path, node: &str) -> PathBuf {
    data_root.join(node).join("etcd")
}

/// Runs the prepare step for `platform`.
pub(crate) fn prepare(inp: &Inputs<'_>, platform: &dyn Platform) -> Result<Prepared, Error> {
    let spec = inp.spec;
    let etcd_version = platform
        .etcd_version()
        .map_err(|source| Error::Backend {
            phase: Phase::Preflight,
            source,
        })?
        .map(|v| {
            v.parse::<EtcdVersion>()
                .map_err(|e| Error::Spec(format!("etcd version {v:?}: {e}")))
        })
        .transpose()?;
    let binaries = match platform.node_binaries_arch() {
        Some(arch) => Binaries::download(arch.parse::<Arch>().map_err(|e| {
            Error::Spec(format!(
                "platform {}: node architecture {e}",
                platform.name()
            ))
        })?),
        None => Binaries::Preinstalled,
    };
    let opts = RenderOptions::default()
        .addons(inp.addons.clone())
        .etcd_version(etcd_version)
        .binaries(binaries);
    // Everything that can be refused is refused before a key is made.
    opts.binaries.check(spec)?;
    let mut renewed = Vec::new();
    let pki = if inp.write {
        frankenetes_bundle::fs::remove_stale_temps(inp.out.root())?;
        let (pki, r) = frankenetes_pki::sync(
            &PkiPlan::from(spec),
            inp.out.root(),
            // Leaves that no longer match the spec (a node's new address, a SAN added) are
            // re-issued by the same CA; CAs are never replaced.
            SyncOptions::default()
                .renew(true)
                .renew_within(Some(inp.renew_window)),
        )?;
        for (file, why) in r
            .replaced
            .iter()
            .filter(|(f, _)| f.extension().is_some_and(|e| e == "crt"))
        {
            (inp.events)(&Event::Info(format!("renewed {} ({why})", file.display())));
        }
        // The report's paths are relative to the bundle; commands name them under it.
        renewed = r
            .replaced
            .iter()
            .map(|(f, _)| inp.out.root().join(f))
            .collect();
        pki
    } else {
        // Throwaway ECDSA keys: only names, paths and sizes are shown.
        Pki::generate(
            &PkiPlan::from(spec).with_algorithm(frankenetes_spec::KeyAlgorithm::EcdsaP256),
        )?
    };
    let rendered = frankenetes_manifests::render_opts(spec, &pki, &opts)?;
    if inp.write {
        rendered.write(inp.out.root())?;
    }
    let gateway = match &spec.gateway {
        Some(gw) if inp.write => Some(
            frankenetes_netgw::render(
                inp.out.root(),
                gw,
                &frankenetes_netgw::GatewayOptions::for_cluster(spec),
            )?
            .bundle,
        ),
        Some(gw) => {
            let nowhere = std::env::temp_dir().join("frankenetes-plan-has-no-state");
            let state = frankenetes_netgw::VpnState::load_or_init(&nowhere, gw)?;
            Some(frankenetes_netgw::gateway_bundle(
                gw,
                &state,
                &frankenetes_netgw::GatewayOptions::for_cluster(spec),
            )?)
        }
        None => None,
    };
    let workload = workload(inp, platform.placement(), &rendered, gateway.as_ref())?;
    Ok(Prepared {
        pki,
        etcd_version: rendered.etcd_version,
        rendered,
        gateway,
        workload,
        renewed,
    })
}

/// The workload: every node's files, Ignition config and (control planes) components.
fn workload(
    inp: &Inputs<'_>,
    placement: Placement,
    rendered: &Rendered,
    gateway: Option<&NodeBundle>,
) -> Result<Workload, Error> {
    let spec = inp.spec;
    let mut nodes = Vec::new();
    for (node, role) in spec.nodes() {
        let bundle = rendered.node(node.name.as_str()).ok_or_else(|| {
            Error::Spec(format!("node {}: nothing was rendered for it", node.name))
        })?;
        let role = match role {
            Role::ControlPlane => NodeRole::ControlPlane,
            _ => NodeRole::Worker,
        };
        let mut w = node_work(bundle, role, node.ip, placement);
        if role == NodeRole::ControlPlane {
            let cp = match placement {
                Placement::Host => {
                    let layout = Layout::under(
                        inp.out.node_root(node.name.as_str()),
                        host_etcd_data(inp.data_root, node.name.as_str()),
                    )
                    .with_etcd_version(Some(rendered.etcd_version));
                    frankenetes_manifests::control_plane(spec, node, &layout)?
                }
                _ => rendered
                    .control_plane(node.name.as_str())
                    .cloned()
                    .ok_or_else(|| {
                        Error::Spec(format!("node {}: no control plane rendered", node.name))
                    })?,
            };
            w.components = components(&cp);
        }
        nodes.push(w);
    }
    if let (Some(gw), Some(b)) = (&spec.gateway, gateway) {
        nodes.push(node_work(b, NodeRole::Gateway, gw.ip, placement));
    }
    Ok(Workload::new(
        ClusterTag::new(spec.name.as_str()),
        spec.kubernetes_version.to_string(),
        nodes,
    ))
}

fn node_work(
    bundle: &NodeBundle,
    role: NodeRole,
    ip: std::net::IpAddr,
    placement: Placement,
) -> NodeWork {
    let mut w = NodeWork::new(bundle.name.clone(), role, ip);
    // A machine boots from its Ignition; on a shared host the units read the node's files
    // from its overlay, and nothing would read the config (a tenth of `plan` at 1,000 nodes).
    if placement == Placement::Machine {
        w.ignition = zeroize::Zeroizing::new(bundle.to_ignition().into_bytes());
    }
    w.files = bundle
        .files
        .iter()
        .map(|f| FileSpec::new(f.path.clone(), f.contents.to_vec(), f.mode))
        .collect();
    w
}

/// The four control-plane components of a node, from its rendered command lines and pods.
fn components(cp: &ControlPlane) -> Vec<ComponentSpec> {
    let image = |i: usize| {
        cp.pods
            .get(i)
            .and_then(|p| p.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default()
    };
    [
        ("etcd", &cp.etcd, vec![ports::ETCD_CLIENT, ports::ETCD_PEER]),
        ("kube-apiserver", &cp.apiserver, vec![ports::APISERVER]),
        (
            "kube-controller-manager",
            &cp.controller_manager,
            vec![ports::CONTROLLER_MANAGER],
        ),
        ("kube-scheduler", &cp.scheduler, vec![ports::SCHEDULER]),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (name, flags, ports))| {
        let mut command = vec![name.to_owned()];
        command.extend(flags.args());
        let mut c = ComponentSpec::new(name, image(i), command);
        c.ports = ports;
        c
    })
    .collect()
}
