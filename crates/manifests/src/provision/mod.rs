//! What turns a stock Fedora CoreOS machine into a Kubernetes node at first boot, from its
//! Ignition config alone: the kubelet (kubeadm on workers, kubectl on the first control
//! plane), containerd configured as the kubelet expects, docker masked, the kubelet ordered
//! after the runtime, the network and a resolver, and on the first control plane a oneshot
//! that applies the day-one objects once its apiserver is ready.
//!
//! # How the binaries get there, and why this way
//!
//! Fedora CoreOS ships no kubelet, kubeadm or kubectl. Three ways were weighed:
//!
//! - **Ignition downloads the official release binaries** (chosen):
//!   `storage.files[].contents.source` is `https://dl.k8s.io/release/<version>/bin/linux/<arch>/<binary>`
//!   — the Kubernetes project's own release artefact — and `contents.verification.hash` is
//!   its published SHA-256 (`<binary>.sha256`), pinned at render time; Ignition refuses a
//!   download that does not match, so a node runs exactly the bytes the release signed off, or
//!   does not boot. It needs nothing but the network in the initramfs (private nodes reach
//!   it through the NAT gateway), no reboot, no package repository, no image; the binaries
//!   land in `/usr/local/bin` (`/var/usrlocal/bin` on FCOS: `/usr` is read-only), where the
//!   bare-binary units already expect their binaries, and Ignition labels them for SELinux.
//! - rpm-ostree layering of the `pkgs.k8s.io` packages (the write-up's way) pins a package
//!   version, not bytes, trusts a repository key fetched at boot, needs a reboot and a stamp
//!   file, and cannot be checked anywhere but on FCOS.
//! - A kubelet system container (Typhoon's way) runs an image the Kubernetes project does not
//!   publish (`quay.io/poseidon/kubelet`): not an official artefact.
//!
//! The hashes come from `checksums.rs` for the versions this release knows (their provenance
//! is there), or from the caller ([`Binaries::Download`]'s `sources`, filled for example from
//! the official `.sha256` files by `frankenetes_bootstrap::fetch`, which keeps this crate
//! offline). For a version with neither, render refuses: [`crate::Error::NoBinaryHash`].
//! [`Binaries::Preinstalled`] is for machines that have the binaries already (the local
//! backend; bare machines whose operator installs them in `/usr/local/bin`).

mod checksums;
mod containerd;
pub(crate) mod dayone;

use std::collections::BTreeMap;
use std::fmt;

use frankenetes_bundle::{NodeFile, RemoteFile, systemd::Unit};
use frankenetes_spec::{Arch, ClusterSpec, KubernetesVersion, NodeSpec, Role};

use crate::Error;

pub use containerd::{CONTAINERD_CONFIG, containerd_config};
pub use dayone::{ADDONS_ON_NODE, DAY_ONE_SCRIPT, DAY_ONE_UNIT};

/// Where every binary a unit runs lives on a node (`/var/usrlocal/bin` on Fedora CoreOS).
pub const BIN_DIR: &str = "/usr/local/bin";
/// The unit that waits for a resolver (and a hostname) before the kubelet starts.
pub const WAIT_FOR_DNS_UNIT: &str = "frankenetes-wait-for-dns.service";
/// Where official releases are published.
pub const OFFICIAL_BASE_URL: &str = "https://dl.k8s.io/release";

/// A Kubernetes binary a node downloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum NodeBinary {
    /// `kubelet`: every node.
    Kubelet,
    /// `kubeadm`: workers (`kubeadm join`, `kubeadm upgrade node`).
    Kubeadm,
    /// `kubectl`: the first control plane (the day-one unit).
    Kubectl,
}

impl NodeBinary {
    /// Every binary.
    pub const ALL: [NodeBinary; 3] = [Self::Kubelet, Self::Kubeadm, Self::Kubectl];

    /// Its file name, as published and as installed.
    pub fn name(self) -> &'static str {
        match self {
            Self::Kubelet => "kubelet",
            Self::Kubeadm => "kubeadm",
            Self::Kubectl => "kubectl",
        }
    }

    /// Its path on a node.
    pub fn path(self) -> String {
        format!("{BIN_DIR}/{}", self.name())
    }
}

impl fmt::Display for NodeBinary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a node downloads one binary: a URL and the file's SHA-256.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BinarySource {
    /// An `https://` URL.
    pub url: String,
    /// 64 lower-case hex digits.
    pub sha256: String,
}

impl BinarySource {
    /// A source; refuses a URL that is not `https://` and a hash that is not a SHA-256.
    pub fn new(url: impl Into<String>, sha256: impl Into<String>) -> Result<Self, Error> {
        let (url, sha256) = (url.into(), sha256.into().to_ascii_lowercase());
        RemoteFile::new("binary", 0o755, url.clone(), sha256.clone())?;
        Ok(Self { url, sha256 })
    }

    /// The official URL of `binary` for `version` and `arch` on `dl.k8s.io`.
    pub fn official_url(version: &KubernetesVersion, arch: Arch, binary: NodeBinary) -> String {
        format!(
            "{OFFICIAL_BASE_URL}/{version}/bin/linux/{}/{}",
            arch.name(),
            binary.name()
        )
    }

