//! Cross-field validation of a [`ClusterSpec`].

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use crate::checks::{control_characters, dedupe, unusable_address};
use crate::scalar::{Endpoint, Host};
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

        let (names, ips) = self.validate_nodes(&mut err);
        self.validate_network(&mut err);
        self.validate_components(&mut err);
        self.etcd.validate(&self.backend, &mut err);
        self.validate_images(&mut err);
        self.ssh.validate(&mut err);

        match &self.backend {
            crate::BackendSpec::Local(_) => {}
            crate::BackendSpec::Aws(aws) => aws.validate(self, &mut err),
            crate::BackendSpec::Azure(azure) => azure.validate(self, &mut err),
        }
        self.security.validate(self, &mut err);
        if let Some(gw) = &self.gateway {
            self.validate_gateway(gw, &names, &ips, &mut err);
        }
        self.pki.validate(&mut err);

        let control = self
            .to_value()
            .map(|v| control_characters(&v))
            .unwrap_or_default();
        if errors.is_empty() && control.is_empty() {
            Ok(warnings)
        } else {
            Err(Error::Invalid {
                file: None,
                problems: dedupe(control, errors),
            })
        }
    }

    /// Node names and addresses: unique, usable, outside the cluster's blocks. Returns the
    /// names and addresses seen (the gateway must not reuse them).
    fn validate_nodes(
        &self,
        err: &mut impl FnMut(String, String),
    ) -> (HashMap<&str, String>, HashMap<IpAddr, String>) {
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
            if let Some(why) = unusable_address(node.ip) {
                err(
                    format!("{path}.ip"),
                    format!(
                        "{} cannot be a node address ({why}); give the address the node is reached at",
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

        (names, ips)
    }

    fn validate_network(&self, err: &mut impl FnMut(String, String)) {
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
    }

    /// The endpoint, the apiserver's extra SANs and every component's extra flags and volumes.
    fn validate_components(&self, err: &mut impl FnMut(String, String)) {
        if let Some(e) = &self.control_plane_endpoint {
            endpoint_address(e, "spec.controlPlaneEndpoint", err);
        }
        for (i, extra) in self.api_server.cert_sans.iter().enumerate() {
            let path = format!("spec.apiServer.certSANs[{i}]");
            match extra.parse::<IpAddr>() {
                Ok(ip) => {
                    if let Some(why) = unusable_address(ip) {
                        err(
                            path,
                            format!("{ip} cannot be a certificate address ({why}); remove it"),
                        );
                    }
                }
                Err(_) => {
                    if let Err(e) = crate::DnsName::try_from(extra.as_str()) {
                        err(
                            path,
                            format!("is neither an IP address nor a DNS name: {}", e.reason),
                        );
                    }
                }
            }
        }
        let components = [
            (
                "spec.apiServer",
                &self.api_server.extra_args,
                &self.api_server.extra_volumes[..],
            ),
            (
                "spec.controllerManager",
                &self.controller_manager.extra_args,
                &self.controller_manager.extra_volumes[..],
            ),
            (
                "spec.scheduler",
                &self.scheduler.extra_args,
                &self.scheduler.extra_volumes[..],
            ),
            ("spec.etcd", &self.etcd.extra_args, &[][..]),
        ];
        for (section, args, volumes) in components {
            crate::components::validate_extra_args(section, args, err);
            crate::components::validate_volumes(section, volumes, err);
        }
    }

    fn validate_gateway(
        &self,
        gw: &crate::GatewaySpec,
        names: &HashMap<&str, String>,
        ips: &HashMap<IpAddr, String>,
        err: &mut impl FnMut(String, String),
    ) {
        gateway_address(gw, names, ips, err);
        gateway_interfaces(gw, err);
        self.gateway_blocks(gw, err);
        gateway_peers(gw, err);
    }

    /// The gateway's private block and tunnel block overlap neither each other nor the
    /// cluster's service and pod blocks.
    fn gateway_blocks(&self, gw: &crate::GatewaySpec, err: &mut impl FnMut(String, String)) {
        let t = &gw.tunnel;
        let mut blocks = vec![
            ("spec.gateway.privateCIDR", gw.private_cidr),
            ("spec.gateway.tunnel.cidr", t.cidr),
            ("spec.network.serviceCIDR", self.network.service_cidr),
        ];
        if let Some(pod) = self.network.pod_cidr {
            blocks.push(("spec.network.podCIDR", pod));
        }
        for (i, (pa, a)) in blocks.iter().enumerate().take(2) {
            for (pb, b) in blocks.iter().skip(i + 1) {
                if a.overlaps(b) {
                    err(
                        (*pa).to_owned(),
                        format!("{a} overlaps {pb} {b}; choose disjoint blocks"),
                    );
                }
            }
        }
    }
}

/// Where the gateway sits in the spec, the start of each of its error paths.
const GATEWAY: &str = "spec.gateway";

/// The gateway's name and address are its own, and its address is a host of its private block.
fn gateway_address(
    gw: &crate::GatewaySpec,
    names: &HashMap<&str, String>,
    ips: &HashMap<IpAddr, String>,
    err: &mut impl FnMut(String, String),
) {
    let p = GATEWAY;
    if let Some(first) = names.get(gw.name.as_str()) {
        err(
            format!("{p}.name"),
            format!("{:?} is already used by {first}", gw.name.as_str()),
        );
    }
    if let Some(first) = ips.get(&gw.ip) {
        err(
            format!("{p}.ip"),
            format!("{} is already used by {first}", gw.ip),
        );
    }
    let block = gw.private_cidr;
    let last = match block.net() {
        ipnet::IpNet::V4(n) if n.prefix_len() < 31 => Some(IpAddr::V4(n.broadcast())),
        _ => None,
    };
    if let Some(why) = unusable_address(gw.ip) {
        err(
            format!("{p}.ip"),
            format!("{} cannot be the gateway's address ({why})", gw.ip),
        );
    } else if !block.contains(&gw.ip) {
        err(
            format!("{p}.ip"),
            format!("{} is outside spec.gateway.privateCIDR {block}", gw.ip),
        );
    } else if gw.ip == block.net().network() && block.host_bits() > 1 {
        err(
            format!("{p}.ip"),
            format!(
                "{} is the network address of spec.gateway.privateCIDR {block}; give a host address",
                gw.ip
            ),
        );
    } else if Some(gw.ip) == last {
        err(
            format!("{p}.ip"),
            format!(
                "{} is the broadcast address of spec.gateway.privateCIDR {block}; give a host address",
                gw.ip
            ),
        );
    }
}

/// The tunnel endpoint is dialable, the interface names are names Linux takes, and the
/// listen port is a port.
fn gateway_interfaces(gw: &crate::GatewaySpec, err: &mut impl FnMut(String, String)) {
    let p = GATEWAY;
    if let Some(e) = &gw.tunnel.endpoint {
        endpoint_address(e, "spec.gateway.tunnel.endpoint", err);
    }
    let ifname_ok = |n: &str| {
        !n.is_empty()
            && n.len() <= 15
            && n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if let Some(egress) = &gw.egress_interface
        && !ifname_ok(egress)
    {
        err(
            format!("{p}.egressInterface"),
            format!(
                "{egress:?} is not an interface name (1-15 letters, digits, '-', '_', '.'); leave it out to use the default route's interface"
            ),
        );
    }
    let t = &gw.tunnel;
    if !ifname_ok(&t.interface) {
        err(
            format!("{p}.tunnel.interface"),
            format!(
                "{:?} is not an interface name (1-15 letters, digits, '-', '_', '.')",
                t.interface
            ),
        );
    }
    if t.listen_port == 0 {
        err(
            format!("{p}.tunnel.listenPort"),
            "must be a UDP port from 1 to 65535".into(),
        );
    }
}

/// The tunnel block has room for every peer, and each peer has a unique name, a WireGuard key
/// and a free address of its own.
fn gateway_peers(gw: &crate::GatewaySpec, err: &mut impl FnMut(String, String)) {
    let p = GATEWAY;
    let t = &gw.tunnel;
    // Tunnel addresses: the first for the gateway, then one per peer (IPv4 keeps the
    // network and broadcast addresses free).
    let host_bits = u32::from(t.cidr.host_bits());
    let total: u128 = if host_bits >= 127 {
        u128::MAX
    } else {
        1u128 << host_bits
    };
    let reserved: u128 = if matches!(t.cidr.net(), ipnet::IpNet::V4(_)) {
        3
    } else {
        2
    };
    let usable = total.saturating_sub(reserved);
    if (gw.peers.len() as u128) > usable {
        err(
            format!("{p}.tunnel.cidr"),
            format!(
                "{} has room for {usable} peers, {} are configured; use a larger block",
                t.cidr,
                gw.peers.len()
            ),
        );
    }
    let gateway_addr = t.cidr.nth(1);
    let mut peer_names: HashMap<&str, usize> = HashMap::new();
    let mut peer_addrs: HashMap<IpAddr, usize> = HashMap::new();
    for (i, peer) in gw.peers.iter().enumerate() {
        let pp = format!("{p}.peers[{i}]");
        if let Some(j) = peer_names.insert(peer.name.as_str(), i) {
            err(
                format!("{pp}.name"),
                format!(
                    "{:?} is already used by {p}.peers[{j}]; peer names must be unique",
                    peer.name.as_str()
                ),
            );
        }
        if let Some(k) = &peer.public_key
            && !crate::gateway::is_wireguard_key(k)
        {
            err(format!("{pp}.publicKey"), "is not a WireGuard key: expected 44 characters of base64 (32 bytes), as `wg pubkey` prints".into());
        }
        if let Some(a) = peer.address {
            let broadcast = t.cidr.nth(total.saturating_sub(1));
            if !t.cidr.contains(&a)
                || Some(a) == t.cidr.nth(0)
                || Some(a) == gateway_addr
                || (reserved == 3 && Some(a) == broadcast)
            {
                err(
                    format!("{pp}.address"),
                    format!(
                        "{a} is not a free peer address of spec.gateway.tunnel.cidr {} (the first address is the gateway's)",
                        t.cidr
                    ),
                );
            }
            if let Some(j) = peer_addrs.insert(a, i) {
                err(
                    format!("{pp}.address"),
                    format!("{a} is already used by {p}.peers[{j}]"),
                );
            }
        }
    }
}

/// An endpoint written as an address must be one a client can dial.
fn endpoint_address(e: &Endpoint, path: &str, err: &mut impl FnMut(String, String)) {
    if let Host::Ip(ip) = e.host
        && let Some(why) = unusable_address(ip)
    {
        err(
            path.to_owned(),
            format!("{ip} cannot be an endpoint address ({why}); give the address clients dial"),
        );
    }
}
