//! What depends on the Kubernetes and etcd versions: supported minors, image tags, and the flag
//! inventory of each component.

use std::collections::BTreeSet;

use frankenetes_spec::{EtcdVersion, KubernetesVersion};

use crate::Error;

/// One supported Kubernetes minor and the images kubeadm pins for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Release {
    /// The minor (35 for v1.35).
    pub minor: u32,
    /// kubeadm's etcd image tag.
    pub etcd_tag: &'static str,
    /// kubeadm's CoreDNS image tag.
    pub coredns_tag: &'static str,
    /// The pause (sandbox) image tag.
    pub pause_tag: &'static str,
}

/// The supported minors, newest last. Tags are kubeadm's (`kubeadm config images list`) for
/// 1.35 and 1.36; 1.37's etcd pin follows the 1.37 master branch (3.6.9-0) — the 1.37.0-alpha
/// briefly used 3.7.0-rc.0; override with `spec.etcd.imageTag` if your kubeadm differs.
pub const RELEASES: &[Release] = &[
    Release {
        minor: 35,
        etcd_tag: "3.6.6-0",
        coredns_tag: "v1.13.1",
        pause_tag: "3.10.1",
    },
    Release {
        minor: 36,
        etcd_tag: "3.6.8-0",
        coredns_tag: "v1.14.2",
        pause_tag: "3.10.2",
    },
    Release {
        minor: 37,
        etcd_tag: "3.6.9-0",
        coredns_tag: "v1.14.2",
        pause_tag: "3.10.2",
    },
];

/// The release entry for a Kubernetes version, or an error naming the supported ones.
pub fn release(v: &KubernetesVersion) -> Result<Release, Error> {
    RELEASES
        .iter()
        .copied()
        .find(|r| v.major == 1 && r.minor == v.minor)
        .ok_or_else(|| Error::UnsupportedVersion {
            version: v.to_string(),
            supported: RELEASES
                .iter()
                .map(|r| format!("v1.{}", r.minor))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// A component whose flags are inventoried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Binary {
    /// etcd.
    Etcd,
    /// kube-apiserver.
    ApiServer,
    /// kube-controller-manager.
    ControllerManager,
    /// kube-scheduler.
    Scheduler,
    /// kubelet.
    Kubelet,
}

impl Binary {
    /// The executable's name.
    pub fn name(self) -> &'static str {
        match self {
            Binary::Etcd => "etcd",
            Binary::ApiServer => "kube-apiserver",
            Binary::ControllerManager => "kube-controller-manager",
            Binary::Scheduler => "kube-scheduler",
            Binary::Kubelet => "kubelet",
        }
    }
}

macro_rules! inventory {
    ($($key:literal => $file:literal),* $(,)?) => {
        fn inventory_text(key: &str) -> Option<&'static str> {
            match key {
                $($key => Some(include_str!(concat!("../flags/", $file))),)*
                _ => None,
            }
        }
    };
}

inventory! {
    "etcd-3.4" => "etcd-3.4.txt",
    "etcd-3.5" => "etcd-3.5.txt",
    "etcd-3.6" => "etcd-3.6.txt",
    "etcd-3.7" => "etcd-3.7.txt",
    "kube-apiserver-1.35" => "kube-apiserver-1.35.txt",
    "kube-apiserver-1.36" => "kube-apiserver-1.36.txt",
    "kube-apiserver-1.37" => "kube-apiserver-1.37.txt",
    "kube-controller-manager-1.35" => "kube-controller-manager-1.35.txt",
    "kube-controller-manager-1.36" => "kube-controller-manager-1.36.txt",
    "kube-controller-manager-1.37" => "kube-controller-manager-1.37.txt",
    "kube-scheduler-1.35" => "kube-scheduler-1.35.txt",
    "kube-scheduler-1.36" => "kube-scheduler-1.36.txt",
    "kube-scheduler-1.37" => "kube-scheduler-1.37.txt",
    "kubelet-1.35" => "kubelet-1.35.txt",
    "kubelet-1.36" => "kubelet-1.36.txt",
    "kubelet-1.37" => "kubelet-1.37.txt",
}

/// The flags a component accepts in a version (names without `--`).
#[derive(Debug, Clone)]
pub struct Inventory {
    /// `etcd-3.6`, `kube-apiserver-1.35`, …
    pub key: String,
    /// Flag names.
    pub flags: BTreeSet<&'static str>,
}

impl Inventory {
    /// The inventory of a Kubernetes component for a minor.
    pub fn kubernetes(binary: Binary, minor: u32) -> Result<Self, Error> {
        Self::load(format!("{}-1.{minor}", binary.name()))
    }

    /// etcd's inventory for a release (by minor).
    pub fn etcd(v: EtcdVersion) -> Result<Self, Error> {
        Self::load(format!("etcd-{}.{}", v.major, v.minor))
    }

    fn load(key: String) -> Result<Self, Error> {
        let text = inventory_text(&key).ok_or_else(|| Error::NoInventory { key: key.clone() })?;
        let flags = text
            .lines()
            .filter_map(|l| l.trim().strip_prefix("--"))
            .collect();
        Ok(Self { key, flags })
    }

    /// Whether the flag (without `--`) exists.
    pub fn has(&self, flag: &str) -> bool {
        self.flags.contains(flag)
    }
}

/// The etcd release the flags are rendered for: `spec.etcd.version`, else the version of the
/// image tag in use.
pub fn etcd_version(explicit: Option<EtcdVersion>, image_tag: &str) -> Result<EtcdVersion, Error> {
    if let Some(v) = explicit {
        return Ok(v);
    }
    image_tag.parse().map_err(|_| Error::Invalid {
        field: "spec.etcd.imageTag".into(),
        message: format!(
            "{image_tag:?} does not start with an etcd version; set spec.etcd.version too"
        ),
    })
}

/// Whether etcd serves `/livez` and `/readyz` on its metrics port (3.5.11 and later).
pub fn etcd_has_livez(v: EtcdVersion) -> bool {
    v >= EtcdVersion::new(3, 5, 11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inventory_loads() {
        for r in RELEASES {
            for b in [
                Binary::ApiServer,
                Binary::ControllerManager,
                Binary::Scheduler,
                Binary::Kubelet,
            ] {
                let inv = Inventory::kubernetes(b, r.minor).unwrap();
                assert!(inv.flags.len() > 50, "{}", inv.key);
            }
        }
        for m in 4..=7 {
            assert!(
                Inventory::etcd(EtcdVersion::new(3, m, 0))
                    .unwrap()
                    .has("listen-client-urls")
            );
        }
        assert!(release(&"v1.34.0".parse().unwrap()).is_err());
    }
}
