//! `spec.gateway`: the NAT instance and WireGuard VPN in front of a private network.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::names::NodeName;
use crate::net::Cidr;
use crate::scalar::Endpoint;

/// `spec.gateway`: one small machine that forwards and masquerades the private network's
/// traffic to the internet and terminates WireGuard for the operators' laptops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct GatewaySpec {
    /// The gateway's node name (its bundle is `nodes/<name>/`).
    #[serde(default = "default_gateway_name")]
    pub name: NodeName,
    /// The gateway's address on the private network.
    pub ip: IpAddr,
    /// `privateCIDR`: the network the gateway routes for (the VPC, e.g. 10.10.16.0/20).
    #[serde(rename = "privateCIDR")]
    pub private_cidr: Cidr,
    /// The interface that faces the internet (masquerade out of it). Absent (the default):
    /// the gateway finds it at boot as the interface of its default route, so the NAT does
    /// not depend on the NIC's name (`eth0`, `ens5`, `enX0` differ between clouds and
    /// instance types). Set it only to pin one interface.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub egress_interface: Option<String>,
    /// The WireGuard tunnel.
    #[serde(default)]
    pub tunnel: TunnelSpec,
    /// The VPN's clients.
    #[serde(default)]
    pub peers: Vec<PeerSpec>,
}

impl GatewaySpec {
    /// A gateway named `gateway` at `ip` routing for `private_cidr`, with the default tunnel,
    /// no peers and the egress interface found at boot.
    pub fn new(ip: IpAddr, private_cidr: Cidr) -> Self {
        Self {
            name: default_gateway_name(),
            ip,
            private_cidr,
            egress_interface: None,
            tunnel: TunnelSpec::default(),
            peers: Vec::new(),
        }
    }
}

fn default_gateway_name() -> NodeName {
    NodeName::try_from("gateway").unwrap_or_else(|_| unreachable!("constant name"))
}

/// `spec.gateway.tunnel`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct TunnelSpec {
    /// `cidr`: tunnel addresses; the gateway takes the first, peers the following ones.
    #[serde(default = "default_tunnel_cidr")]
    pub cidr: Cidr,
    /// UDP port WireGuard listens on (default 51820).
    #[serde(default = "default_listen_port")]
    pub listen_port: u16,
    /// `host:port` clients dial (the port is required: behind NAT it may differ from
    /// `listenPort`); when absent it is filled in by the backend (an Elastic IP).
    #[serde(default, deserialize_with = "endpoint_with_port")]
    pub endpoint: Option<Endpoint>,
    /// Interface name on the gateway (default `wg0`).
    #[serde(default = "default_interface")]
    pub interface: String,
    /// `PersistentKeepalive` in client configs, seconds (default 25; 0 turns it off).
    #[serde(default = "default_keepalive")]
    pub persistent_keepalive: u16,
}

/// An endpoint whose port is written out: [`Endpoint`]'s default (6443, the apiserver's) would
/// be wrong for WireGuard.
fn endpoint_with_port<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Endpoint>, D::Error> {
    let Some(s) = Option::<String>::deserialize(d)? else {
        return Ok(None);
    };
    let has_port = match s.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").is_some(),
        None => s.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty()),
    };
    if !has_port {
        return Err(serde::de::Error::custom(format!(
            "{s:?} needs a port: write it as host:port, e.g. {s}:51820"
        )));
    }
    s.parse().map(Some).map_err(serde::de::Error::custom)
}

fn default_tunnel_cidr() -> Cidr {
    Cidr::try_from("10.200.0.0/24".to_owned()).unwrap_or_else(|_| unreachable!("constant CIDR"))
}
fn default_listen_port() -> u16 {
    51820
}
fn default_interface() -> String {
    "wg0".into()
}
fn default_keepalive() -> u16 {
    25
}

impl Default for TunnelSpec {
    fn default() -> Self {
        Self {
            cidr: default_tunnel_cidr(),
            listen_port: default_listen_port(),
            endpoint: None,
            interface: default_interface(),
            persistent_keepalive: default_keepalive(),
        }
    }
}

/// One VPN client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[non_exhaustive]
pub struct PeerSpec {
    /// The peer's name (DNS-1123 label), unique.
    pub name: NodeName,
    /// Its WireGuard public key (base64 of 32 bytes, as `wg pubkey` prints). When absent,
    /// frankenetes generates the key pair and writes the private key into the client config.
    #[serde(default)]
    pub public_key: Option<String>,
    /// A fixed tunnel address; when absent one is allocated and kept stable.
    #[serde(default)]
    pub address: Option<IpAddr>,
}

impl PeerSpec {
    /// A peer with a generated key and an allocated address.
    pub fn new(name: NodeName) -> Self {
        Self {
            name,
            public_key: None,
            address: None,
        }
    }
}

/// Whether `s` is a WireGuard key: standard base64 of exactly 32 bytes (44 characters, `=`).
pub fn is_wireguard_key(s: &str) -> bool {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    if b.len() != 44 || b[43] != b'=' {
        return false;
    }
    // 32 bytes = 42 full sextets + 4 bits: the 43rd character must have its low 2 bits zero.
    let Some(last) = ALPHABET.iter().position(|c| *c == b[42]) else {
        return false;
    };
    b[..42].iter().all(|c| ALPHABET.contains(c)) && last & 0b11 == 0
}
