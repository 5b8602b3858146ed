//! The peers' client configurations (`<out>/cluster/vpn/<peer>.conf`) and the gateway's public
//! endpoint in them.
//!
//! # The endpoint
//!
//! A client dials the gateway at `Endpoint = host:port`. It comes from
//! `spec.gateway.tunnel.endpoint` when the spec has one. Otherwise it is often known only after
//! `up` (the Elastic IP AWS gives the gateway): [`set_endpoint`] records it in the VPN state
//! (`cluster/vpn/state.json`, so later renderings keep it) and rewrites every peer's file with
//! it. The gateway's own files do not depend on it, so its Ignition config does not change.
//! The spec's endpoint, when set, always wins.

use std::fmt;
use std::path::{Path, PathBuf};

use frankenetes_bundle::WriteReport;
use frankenetes_spec::{Endpoint, GatewaySpec};
use zeroize::Zeroizing;

use crate::Error;
use crate::fsutil::{SECRET_MODE, write_if_changed};
use crate::state::{CLIENT_DIR, STATE_FILE, Tunnel, VpnState};
use crate::wg::{WgConfig, WgFormat, WgInterface, WgPeer};

/// A peer's WireGuard client configuration: `[Interface] Address, PrivateKey` and one `[Peer]`,
/// the gateway, with `Endpoint`, `AllowedIPs` = the private network and the tunnel, and
/// `PersistentKeepalive`. `Display` renders the `wg-quick` form.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientConfig {
    /// The peer's name.
    pub name: String,
    /// The configuration.
    pub config: WgConfig,
}

impl ClientConfig {
    /// The `wg-quick` file (`wg-quick up ./<name>.conf`, or import it into a WireGuard app).
    pub fn wg_quick(&self) -> Zeroizing<String> {
        self.config.render(WgFormat::WgQuick)
    }

    /// The `wg setconf` file: the same without `Address`.
    pub fn setconf(&self) -> Zeroizing<String> {
        self.config.render(WgFormat::SetConf)
    }

    /// Where [`ClientConfig::write`] puts it: `<out>/cluster/vpn/<name>.conf`.
    pub fn path(&self, out: &Path) -> PathBuf {
        out.join(CLIENT_DIR).join(format!("{}.conf", self.name))
    }

    /// Writes the `wg-quick` file to [`ClientConfig::path`] (0600, atomically, only when it
    /// changed). Returns whether it changed.
    pub fn write(&self, out: &Path) -> Result<bool, Error> {
        write_if_changed(&self.path(out), self.wg_quick().as_bytes(), SECRET_MODE)
    }
}

impl fmt::Display for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.display(WgFormat::WgQuick).fmt(f)
    }
}

/// Checks a gateway endpoint (`host:port`, the port written out; IPv6 in brackets) and returns
/// it as it is written into the files.
pub(crate) fn parse_endpoint(s: &str) -> Result<String, String> {
    if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("holds white space or a control character".into());
    }
    let has_port = match s.strip_prefix('[') {
        Some(rest) => rest.split_once("]:").is_some(),
        None => s.rsplit_once(':').is_some_and(|(_, p)| !p.is_empty()),
    };
    if !has_port {
        return Err("needs a port: write it as host:port, e.g. 203.0.113.7:51820".into());
    }
    if !s.starts_with('[') && s.matches(':').count() > 1 {
        return Err("put an IPv6 address in brackets: [2001:db8::7]:51820".into());
    }
    s.parse::<Endpoint>()
        .map(|e| e.to_string())
        .map_err(|e| e.to_string())
}

/// [`parse_endpoint`] with this crate's error.
fn check_endpoint(e: &str) -> Result<String, Error> {
    parse_endpoint(e).map_err(|reason| Error::Endpoint {
        endpoint: e.to_owned(),
        reason,
    })
}

impl VpnState {
    /// The gateway's public endpoint learned after the spec was written ([`set_endpoint`]),
    /// if any.
    pub fn learned_endpoint(&self) -> Option<&str> {
        self.endpoint.as_deref()
    }

    /// Records (or, with `None`, forgets) the gateway's public `host:port`, used in client
    /// configurations when the spec has no `tunnel.endpoint`. Checked first: on error the state
    /// is unchanged. Call [`VpnState::save`] afterwards.
    pub fn set_learned_endpoint(&mut self, endpoint: Option<&str>) -> Result<(), Error> {
        self.endpoint = endpoint.map(check_endpoint).transpose()?;
        Ok(())
    }

    /// A peer's client configuration. Its `Endpoint` is the spec's, else the learned one.
    pub fn client_config(&self, spec: &GatewaySpec, name: &str) -> Result<ClientConfig, Error> {
        self.client_config_for(spec, name, self.endpoint.as_deref())
    }

    /// Every peer's client configuration, by name (see [`VpnState::client_config`]).
    pub fn client_configs(&self, spec: &GatewaySpec) -> Result<Vec<ClientConfig>, Error> {
        self.client_configs_with(spec, None)
    }

