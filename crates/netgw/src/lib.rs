//! A NAT and WireGuard gateway for a cluster's private network: WireGuard keys, server and
//! client configurations with stable peer addresses, forwarding and NAT rules (nftables or
//! iptables), and systemd units, as the files of the gateway's node bundle. No network, no
//! async runtime.
//!
//! ```
//! use frankenetes_netgw::{GatewayOptions, VpnState, gateway_of};
//! use frankenetes_spec::ClusterSpec;
//!
//! let spec = ClusterSpec::from_yaml(r#"
//! apiVersion: frankenetes.dev/v1alpha1
//! kind: Cluster
//! metadata: { name: kubelius }
//! spec:
//!   kubernetesVersion: v1.35.0
//!   controlPlane: [{ name: control-01, ip: 10.10.16.11 }]
//!   gateway:
//!     ip: 10.10.16.5
//!     privateCIDR: 10.10.16.0/20
//!     tunnel: { cidr: 10.200.0.0/24, endpoint: "vpn.kubelius.example:51820" }
//!     peers: [{ name: laptop }]
//! "#)?.spec;
//! let gw = gateway_of(&spec)?;
//! let out = tempfile::tempdir()?;
//!
//! // Keys and addresses: loaded from out/cluster/vpn/state.json, or made and kept there.
//! let mut state = VpnState::load_or_init(out.path(), gw)?;
//! let phone = state.add_peer(gw, "phone")?; // `frankenetes vpn peer add phone`
//! state.save(out.path())?;
//! assert!(phone.wg_quick().contains("Address = 10.200.0.3/24"));
//! assert!(phone.wg_quick().contains("Endpoint = vpn.kubelius.example:51820"));
//!
//! // The gateway machine's files and units, written as out/nodes/gateway/...
//! let bundle = frankenetes_netgw::gateway_bundle(gw, &state, &GatewayOptions::default())?;
//! let server = bundle.file("/etc/wireguard/wg0.conf").expect("rendered");
//! assert!(server.text().contains("AllowedIPs = 10.200.0.2/32"));
//! assert_eq!(server.mode, 0o600);
//! bundle.write(out.path(), &mut Default::default())?;
//! assert!(out.path().join("nodes/gateway/etc/frankenetes/gateway.nft").exists());
//!
//! // Running it again changes nothing: same keys, same addresses.
//! let again = VpnState::load_or_init(out.path(), gw)?;
//! assert_eq!(again, state);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! - [`keys`]: X25519 key pairs and preshared keys, base64 as `wg genkey`/`wg pubkey` print
//!   them; private keys are zeroized on drop and never shown by `Debug`. Randomness is
//!   injectable ([`KeySource`]), so tests and snapshots can use fixed keys ([`SeededRandom`]).
//! - [`state`]: [`VpnState`], the gateway's key pair and every peer's tunnel address and keys,
//!   persisted in `<out>/cluster/vpn/state.json` (0600) so re-running is idempotent and adding a
//!   peer never renumbers another.
//! - [`client`]: the peers' client configurations, and [`set_endpoint`], which writes the
//!   gateway's public endpoint into them once it is known (after `up`).
//! - [`wg`]: typed WireGuard configurations rendered in the `wg-quick` and `wg setconf` formats.
//! - [`nat`]: the sysctl drop-in and one rule list rendered for nftables and for iptables.
//! - [`bundle`]: [`GatewayBundle`], the files and units of the gateway machine, and the
//!   overlay writer (`<out>/nodes/<gateway>/`).
//!
//! [`render`] does all of it for the `render` and `up` commands.

#![deny(missing_docs)]

pub mod bundle;
pub mod client;
mod fsutil;
pub mod keys;
pub mod nat;
pub mod state;
pub mod wg;

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use frankenetes_spec::{Cidr, ClusterSpec, GatewaySpec};

pub use bundle::{Firewall, GatewayBundle, GatewayOptions, gateway_bundle};
pub use client::ClientConfig;
pub use client::set_endpoint;
pub use frankenetes_bundle::systemd::Unit;
pub use frankenetes_bundle::{NodeFile, WriteReport};
pub use keys::{KeyPair, KeySource, OsRandom, PresharedKey, PrivateKey, PublicKey, SeededRandom};
pub use nat::FirewallPlan;
pub use state::{PeerOrigin, PeerState, VpnState};
pub use wg::{WgConfig, WgFormat};

