//! The flag inventory of each component, per version. The supported Kubernetes minors and the
//! images kubeadm pins for them are the spec's ([`frankenetes_spec::RELEASES`],
//! [`frankenetes_spec::ClusterSpec::release`]).

use std::collections::BTreeSet;

use frankenetes_spec::EtcdVersion;

use crate::Error;

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
    /// kube-proxy.
    KubeProxy,
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
            Binary::KubeProxy => "kube-proxy",
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
    "kube-proxy-1.35" => "kube-proxy-1.35.txt",
    "kube-proxy-1.36" => "kube-proxy-1.36.txt",
    "kube-proxy-1.37" => "kube-proxy-1.37.txt",
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

/// Whether etcd serves `/livez` and `/readyz` on its metrics port (3.5.11 and later).
pub fn etcd_has_livez(v: EtcdVersion) -> bool {
    v >= EtcdVersion::new(3, 5, 11)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inventory_loads() {
        for r in frankenetes_spec::RELEASES {
            for b in [
                Binary::ApiServer,
                Binary::ControllerManager,
                Binary::Scheduler,
                Binary::Kubelet,
                Binary::KubeProxy,
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
    }
}
