//! Cross-field validation of a [`ClusterSpec`].

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use crate::{ClusterSpec, Error, Role};

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FieldError {
    /// The field path, as in the file: `spec.controlPlane[1].ip`.
    pub path: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A problem that does not stop the spec from being used.
pub type Warning = FieldError;

fn node_path(role: Role, i: usize) -> String {
    match role {
        Role::ControlPlane => format!("spec.controlPlane[{i}]"),
        Role::Worker => format!("spec.workers[{i}]"),
    }
}

impl ClusterSpec {
    /// Checks what single fields cannot: duplicates, overlaps, sizes. Returns the warnings, or
    /// every error at once.
    pub fn validate(&self) -> Result<Vec<Warning>, Error> {
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let mut err = |path: String, message: String| errors.push(FieldError { path, message });

        if self.control_plane.is_empty() {
            err(
                "spec.controlPlane".into(),
                "needs at least one node (three for a highly available etcd)".into(),
            );
        } else if self.control_plane.len().is_multiple_of(2) {
            warnings.push(FieldError {
                path: "spec.controlPlane".into(),
                message: format!(
                    "{} nodes: an even number of etcd members tolerates no more failures than {} and needs a \
                     larger quorum; use an odd number",
                    self.control_plane.len(),
                    self.control_plane.len() - 1
                ),
            });
        }

        let mut names: HashMap<&str, String> = HashMap::new();
        let mut ips: HashMap<IpAddr, String> = HashMap::new();
        let mut counters = (0usize, 0usize);
        for (node, role) in self.nodes() {
            let i = match role {
                Role::ControlPlane => &mut counters.0,
                Role::Worker => &mut counters.1,
            };
            let path = node_path(role, *i);
            *i += 1;
            if let Some(first) = names.insert(node.name.as_str(), format!("{path}.name")) {
                err(
                    format!("{path}.name"),
                    format!(
                        "{:?} is already used by {first}; node names must be unique",
                        node.name.as_str()
                    ),
                );
            }
            if let Some(first) = ips.insert(node.ip, format!("{path}.ip")) {
                err(
                    format!("{path}.ip"),
                    format!(
                        "{} is already used by {first}; node addresses must be unique",
                        node.ip
                    ),
                );
            }
            if node.ip.is_unspecified() || node.ip.is_multicast() {
                err(
                    format!("{path}.ip"),
                    format!(
                        "{} cannot be a node address; give the address the node is reached at",
                        node.ip
                    ),
                );
            }
            if self.network.service_cidr.contains(&node.ip) {
                err(
                    format!("{path}.ip"),
                    format!(
                        "{} is inside the service CIDR {} (spec.network.serviceCIDR); Service IPs would clash with it",
                        node.ip, self.network.service_cidr
                    ),
                );
            }
            if let Some(pod) = &self.network.pod_cidr
                && pod.contains(&node.ip)
            {
                err(
                    format!("{path}.ip"),
                    format!(
                        "{} is inside the pod CIDR {pod} (spec.network.podCIDR); pod IPs would clash with it",
                        node.ip
                    ),
                );
            }
        }

        let svc = &self.network.service_cidr;
        let max_host_bits = 20;
        if svc.host_bits() > max_host_bits {
            err(
                "spec.network.serviceCIDR".into(),
                format!(
                    "{svc} is too large: kube-apiserver accepts at most {max_host_bits} host bits (/{} here)",
                    svc.net().max_prefix_len() - max_host_bits
                ),
            );
        } else if svc.host_bits() < 4 {
            err(
                "spec.network.serviceCIDR".into(),
                format!(
                    "{svc} is too small: it needs at least 16 addresses (the DNS Service takes the tenth)"
                ),
            );
        }
        if let Some(pod) = &self.network.pod_cidr
            && pod.overlaps(svc)
        {
            err(
                "spec.network.podCIDR".into(),
                format!("{pod} overlaps the service CIDR {svc}; choose disjoint blocks"),
            );
        }

        let pki = &self.pki;
        if pki.cert_validity.get().as_secs() < 3600 {
            err(
                "spec.pki.certValidity".into(),
                format!("{} is shorter than one hour", pki.cert_validity),
            );
        }
        if pki.ca_validity.get() < pki.cert_validity.get() {
            err(
                "spec.pki.certValidity".into(),
                format!(
                    "{} is longer than spec.pki.caValidity ({}): a certificate cannot outlive its CA",
                    pki.cert_validity, pki.ca_validity
                ),
            );
        }

        if errors.is_empty() {
            Ok(warnings)
        } else {
            Err(Error::Invalid {
                file: None,
                problems: errors,
            })
        }
    }
}