    /// Every peer's client configuration, by name, with `endpoint` (`host:port`) as the
    /// gateway's `Endpoint` when the spec has none; `None` uses the learned one, if any.
    /// Nothing is recorded: [`set_endpoint`] does that.
    pub fn client_configs_with(
        &self,
        spec: &GatewaySpec,
        endpoint: Option<&str>,
    ) -> Result<Vec<ClientConfig>, Error> {
        let endpoint = match endpoint {
            Some(e) => Some(check_endpoint(e)?),
            None => self.endpoint.clone(),
        };
        self.peers
            .keys()
            .map(|n| self.client_config_for(spec, n, endpoint.as_deref()))
            .collect()
    }

    /// A peer's client configuration with `learned` (checked) as the endpoint when the spec
    /// has none.
    fn client_config_for(
        &self,
        spec: &GatewaySpec,
        name: &str,
        learned: Option<&str>,
    ) -> Result<ClientConfig, Error> {
        let p = self.peers.get(name).ok_or_else(|| Error::UnknownPeer {
            name: name.to_owned(),
        })?;
        let tunnel = Tunnel::new(spec)?;
        let mut cfg = WgConfig::new(WgInterface {
            addresses: vec![tunnel.with_prefix(p.address)],
            listen_port: None,
            private_key: p.private_key.clone(),
            public_key: Some(p.public_key),
        });
        cfg.header = vec![format!(
            "WireGuard client {name} of gateway {}. Generated by frankenetes; use it with `wg-quick up ./{name}.conf` or import it into a WireGuard app.",
            spec.name.as_str()
        )];
        let endpoint = match (&spec.tunnel.endpoint, learned) {
            (Some(e), _) => Some(e.to_string()),
            (None, Some(e)) => {
                cfg.header.push(
                    "Endpoint: the gateway's public address, found after the spec was written (spec.gateway.tunnel.endpoint is unset)."
                        .into(),
                );
                Some(e.to_owned())
            }
            (None, None) => {
                cfg.header.push(
                    "Endpoint: not known yet (spec.gateway.tunnel.endpoint is unset); add `Endpoint = <gateway address>:<port>` under [Peer]."
                        .into(),
                );
                None
            }
        };
        let mut gw = WgPeer::new(self.gateway.public);
        gw.name = Some(format!("gateway {}", spec.name.as_str()));
        gw.preshared_key = p.preshared_key.clone();
        gw.allowed_ips = vec![spec.private_cidr.net(), tunnel.cidr.net()];
        gw.endpoint = endpoint;
        gw.persistent_keepalive = Some(spec.tunnel.persistent_keepalive);
        cfg.peers.push(gw);
        Ok(ClientConfig {
            name: name.to_owned(),
            config: cfg,
        })
    }
}

/// Writes every client configuration (0600, only what changed) and removes the files of peers
/// no longer in `state`, noting each in `report`.
pub(crate) fn write_clients(
    out: &Path,
    state: &VpnState,
    clients: &[ClientConfig],
    report: &mut WriteReport,
) -> Result<(), Error> {
    let rel = |p: &Path| p.strip_prefix(out).unwrap_or(p).to_owned();
    for c in clients {
        let path = c.path(out);
        if c.write(out)? {
            report.written.push(rel(&path));
        } else {
            report.unchanged += 1;
        }
    }
    // Client files of peers that are gone would still hold working-looking keys: remove them.
    let dir = out.join(CLIENT_DIR);
    let entries = std::fs::read_dir(&dir).map_err(|source| Error::Read {
        path: dir.clone(),
        source,
    })?;
    for entry in entries.flatten() {
        let path = entry.path();
        let stale = path.extension().is_some_and(|e| e == "conf")
            && path
                .file_stem()
                .and_then(|s| s.to_str())
                .is_some_and(|name| state.peer(name).is_none());
        if stale {
            std::fs::remove_file(&path).map_err(|source| Error::Write {
                path: path.clone(),
                source,
            })?;
            report.removed.push(rel(&path));
        }
    }
    Ok(())
}

/// Records the gateway's public endpoint (`host:port`, e.g. the Elastic IP and the WireGuard
/// port, known after `up`) in `<out>/cluster/vpn/state.json` and rewrites every peer's
/// `<out>/cluster/vpn/<peer>.conf` (0600, atomically) with it as `Endpoint`, unless
/// `spec.gateway.tunnel.endpoint` is set (it wins). `None` forgets a learned endpoint.
/// Idempotent: a second call with the same endpoint writes nothing. The state must exist
/// ([`crate::render`] made it): keys are never made here, so the files keep matching the
/// gateway that runs. Peers and keys are taken from the state as it is.
pub fn set_endpoint(
    out: &Path,
    spec: &GatewaySpec,
    endpoint: Option<&str>,
) -> Result<WriteReport, Error> {
    let endpoint = endpoint.map(check_endpoint).transpose()?;
    let mut state = VpnState::load(out)?.ok_or_else(|| Error::NoState {
        path: out.join(STATE_FILE),
    })?;
    state.set_learned_endpoint(endpoint.as_deref())?;
    let mut report = WriteReport::default();
    if state.save(out)? {
        report.written.push(PathBuf::from(STATE_FILE));
    } else {
        report.unchanged += 1;
    }
    let clients = state.client_configs(spec)?;
    write_clients(out, &state, &clients, &mut report)?;
    Ok(report)
}
