//! The output layout `render` and `pki` write, and that `up` keeps as its bundle:
//!
//! ```text
//! DIR/
//!   cluster/               material that stays with the operator
//!     pki/                 CA keys and bundles (0700)
//!     admin.conf, super-admin.conf
//!     addons/              the day-one objects
//!     vpn/                 the VPN's state and peer configurations
//!   nodes/<name>/          a root-filesystem overlay for that machine
//!   nodes/<name>.ign       the same content as one Ignition config
//! ```

use std::path::{Path, PathBuf};

/// Paths of the output layout under one directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputLayout {
    root: PathBuf,
}

impl OutputLayout {
    /// The layout under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `cluster/`: what stays with the operator.
    pub fn cluster(&self) -> PathBuf {
        self.root.join("cluster")
    }

    /// `cluster/pki/`: the CA keys (and, in intermediate mode, the root's).
    pub fn cluster_pki(&self) -> PathBuf {
        self.root.join("cluster/pki")
    }

    /// `cluster/admin.conf`: the operator's kubeconfig (`kubeadm:cluster-admins`).
    pub fn admin_conf(&self) -> PathBuf {
        self.root.join("cluster/admin.conf")
    }

    /// `cluster/super-admin.conf`: the break-glass kubeconfig (`system:masters`).
    pub fn super_admin_conf(&self) -> PathBuf {
        self.root.join("cluster/super-admin.conf")
    }

    /// `cluster/vpn/`: the VPN's state and peer configurations.
    pub fn vpn(&self) -> PathBuf {
        self.root.join("cluster/vpn")
    }

    /// `nodes/<name>/`: the node's root-filesystem overlay.
    pub fn node_root(&self, node: &str) -> PathBuf {
        self.root.join("nodes").join(node)
    }

    /// `nodes/<name>/<path on the machine>`.
    pub fn node_file(&self, node: &str, path: &str) -> PathBuf {
        self.node_root(node).join(path.trim_start_matches('/'))
    }

    /// `nodes/<name>/etc/kubernetes/pki/`: the node's certificates, kubeadm's names.
    pub fn node_pki(&self, node: &str) -> PathBuf {
        self.node_file(node, "/etc/kubernetes/pki")
    }

    /// `nodes/<name>.ign`: the node's Ignition config.
    pub fn node_ignition(&self, node: &str) -> PathBuf {
        self.root.join("nodes").join(format!("{node}.ign"))
    }
}
