//! The VPN's persistent state: the gateway's key pair and every peer's tunnel address and keys,
//! kept in `<out>/cluster/vpn/state.json` so re-running changes nothing and adding a peer never
//! renumbers the others.
//!
//! # Addresses
//!
//! The gateway takes the first host address of `spec.gateway.tunnel.cidr` (`10.200.0.1` in
//! `10.200.0.0/24`); each peer takes the lowest free address after it. A fixed `address:` in the
//! spec wins. An address, once given, stays with its peer until the peer is removed. The network
//! address and, for IPv4, the broadcast address are never given out. Only a change of the tunnel
//! block renumbers peers whose addresses fall outside it.
//!
//! # Peers
//!
//! The state holds the peers of `spec.gateway.peers` (origin [`PeerOrigin::Spec`]) and the ones
//! added with [`VpnState::add_peer`] (`frankenetes vpn peer add`, origin [`PeerOrigin::Added`]).
//! A spec peer that leaves the spec leaves the state too (its access is revoked and its address
//! freed); an added peer stays until [`VpnState::remove_peer`]. The gateway's configuration lists
//! every peer of the state.
//!
//! # Keys
//!
//! A peer with `publicKey` in the spec brought its own key: the state keeps only that public
//! key and the client configuration leaves `PrivateKey` for the user to fill in. Otherwise
//! frankenetes generates the pair and the client configuration is complete. New peers get a
//! preshared key unless [`VpnState::set_preshared_keys`] turned that off.
//!
//! # Endpoint
//!
//! The state also keeps the gateway's public `host:port` when it was learned after the spec
//! was written ([`crate::set_endpoint`], after `up`); see [`crate::client`].

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;

use frankenetes_spec::{Cidr, GatewaySpec, NodeName};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
pub use crate::client::ClientConfig;
use crate::fsutil::{SECRET_MODE, read_optional, write_if_changed};
use crate::keys::{KeyPair, KeySource, OsRandom, PresharedKey, PrivateKey, PublicKey};
use crate::wg::{WgConfig, WgInterface, WgPeer};

/// Where the state lives, relative to the output directory.
pub const STATE_FILE: &str = "cluster/vpn/state.json";
/// Where client configurations are written, relative to the output directory.
pub const CLIENT_DIR: &str = "cluster/vpn";

/// Why a peer is in the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PeerOrigin {
    /// Listed in `spec.gateway.peers`; removed from the state when it leaves the spec.
    Spec,
    /// Added with [`VpnState::add_peer`]; stays until [`VpnState::remove_peer`].
    Added,
}

/// One peer's tunnel address and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerState {
    /// Its tunnel address.
    pub address: IpAddr,
    /// Its public key.
    pub public_key: PublicKey,
    /// Its private key, when frankenetes generated the pair.
    pub private_key: Option<PrivateKey>,
    /// The preshared key shared with the gateway, if any.
    pub preshared_key: Option<PresharedKey>,
    /// Why it is here.
    pub origin: PeerOrigin,
}

/// The gateway's key pair and every peer's address and keys. See the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpnState {
    pub(crate) gateway: KeyPair,
    pub(crate) peers: BTreeMap<String, PeerState>,
    preshared_keys: bool,
    /// The gateway's public `host:port`, learned after the spec was written (an Elastic IP
    /// known only after `up`); `spec.gateway.tunnel.endpoint` wins over it.
    pub(crate) endpoint: Option<String>,
}

/// The tunnel's address plan: which indexes of the block are usable.
pub(crate) struct Tunnel {
    pub(crate) cidr: Cidr,
    /// The gateway's address (index 1).
    pub(crate) gateway: IpAddr,
    /// The last index a peer may take.
    last: u128,
}

impl Tunnel {
    pub(crate) fn new(spec: &GatewaySpec) -> Result<Self, Error> {
        let cidr = spec.tunnel.cidr;
        let host_bits = u32::from(cidr.host_bits());
        let total: u128 = if host_bits >= 128 {
            u128::MAX
        } else {
            1u128 << host_bits
        };
        // IPv4 keeps the broadcast address free.
        let last = match cidr.net() {
            IpNet::V4(_) => total.saturating_sub(2),
            IpNet::V6(_) => total.saturating_sub(1),
        };
        let gateway = cidr
            .nth(1)
            .filter(|_| last >= 1)
            .ok_or_else(|| Error::Spec {
                field: "spec.gateway.tunnel.cidr".into(),
                reason: format!("{cidr} has no address for the gateway; use a /30 or larger"),
            })?;
        Ok(Self {
            cidr,
            gateway,
            last,
        })
    }