    /// The official source of `binary`, when this release knows its SHA-256 (`checksums.rs`).
    pub fn official(version: &KubernetesVersion, arch: Arch, binary: NodeBinary) -> Option<Self> {
        let v = version.to_string();
        checksums::OFFICIAL
            .iter()
            .find(|(ver, a, b, _)| *ver == v && *a == arch && *b == binary)
            .map(|(_, _, _, sha)| Self {
                url: Self::official_url(version, arch, binary),
                sha256: (*sha).to_owned(),
            })
    }

    /// The versions whose official hashes this release knows.
    pub fn known_versions() -> Vec<&'static str> {
        let mut v: Vec<&'static str> = checksums::OFFICIAL.iter().map(|(v, ..)| *v).collect();
        v.dedup();
        v
    }
}

/// How nodes get their Kubernetes binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Binaries {
    /// The Ignition config downloads each binary a node needs, verified against its SHA-256
    /// (the default: the official release for the spec's version).
    Download {
        /// The nodes' architecture.
        arch: Arch,
        /// A source per binary, overriding the official one (a mirror, or the hash of a
        /// version this release does not know).
        sources: BTreeMap<NodeBinary, BinarySource>,
    },
    /// The machines have them in [`BIN_DIR`] already (the local backend; bare machines whose
    /// operator installs them): the Ignition config downloads nothing.
    Preinstalled,
}

impl Default for Binaries {
    fn default() -> Self {
        Self::download(Arch::default())
    }
}

impl Binaries {
    /// Official binaries for `arch`.
    pub fn download(arch: Arch) -> Self {
        Self::Download {
            arch,
            sources: BTreeMap::new(),
        }
    }

    /// With `binary` from `source` (only for [`Binaries::Download`]).
    #[must_use]
    pub fn source(mut self, binary: NodeBinary, source: BinarySource) -> Self {
        if let Self::Download { sources, .. } = &mut self {
            sources.insert(binary, source);
        }
        self
    }

    /// The source of `binary` for `version`, or [`Error::NoBinaryHash`].
    fn resolve(
        &self,
        version: &KubernetesVersion,
        binary: NodeBinary,
    ) -> Result<Option<BinarySource>, Error> {
        let Self::Download { arch, sources } = self else {
            return Ok(None);
        };
        if let Some(s) = sources.get(&binary) {
            return Ok(Some(s.clone()));
        }
        BinarySource::official(version, *arch, binary)
            .map(Some)
            .ok_or_else(|| Error::NoBinaryHash {
                binary: binary.name().to_owned(),
                version: version.to_string(),
                arch: arch.name().to_owned(),
                url: BinarySource::official_url(version, *arch, binary),
                known: BinarySource::known_versions().join(", "),
            })
    }

    /// Checks that every binary any node needs has a source.
    pub fn check(&self, spec: &ClusterSpec) -> Result<(), Error> {
        for b in NodeBinary::ALL {
            self.resolve(&spec.kubernetes_version, b)?;
        }
        Ok(())
    }
}

/// The binaries a node needs.
fn binaries_of(role: Role, first_control_plane: bool) -> Vec<NodeBinary> {
    let mut b = vec![NodeBinary::Kubelet];
    match role {
        Role::ControlPlane if first_control_plane => b.push(NodeBinary::Kubectl),
        Role::ControlPlane => {}
        _ => b.push(NodeBinary::Kubeadm),
    }
    b
}

/// A node's provisioning: files, downloads and units (the kubelet's unit included).
pub(crate) struct Provisioned {
    pub files: Vec<NodeFile>,
    pub remote_files: Vec<RemoteFile>,
    pub units: Vec<Unit>,
}

/// Everything [`node`] needs besides the node.
pub(crate) struct Inputs<'a> {
    pub spec: &'a ClusterSpec,
    pub binaries: &'a Binaries,
    /// The kubelet's command line, binary excluded.
    pub kubelet_args: Vec<String>,
    /// The day-one files, for the first control plane.
    pub addons: &'a [dayone::AddonFile],
    /// `super-admin.conf`, for the first control plane's day-one unit.
    pub super_admin_conf: &'a NodeFile,
}

/// The provisioning of one node.
pub(crate) fn node(inp: &Inputs<'_>, node: &NodeSpec, role: Role) -> Result<Provisioned, Error> {
    let spec = inp.spec;
    let first = role == Role::ControlPlane
        && spec
            .control_plane
            .first()
            .is_some_and(|n| n.name == node.name);
    let mut remote_files = Vec::new();
    for b in binaries_of(role, first) {
        if let Some(src) = inp.binaries.resolve(&spec.kubernetes_version, b)? {
            remote_files.push(RemoteFile::new(b.path(), 0o755, src.url, src.sha256)?);
        }
    }
    let mut files = vec![containerd_config(spec)?];
    let mut units = vec![
        Unit::shipped("containerd.service", "multi-user.target"),
        Unit::masked("docker.service"),
        wait_for_dns(),
        kubelet_unit(&inp.kubelet_args),
    ];
    if first {
        let (f, u) = dayone::files_and_unit(spec, node, inp.addons, inp.super_admin_conf)?;
        files.extend(f);
        units.extend(u);
    }
    Ok(Provisioned {
        files,
        remote_files,
        units,
    })
}

