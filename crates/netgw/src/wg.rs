//! WireGuard configuration files as typed values, rendered by `Display`.
//!
//! One [`WgConfig`] renders two ways ([`WgFormat`]): the `wg-quick(8)` format (with
//! `Address`) and the plain `wg(8) setconf` format, which rejects the `wg-quick` keys.

use std::fmt;

use ipnet::IpNet;
use zeroize::Zeroizing;

use crate::keys::{PresharedKey, PrivateKey, PublicKey};

/// Which of the two WireGuard file formats to render.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WgFormat {
    /// `wg-quick(8)`: `/etc/wireguard/<iface>.conf`, with `Address`.
    WgQuick,
    /// `wg setconf <iface> <file>`: the keys `wg(8)` knows, without `Address`.
    SetConf,
}

/// The `[Interface]` section.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WgInterface {
    /// `Address` (wg-quick only): the interface's tunnel address with the tunnel's prefix.
    pub addresses: Vec<IpNet>,
    /// `ListenPort`, for the side others dial.
    pub listen_port: Option<u16>,
    /// `PrivateKey`; when `None` (the peer brought its own key) a comment says where it goes.
    pub private_key: Option<PrivateKey>,
    /// The interface's public key, written as a comment for the reader.
    pub public_key: Option<PublicKey>,
}

/// One `[Peer]` section.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WgPeer {
    /// A name, written as a comment above the section.
    pub name: Option<String>,
    /// `PublicKey`.
    pub public_key: PublicKey,
    /// `PresharedKey`.
    pub preshared_key: Option<PresharedKey>,
    /// `AllowedIPs`: what may come from this peer and is routed to it.
    pub allowed_ips: Vec<IpNet>,
    /// `Endpoint` (`host:port`), for the side that dials.
    pub endpoint: Option<String>,
    /// `PersistentKeepalive`, seconds; `None` or 0 leaves it out.
    pub persistent_keepalive: Option<u16>,
}

impl WgPeer {
    /// A peer with only a public key.
    pub fn new(public_key: PublicKey) -> Self {
        Self {
            name: None,
            public_key,
            preshared_key: None,
            allowed_ips: Vec::new(),
            endpoint: None,
            persistent_keepalive: None,
        }
    }
}

/// A whole WireGuard configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WgConfig {
    /// Comment lines at the top (without the `# `).
    pub header: Vec<String>,
    /// `[Interface]`.
    pub interface: WgInterface,
    /// `[Peer]` sections, in order.
    pub peers: Vec<WgPeer>,
}

impl WgConfig {
    /// A configuration with this interface and no peers.
    pub fn new(interface: WgInterface) -> Self {
        Self {
            header: Vec::new(),
            interface,
            peers: Vec::new(),
        }
    }

    /// A `Display` of the file in `format`.
    pub fn display(&self, format: WgFormat) -> WgDisplay<'_> {
        WgDisplay {
            config: self,
            format,
        }
    }

    /// The file in `format`, in a string that is zeroized when dropped (it may hold keys).
    pub fn render(&self, format: WgFormat) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(1024));
        // Writing to a String cannot fail.
        let _ = fmt::write(&mut *s, format_args!("{}", self.display(format)));
        s
    }
}

/// The `Display` of a [`WgConfig`] in one [`WgFormat`]; see [`WgConfig::display`].
#[derive(Debug, Clone, Copy)]
pub struct WgDisplay<'a> {
    config: &'a WgConfig,
    format: WgFormat,
}

fn join<T: fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for WgDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = self.config;
        for line in &c.header {
            if line.is_empty() {
                writeln!(f, "#")?;
            } else {
                writeln!(f, "# {line}")?;
            }
        }
        if !c.header.is_empty() {
            writeln!(f)?;
        }
        let i = &c.interface;
        writeln!(f, "[Interface]")?;
        if let Some(p) = &i.public_key {
            writeln!(f, "# PublicKey = {p}")?;
        }
        if self.format == WgFormat::WgQuick && !i.addresses.is_empty() {
            writeln!(f, "Address = {}", join(&i.addresses))?;
        }
        if let Some(port) = i.listen_port {
            writeln!(f, "ListenPort = {port}")?;
        }
        match &i.private_key {
            Some(k) => writeln!(f, "PrivateKey = {}", k.to_base64().as_str())?,
            None => writeln!(
                f,
                "# PrivateKey = <the private key that belongs to the public key above>"
            )?,
        }
        for p in &c.peers {
            writeln!(f)?;
            if let Some(n) = &p.name {
                writeln!(f, "# {n}")?;
            }
            writeln!(f, "[Peer]")?;
            writeln!(f, "PublicKey = {}", p.public_key)?;
            if let Some(k) = &p.preshared_key {
                writeln!(f, "PresharedKey = {}", k.to_base64().as_str())?;
            }
            if !p.allowed_ips.is_empty() {
                writeln!(f, "AllowedIPs = {}", join(&p.allowed_ips))?;
            }
            if let Some(e) = &p.endpoint {
                writeln!(f, "Endpoint = {e}")?;
            }
            if let Some(k) = p.persistent_keepalive.filter(|k| *k > 0) {
                writeln!(f, "PersistentKeepalive = {k}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::{KeyPair, SeededRandom};

    #[test]
    fn setconf_has_no_address() {
        let mut src = SeededRandom::new(1);
        let me = KeyPair::generate(&mut src).unwrap();
        let them = KeyPair::generate(&mut src).unwrap();
        let mut cfg = WgConfig::new(WgInterface {
            addresses: vec!["10.200.0.1/24".parse().unwrap()],
            listen_port: Some(51820),
            private_key: Some(me.private.clone()),
            public_key: None,
        });
        let mut peer = WgPeer::new(them.public);
        peer.allowed_ips = vec!["10.200.0.2/32".parse().unwrap()];
        peer.persistent_keepalive = Some(0);
        cfg.peers.push(peer);
        let quick = cfg.render(WgFormat::WgQuick);
        let plain = cfg.render(WgFormat::SetConf);
        assert!(quick.contains("Address = 10.200.0.1/24\n"));
        assert!(!plain.contains("Address"));
        assert!(plain.contains(&format!(
            "PrivateKey = {}\n",
            me.private.to_base64().as_str()
        )));
        assert!(!plain.contains("PersistentKeepalive"));
        assert!(!format!("{cfg:?}").contains(me.private.to_base64().as_str()));
    }
}