    /// Whether a peer may have `a`.
    fn is_peer_address(&self, a: IpAddr) -> bool {
        if !self.cidr.contains(&a) || a == self.gateway {
            return false;
        }
        let index = match (a, self.cidr.net()) {
            (IpAddr::V4(a), IpNet::V4(n)) => u128::from(u32::from(a) - u32::from(n.network())),
            (IpAddr::V6(a), IpNet::V6(n)) => u128::from(a) - u128::from(n.network()),
            _ => return false,
        };
        (2..=self.last).contains(&index)
    }

    /// The lowest peer address not in `taken`.
    fn allocate(&self, taken: &BTreeSet<IpAddr>, peer: &str) -> Result<IpAddr, Error> {
        // At most taken.len() + 1 candidates are looked at.
        let mut n: u128 = 2;
        while n <= self.last {
            match self.cidr.nth(n) {
                Some(a) if !taken.contains(&a) => return Ok(a),
                Some(_) => n += 1,
                None => break,
            }
        }
        Err(Error::TunnelExhausted {
            cidr: self.cidr,
            peer: peer.to_owned(),
            peers: taken.len(),
        })
    }

    /// `a` with the tunnel's prefix length (`10.200.0.2/24`).
    pub(crate) fn with_prefix(&self, a: IpAddr) -> IpNet {
        IpNet::new(a, self.cidr.net().prefix_len()).unwrap_or_else(|_| IpNet::from(a))
    }
}

/// A single address as a network (`10.200.0.2/32`).
fn host_net(a: IpAddr) -> IpNet {
    IpNet::from(a)
}

impl VpnState {
    /// A new state: a fresh gateway key pair and no peers. Most callers want
    /// [`VpnState::load_or_init`].
    pub fn new(keys: &mut dyn KeySource) -> Result<Self, Error> {
        Ok(Self {
            gateway: KeyPair::generate(keys)?,
            peers: BTreeMap::new(),
            preshared_keys: true,
            endpoint: None,
        })
    }

    /// Loads `<dir>/cluster/vpn/state.json`, or starts a new state when it does not exist, and
    /// brings it in line with `spec` (see [`VpnState::sync`]). Keys come from the operating
    /// system. Nothing is written: call [`VpnState::save`].
    pub fn load_or_init(dir: &Path, spec: &GatewaySpec) -> Result<Self, Error> {
        Self::load_or_init_with(dir, spec, &mut OsRandom)
    }

    /// [`VpnState::load_or_init`] with keys from `keys`.
    pub fn load_or_init_with(
        dir: &Path,
        spec: &GatewaySpec,
        keys: &mut dyn KeySource,
    ) -> Result<Self, Error> {
        let mut state = match Self::load(dir)? {
            Some(s) => s,
            None => Self::new(keys)?,
        };
        state.sync(spec, keys)?;
        Ok(state)
    }