/// The kubelet, after its runtime, the network and a resolver (kubeadm's drop-in restarts it
/// every 10 s and never gives up).
fn kubelet_unit(args: &[String]) -> Unit {
    let mut argv = vec![NodeBinary::Kubelet.path()];
    argv.extend(args.iter().cloned());
    Unit::service(
        "kubelet.service",
        "kubelet: the Kubernetes node agent",
        &argv,
        true,
        &["containerd.service", "network-online.target"],
    )
    .set("Unit", "Requires", WAIT_FOR_DNS_UNIT)
    .set("Unit", "After", WAIT_FOR_DNS_UNIT)
    .set("Unit", "StartLimitIntervalSec", "0")
}

/// The shell of [`wait_for_dns`]: the upstream resolver file (systemd-resolved's where it
/// runs), a `nameserver` in it, then [`crate::kubelet::RESOLV_CONF`] linked to it.
const WAIT_FOR_DNS: &str = "f=/etc/resolv.conf; \
if [ -e /run/systemd/resolve/resolv.conf ]; then f=/run/systemd/resolve/resolv.conf; fi; \
until grep -q '^nameserver' \"$f\"; do sleep 1; done; \
mkdir -p /run/frankenetes && ln -sfn \"$f\" /run/frankenetes/resolv.conf";

/// Waits for a hostname other than `localhost` and a resolver, as Typhoon does before its
/// kubelet, and links the resolver file pods get ([`crate::kubelet::RESOLV_CONF`]); pulled in
/// by the kubelet (`Requires=`), so not enabled.
fn wait_for_dns() -> Unit {
    let sh = |script: &str| {
        frankenetes_bundle::systemd::exec_line(&["/bin/sh".into(), "-c".into(), script.into()])
    };
    Unit::new(WAIT_FOR_DNS_UNIT, false)
        .set(
            "Unit",
            "Description",
            "Wait for a hostname and a DNS resolver",
        )
        .set("Unit", "Before", "kubelet.service")
        .set("Unit", "Wants", "network-online.target")
        .set(
            "Unit",
            "After",
            "network-online.target systemd-resolved.service",
        )
        .set("Service", "Type", "oneshot")
        .set("Service", "RemainAfterExit", "true")
        .set(
            "Service",
            "ExecStartPre",
            sh("while [ \"$(hostname -s)\" = localhost ]; do sleep 1; done"),
        )
        .set("Service", "ExecStart", sh(WAIT_FOR_DNS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_versions_have_every_binary_for_every_arch() {
        for v in BinarySource::known_versions() {
            let version: KubernetesVersion = v.parse().unwrap();
            for arch in [Arch::Amd64, Arch::Arm64] {
                for b in NodeBinary::ALL {
                    let s = BinarySource::official(&version, arch, b).unwrap();
                    assert_eq!(
                        s.url,
                        format!(
                            "https://dl.k8s.io/release/{v}/bin/linux/{}/{b}",
                            arch.name()
                        )
                    );
                    BinarySource::new(s.url, s.sha256).unwrap();
                }
            }
        }
        // Every hash appears once: no entry copied onto another.
        let mut all: Vec<&str> = checksums::OFFICIAL.iter().map(|e| e.3).collect();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), checksums::OFFICIAL.len());
    }

    #[test]
    fn an_unknown_version_is_refused_unless_its_hashes_are_given() {
        let v: KubernetesVersion = "v1.36.0".parse().unwrap();
        let e = Binaries::default()
            .resolve(&v, NodeBinary::Kubelet)
            .unwrap_err();
        assert!(e.is_bad_input());
        let msg = e.to_string();
        assert!(
            msg.starts_with("spec.kubernetesVersion: ")
                && msg.contains("kubelet v1.36.0")
                && msg.contains("https://dl.k8s.io/release/v1.36.0/bin/linux/amd64/kubelet.sha256")
                && msg.contains("v1.35.0, v1.35.1"),
            "{msg}"
        );
        let src =
            BinarySource::new("https://mirror.example/v1.36.0/kubelet", "AB".repeat(32)).unwrap();
        assert_eq!(src.sha256, "ab".repeat(32));
        let b = Binaries::default().source(NodeBinary::Kubelet, src.clone());
        assert_eq!(b.resolve(&v, NodeBinary::Kubelet).unwrap(), Some(src));
        assert_eq!(
            Binaries::Preinstalled
                .resolve(&v, NodeBinary::Kubelet)
                .unwrap(),
            None
        );
        for (url, sha) in [
            ("http://dl.k8s.io/x", "a".repeat(64)),
            ("https://dl.k8s.io/x y", "a".repeat(64)),
            ("https://dl.k8s.io/x", "a".repeat(63)),
            ("https://dl.k8s.io/x", "g".repeat(64)),
        ] {
            assert!(BinarySource::new(url, sha).is_err(), "{url}");
        }
    }
}