/// Errors of the gateway crate. Each names the file, field or peer concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The cluster spec has no `spec.gateway`.
    #[error(
        "spec.gateway is not set: add a gateway section (ip, privateCIDR, tunnel) to the cluster spec"
    )]
    NoGateway,
    /// A field of `spec.gateway` cannot be used (the spec's own validation catches most of
    /// these; this crate checks again what it relies on).
    #[error("{field}: {reason}")]
    Spec {
        /// The field path (`spec.gateway.peers[1].publicKey`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// The tunnel block has no free address for another peer.
    #[error(
        "spec.gateway.tunnel.cidr {cidr} has no free address for peer {peer:?} ({peers} peers hold addresses); use a larger block"
    )]
    TunnelExhausted {
        /// The tunnel block.
        cidr: Cidr,
        /// The peer that did not get an address.
        peer: String,
        /// How many peers hold addresses.
        peers: usize,
    },
    /// A fixed peer address is held by another peer.
    #[error(
        "{field}: {address} is already the address of peer {holder:?} (in cluster/vpn/state.json); choose another address, or remove that peer first"
    )]
    AddressTaken {
        /// The field path of the fixed address.
        field: String,
        /// The address.
        address: IpAddr,
        /// The peer that holds it.
        holder: String,
    },
    /// A peer name is not a DNS-1123 label.
    #[error("peer name {name:?} is not valid: {reason}")]
    PeerName {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No peer has this name.
    #[error(
        "no VPN peer named {name:?}; add it with `frankenetes vpn peer add {name}` or to spec.gateway.peers"
    )]
    UnknownPeer {
        /// The name.
        name: String,
    },
    /// The state file is not what this crate writes.
    #[error("{}: {field}: {reason}; fix or remove the file (removing it makes new keys and addresses for every peer)", .path.display())]
    State {
        /// The file.
        path: PathBuf,
        /// The field path inside it (`peers.laptop.privateKey`).
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read.
    #[error("cannot read {}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// There is no VPN state to update.
    #[error("{} does not exist: render the cluster first (`frankenetes render` or `up`), which makes the VPN's keys", .path.display())]
    NoState {
        /// The state file.
        path: PathBuf,
    },
    /// A gateway endpoint given to [`set_endpoint`] cannot be used.
    #[error("gateway endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// What was given.
        endpoint: String,
        /// What is wrong.
        reason: String,
    },
    /// The operating system gave no random bytes.
    #[error("cannot get random bytes from the operating system for a WireGuard key: {reason}")]
    Random {
        /// Why.
        reason: String,
    },
}

/// The cluster's `spec.gateway`, or [`Error::NoGateway`].
pub fn gateway_of(spec: &ClusterSpec) -> Result<&GatewaySpec, Error> {
    spec.gateway.as_ref().ok_or(Error::NoGateway)
}

/// What [`render`] made.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Rendered {
    /// The VPN state, as saved.
    pub state: VpnState,
    /// The gateway's bundle, as written.
    pub bundle: GatewayBundle,
    /// Every peer's client configuration, as written to `<out>/cluster/vpn/<peer>.conf`.
    pub clients: Vec<ClientConfig>,
    /// Files written or already right.
    pub report: WriteReport,
}

/// Loads or makes the VPN state, saves it, writes the gateway's overlay under
/// `<out>/nodes/<gateway>/` and every peer's client configuration to
/// `<out>/cluster/vpn/<peer>.conf` (0600), removing the client files of peers no longer in the
/// state. Keys come from the operating system. A second run changes no file. The clients'
/// `Endpoint` is `spec.gateway.tunnel.endpoint`, else the one [`set_endpoint`] recorded.
/// Pass [`GatewayOptions::for_cluster`] so that `spec.ssh.authorizedKeys` may log in.
pub fn render(out: &Path, spec: &GatewaySpec, options: &GatewayOptions) -> Result<Rendered, Error> {
    render_with(out, spec, options, &mut OsRandom)
}

/// [`render`] with keys from `keys`.
pub fn render_with(
    out: &Path,
    spec: &GatewaySpec,
    options: &GatewayOptions,
    keys: &mut dyn KeySource,
) -> Result<Rendered, Error> {
    let state = VpnState::load_or_init_with(out, spec, keys)?;
    let mut report = WriteReport::default();
    if state.save(out)? {
        report.written.push(PathBuf::from(state::STATE_FILE));
    } else {
        report.unchanged += 1;
    }
    let clients = state.client_configs(spec)?;
    client::write_clients(out, &state, &clients, &mut report)?;
    // The overlay and the same content as one Ignition config, like every other node's.
    let bundle = gateway_bundle(spec, &state, options)?;
    bundle.write(out, &mut report)?;
    Ok(Rendered {
        state,
        bundle,
        clients,
        report,
    })
}

impl Error {
    /// Whether the user must change what they gave (the spec, a peer's name): the CLI exits 2
    /// for these.
    pub fn is_bad_input(&self) -> bool {
        matches!(
            self,
            Error::NoGateway
                | Error::Spec { .. }
                | Error::TunnelExhausted { .. }
                | Error::AddressTaken { .. }
                | Error::PeerName { .. }
                | Error::UnknownPeer { .. }
                | Error::Endpoint { .. }
        )
    }
}

/// The README's example, compiled and run as a doctest.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_access;