    /// Loads `<dir>/cluster/vpn/state.json`; `Ok(None)` when it does not exist.
    pub fn load(dir: &Path) -> Result<Option<Self>, Error> {
        let path = dir.join(STATE_FILE);
        let Some(bytes) = read_optional(&path)? else {
            return Ok(None);
        };
        let corrupt = |field: String, reason: String| Error::State {
            path: path.clone(),
            field,
            reason,
        };
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let file: StateFile = serde_path_to_error::deserialize(de).map_err(|e| {
            let field = e.path().to_string();
            corrupt(field, e.into_inner().to_string())
        })?;
        if file.version != STATE_VERSION {
            return Err(corrupt(
                "version".into(),
                format!(
                    "is {}; this frankenetes reads version {STATE_VERSION}",
                    file.version
                ),
            ));
        }
        let private = |field: &str, s: &str| {
            PrivateKey::from_base64(s).map_err(|reason| corrupt(field.into(), reason))
        };
        let public = |field: &str, s: &str| {
            s.parse::<PublicKey>()
                .map_err(|reason| corrupt(field.into(), reason))
        };
        let gateway =
            KeyPair::from_private(private("gateway.privateKey", &file.gateway.private_key)?);
        if public("gateway.publicKey", &file.gateway.public_key)? != gateway.public {
            return Err(corrupt(
                "gateway.publicKey".into(),
                "does not belong to gateway.privateKey".into(),
            ));
        }
        let mut peers = BTreeMap::new();
        let mut seen: BTreeMap<IpAddr, &str> = BTreeMap::new();
        for (name, p) in &file.peers {
            let f = |k: &str| format!("peers.{name}.{k}");
            if let Err(e) = NodeName::try_from(name.as_str()) {
                return Err(corrupt(format!("peers.{name}"), e.to_string()));
            }
            if let Some(other) = seen.insert(p.address, name) {
                return Err(corrupt(
                    f("address"),
                    format!("{} is also the address of peers.{other}", p.address),
                ));
            }
            let public_key = public(&f("publicKey"), &p.public_key)?;
            let private_key = match &p.private_key {
                Some(s) => Some(private(&f("privateKey"), s)?),
                None => None,
            };
            if let Some(k) = &private_key
                && k.public_key() != public_key
            {
                return Err(corrupt(
                    f("publicKey"),
                    format!("does not belong to peers.{name}.privateKey"),
                ));
            }
            let preshared_key = match &p.preshared_key {
                Some(s) => {
                    Some(PresharedKey::from_base64(s).map_err(|r| corrupt(f("presharedKey"), r))?)
                }
                None => None,
            };
            peers.insert(
                name.clone(),
                PeerState {
                    address: p.address,
                    public_key,
                    private_key,
                    preshared_key,
                    origin: p.origin,
                },
            );
        }
        let endpoint = match &file.endpoint {
            Some(e) => Some(
                crate::client::parse_endpoint(e)
                    .map_err(|reason| corrupt("endpoint".into(), reason))?,
            ),
            None => None,
        };
        Ok(Some(Self {
            gateway,
            peers,
            preshared_keys: file.preshared_keys,
            endpoint,
        }))
    }

    /// Writes `<dir>/cluster/vpn/state.json` (0600, through a temporary file and a rename) when
    /// it changed. Returns whether it changed.
    pub fn save(&self, dir: &Path) -> Result<bool, Error> {
        let file = StateFile {
            version: STATE_VERSION,
            preshared_keys: self.preshared_keys,
            endpoint: self.endpoint.clone(),
            gateway: GatewayFile {
                public_key: self.gateway.public.to_string(),
                private_key: self.gateway.private.to_base64().to_string(),
            },
            peers: self
                .peers
                .iter()
                .map(|(name, p)| {
                    (
                        name.clone(),
                        PeerFile {
                            address: p.address,
                            public_key: p.public_key.to_string(),
                            private_key: p.private_key.as_ref().map(|k| k.to_base64().to_string()),
                            preshared_key: p
                                .preshared_key
                                .as_ref()
                                .map(|k| k.to_base64().to_string()),
                            origin: p.origin,
                        },
                    )
                })
                .collect(),
        };
        let mut bytes = Zeroizing::new(Vec::with_capacity(4096));
        serde_json::to_writer_pretty(&mut *bytes, &file).map_err(|e| Error::State {
            path: dir.join(STATE_FILE),
            field: ".".into(),
            reason: format!("cannot serialize: {e}"),
        })?;
        bytes.push(b'\n');
        write_if_changed(&dir.join(STATE_FILE), &bytes, SECRET_MODE)
    }

    /// Brings the state in line with `spec`: every spec peer present with its fixed address (if
    /// any) and its own public key (if any); spec peers that left the spec removed; addresses
    /// outside the tunnel block reallocated. Idempotent.
    /// On error the state is unchanged.
    pub fn sync(&mut self, spec: &GatewaySpec, keys: &mut dyn KeySource) -> Result<(), Error> {
        let mut next = self.clone();
        next.sync_in_place(spec, keys)?;
        *self = next;
        Ok(())
    }

    fn sync_in_place(&mut self, spec: &GatewaySpec, keys: &mut dyn KeySource) -> Result<(), Error> {
        let tunnel = Tunnel::new(spec)?;
        let in_spec: BTreeSet<&str> = spec.peers.iter().map(|p| p.name.as_str()).collect();
        self.peers
            .retain(|name, p| p.origin != PeerOrigin::Spec || in_spec.contains(name.as_str()));

        // Keys and origin first, so new spec peers exist before addresses are handed out.
        // Placeholder addresses are fixed below.
        let mut needs_address: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, p)| !tunnel.is_peer_address(p.address))
            .map(|(n, _)| n.clone())
            .collect();
        for (i, peer) in spec.peers.iter().enumerate() {
            let name = peer.name.as_str();
            let own_key = match &peer.public_key {
                Some(k) => Some(k.parse::<PublicKey>().map_err(|reason| Error::Spec {
                    field: format!("spec.gateway.peers[{i}].publicKey"),
                    reason,
                })?),
                None => None,
            };
            match self.peers.get_mut(name) {
                Some(p) => {
                    p.origin = PeerOrigin::Spec;
                    match own_key {
                        Some(k) if k != p.public_key || p.private_key.is_some() => {
                            p.public_key = k;
                            p.private_key = None;
                        }
                        Some(_) => {}
                        None if p.private_key.is_none() => {
                            // The peer's own key left the spec: frankenetes makes one now.
                            let pair = KeyPair::generate(keys)?;
                            p.public_key = pair.public;
                            p.private_key = Some(pair.private);
                        }
                        None => {}
                    }
                }
                None => {
                    let (public_key, private_key) = match own_key {
                        Some(k) => (k, None),
                        None => {
                            let pair = KeyPair::generate(keys)?;
                            (pair.public, Some(pair.private))
                        }
                    };
                    let preshared_key = if self.preshared_keys {
                        Some(PresharedKey::generate(keys)?)
                    } else {
                        None
                    };
                    self.peers.insert(
                        name.to_owned(),
                        PeerState {
                            address: tunnel.gateway, // placeholder, replaced below
                            public_key,
                            private_key,
                            preshared_key,
                            origin: PeerOrigin::Spec,
                        },
                    );
                    needs_address.push(name.to_owned());
                }
            }
        }

        // Fixed addresses win; a peer that holds one without being fixed to it is a conflict
        // (moving it would renumber it behind the user's back).
        let mut fixed: BTreeMap<&str, (IpAddr, String)> = BTreeMap::new();
        for (i, peer) in spec.peers.iter().enumerate() {
            let Some(a) = peer.address else { continue };
            let field = format!("spec.gateway.peers[{i}].address");
            if !tunnel.is_peer_address(a) {
                return Err(Error::Spec {
                    field,
                    reason: format!(
                        "{a} is not a free peer address of spec.gateway.tunnel.cidr {} (the first address is the gateway's)",
                        tunnel.cidr
                    ),
                });
            }
            if let Some((other, _)) = fixed.iter().find(|(_, (b, _))| *b == a) {
                return Err(Error::AddressTaken {
                    field,
                    address: a,
                    holder: (*other).to_owned(),
                });
            }
            fixed.insert(peer.name.as_str(), (a, field));
        }
        for (name, (a, field)) in &fixed {
            if let Some((holder, _)) = self.peers.iter().find(|(n, p)| {
                p.address == *a && !fixed.contains_key(n.as_str()) && !needs_address.contains(n)
            }) {
                return Err(Error::AddressTaken {
                    field: field.clone(),
                    address: *a,
                    holder: holder.clone(),
                });
            }
            if let Some(p) = self.peers.get_mut(*name) {
                p.address = *a;
            }
            needs_address.retain(|n| n != name);
        }

        // Then the rest, lowest free address first, in spec order and then by name.
        needs_address.sort_by_key(|n| {
            spec.peers
                .iter()
                .position(|p| p.name.as_str() == n.as_str())
                .unwrap_or(usize::MAX)
        });
        for name in needs_address {
            let taken: BTreeSet<IpAddr> = self
                .peers
                .iter()
                .filter(|(n, p)| **n != name && tunnel.is_peer_address(p.address))
                .map(|(_, p)| p.address)
                .collect();
            let a = tunnel.allocate(&taken, &name)?;
            if let Some(p) = self.peers.get_mut(&name) {
                p.address = a;
            }
        }
        Ok(())
    }

    /// Adds a peer (or finds it, when it exists) and returns its client configuration. The
    /// state is first brought in line with `spec`. Keys come from the operating system. Call
    /// [`VpnState::save`] afterwards.
    pub fn add_peer(&mut self, spec: &GatewaySpec, name: &str) -> Result<ClientConfig, Error> {
        self.add_peer_with(spec, name, &mut OsRandom)
    }

    /// [`VpnState::add_peer`] with keys from `keys`. On error the state is unchanged.
    pub fn add_peer_with(
        &mut self,
        spec: &GatewaySpec,
        name: &str,
        keys: &mut dyn KeySource,
    ) -> Result<ClientConfig, Error> {
        let name = NodeName::try_from(name).map_err(|e| Error::PeerName {
            name: name.to_owned(),
            reason: e.reason,
        })?;
        let mut next = self.clone();
        next.sync_in_place(spec, keys)?;
        if !next.peers.contains_key(name.as_str()) {
            let tunnel = Tunnel::new(spec)?;
            let taken: BTreeSet<IpAddr> = next.peers.values().map(|p| p.address).collect();
            let address = tunnel.allocate(&taken, name.as_str())?;
            let pair = KeyPair::generate(keys)?;
            let preshared_key = if next.preshared_keys {
                Some(PresharedKey::generate(keys)?)
            } else {
                None
            };
            next.peers.insert(
                name.as_str().to_owned(),
                PeerState {
                    address,
                    public_key: pair.public,
                    private_key: Some(pair.private),
                    preshared_key,
                    origin: PeerOrigin::Added,
                },
            );
        }
        *self = next;
        self.client_config(spec, name.as_str())
    }

    /// Removes a peer, revoking its access once the gateway's configuration is re-rendered.
    /// A peer still listed in `spec.gateway.peers` comes back (with new keys) at the next
    /// [`VpnState::sync`]: remove it from the spec too.
    pub fn remove_peer(&mut self, name: &str) -> Option<PeerState> {
        self.peers.remove(name)
    }

    /// Whether new peers get a preshared key (the default).
    pub fn preshared_keys(&self) -> bool {
        self.preshared_keys
    }

    /// Turns preshared keys for new peers on or off; existing peers keep theirs.
    pub fn set_preshared_keys(&mut self, on: bool) {
        self.preshared_keys = on;
    }

    /// The gateway's key pair.
    pub fn gateway_keys(&self) -> &KeyPair {
        &self.gateway
    }

    /// The gateway's tunnel address: the first host address of the tunnel block.
    pub fn gateway_address(spec: &GatewaySpec) -> Result<IpAddr, Error> {
        Tunnel::new(spec).map(|t| t.gateway)
    }

    /// A peer by name.
    pub fn peer(&self, name: &str) -> Option<&PeerState> {
        self.peers.get(name)
    }

    /// Every peer, by name.
    pub fn peers(&self) -> impl Iterator<Item = (&str, &PeerState)> {
        self.peers.iter().map(|(n, p)| (n.as_str(), p))
    }

    /// The gateway's WireGuard configuration: `[Interface]` with its tunnel address (wg-quick
    /// only), `ListenPort` and `PrivateKey`; one `[Peer]` per peer with `AllowedIPs` = the
    /// peer's tunnel address (`/32` or `/128`) and its preshared key.
    pub fn server_config(&self, spec: &GatewaySpec) -> Result<WgConfig, Error> {
        let tunnel = Tunnel::new(spec)?;
        let mut cfg = WgConfig::new(WgInterface {
            addresses: vec![tunnel.with_prefix(tunnel.gateway)],
            listen_port: Some(spec.tunnel.listen_port),
            private_key: Some(self.gateway.private.clone()),
            public_key: Some(self.gateway.public),
        });
        cfg.header = vec![
            format!(
                "WireGuard interface {} of gateway {}. Generated by frankenetes: re-render, do not edit.",
                spec.tunnel.interface,
                spec.name.as_str()
            ),
            "Peers and their keys are kept in cluster/vpn/state.json of the output directory."
                .into(),
        ];
        for (name, p) in &self.peers {
            let mut peer = WgPeer::new(p.public_key);
            peer.name = Some(name.clone());
            peer.preshared_key = p.preshared_key.clone();
            peer.allowed_ips = vec![host_net(p.address)];
            cfg.peers.push(peer);
        }
        Ok(cfg)
    }
}

const STATE_VERSION: u32 = 1;

fn default_true() -> bool {
    true
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct StateFile {
    version: u32,
    #[serde(default = "default_true")]
    preshared_keys: bool,
    /// The gateway's public endpoint learned after `up` (absent: none learned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    gateway: GatewayFile,
    #[serde(default)]
    peers: BTreeMap<String, PeerFile>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct GatewayFile {
    public_key: String,
    private_key: String,
}

impl Drop for GatewayFile {
    fn drop(&mut self) {
        self.private_key.zeroize();
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PeerFile {
    address: IpAddr,
    public_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preshared_key: Option<String>,
    origin: PeerOrigin,
}

impl Drop for PeerFile {
    fn drop(&mut self) {
        self.private_key.zeroize();
        self.preshared_key.zeroize();
    }
}
